"""Feature builders for latency predictors: Vec, ZCP, HWL and their concatenations.

An encoding turns arch ids of a search space into what a predictor reads:

``vec``     the space's own topology encoding. NB201: the op-as-node cell graph (9 nodes with the
            global node, one-hot node types) for a GCN, or ``spaces.nb201.vec_encoding`` (flat
            adjacency + op one-hots) for an MLP; FBNet: the 22x9 layer one-hot (198 values).
``zcp``     the 13 zero-cost proxies of ``multipredict.data.tables.zcp(space)``, normalised.
``hwl``     the latencies of chosen reference devices (``hwl_devices``), normalised.
``zcpvec``  Vec for the network body, ZCP concatenated with its output before the regression head.
``hwlvec``  Vec for the network body, HWL concatenated likewise.

ZCP and HWL columns are scaled by a `ColumnNormaliser` (per-column min-max) that is fitted on the
training archs only, so that nothing about the archs a predictor is scored on leaks into its
inputs. Heavy-tailed columns are log-transformed before the min-max (see `ColumnNormaliser`).

`pool` gives the arch ids where an encoding and every named device's latency exist; every result
says which pool it was computed on (`describe_pool`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .errors import DataError, MultipredictError, UnknownNameError

ENCODINGS = ("vec", "zcp", "hwl", "zcpvec", "hwlvec")
EncodingName = Literal["vec", "zcp", "hwl", "zcpvec", "hwlvec"]  # for options models; the same names
# Which part feeds the network body and which is concatenated before the head.
_BODY = {"vec": "vec", "zcp": "zcp", "hwl": "hwl", "zcpvec": "vec", "hwlvec": "vec"}
_SIDE = {"vec": None, "zcp": None, "hwl": None, "zcpvec": "zcp", "hwlvec": "hwl"}
FORMS = ("graph", "flat")

# A column is logged when its training values have an upper tail this many times the median
# (see ColumnNormaliser): raw synflow (FBNet: 1e24..3e38, median 8e32) always is.
HEAVY_TAIL_RATIO = 1e3


def check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise UnknownNameError("encoding", encoding, ENCODINGS)
    return encoding


def body_kind(encoding: str) -> str:
    """``vec``, ``zcp`` or ``hwl``: what the network body reads for ``encoding``."""
    return _BODY[check_encoding(encoding)]


def side_kind(encoding: str) -> str | None:
    """``zcp``, ``hwl`` or None: what is concatenated before the regression head."""
    return _SIDE[check_encoding(encoding)]


def uses(encoding: str) -> set[str]:
    """The feature sources an encoding reads (subset of vec, zcp, hwl)."""
    return {k for k in (_BODY[check_encoding(encoding)], _SIDE[encoding]) if k}


# --------------------------------------------------------------------------------------------
# normalisation


class ColumnNormaliser:
    """Per-column min-max scaling to [0, 1] over the rows it was fitted on (estimator style).

    ``log_columns="auto"`` log-transforms a column before the min-max when it is heavy-tailed on
    the fitting rows: all values positive and ``max / median > 1e3`` (``log10(x)``), or mixed sign
    and ``max|x| / median|x| > 1e3`` (signed ``log1p(|x| / median|x|)``). Without the log, min-max
    would squeeze all but the few largest raw synflow scores into one value near 0. The rule looks
    at the values rather than the name because sources differ: FBNet's synflow is raw (logged),
    NASLib's NB201 synflow is already a log (14.7..115, left alone); NB201 fisher (max/median 2100)
    is logged and grasp gets the signed log. A list of column names fixes the choice instead;
    ``()`` turns logging off. Constant columns map to 0.
    """

    def __init__(self, log_columns: str | tuple[str, ...] | list[str] = "auto"):
        self.log_columns = log_columns

    def fit(self, table: pd.DataFrame | np.ndarray) -> ColumnNormaliser:
        frame = _as_frame(table)
        values = frame.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            bad = [c for c, ok in zip(frame.columns, np.isfinite(values).all(axis=0)) if not ok]
            raise DataError(f"cannot fit a normaliser on non-finite values in columns {bad}; drop those "
                            "archs first (use encodings.pool to get the archs that have every value)")
        if len(values) == 0:
            raise MultipredictError("cannot fit a normaliser on zero rows; pass the training archs")
        self.columns_ = list(frame.columns)
        self.transform_ = []  # per column: "none", "log" or "symlog"
        self.scale_ = np.ones(values.shape[1])
        for j, name in enumerate(self.columns_):
            kind = self._log_kind(str(name), values[:, j])
            self.transform_.append(kind)
            if kind == "symlog":
                self.scale_[j] = max(float(np.median(np.abs(values[:, j]))), 1e-300)
        logged = self._apply_log(values)
        self.min_ = logged.min(axis=0)
        self.max_ = logged.max(axis=0)
        return self

    def transform(self, table: pd.DataFrame | np.ndarray) -> np.ndarray:
        if not hasattr(self, "min_"):
            raise MultipredictError("ColumnNormaliser is not fitted; call fit(training rows) first")
        frame = _as_frame(table)
        if list(frame.columns) != self.columns_:
            raise MultipredictError(f"columns {list(frame.columns)} differ from the fitted columns {self.columns_}")
        logged = self._apply_log(frame.to_numpy(dtype=float))
        span = self.max_ - self.min_
        span = np.where(span > 0, span, 1.0)
        return ((logged - self.min_) / span).astype(np.float32)

    def fit_transform(self, table) -> np.ndarray:
        return self.fit(table).transform(table)

    def _log_kind(self, name: str, column: np.ndarray) -> str:
        if self.log_columns == "auto":
            absolute = np.abs(column)
            median = float(np.median(absolute))
            if median <= 0:
                return "none"
            if (column > 0).all():
                return "log" if column.max() / median > HEAVY_TAIL_RATIO else "none"
            return "symlog" if absolute.max() / median > HEAVY_TAIL_RATIO else "none"
        if name in tuple(self.log_columns):
            return "log" if (column > 0).all() else "symlog"
        return "none"

    def _apply_log(self, values: np.ndarray) -> np.ndarray:
        out = np.array(values, dtype=float)
        for j, kind in enumerate(self.transform_):
            if kind == "log":
                # values below the fitted minimum can appear outside the training rows; clip at a
                # tiny positive number rather than produce -inf
                out[:, j] = np.log10(np.maximum(out[:, j], 1e-300))
            elif kind == "symlog":
                out[:, j] = np.sign(out[:, j]) * np.log1p(np.abs(out[:, j]) / self.scale_[j])
        return out

    def __repr__(self) -> str:
        return f"ColumnNormaliser(log_columns={self.log_columns!r})"


def _as_frame(table) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    array = np.asarray(table, dtype=float)
    if array.ndim != 2:
        raise MultipredictError(f"expected a 2-D table of features, got shape {array.shape}")
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


# --------------------------------------------------------------------------------------------
# raw feature sources


def _space_module(space: str):
    from .spaces import get

    return get(space)


def vec_flat(space: str, arch_ids) -> np.ndarray:
    """The space's flat Vec encoding (``spaces.<space>.vec_encoding``): FBNet (n, 198)."""
    return _space_module(space).vec_encoding(np.asarray(arch_ids, dtype=np.int64))


