"""Vec (one-hot architecture) encodings of the NASLib spaces whose accuracies come from NAS-Bench-Suite-Zero.

``vec_encoding(space, arch_ids)`` takes the canonical arch ids of :mod:`multipredict.data.naslib`
(the ``arch_id`` index of its tables) and returns a float32 ``(n, vec_width(space))`` array of 0/1
values. The layout is fixed per space: it is not fitted on the archs passed, so an arch encodes to
the same row whatever it is encoded with. Every column below is a 0/1 indicator, in this order.

``nb201`` (30 = 6 edges x 5 ops): arch id = NAS-Bench-201 index 0..15624, turned into its cell
through HELP's ``str_arch2idx.pt``, the file :mod:`multipredict.data.naslib` joins NASLib's tuples
with (a public benchmark file, so under ``MULTIPREDICT_DATA=local`` this raises the same
``DataError`` as the NASLib tables themselves; the local cells of ``nb201.op_indices`` are not
used, as they do not cover the NASLib archs). Per edge, in the arch string's order (0->1),
(0->2), (1->2), (0->3), (1->3), (2->3), a one-hot over ``nb201.OPS`` = (none, skip_connect,
nor_conv_1x1, nor_conv_3x3, avg_pool_3x3): the op one-hots of :func:`multipredict.spaces.nb201.vec_encoding`
without its 6 adjacency columns (which only repeat "op is not none").

``nb101`` (36 = 21 + 5 x 3): NASLib's key is an n-node cell's n x n adjacency matrix, row-major,
then its n op codes (NASLib's ``all_ops``: 0 input, 1 output, 2 maxpool3x3, 3 conv1x1-bn-relu,
4 conv3x3-bn-relu), so ``n*n + n`` values. NASLib does not pad: the 500 archs of
``zc_nasbench101.json`` all have n = 7 (56 values), but the whole-space ``nb101_zen.zip`` also holds
n = 6, 5, 4 and 2 (42, 30, 20 and 6 values). Here every cell is padded to 7 nodes by inserting
empty nodes before the output, so node 6 is always the output and interior node i < n-1 keeps its
index. Columns: the 21 strictly-upper-triangle entries (i, j), i < j, of the padded 7x7 matrix in
row-major order ((0,1), (0,2), ..., (0,6), (1,2), ..., (5,6)), then per interior node 1..5 a one-hot
over ``NB101_OPS`` = (maxpool3x3, conv1x1-bn-relu, conv3x3-bn-relu) (NASLib codes 2, 3, 4); a
padding node has no edges and an all-zero op block.

``nb301`` (168 = 2 cells x 84): NASLib's compact DARTS genotype, normal then reduction cell, each 8
``(input, op)`` pairs; pair j feeds intermediate node j // 2 + 2 from input 0..j // 2 + 1 (0 =
c_{k-2}, 1 = c_{k-1}, 2.. = earlier intermediate nodes). Ops are NASLib's 7 compact codes
``NB301_OPS`` = (max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5,
dil_conv_3x3, dil_conv_5x5): DARTS's ``none`` is not one of them. Per cell, per pair: a one-hot of
its input over its possible range (2, 2, 3, 3, 4, 4, 5, 5 columns) then a one-hot of its op (7
columns), so 28 + 56 = 84 per cell. The two pairs into a node are summed, so their order carries
no meaning; they are encoded sorted by (input, op), and the two spellings of one cell encode
alike (the whole-space zips write them so sorted, the zc json and ``9x_all.zip`` keys do not).
As the two inputs of a node always differ, 16 columns are 1 for no real arch: the last input
column of each node's first pair and the first of its second pair, in both cells.

``tnb101_micro`` (24 = 6 edges x 4 ops): the 6-tuple is the cell part ``a0_a1a2_a3a4a5`` of
TransNAS-Bench-101's ``64-41414-a0_a1a2_a3a4a5``, edges (0->1), (0->2), (1->2), (0->3), (1->3),
(2->3); per edge a one-hot over ``TNB101_MICRO_OPS`` = (zeroize, skip_connect, conv1x1, conv3x3)
(codes 0..3, TransNAS-Bench-101's meaning of the digits).

``tnb101_macro`` (30 = 6 positions x 5): the tuple is the macro part of ``64-<codes>-basic``, 4 to
6 layers, each 1 (keep), 2 (double channels), 3 (stride 2) or 4 (both). Per position a one-hot over
``TNB101_MACRO_CHOICES`` = (absent, 1, 2, 3, 4); the positions past the last layer are "absent" --
NASLib's own one-hot (``encode_adjacency_one_hot_transbench_macro_op_indices``) pads the same way.
NASLib's zero-padded 6-tuple spelling (``"(1, 2, 4, 2, 0, 0)"``) is accepted and encodes like the
canonical stripped one. Positions 0..3 are never "absent" (4 layers at least).

Value ranges found in the keys, over every task table (``space_proxies(space, task,
with_whole_space=True)`` for every task, ``nine_x`` for ninapro/svhn/scifar100), the arch lists
and the whole-space files: nb201 ids 27..15586 in the tables (910 distinct), 0..15624 over the
arch list; nb101 op codes 0 at the first and 1 at the last node, interior 2..4, adjacency 0/1 and
strictly upper triangular, 7 nodes in the tables (500 keys), 2/4/5/6/7 in ``nb101_zen.zip`` (10,250
keys, none shared with the tables); nb301 always 2 x 8 pairs, pair j's input exactly 0..j // 2 + 1,
ops exactly 0..6, the two inputs of a node always different (924 keys in the tables, 12,145 with the
zips); tnb101_micro always 6 codes, each 0..3 (861 keys, all 4,096 in the arch list); tnb101_macro
4, 5 or 6 codes, each 1..4, no 0 (725 keys, 3,256 in the arch list). Any key outside these ranges
raises :class:`~multipredict.errors.MultipredictError`.

Keys are parsed with :func:`ast.literal_eval` (never ``eval``), once per process per key.
"""

