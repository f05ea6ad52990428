"""NAS-Bench-201 cell space: 6 edges, 5 ops each, 15,625 cells keyed by NAS-Bench-201 index.

Arch string: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; edges in that string's order are
(0->1), (0->2), (1->2), (0->3), (1->3), (2->3), where node 0 is the cell input and node 3 its
output.
"""

from __future__ import annotations

import re

import numpy as np

from .. import config
from ..errors import MultipredictError

NAME = "nb201"
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
N_ARCHS = 15625
_ARCH_RE = re.compile(r"^\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|$")

# Graph form for a GCN (BRP-NAS / HELP style): ops become nodes. Node 0 is the input, nodes 1..6
# the six edge ops, node 7 the output; ``GRAPH_OPS`` is the one-hot vocabulary of node types.
GRAPH_OPS: tuple[str, ...] = ("input", "output") + OPS
N_GRAPH_NODES = 8


def parse(arch: str) -> tuple[str, ...]:
    """The six op names of an arch string, in string order."""
    match = _ARCH_RE.match(arch.strip())
    if not match or any(op not in OPS for op in match.groups()):
        raise MultipredictError(
            f"not a NAS-Bench-201 arch string: {arch!r}; expected the form "
            f"'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with ops from {', '.join(OPS)}"
        )
    return match.groups()


def format_arch(ops: tuple[str, ...] | list[str]) -> str:
    if len(ops) != 6 or any(op not in OPS for op in ops):
        raise MultipredictError(f"a NAS-Bench-201 cell has 6 ops from {OPS}; got {list(ops)!r}")
    a = ops
    return f"|{a[0]}~0|+|{a[1]}~0|{a[2]}~1|+|{a[3]}~0|{a[4]}~1|{a[5]}~2|"


@config.cache_per_data_source
def _strings() -> dict[int, str]:
    """arch id -> arch string under the current data source: every cell (HELP's index file), or
    with ``MULTIPREDICT_DATA=local`` the cells measured into ``data/latency`` (no download)."""
    if config.data_source() == "local":
        from ..data import local

        return local.nb201_arch_strings()
    from ..data import help

    return dict(enumerate(help.nb201_arch_strings()))


@config.cache_per_data_source
def _index() -> dict[str, int]:
    return {text: i for i, text in _strings().items()}


def _unknown(arch_ids) -> MultipredictError:
    known = _strings()
    missing = [int(i) for i in np.atleast_1d(arch_ids) if int(i) not in known]
    return MultipredictError(f"NB201 arch {missing[:5]} is not among the {len(known)} cells of the project's data/ "
                             "folder (MULTIPREDICT_DATA=local knows only the cells measured there); measure it, or "
                             "use the public benchmarks (MULTIPREDICT_DATA=benchmarks)")


def arch_id(arch: str | int) -> int:
    """NAS-Bench-201 index of an arch string (or a validated index)."""
    if isinstance(arch, (int, np.integer)):
        if not 0 <= int(arch) < N_ARCHS:
            raise MultipredictError(f"NB201 arch id {arch} is out of range; expected 0..{N_ARCHS - 1}")
        return int(arch)
    parse(arch)
    index = _index()
    if arch.strip() not in index:
        raise _unknown_string(arch)
    return index[arch.strip()]


def _unknown_string(arch: str) -> MultipredictError:
    return MultipredictError(f"NB201 cell {arch.strip()!r} is not among the {len(_index())} cells of the project's "
                             "data/ folder (MULTIPREDICT_DATA=local); use its id from a measured file, or the public "
                             "benchmarks (MULTIPREDICT_DATA=benchmarks)")


def arch_string(arch_id_: int) -> str:
    strings = _strings()
    i = arch_id(arch_id_)
    if i not in strings:
        raise _unknown(i)
    return strings[i]


def op_indices(arch_ids) -> np.ndarray:
    """(n, 6) op indices (into ``OPS``) for the given arch ids."""
    ids = np.asarray(arch_ids, dtype=np.int64)
    ops = _op_table()[ids]
    if ops.size and (ops < 0).any():
        raise _unknown(ids[(ops < 0).any(axis=-1)])
    return ops


@config.cache_per_data_source
def _op_table() -> np.ndarray:
    """(N_ARCHS, 6) op indices; rows of cells unknown under the data source hold -1."""
    lookup = {op: i for i, op in enumerate(OPS)}
    table = np.full((N_ARCHS, 6), -1, dtype=np.int64)
    for i, text in _strings().items():
        table[i] = [lookup[op] for op in parse(text)]
    table.setflags(write=False)
    return table


def graph_adjacency() -> np.ndarray:
    """The 8x8 adjacency (row -> column) shared by every cell in the op-as-node form."""
    adj = np.zeros((N_GRAPH_NODES, N_GRAPH_NODES), dtype=np.float32)
    for e, (src, dst) in enumerate(EDGES):
        node = e + 1
        if src == 0:
            adj[0, node] = 1
        for e2, (src2, _) in enumerate(EDGES):
            if src2 == dst:
                adj[node, e2 + 1] = 1
        if dst == 3:
            adj[node, N_GRAPH_NODES - 1] = 1
    return adj


def graph_features(arch_ids) -> np.ndarray:
    """(n, 8, len(GRAPH_OPS)) node one-hots for the op-as-node graph of each arch."""
    ops = op_indices(arch_ids)
    feats = np.zeros((len(ops), N_GRAPH_NODES, len(GRAPH_OPS)), dtype=np.float32)
    feats[:, 0, 0] = 1
    feats[:, -1, 1] = 1
    rows = np.arange(len(ops))[:, None]
    feats[rows, np.arange(1, 7)[None, :], 2 + ops] = 1
    return feats


def vec_encoding(arch_ids) -> np.ndarray:
    """Flat Vec encoding (36 values): the cell's adjacency as its 6 upper-triangle entries (an edge
    whose op is ``none`` is absent) followed by the 6 op one-hots (6 x 5)."""
    ops = op_indices(arch_ids)
    adjacency = (ops != OPS.index("none")).astype(np.float32)
    one_hot = np.eye(len(OPS), dtype=np.float32)[ops].reshape(len(ops), -1)
    return np.concatenate([adjacency, one_hot], axis=1)


def connected(arch_ids) -> np.ndarray:
    """Whether each cell has a path from input to output that avoids ``none`` edges (341 of the
    15,625 cells do not: their output is constant, and EAGLE never measured them)."""
    live = op_indices(arch_ids) != OPS.index("none")
    e = {edge: live[:, i] for i, edge in enumerate(EDGES)}
    reach1 = e[(0, 1)]
    reach2 = e[(0, 2)] | (reach1 & e[(1, 2)])
    return e[(0, 3)] | (reach1 & e[(1, 3)]) | (reach2 & e[(2, 3)])