# The global node (BRP-NAS / HELP style) is appended last: every node feeds it, and it is the only
# node the readout uses, so the GCN summarises the whole cell into one vector.
GLOBAL_NODE_FEATURES = 1


def graph_adjacency(space: str = "nb201") -> np.ndarray:
    """(9, 9) 0/1 propagation matrix of the NB201 op-as-node graph plus a global node.

    ``adj[i, j] = 1`` when node ``j`` feeds node ``i`` (the edges of `multipredict.spaces.nb201`'s
    ``graph_adjacency()``, reversed so that a row gathers its inputs) or ``i == j``; the last row is
    the global node, which every node feeds. How a row combines its inputs (sum or mean) is the
    GCN's choice (`multipredict.predictors.networks.GCNBody`).
    """
    if space != "nb201":
        raise MultipredictError(f"the graph form exists for nb201 only, not {space!r}; use form='flat'")
    from .spaces import nb201

    base = nb201.graph_adjacency()  # row -> column
    n = base.shape[0] + 1
    adj = np.zeros((n, n), dtype=np.float32)
    adj[:-1, :-1] = base.T  # adj[i, j] = 1 when j feeds i
    adj[-1, :] = 1.0  # every node feeds the global node
    np.fill_diagonal(adj, 1.0)
    return adj


