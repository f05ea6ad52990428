"""NASLib's zero-cost proxy benchmarks (automl/NASLib): NAS-Bench-Suite-Zero and whole-space files.

Three kinds of upstream file, all read through the pinned, checksum-verified readers:

- ``naslib/data/zc_<space>.json`` (NAS-Bench-Suite-Zero, **partial**: 500-725 archs per task):
  ``{task: {arch key: {idx, arch, <proxy>: {score, time} | float, ..., val_accuracy}}}``.
  :func:`space_proxies`, and :func:`nb201_proxies` which adds zen for 13 proxies.
- whole-space single-proxy zips (``zen/benchmark--nasbench201--cifar10--5750.json``: proxy /
  ``benchmark--<space>--<task>--<offset>.json``, each a list of ``{idx, arch, <proxy>,
  val_accuracy}`` records): :func:`full_space_proxy`, :func:`nb201_zen`.
- ``9x_all.zip``: 13 proxies + val_accuracy for ~200 archs of NB201, NB301 and TNB-micro on
  ninapro, svhn and scifar100: :func:`nine_x`.

Canonical arch ids (the ``arch_id`` index of every table):

- ``nb201``: NAS-Bench-201 index 0..15624. NASLib's 6-tuple ``(a0..a5)`` (op codes 0 skip_connect,
  1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3) is the string
  ``|a0~0|+|a1~0|a3~1|+|a2~0|a4~1|a5~2|`` -- note a2/a3 swap places (:func:`nb201_tuple_to_string`).
- ``nb101``: NASLib's key string, the flattened adjacency matrix then the op codes,
  ``"(0, 1, 1, ..., 2, 4, 1)"``; json and zips already agree on it.
- ``nb301``: ``"(((0, 0), (1, 5), ...), ((1, 0), ...))"``, the tuple form the zips use (normal cell,
  reduction cell, each 8 ``(input, op)`` pairs). ``zc_nasbench301.json`` writes the same value as
  ``"[[(0, 0), ...], [...]]"``; it is rewritten to the tuple form so that every NB301 file shares
  one key.
- ``tnb101_micro``: NASLib's 6-tuple string ``"(1, 0, 0, 2, 1, 0)"``.
- ``tnb101_macro``: NASLib's tuple string with trailing zeros stripped, ``"(1, 2, 4, 2)"``. The zc
  json pads macro archs to 6 entries with zeros, the zips and ``archs_transbench101_macro.json``
  do not (a macro arch has 4-6 entries, none of them 0), so the stripped form is the one that
  joins.

Every value is a float; ``None``/absent -> NaN. Failed proxies (sentinel -1e8) and non-finite
values (``-inf`` nwot scores) become NaN too, never silently: each table's ``attrs`` carry
``source`` (the upstream file names), ``sentinels`` / ``non_finite`` / ``absent`` (column ->
count of cells that are NaN for that reason), ``duplicates`` (records dropped because their arch
was already read from the same file group; the first one is kept), ``conflicts`` (column -> count
of archs whose value differs between two merged sources; the first source wins) and ``arch_id``
(the key form above).

Files are parsed once per process (``functools.cache``); every public function returns a
copy-on-write shallow copy of the cached frame, so it costs microseconds and a caller may modify
its copy without changing what the next caller gets.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
import pandas as pd

from ..errors import DataError, MultipredictError, UnknownNameError
from . import help
from .formats import load_json, load_zip_json
from .sources import source_file

REPO = "NASLib"

# Alphabetical, the order the FBNet table (zc_fbnet.PROXIES) uses, so ZCP columns line up.
PROXIES: tuple[str, ...] = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot",
                            "params", "plain", "snip", "synflow", "zen")
ACCURACY = "val_accuracy"
SENTINEL = -1e8  # NASLib's score for a proxy that failed on an arch

SPACES: tuple[str, ...] = ("nb101", "nb201", "nb301", "tnb101_micro", "tnb101_macro")
NB201_DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
TNB101_TASKS: tuple[str, ...] = ("class_scene", "class_object", "autoencoder", "normal", "jigsaw", "room_layout",
                                 "segmentsemantic")
TNB101_CLASSIFICATION_TASKS: tuple[str, ...] = ("class_object", "class_scene", "jigsaw", "room_layout")
NINE_X_SPACES: tuple[str, ...] = ("nb201", "nb301", "tnb101_micro")
NINE_X_TASKS: tuple[str, ...] = ("ninapro", "svhn", "scifar100")

TASKS: dict[str, tuple[str, ...]] = {
    "nb101": ("cifar10",),
    "nb201": NB201_DATASETS,
    "nb301": ("cifar10",),
    "tnb101_micro": TNB101_TASKS,
    "tnb101_macro": TNB101_TASKS,
}
# NASLib's benchmark names, as they appear in zip member names.
BENCHMARK_NAMES: dict[str, str] = {
    "nb101": "nasbench101",
    "nb201": "nasbench201",
    "nb301": "nasbench301",
    "tnb101_micro": "transbench101_micro",
    "tnb101_macro": "transbench101_macro",
}
_SPACE_OF_BENCHMARK = {name: space for space, name in BENCHMARK_NAMES.items()}

ZC_JSON: dict[str, str] = {
    "nb101": "naslib/data/zc_nasbench101.json",
    "nb201": "naslib/data/zc_nasbench201.json",
    "nb301": "naslib/data/zc_nasbench301.json",
    "tnb101_micro": "naslib/data/zc_transbench101_micro.json",
    "tnb101_macro": "naslib/data/zc_transbench101_macro.json",
}
ARCH_LISTS: dict[str, str] = {
    "nb201": "naslib/data/archs/archs_nasbench201.json",
    "tnb101_micro": "naslib/data/archs/archs_transbench101_micro.json",
    "tnb101_macro": "naslib/data/archs/archs_transbench101_macro.json",
}
NINE_X_ZIP = "run/results/benchmarks/9x_all.zip"

ARCH_ID_FORMS: dict[str, str] = {
    "nb101": "NASLib key: flattened adjacency then op codes, '(0, 1, ..., 2, 4, 1)'",
    "nb201": "NAS-Bench-201 index 0..15624",
    "nb301": "NASLib tuple '(((in, op) x8), ((in, op) x8))' (normal, reduction)",
    "tnb101_micro": "NASLib 6-tuple '(a0, ..., a5)'",
    "tnb101_macro": "NASLib tuple with trailing zeros stripped, '(1, 2, 4, 2)'",
}


@dataclass(frozen=True)
class FullSpaceFile:
    """One whole-space zip: which proxy it holds for which space and tasks, and how completely."""

    path: str
    proxy: str
    space: str
    tasks: tuple[str, ...]
    note: str = ""


# Preference order matters: for a (space, proxy, task) the first file listing it is the default.
# The contents were read from the pinned files; `_zip_groups` checks them on every load.
FULL_SPACE_FILES: tuple[FullSpaceFile, ...] = (
    FullSpaceFile("run/results/benchmarks/nb201_zen.zip", "zen", "nb201", NB201_DATASETS),
    FullSpaceFile("run/results/benchmarks/nb101_zen.zip", "zen", "nb101", ("cifar10",),
                  "10,250 archs, no accuracies; disjoint from the 500 of zc_nasbench101.json"),
    FullSpaceFile("run/results/benchmarks/nb301_zen.zip", "zen", "nb301", ("cifar10",),
                  "11,221 archs, no accuracies; disjoint from the 725 of zc_nasbench301.json"),
    FullSpaceFile("run/results/benchmarks/nb301_nwot.zip", "nwot", "nb301", ("cifar10",),
                  "11,221 archs, no accuracies"),
    FullSpaceFile("naslib/data/zc_benchmarks/all_benchmarks_zen.zip", "zen", "tnb101_micro", TNB101_TASKS),
    FullSpaceFile("run/results/benchmarks/tnb101_macro_zen.zip", "zen", "tnb101_macro", TNB101_TASKS),
    FullSpaceFile("run/results/benchmarks/tnb101_classification_synflow.zip", "synflow", "tnb101_micro",
                  TNB101_CLASSIFICATION_TASKS),
    FullSpaceFile("run/results/benchmarks/tnb101_classification_synflow.zip", "synflow", "tnb101_macro",
                  TNB101_CLASSIFICATION_TASKS),
    FullSpaceFile("run/results/benchmarks/tnb101_classification_epe_nas.zip", "epe_nas", "tnb101_micro",
                  TNB101_CLASSIFICATION_TASKS),
    FullSpaceFile("run/results/benchmarks/tnb101_classification_epe_nas.zip", "epe_nas", "tnb101_macro",
                  TNB101_CLASSIFICATION_TASKS),
    FullSpaceFile("run/results/benchmarks/tnb101_micro_class_object_fisher.zip", "fisher", "tnb101_micro",
                  ("class_object",), "no accuracies"),
    FullSpaceFile("run/results/benchmarks/tnb101_micro_fisher_jisgaw_all.zip", "fisher", "tnb101_micro",
                  ("jigsaw",)),
    FullSpaceFile("run/results/benchmarks/tnb101_micro_missing_fisher.zip", "fisher", "tnb101_micro",
                  TNB101_TASKS,
                  "partial: 721 archs (NASLib idx 3375-4095) per task, 144 for jigsaw; its class_object "
                  "scores differ from tnb101_micro_class_object_fisher.zip (another run)"),
    FullSpaceFile("run/results/benchmarks/tnb101_macro_class_object_fisher.zip", "fisher", "tnb101_macro",
                  ("class_object",), "no accuracies"),
    FullSpaceFile("run/results/benchmarks/tnb101_macro_jigsaw_fisher.zip", "fisher", "tnb101_macro",
                  ("jigsaw",), "no accuracies"),
)

# NASLib's NB201 op codes; the arch string wants the ops in the order (0->1), (0->2), (1->2),
# (0->3), (1->3), (2->3), and NASLib's tuple lists (1->2) fourth and (0->3) third.
NB201_NASLIB_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
_NB201_TUPLE_ORDER = (0, 1, 3, 2, 4, 5)


# --------------------------------------------------------------------------------------------
# names


def _check_space(space: str, valid: tuple[str, ...] = SPACES) -> None:
    if space not in valid:
        raise UnknownNameError("NASLib space", space, valid)


def _check_task(space: str, task: str, valid: tuple[str, ...] | None = None) -> None:
    valid = TASKS[space] if valid is None else valid
    if task not in valid:
        raise UnknownNameError(f"{space} task", task, valid)


def tasks(space: str) -> tuple[str, ...]:
    """The tasks (datasets) NAS-Bench-Suite-Zero covers for ``space``."""
    _check_space(space)
    return TASKS[space]


def full_space_proxies(space: str) -> list[str]:
    """Proxies with a whole-space file for ``space`` (no download needed)."""
    _check_space(space)
    return [p for p in PROXIES if any(f.space == space and f.proxy == p for f in FULL_SPACE_FILES)]


def full_space_files(space: str, proxy: str, task: str) -> list[str]:
    """Upstream paths of the files holding ``proxy`` on ``space``/``task``, default first."""
    _check_space(space)
    valid_proxies = full_space_proxies(space)
    if proxy not in valid_proxies:
        raise UnknownNameError(f"whole-space proxy of {space}", proxy, valid_proxies)
    files = [f for f in FULL_SPACE_FILES if f.space == space and f.proxy == proxy]
    valid_tasks = tuple(t for t in TASKS[space] if any(t in f.tasks for f in files))
    _check_task(space, task, valid_tasks)
    return [f.path for f in files if task in f.tasks]


# --------------------------------------------------------------------------------------------
# arch keys


def nb201_tuple_to_string(arch) -> str:
    """NAS-Bench-201 arch string of NASLib's NB201 6-tuple (a tuple/list of ints or its string
    ``"(4, 0, 3, 1, 4, 3)"``): ``|a0~0|+|a1~0|a3~1|+|a2~0|a4~1|a5~2|`` with op codes
    0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3."""
    codes = _parse_tuple(arch) if isinstance(arch, str) else arch
    try:
        codes = tuple(int(c) for c in codes)
    except (TypeError, ValueError):
        codes = None
    if codes is None or len(codes) != 6 or not all(0 <= c < len(NB201_NASLIB_OPS) for c in codes):
        raise MultipredictError(
            f"not a NASLib NB201 arch: {arch!r}; expected 6 op codes in 0..4 such as (4, 0, 3, 1, 4, 3)"
        )
    ops = [NB201_NASLIB_OPS[codes[i]] for i in _NB201_TUPLE_ORDER]
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


def _parse_tuple(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


@cache
def _nb201_key_to_index() -> dict[str, int]:
    """NASLib tuple string ``"(a0, ..., a5)"`` -> NB201 index, for all 5^6 tuples."""
    index = help.nb201_index()
    table = {str(codes): index.get(nb201_tuple_to_string(codes)) for codes in itertools.product(range(5), repeat=6)}
    if sorted(table.values(), key=lambda i: -1 if i is None else i) != list(range(len(index))):
        raise DataError("NASLib's NB201 tuples do not map one-to-one onto the NAS-Bench-201 index; the join "
                        "in nb201_tuple_to_string no longer matches HELP's str_arch2idx.pt")
    return table


def _canonical_tuple_string(value) -> str:
    """``str`` of nested tuples: one spelling for ``[[(0, 1), ...]]`` and ``(((0, 1), ...))``."""
    def as_tuple(v):
        return tuple(as_tuple(x) for x in v) if isinstance(v, (list, tuple)) else v

    return str(as_tuple(value))


# How str(tuple) spells each space's key; a key already spelled so needs no parse.
_FLAT_TUPLE = r"^\((?:\d+, )*\d+\)$"
_NB301_CELL = r"\(\(\d+, \d+\)(?:, \(\d+, \d+\))*\)"
_CANONICAL_KEY = {
    "nb101": re.compile(_FLAT_TUPLE),
    "nb301": re.compile(rf"^\({_NB301_CELL}, {_NB301_CELL}\)$"),
    "tnb101_micro": re.compile(_FLAT_TUPLE),
    "tnb101_macro": re.compile(_FLAT_TUPLE),
}
_TRAILING_ZEROS = re.compile(r"(?:, 0)+\)$")


def arch_id(space: str, key: str):
    """Canonical arch id (see the module doc) of a NASLib arch key of ``space``."""
    _check_space(space)
    if space == "nb201":
        lookup = _nb201_key_to_index()
        found = lookup.get(key) if isinstance(key, str) else None
        if found is None:  # another spelling of the tuple (spaces, a list)
            parsed = _parse_tuple(key) if isinstance(key, str) else key
            found = lookup.get(_canonical_tuple_string(parsed)) if isinstance(parsed, (tuple, list)) else None
        if found is None:
            raise MultipredictError(f"not a NASLib NB201 arch key: {key!r}; expected e.g. '(4, 0, 3, 1, 4, 3)'")
        return found
    if isinstance(key, str) and _CANONICAL_KEY[space].match(key):
        # skipping the parse makes the 10k-arch NB101/NB301 zips load about five times faster
        if space != "tnb101_macro":
            return key
        stripped = _TRAILING_ZEROS.sub(")", key)
        if ", " in stripped:  # a 1-tuple is spelled "(1,)": leave that to the general path
            return stripped
    parsed = _parse_tuple(key) if isinstance(key, str) else key
    if not isinstance(parsed, (tuple, list)):
        raise MultipredictError(f"not a NASLib {space} arch key: {key!r}; expected a tuple such as "
                                f"{ARCH_ID_FORMS[space]}")
    if space == "tnb101_macro":
        parsed = list(parsed)
        while parsed and parsed[-1] == 0:
            parsed.pop()
    return _canonical_tuple_string(parsed)


def _arch_id_of(space: str, key: str, file_name: str):
    try:
        return arch_id(space, key)
    except MultipredictError as exc:
        raise DataError(f"{file_name} holds an arch key this loader cannot read: {exc}") from None


@cache
def _arch_list(space: str) -> tuple:
    file = source_file(REPO, ARCH_LISTS[space])
    raw = load_json(file)
    if sorted(raw, key=int) != [str(i) for i in range(len(raw))]:
        raise DataError(f"{file.name} is not keyed 0..N-1; this loader expects NASLib's idx -> arch list")
    return tuple(_arch_id_of(space, raw[str(i)], file.name) for i in range(len(raw)))


def arch_list(space: str) -> list:
    """Every arch of ``space`` (nb201, tnb101_micro, tnb101_macro) as canonical ids, in NASLib's
    ``archs_<space>.json`` order."""
    _check_space(space, tuple(ARCH_LISTS))
    return list(_arch_list(space))


# --------------------------------------------------------------------------------------------
# building tables


def _as_float(value) -> float | None:
    """A record value: ``{score, time}`` or a plain number; ``None`` when there is none."""
    if isinstance(value, dict):
        value = value.get("score")
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _TableBuilder:
    """Rows keyed by arch id, filled from one or more sources, with every dropped value counted."""

    def __init__(self, columns: Iterable[str]):
        self.columns = list(columns)
        self.rows: dict[object, dict[str, float]] = {}
        self.conflicts = dict.fromkeys(self.columns, 0)
        self.duplicates = 0
        self.sources: list[str] = []

    def add_source(self, name: str, records: Iterable[tuple[object, dict]], columns: Iterable[str], *,
                   only_existing_rows: bool = False) -> None:
        """Take ``columns`` from ``(arch id, record)`` pairs. A repeated arch id within this source
        is a duplicate (first kept); a value that differs from another source's is a conflict
        (first source kept). ``only_existing_rows`` makes this a left join onto earlier sources."""
        if name not in self.sources:
            self.sources.append(name)
        columns = [c for c in columns if c in self.conflicts]
        seen: set = set()
        for key, record in records:
            if key in seen:
                self.duplicates += 1
                continue
            seen.add(key)
            row = self.rows.get(key)
            if row is None:
                if only_existing_rows:
                    continue
                row = self.rows[key] = {}
            for column in columns:
                value = _as_float(record.get(column))
                if value is None:
                    continue
                if column in row:
                    if not _same(row[column], value):
                        self.conflicts[column] += 1
                    continue
                row[column] = value

    def frame(self, space: str) -> pd.DataFrame:
        keys = sorted(self.rows)
        values = np.full((len(keys), len(self.columns)), np.nan)
        position = {c: j for j, c in enumerate(self.columns)}
        for i, key in enumerate(keys):
            for column, value in self.rows[key].items():
                values[i, position[column]] = value
        is_sentinel = values == SENTINEL
        is_non_finite = np.isinf(values)
        absent = np.isnan(values)
        values[is_sentinel | is_non_finite] = np.nan
        index = pd.Index(keys, name="arch_id", dtype="int64" if space == "nb201" else None)
        table = pd.DataFrame(values, index=index, columns=self.columns)
        table.attrs["source"] = ", ".join(self.sources)
        table.attrs["sentinels"] = dict(zip(self.columns, map(int, is_sentinel.sum(axis=0)), strict=True))
        table.attrs["non_finite"] = dict(zip(self.columns, map(int, is_non_finite.sum(axis=0)), strict=True))
        table.attrs["absent"] = dict(zip(self.columns, map(int, absent.sum(axis=0)), strict=True))
        table.attrs["duplicates"] = self.duplicates
        table.attrs["conflicts"] = {c: n for c, n in self.conflicts.items() if n}
        table.attrs["arch_id"] = ARCH_ID_FORMS[space]
        return table


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def _columns_present(records: Iterable[dict]) -> list[str]:
    """Proxy columns (in ``PROXIES`` order, unknown ones after) then ``val_accuracy`` if any."""
    fields: set[str] = set()
    for record in records:
        fields.update(record)
    fields -= {"idx", "arch"}
    proxies = [p for p in PROXIES if p in fields] + sorted(fields - set(PROXIES) - {ACCURACY})
    return proxies + ([ACCURACY] if ACCURACY in fields else [])


# --------------------------------------------------------------------------------------------
# NAS-Bench-Suite-Zero json files


@cache
def _zc_json(space: str) -> dict:
    file = source_file(REPO, ZC_JSON[space])
    raw = load_json(file)
    # zc_nasbench101.json nests one level deeper: {"nasbench101": {"cifar10": {...}}}
    if set(raw) == {BENCHMARK_NAMES[space]}:
        raw = raw[BENCHMARK_NAMES[space]]
    missing = [t for t in TASKS[space] if t not in raw]
    if missing:
        raise DataError(f"{file.name} has no tasks {missing}; found {sorted(raw)}, expected {list(TASKS[space])}")
    return raw


def _zc_records(space: str, task: str) -> list[tuple[object, dict]]:
    name = source_file(REPO, ZC_JSON[space]).name
    return [(_arch_id_of(space, key, name), record) for key, record in _zc_json(space)[task].items()]


@cache
def _space_proxies(space: str, task: str, with_whole_space: bool) -> pd.DataFrame:
    records = _zc_records(space, task)
    columns = _columns_present(record for _, record in records)
    extra = []
    if with_whole_space:
        extra = [p for p in full_space_proxies(space) if p not in columns and _covers(space, p, task)]
        proxies = [c for c in columns if c != ACCURACY] + extra
        columns = [p for p in PROXIES if p in proxies] + [c for c in columns if c == ACCURACY]
    builder = _TableBuilder(columns)
    builder.add_source(source_file(REPO, ZC_JSON[space]).name, records, columns)
    for proxy in extra:
        path = full_space_files(space, proxy, task)[0]
        builder.add_source(source_file(REPO, path).name, _full_space_records(path, space, proxy, task), [proxy],
                           only_existing_rows=True)
    return builder.frame(space)


def _covers(space: str, proxy: str, task: str) -> bool:
    return any(f.space == space and f.proxy == proxy and task in f.tasks for f in FULL_SPACE_FILES)


def space_proxies(space: str, task: str | None = None, *, with_whole_space: bool = False) -> pd.DataFrame:
    """NAS-Bench-Suite-Zero's partial table for ``space`` on ``task`` (default: the space's first
    task): index arch id, one column per proxy the file has, then ``val_accuracy``.

    nb101: 500 archs x 11 proxies (no nwot, zen); nb201: 725/725/724 x 12 (no zen); nb301: 725 x 12
    (no zen); tnb101_micro/macro: 711 / 662-725 x 11 (no synflow, zen; epe_nas is the failure
    sentinel on most tasks). ``with_whole_space=True`` adds the missing proxies that a whole-space
    file holds for this task (zen for nb201 and TNB-101, synflow for TNB-101 classification tasks),
    joined on the arch id; ``val_accuracy`` stays the json's (TNB-101 accuracies differ between
    NASLib commits, so the zips' are not mixed in).
    """
    _check_space(space)
    task = TASKS[space][0] if task is None else task
    _check_task(space, task)
    return _space_proxies(space, task, with_whole_space).copy(deep=False)


def nb201_proxies(dataset: str = "cifar10") -> pd.DataFrame:
    """The NAS-Bench-Suite-Zero NB201 table with all 13 proxies: the 12 of ``zc_nasbench201.json``
    plus zen from ``nb201_zen.zip``; 725/725/724 archs (cifar10/cifar100/ImageNet16-120), index
    NB201 index, columns ``PROXIES`` + ``val_accuracy``."""
    _check_task("nb201", dataset)
    return _space_proxies("nb201", dataset, True).copy(deep=False)


# --------------------------------------------------------------------------------------------
# whole-space zips


@cache
def _zip_groups(path: str) -> dict[tuple[str, str, str], list[dict]]:
    """Records of a zip by (proxy, space, task), offsets concatenated in ascending order."""
    file = source_file(REPO, path)
    members = load_zip_json(file)
    parts: dict[tuple[str, str, str], list[tuple[int, list]]] = {}
    for member, records in members.items():
        proxy, _, stem = member.rpartition("/")
        pieces = stem.removesuffix(".json").split("--")
        if len(pieces) != 4 or pieces[0] != "benchmark" or pieces[1] not in _SPACE_OF_BENCHMARK \
                or not pieces[3].isdigit() or not isinstance(records, list):
            raise DataError(
                f"{file.name} member {member!r} is not '<proxy>/benchmark--<space>--<task>--<offset>.json' "
                f"holding a list of records; the loader cannot tell what it holds"
            )
        key = (proxy, _SPACE_OF_BENCHMARK[pieces[1]], pieces[2])
        parts.setdefault(key, []).append((int(pieces[3]), records))
    return {key: [r for _, records in sorted(chunks, key=lambda c: c[0]) for r in records]
            for key, chunks in parts.items()}


def _full_space_records(path: str, space: str, proxy: str, task: str) -> list[tuple[object, dict]]:
    file = source_file(REPO, path)
    groups = _zip_groups(path)
    records = groups.get((proxy, space, task))
    if records is None:
        raise DataError(
            f"{file.name} has no {proxy} records for {BENCHMARK_NAMES[space]}/{task}; it holds "
            f"{sorted('/'.join(k) for k in groups)}. FULL_SPACE_FILES in {__name__} is out of date."
        )
    return [(_arch_id_of(space, record.get("arch"), file.name), record) for record in records]


@cache
def _full_space_proxy(space: str, proxy: str, task: str, path: str) -> pd.DataFrame:
    records = _full_space_records(path, space, proxy, task)
    columns = [proxy] + ([ACCURACY] if any(ACCURACY in r for _, r in records) else [])
    builder = _TableBuilder(columns)
    builder.add_source(source_file(REPO, path).name, records, columns)
    return builder.frame(space)


def full_space_proxy(space: str, proxy: str, task: str | None = None, *, file: str | None = None) -> pd.DataFrame:
    """One proxy over a whole space from NASLib's single-proxy zips: index arch id, columns
    ``proxy`` and ``val_accuracy`` where the file has accuracies (not for nb101/nb301 or the
    fisher files marked "no accuracies" in ``FULL_SPACE_FILES``).

    ``file`` picks another upstream path holding the same data (see :func:`full_space_files`);
    by default the first listed. Note the micro fisher table for tasks other than class_object and
    jigsaw comes from a partial file (721 archs).
    """
    _check_space(space)
    task = TASKS[space][0] if task is None else task
    paths = full_space_files(space, proxy, task)
    if file is None:
        file = paths[0]
    elif file not in paths:
        raise UnknownNameError(f"file with {proxy} on {space}/{task}", file, paths)
    return _full_space_proxy(space, proxy, task, file).copy(deep=False)


def nb201_zen(dataset: str = "cifar10") -> pd.DataFrame:
    """zen and NASLib's val_accuracy for all 15,625 NB201 cells (index NB201 index); the 341
    disconnected cells carry the failure sentinel, so zen is NaN there (``attrs["sentinels"]``)."""
    _check_task("nb201", dataset)
    return full_space_proxy("nb201", "zen", dataset)


# --------------------------------------------------------------------------------------------
# 9x_all.zip


@cache
def _nine_x(space: str, task: str) -> pd.DataFrame:
    groups = _zip_groups(NINE_X_ZIP)
    name = source_file(REPO, NINE_X_ZIP).name
    proxies = sorted((proxy for proxy, s, t in groups if s == space and t == task),
                     key=lambda p: (p not in PROXIES, PROXIES.index(p) if p in PROXIES else 0, p))
    if not proxies:
        raise DataError(f"{name} has no records for {BENCHMARK_NAMES[space]}/{task}")
    columns = proxies + [ACCURACY]
    builder = _TableBuilder(columns)
    for proxy in proxies:
        records = [(_arch_id_of(space, r.get("arch"), name), r) for r in groups[(proxy, space, task)]]
        builder.add_source(name, records, [proxy, ACCURACY])
    return builder.frame(space)


def nine_x(space: str, task: str) -> pd.DataFrame:
    """``9x_all.zip``: 13 proxies + val_accuracy for ~199 NB201 / NB301 and ~192 TNB-micro archs
    on ninapro, svhn or scifar100. Each proxy comes from its own member file; the accuracy is
    taken from the first and ``attrs["conflicts"]["val_accuracy"]`` counts disagreements."""
    _check_space(space, NINE_X_SPACES)
    _check_task(space, task, NINE_X_TASKS)
    return _nine_x(space, task).copy(deep=False)


# --------------------------------------------------------------------------------------------
# catalogue


def tables() -> list[tuple[str, object]]:
    """``(name, callable)`` of every table this module offers, so that a data report can list
    names, shapes and missing values without knowing each function. Nothing is loaded here."""
    out: list[tuple[str, object]] = []
    for dataset in NB201_DATASETS:
        out.append((f"naslib/nb201_proxies/{dataset}", partial(nb201_proxies, dataset)))
    for space in SPACES:
        for task in TASKS[space]:
            out.append((f"naslib/space_proxies/{space}/{task}", partial(space_proxies, space, task)))
    for space in SPACES:
        for proxy in full_space_proxies(space):
            for task in TASKS[space]:
                if _covers(space, proxy, task):
                    out.append((f"naslib/full_space/{space}/{proxy}/{task}",
                                partial(full_space_proxy, space, proxy, task)))
    for space in NINE_X_SPACES:
        for task in NINE_X_TASKS:
            out.append((f"naslib/9x/{space}/{task}", partial(nine_x, space, task)))
    return out