from __future__ import annotations

import ast
from functools import cache, lru_cache

import numpy as np

from ..errors import MultipredictError, UnknownNameError
from . import nb201

VEC_SPACES: tuple[str, ...] = ("nb101", "nb201", "nb301", "tnb101_micro", "tnb101_macro")

# nb101
NB101_NODES = 7
NB101_OPS: tuple[str, ...] = ("maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
NB101_INPUT, NB101_OUTPUT, NB101_FIRST_OP = 0, 1, 2  # NASLib's all_ops codes
NB101_EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(NB101_NODES) for j in range(i + 1, NB101_NODES))
_NB101_EDGE_COLUMN = {edge: k for k, edge in enumerate(NB101_EDGES)}
_NB101_SIZES = {n * n + n: n for n in range(2, NB101_NODES + 1)}

# nb201
NB201_EDGES = nb201.EDGES
NB201_OPS = nb201.OPS

# nb301
NB301_OPS: tuple[str, ...] = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                              "dil_conv_3x3", "dil_conv_5x5")
NB301_CELLS: tuple[str, ...] = ("normal", "reduction")
NB301_PAIRS = 8
NB301_INPUTS: tuple[int, ...] = tuple(j // 2 + 2 for j in range(NB301_PAIRS))  # possible inputs of pair j
_NB301_PAIR_OFFSET = tuple(int(x) for x in np.cumsum([0] + [k + len(NB301_OPS) for k in NB301_INPUTS]))
_NB301_CELL_WIDTH = _NB301_PAIR_OFFSET[-1]

# TransNAS-Bench-101
TNB101_EDGES = nb201.EDGES
TNB101_MICRO_OPS: tuple[str, ...] = ("zeroize", "skip_connect", "conv1x1", "conv3x3")
TNB101_MACRO_CHOICES: tuple[str, ...] = ("absent", "1 keep", "2 double channels", "3 stride 2",
                                         "4 double channels and stride 2")
TNB101_MACRO_POSITIONS = 6
TNB101_MACRO_MIN_LAYERS = 4

_WIDTHS = {
    "nb101": len(NB101_EDGES) + (NB101_NODES - 2) * len(NB101_OPS),
    "nb201": len(NB201_EDGES) * len(NB201_OPS),
    "nb301": len(NB301_CELLS) * _NB301_CELL_WIDTH,
    "tnb101_micro": len(TNB101_EDGES) * len(TNB101_MICRO_OPS),
    "tnb101_macro": TNB101_MACRO_POSITIONS * len(TNB101_MACRO_CHOICES),
}
EXPECTED: dict[str, str] = {
    "nb101": "a NASLib key '(<n*n adjacency 0/1, upper triangle>, <n op codes: 0, 2..4 ..., 1>)' with n = 2..7",
    "nb201": "a NAS-Bench-201 index 0..15624",
    "nb301": "'(((in, op) x8), ((in, op) x8))' with pair j's input in 0..j//2+1 and op in 0..6",
    "tnb101_micro": "a 6-tuple '(a0, ..., a5)' of op codes 0..3",
    "tnb101_macro": "a tuple of 4 to 6 layer codes 1..4 such as '(1, 2, 4, 2)' (trailing zeros allowed)",
}


def _check_space(space: str) -> None:
    if space not in VEC_SPACES:
        raise UnknownNameError("search space", space, VEC_SPACES)


def vec_width(space: str) -> int:
    """Number of columns of ``space``'s Vec encoding (the same for every arch of the space)."""
    _check_space(space)
    return _WIDTHS[space]


def vec_encoding(space: str, arch_ids) -> np.ndarray:
    """``(n, vec_width(space))`` float32 0/1 Vec encoding of the canonical arch ids ``arch_ids`` (a
    sequence, array or pandas Index; one id alone is taken as a list of one). Layouts: module doc."""
    _check_space(space)
    if isinstance(arch_ids, (str, bytes, int, np.integer)):
        arch_ids = [arch_ids]
    ids = list(arch_ids)
    out = np.zeros((len(ids), _WIDTHS[space]), dtype=np.float32)
    if not ids:
        return out
    if space == "nb201":
        ops = _nb201_op_table()[[_nb201_id(i) for i in ids]]
        out[np.arange(len(ids))[:, None], np.arange(len(NB201_EDGES)) * len(NB201_OPS) + ops] = 1
        return out
    rows, columns = [], []
    for row, key in enumerate(ids):
        if not isinstance(key, str):
            raise _bad(space, key, f"got a {type(key).__name__}, not a key string")
        positions = _positions(space, key)
        rows.extend([row] * len(positions))
        columns.extend(positions)
    out[rows, columns] = 1
    return out


def _bad(space: str, key, detail: str) -> MultipredictError:
    text = repr(key)
    if len(text) > 300:
        text = text[:300] + "..."
    return MultipredictError(f"not a valid {space} arch id: {text} ({detail}); expected {EXPECTED[space]}")


# --------------------------------------------------------------------------------------------
# nb201


def _nb201_id(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _bad("nb201", value, f"got a {type(value).__name__}, not an integer")
    if not 0 <= int(value) < nb201.N_ARCHS:
        raise _bad("nb201", value, "out of range")
    return int(value)


@cache
def _nb201_op_table() -> np.ndarray:
    """(15625, 6) indices into ``nb201.OPS``, from HELP's NB201 index (the public file that defines
    NASLib's NB201 ids; a fixed fact, so one copy serves every data source)."""
    from ..data import help

    lookup = {op: k for k, op in enumerate(NB201_OPS)}
    strings = help.nb201_arch_strings()
    table = np.array([[lookup[op] for op in nb201.parse(text)] for text in strings], dtype=np.int64)
    if table.shape != (nb201.N_ARCHS, len(NB201_EDGES)):
        raise MultipredictError(f"HELP's NB201 index holds {len(strings)} cells, expected {nb201.N_ARCHS}")
    table.setflags(write=False)
    return table


# --------------------------------------------------------------------------------------------
# the tuple-keyed spaces


@lru_cache(maxsize=None)
def _positions(space: str, key: str) -> tuple[int, ...]:
    """Columns set to 1 for ``key`` (parsed once per process; errors are not cached)."""
    try:
        value = ast.literal_eval(key)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise _bad(space, key, "not a Python tuple literal") from None
    return _PARSERS[space](key, value)


def _ints(space: str, key: str, value, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(x) is int for x in value):
        raise _bad(space, key, f"{what} is not a tuple of integers")
    return value


def _nb101(key: str, value) -> tuple[int, ...]:
    values = _ints("nb101", key, value, "the key")
    n = _NB101_SIZES.get(len(values))
    if n is None:
        raise _bad("nb101", key, f"{len(values)} values, not n*n + n for n = 2..7 (6, 12, 20, 30, 42 or 56)")
    matrix = np.array(values[:n * n]).reshape(n, n)
    ops = values[n * n:]
    if not np.isin(matrix, (0, 1)).all():
        raise _bad("nb101", key, "adjacency entries must be 0 or 1")
    if np.tril(matrix).any():
        raise _bad("nb101", key, "adjacency has an entry on or below the diagonal")
    if ops[0] != NB101_INPUT or ops[-1] != NB101_OUTPUT:
        raise _bad("nb101", key, f"op codes must start with {NB101_INPUT} (input) and end with {NB101_OUTPUT} "
                                 f"(output), got {ops[0]} and {ops[-1]}")
    interior = ops[1:-1]
    if not all(NB101_FIRST_OP <= op < NB101_FIRST_OP + len(NB101_OPS) for op in interior):
        raise _bad("nb101", key, f"interior op codes must be 2..4, got {list(interior)}")
    node = list(range(n - 1)) + [NB101_NODES - 1]  # pad before the output
    edges = [_NB101_EDGE_COLUMN[(node[i], node[j])] for i, j in zip(*np.nonzero(matrix), strict=True)]
    base = len(NB101_EDGES)
    op_columns = [base + (i - 1) * len(NB101_OPS) + (op - NB101_FIRST_OP) for i, op in enumerate(interior, start=1)]
    return tuple(sorted(edges)) + tuple(op_columns)


def _nb301(key: str, value) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) != len(NB301_CELLS):
        raise _bad("nb301", key, "not 2 cells (normal, reduction)")
    positions = []
    for c, (cell_name, cell) in enumerate(zip(NB301_CELLS, value, strict=True)):
        if not isinstance(cell, (tuple, list)) or len(cell) != NB301_PAIRS or not all(
                isinstance(p, (tuple, list)) and len(p) == 2 and all(type(x) is int for x in p) for p in cell):
            raise _bad("nb301", key, f"the {cell_name} cell is not 8 (input, op) integer pairs")
        pairs = [tuple(p) for p in cell]
        for j, (source, op) in enumerate(pairs):
            if not 0 <= source < NB301_INPUTS[j]:
                raise _bad("nb301", key, f"{cell_name} cell pair {j}: input {source} not in 0..{NB301_INPUTS[j] - 1}")
            if not 0 <= op < len(NB301_OPS):
                raise _bad("nb301", key, f"{cell_name} cell pair {j}: op {op} not in 0..{len(NB301_OPS) - 1}")
        for j in range(0, NB301_PAIRS, 2):  # a node sums its two inputs: their order means nothing
            pairs[j:j + 2] = sorted(pairs[j:j + 2])
        for j, (source, op) in enumerate(pairs):
            start = c * _NB301_CELL_WIDTH + _NB301_PAIR_OFFSET[j]
            positions += [start + source, start + NB301_INPUTS[j] + op]
    return tuple(positions)


def _tnb101_micro(key: str, value) -> tuple[int, ...]:
    codes = _ints("tnb101_micro", key, value, "the key")
    if len(codes) != len(TNB101_EDGES):
        raise _bad("tnb101_micro", key, f"{len(codes)} op codes, not 6")
    if not all(0 <= x < len(TNB101_MICRO_OPS) for x in codes):
        raise _bad("tnb101_micro", key, "an op code is outside 0..3")
    return tuple(e * len(TNB101_MICRO_OPS) + x for e, x in enumerate(codes))


def _tnb101_macro(key: str, value) -> tuple[int, ...]:
    codes = list(_ints("tnb101_macro", key, value, "the key"))
    if len(codes) > TNB101_MACRO_POSITIONS:
        raise _bad("tnb101_macro", key, f"{len(codes)} codes, more than {TNB101_MACRO_POSITIONS}")
    while codes and codes[-1] == 0:  # NASLib's zero-padded spelling
        codes.pop()
    if len(codes) < TNB101_MACRO_MIN_LAYERS:
        raise _bad("tnb101_macro", key, f"{len(codes)} layers, fewer than {TNB101_MACRO_MIN_LAYERS}")
    if not all(1 <= x < len(TNB101_MACRO_CHOICES) for x in codes):
        raise _bad("tnb101_macro", key, "a layer code is outside 1..4, and 0 may only pad the end")
    codes += [0] * (TNB101_MACRO_POSITIONS - len(codes))
    return tuple(p * len(TNB101_MACRO_CHOICES) + x for p, x in enumerate(codes))


_PARSERS = {"nb101": _nb101, "nb301": _nb301, "tnb101_micro": _tnb101_micro, "tnb101_macro": _tnb101_macro}