def graph_features(space: str, arch_ids) -> np.ndarray:
    """(n, 9, 8) node one-hots: NB201 node types (input, output, 5 ops) + the global-node flag."""
    if space != "nb201":
        raise MultipredictError(f"the graph form exists for nb201 only, not {space!r}; use form='flat'")
    from .spaces import nb201

    feats = nb201.graph_features(np.asarray(arch_ids, dtype=np.int64))
    n, nodes, types = feats.shape
    out = np.zeros((n, nodes + 1, types + GLOBAL_NODE_FEATURES), dtype=np.float32)
    out[:, :nodes, :types] = feats
    out[:, nodes, types] = 1.0
    return out


def zcp_table(space: str) -> pd.DataFrame:
    """The raw 13-proxy table (index arch_id), from `multipredict.data.tables.zcp`."""
    from .data import tables

    try:
        return tables.zcp(space)
    except ImportError as exc:  # the NB201 proxy loader may be absent in a partial checkout
        raise DataError(f"zero-cost proxies for {space!r} are not available ({exc}); use encoding='vec' "
                        "or 'hwl', or install the data module that provides them") from exc


def latency_table(space: str) -> pd.DataFrame:
    from .data import tables

    return tables.latencies(space)


def _check_devices(space: str, devices) -> list[str]:
    table = latency_table(space)
    devices = list(devices)
    unknown = [d for d in devices if d not in table.columns]
    if unknown:
        raise UnknownNameError(f"{space} device", unknown[0], list(table.columns))
    return devices


# --------------------------------------------------------------------------------------------
# pools


def pool(space: str, encoding: str, devices=(), hwl_devices=()) -> np.ndarray:
    """Sorted arch ids for which ``encoding`` and every device's latency exist.

    ``devices`` are the devices whose latencies will be used as labels; ``hwl_devices`` those whose
    latencies form an HWL encoding (required for ``hwl``/``hwlvec``).
    """
    check_encoding(encoding)
    table = latency_table(space)
    mask = np.ones(len(table), dtype=bool)
    needed = _check_devices(space, list(devices) + list(hwl_devices))
    if "hwl" in uses(encoding) and not list(hwl_devices):
        raise MultipredictError(f"encoding {encoding!r} needs hwl_devices (the reference devices whose "
                                "latencies form the encoding); pass at least one")
    if needed:
        mask &= np.isfinite(table[needed].to_numpy(dtype=float)).all(axis=1)
    ids = table.index.to_numpy(dtype=np.int64)[mask]
    if "zcp" in uses(encoding):
        ids = np.intersect1d(ids, zcp_table(space).index.to_numpy(dtype=np.int64))
    return np.sort(ids)


def describe_pool(space: str, encoding: str, ids) -> str:
    """Short label of a pool for results tables, e.g. ``"nb201 zcp∩latency: 725 of 15625 archs"``."""
    total = len(latency_table(space))
    parts = sorted(uses(encoding) - {"vec"})
    kind = "∩".join(parts + ["latency"]) if parts else "latency"
    return f"{space} {kind}: {len(ids)} of {total} archs"


# --------------------------------------------------------------------------------------------
# the encoder


@dataclass(frozen=True)
class ArchFeatures:
    """What a predictor reads for ``n`` archs.

    ``body``: (n, nodes, node_features) graph node one-hots when ``form == "graph"`` (the
    propagation matrix is ``adjacency``), else (n, d) flat features. ``side``: (n, e) features
    concatenated before the regression head, or None.
    """

    body: np.ndarray
    side: np.ndarray | None = None
    form: str = "flat"
    adjacency: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.body)

    def subset(self, rows) -> ArchFeatures:
        rows = np.asarray(rows)
        side = None if self.side is None else self.side[rows]
        return ArchFeatures(self.body[rows], side, self.form, self.adjacency)


class ArchEncoder:
    """Arch ids -> `ArchFeatures` for one space and encoding (estimator style).

    ``fit(arch_ids)`` fits the ZCP/HWL normalisers on those (training) archs only and records them
    in ``fitted_ids_``; ``transform(arch_ids)`` encodes any archs with the fitted scaling.
    ``form``: ``"graph"`` (NB201 only) or ``"flat"`` for the Vec part.
    """

    def __init__(self, space: str, encoding: str = "vec", *, form: str = "flat", hwl_devices=(),
                 log_columns: str | tuple[str, ...] = "auto"):
        self.space = space
        self.encoding = encoding
        self.form = form
        self.hwl_devices = tuple(hwl_devices)
        self.log_columns = log_columns

    def _validate(self) -> None:
        check_encoding(self.encoding)
        if self.form not in FORMS:
            raise UnknownNameError("form", self.form, FORMS)
        if self.form == "graph" and (self.space != "nb201" or body_kind(self.encoding) != "vec"):
            raise MultipredictError(
                f"form='graph' needs space 'nb201' and a Vec-based encoding (vec, zcpvec, hwlvec); got "
                f"space {self.space!r}, encoding {self.encoding!r}. Use form='flat' (an MLP predictor)")
        if "hwl" in uses(self.encoding):
            if not self.hwl_devices:
                raise MultipredictError(f"encoding {self.encoding!r} needs hwl_devices; pass the reference "
                                        "devices whose latencies form the encoding")
            _check_devices(self.space, self.hwl_devices)

    def fit(self, arch_ids) -> ArchEncoder:
        self._validate()
        ids = np.asarray(arch_ids, dtype=np.int64)
        self.fitted_ids_ = np.sort(ids)
        self.normalisers_ = {}
        for kind in sorted(uses(self.encoding) - {"vec"}):
            self.normalisers_[kind] = ColumnNormaliser(self.log_columns).fit(self._raw(kind, ids))
        return self

    def transform(self, arch_ids) -> ArchFeatures:
        if not hasattr(self, "fitted_ids_"):
            raise MultipredictError("ArchEncoder is not fitted; call fit(training arch ids) first")
        ids = np.asarray(arch_ids, dtype=np.int64)
        body_source = body_kind(self.encoding)
        if body_source == "vec":
            if self.form == "graph":
                body = graph_features(self.space, ids)
            else:
                body = vec_flat(self.space, ids)
        else:
            body = self.normalisers_[body_source].transform(self._raw(body_source, ids))
        side_source = side_kind(self.encoding)
        side = None if side_source is None else self.normalisers_[side_source].transform(self._raw(side_source, ids))
        adjacency = graph_adjacency(self.space) if self.form == "graph" else None
        return ArchFeatures(np.ascontiguousarray(body, dtype=np.float32), side, self.form, adjacency)

    def fit_transform(self, arch_ids) -> ArchFeatures:
        return self.fit(arch_ids).transform(arch_ids)

    def _raw(self, kind: str, ids: np.ndarray) -> pd.DataFrame:
        if kind == "zcp":
            table = zcp_table(self.space)
            missing = np.setdiff1d(ids, table.index.to_numpy(dtype=np.int64))
            if len(missing):
                raise DataError(f"{len(missing)} archs (e.g. {missing[:5].tolist()}) have no zero-cost proxies "
                                f"in {self.space}; restrict them to encodings.pool(space, {self.encoding!r}, ...)")
            return table.loc[ids]
        if kind == "hwl":
            table = latency_table(self.space)[list(self.hwl_devices)].loc[ids]
            if not np.isfinite(table.to_numpy(dtype=float)).all():
                raise DataError(f"some archs lack a latency on the HWL devices {list(self.hwl_devices)}; restrict "
                                f"them to encodings.pool(space, {self.encoding!r}, hwl_devices=...)")
            return table
        raise AssertionError(kind)

    def __repr__(self) -> str:
        return (f"ArchEncoder(space={self.space!r}, encoding={self.encoding!r}, form={self.form!r}, "
                f"hwl_devices={list(self.hwl_devices)!r})")


def encode(space: str, encoding: str, train_ids, arch_ids, *, form: str = "flat", hwl_devices=()) -> ArchFeatures:
    """One-call form: fit the normalisers on ``train_ids``, encode ``arch_ids``."""
    return ArchEncoder(space, encoding, form=form, hwl_devices=hwl_devices).fit(train_ids).transform(arch_ids)


# --------------------------------------------------------------------------------------------
# accuracy tasks (NASLib spaces): ZCP per (space, task), Vec per space

# FLAN's rule (Akhauri & Abdelfattah 2024): log these proxies, then min-max every column.
FLAN_LOG_PROXIES: tuple[str, ...] = ("fisher", "flops", "grad_norm", "params", "snip", "synflow")
TASK_ENCODINGS: tuple[str, ...] = ("vec", "zcp", "zcpvec")
PROXY_SETS: tuple[str, ...] = ("common", "all")


def task_proxies(proxy_set: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The proxy columns of a proxy set: ``"common"`` (the 9 every one of the 28 tasks has),
    ``"all"`` (the paper's 12; a task's missing ones masked), or an explicit list."""
    from .data.accuracy import COMMON_PROXIES, PAPER_PROXIES

    if isinstance(proxy_set, str):
        if proxy_set not in PROXY_SETS:
            raise UnknownNameError("proxy set", proxy_set, PROXY_SETS + ("or a list of proxies",))
        return COMMON_PROXIES if proxy_set == "common" else PAPER_PROXIES
    chosen = tuple(proxy_set)
    unknown = [p for p in chosen if p not in PAPER_PROXIES]
    if unknown or not chosen:
        raise UnknownNameError("zero-cost proxy", unknown[0] if unknown else "(none)", PAPER_PROXIES)
    return chosen


class TaskEncoder:
    """Arch ids of one accuracy task -> flat `ArchFeatures` (estimator style).

    ``encoding``: ``vec`` (the space's one-hot, `multipredict.spaces.naslib_vec`), ``zcp`` (the
    task's proxies) or ``zcpvec`` (Vec body, ZCP side features). ``proxy_set``: ``"common"`` (9
    proxies, archs lacking one are outside the pool), ``"all"`` (12; a missing value becomes 0 and
    an indicator column ``<proxy>_missing`` is 1, so every task has the same 24 features), or a list
    of proxies (each must exist for the task). Each proxy is normalised per task: log10 for
    ``log_columns`` (default FLAN's: fisher, flops, grad_norm, params, snip, synflow; a column with
    values <= 0 gets the signed log), then min-max over the archs ``fit`` sees — the task's pool, by
    default: proxies need no training, so scaling over the unlabelled pool leaks no label.
    """

    def __init__(self, space: str, task: str, encoding: str = "zcp", *, proxy_set="common",
                 log_columns: str | tuple[str, ...] = FLAN_LOG_PROXIES):
        self.space = space
        self.task = task
        self.encoding = encoding
        self.proxy_set = proxy_set
        self.log_columns = log_columns

    @property
    def proxies(self) -> tuple[str, ...]:
        return task_proxies(self.proxy_set)

    @property
    def masked(self) -> bool:
        return isinstance(self.proxy_set, str) and self.proxy_set == "all"

    def _table(self) -> pd.DataFrame:
        from .data import accuracy

        return accuracy.task_table(self.space, self.task)

    def _validate(self) -> None:
        if self.encoding not in TASK_ENCODINGS:
            raise UnknownNameError("accuracy encoding", self.encoding, TASK_ENCODINGS)
        if self.encoding == "vec" or self.masked:
            return
        table = self._table()
        lacking = [p for p in self.proxies if not table[p].notna().any()]
        if lacking:
            raise MultipredictError(
                f"task {self.space}/{self.task} has no {lacking[0]!r} proxy, which the encoding needs; use "
                f"proxy_set='common' (the 9 proxies every task has) or 'all' (missing proxies masked), or drop "
                f"{', '.join(lacking)} from the list")

    def pool(self) -> np.ndarray:
        """The task's archs this encoding can encode (all proxies present unless masked), as the
        table orders them."""
        self._validate()
        table = self._table()
        if self.encoding == "vec" or self.masked:
            return table.index.to_numpy()
        return table.index.to_numpy()[table[list(self.proxies)].notna().all(axis=1).to_numpy()]

    def _raw(self, ids) -> pd.DataFrame:
        table = self._table()
        missing = pd.Index(ids).difference(table.index)
        if len(missing):
            raise DataError(f"{len(missing)} archs (e.g. {list(missing[:3])}) are not in task "
                            f"{self.space}/{self.task}; encode only archs of TaskEncoder.pool()")
        return table.loc[list(ids), list(self.proxies)]

    def fit(self, arch_ids=None) -> TaskEncoder:
        """Fit the proxy scaling on ``arch_ids`` (default: the task's pool)."""
        self._validate()
        ids = self.pool() if arch_ids is None else list(arch_ids)
        if "zcp" in uses(self.encoding):
            raw = self._raw(ids)
            if self.masked:
                self.present_ = [p for p in self.proxies if raw[p].notna().any()]
                raw = raw[self.present_].dropna()
            self.normaliser_ = ColumnNormaliser(self.log_columns).fit(raw)
        self.fitted_ = True
        return self

    def _zcp(self, ids) -> np.ndarray:
        raw = self._raw(ids)
        if not self.masked:
            return self.normaliser_.transform(raw)
        values = np.zeros((len(raw), len(self.proxies)), dtype=np.float32)
        missing = raw.isna().to_numpy().astype(np.float32)
        present = [self.proxies.index(p) for p in self.present_]
        filled = raw[self.present_].fillna(raw[self.present_].median())  # placeholder, masked below
        values[:, present] = self.normaliser_.transform(filled)
        values[missing.astype(bool)] = 0.0
        return np.concatenate([values, missing], axis=1)

    def feature_names(self) -> list[str]:
        names = []
        if self.encoding in ("vec", "zcpvec"):
            names += [f"vec_{i}" for i in range(self._vec([self.pool()[0]]).shape[1])]
        if "zcp" in uses(self.encoding):
            names += list(self.proxies) + ([f"{p}_missing" for p in self.proxies] if self.masked else [])
        return names

    def _vec(self, ids) -> np.ndarray:
        from .spaces import naslib_vec

        return naslib_vec.vec_encoding(self.space, ids)

    def transform(self, arch_ids) -> ArchFeatures:
        if not hasattr(self, "fitted_"):
            raise MultipredictError("TaskEncoder is not fitted; call fit() (the task's pool) first")
        ids = list(arch_ids)
        if self.encoding == "vec":
            return ArchFeatures(np.ascontiguousarray(self._vec(ids), dtype=np.float32))
        zcp = self._zcp(ids)
        if self.encoding == "zcp":
            return ArchFeatures(np.ascontiguousarray(zcp, dtype=np.float32))
        return ArchFeatures(np.ascontiguousarray(self._vec(ids), dtype=np.float32), zcp.astype(np.float32))

    def fit_transform(self, arch_ids=None) -> ArchFeatures:
        self.fit(arch_ids)
        return self.transform(self.pool() if arch_ids is None else arch_ids)

    def __repr__(self) -> str:
        return (f"TaskEncoder(space={self.space!r}, task={self.task!r}, encoding={self.encoding!r}, "
                f"proxy_set={self.proxy_set!r})")
