"""`FewShotLatencyPredictor`: the Multi-Predict few-shot transfer estimator, fed with data.

1. **Pretrain** (``fit``) on source devices: their latency table (arch id x device, ms), each
   device's training archs and label scaling (a `multipredict.protocols.DeviceSplit`; default every
   measured arch, min-max), and an `ArchEncoder`-like object that turns arch ids into
   `ArchFeatures`. One hardware-embedding row per source device.
2. **Add a target** (``add_device``) from ``k`` measured archs. A ``table`` embedding gets a new row
   copied from the source device whose latencies on those ``k`` archs correlate best with the
   target's (Spearman: the paper's Eq. 1, `closest_source_device`); ``sample`` uses the target's
   latencies on HELP's 10 reference archs (``reference_ms``), ``index`` the binary code of its
   position.
3. **Fine-tune** on the ``k`` samples (labels min-max scaled over them). ``target_train="auto"``
   freezes the arch body when Eq. 1's closest source device correlates with the target at
   ``freeze_above`` or more (the authors' code always freezes it), else trains every weight.
   ``eq1_starts=n`` (ours; the paper: 1) fine-tunes a ``table`` target from each of the ``n``
   source rows Eq. 1 ranks first and predicts the mean of the ``n`` fine-tunes in ms: a hedge
   against Eq. 1's pick, which from 20 measurements is often not the device closest over the space
   (``benchmarks/README.md``); ``add_device(..., starts=n)`` sets it for one target (`onboard` gives
   the device it onboards two).

The estimator never reads benchmark data: `multipredict.methods.transfer` looks up the public
tables and calls it, and a user can fit it on their own tables. Pretrainings are cached by content
(`pretraining_key`: the options that decide them, the source names, and the sha256 of the
features, labels and embedding vectors they are trained on, plus `PRETRAIN_REVISION`) in memory
and, with ``pretrain_dir``, on disk (``torch.load(weights_only=True)``); read-only folders in
``pretrained_dirs`` (e.g. the default models shipped in the repository's ``data/pretrained``) are
searched too. A matching file is loaded instead of training.

Options are declared once, in `TransferOptions` (defaults = the paper's text, Akhauri &
Abdelfattah, AutoML-Conf 2023, Tables 14/15).

Hooks (constructor arguments, None by default; the defaults are the method above) change one
step for studies of other code bases, without options that name them:

- ``index_position(space, device, default_position) -> int``: the position an ``index`` code
  stands for (default: ``default_position``, the device's position among the source devices, then
  the targets in the order they were added).
- ``target_label_scaling(device, arch_ids, latency_ms) -> (scale, offset)``: a target's fine-tuning
  labels, ``label = scale * latency_ms + offset`` (default: the ``target_labels`` option).
- ``network_parts``: the module classes of the network (`networks.NetworkParts`), part of the
  pretraining key where not the defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from scipy import stats

from ..errors import MultipredictError, UnknownNameError
from ..options import Options
from ..outputs import read_or_set_aside
from ..protocols import DeviceSplit
from . import hardware
from .latency import LatencyPredictor
from .stacked import FineTuneJob, fine_tune_many
from .networks import NetworkParts

# bump when what a pretraining computes from the same inputs changes (its cache keys change with it)
PRETRAIN_REVISION = 1
PRETRAIN_CACHE_SIZE = 2
# Eq. 1's correlation: the paper's Spearman, or Pearson on log latency (our option: with ~10 samples
# it picks the device that is closest over the whole space 1.2-1.5x as often)
EQ1_CORRELATIONS = ("spearman", "pearson_log")
TRANSFER_EMBEDDINGS = ("table", "sample", "index")
TARGET_LABELS = ("fewshot", "matched")
TARGET_TRAIN = ("auto", "head", "all")

# the hooks' signatures (see the module docstring)
IndexPosition = Callable[[str | None, str, int], int]
LabelScaling = Callable[[str, np.ndarray, np.ndarray], tuple[float, float]]


class TransferOptions(Options):
    """The few-shot transfer estimator's options (what it trains and how)."""

    embedding: Literal["table", "sample", "index"] = Field(
        "table", description="hardware embedding: learnable table (Eq. 1 init), HELP's reference latencies, "
                             "or the binary code of the device's position")
    gcn_aggregation: Literal["sum", "mean"] = Field(
        "sum", description="how a GCN layer combines a node's inputs (graph features only)")
    source_epochs: int = Field(250, ge=0, description="pretraining epochs")
    source_lr: float = Field(4e-4, gt=0, description="pretraining learning rate (AdamW, cosine)")
    target_epochs: int = Field(50, ge=0, description="fine-tuning epochs per target device")
    target_lr: float = Field(1e-3, gt=0, description="fine-tuning learning rate")
    target_labels: Literal["fewshot", "matched"] = Field(
        "fewshot", description="target labels: min-max over the k measurements, or matched to the "
                               "initialised model's predictions")
    eq1_correlation: Literal["spearman", "pearson_log"] = Field(
        "spearman", description="Eq. 1's correlation: Spearman (paper) or Pearson of log latency")
    eq1_starts: int = Field(
        1, ge=1, description="fine-tune a target from each of the n source rows Eq. 1 ranks first and average "
                             "their predictions in ms (table embedding; 1: the paper, Eq. 1's pick alone)")
    target_batch_size: int | None = Field(
        None, ge=1, description="fine-tuning batch size (None: batch_size, i.e. full batch for k <= 128)")
    target_train: Literal["auto", "head", "all"] = Field(
        "auto", description="what fine-tuning trains: head (arch body frozen, authors' code), all, or auto "
                            "(head when Eq. 1's correlation >= freeze_above)")
    freeze_above: float = Field(0.85, ge=-1, le=1, description="target_train=auto's correlation bound")
    head_layers: int = Field(4, ge=1, description="regression head layers (authors' configs: 2)")
    head_width: int = Field(200, ge=1, description="regression head width (authors' configs: 1000)")
    embedding_dim: int = Field(8, ge=1, description="hardware embedding size")
    batch_size: int = Field(128, ge=1, description="pretraining batch size")


# --------------------------------------------------------------------------------------------
# Eq. 1: the closest source device


def source_correlations(target_ms, source_ms: Mapping[str, Sequence[float]], method: str = "spearman"
                        ) -> dict[str, float]:
    """Correlation between the target's few-shot latencies and each source device's latencies on
    the same archs: Spearman rho (the paper), or ``pearson_log`` (Pearson r of log latencies). Pairs
    where either is missing are skipped; too few pairs or a constant series give NaN."""
    if method not in EQ1_CORRELATIONS:
        raise UnknownNameError("Eq. 1 correlation", method, EQ1_CORRELATIONS)
    target = np.asarray(target_ms, dtype=float)
    out = {}
    for name, values in source_ms.items():
        values = np.asarray(values, dtype=float)
        if values.shape != target.shape:
            raise MultipredictError(f"source device {name!r} has {values.shape} latencies for {target.shape} target "
                                    "measurements; pass both on the same archs")
        ok = np.isfinite(values) & np.isfinite(target)
        if method == "pearson_log":
            ok &= (values > 0) & (target > 0)
        if ok.sum() < 2 or np.ptp(values[ok]) == 0 or np.ptp(target[ok]) == 0:
            out[name] = float("nan")
        elif method == "spearman":
            out[name] = float(stats.spearmanr(values[ok], target[ok])[0])
        else:
            out[name] = float(np.corrcoef(np.log(values[ok]), np.log(target[ok]))[0, 1])
    return out


def closest_source_device(target_ms, source_ms: Mapping[str, Sequence[float]], method: str = "spearman") -> str:
    """The paper's Eq. 1: the source device whose latencies on the target's few-shot archs have the
    highest Spearman correlation (or ``method="pearson_log"``) with the target's measurements
    (ties: the first in order)."""
    if not source_ms:
        raise MultipredictError("closest_source_device needs at least one source device")
    return _most_correlated(source_correlations(target_ms, source_ms, method), len(np.asarray(target_ms)))


def _ranked(correlations: Mapping[str, float], *, exclude: str | None = None) -> list[str]:
    """The devices with a finite correlation, highest first (ties: the first in order)."""
    finite = [(name, rho) for name, rho in correlations.items() if np.isfinite(rho) and name != exclude]
    return [name for name, _ in sorted(finite, key=lambda item: -item[1])]


def _most_correlated(correlations: Mapping[str, float], n_measurements: int) -> str:
    """The device with the highest finite correlation (ties: the first in order)."""
    ranked = _ranked(correlations)
    if not ranked:
        raise MultipredictError("no source device has a defined Spearman correlation with the target's "
                                f"{n_measurements} measurements (too few archs, or constant latencies); "
                                "measure at least 2 archs with different latencies")
    return ranked[0]


# --------------------------------------------------------------------------------------------
# the estimator


@dataclass
class TargetDevice:
    """A target device added from few-shot samples."""

    name: str
    predictor: LatencyPredictor = field(repr=False)
    row: int
    few_shot_ids: np.ndarray = field(repr=False)
    label_scale: float  # label = label_scale * latency_ms + label_offset
    label_offset: float
    closest_source: str | None = None  # the source device whose row it started from: Eq. 1's pick, or copy_from
    correlations: dict[str, float] = field(default_factory=dict, repr=False)
    n_measured: int = 0
    seconds: float = 0.0
    fine_tuned: str = "all"  # what fine-tuning trained: "head" (arch body frozen) or "all"
    # eq1_starts > 1: the same target fine-tuned from Eq. 1's next source rows; predictions average over all
    others: list[TargetDevice] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class TargetSamples:
    """A target device's few-shot measurements: what `FewShotLatencyPredictor.add_devices` takes."""

    name: str
    arch_ids: object
    latency_ms: object
    reference_ms: object = None  # its latencies on HELP's reference archs (the ``sample`` embedding)
    reference_ids: object = None
    copy_from: str | None = None  # start from this source device's embedding row, not Eq. 1's pick (``table``)
    starts: int | None = None  # fine-tunes from Eq. 1's first source rows (``table``; None: the eq1_starts option)


@dataclass
class _Pretrained:
    """What a pretraining leaves behind, shared by every estimator with the same key."""

    encoder: object
    model: LatencyPredictor
    seconds: float
    source: str  # where it came from: "trained", or the file it was loaded from


_PRETRAINED: OrderedDict[str, _Pretrained] = OrderedDict()


def clear_pretrain_cache() -> None:
    """Forget the in-process pretrainings (files on disk stay)."""
    _PRETRAINED.clear()


def minmax_splits(source_latency: pd.DataFrame) -> dict[str, DeviceSplit]:
    """The default split of a user's source table: every measured arch trains, labels min-max."""
    splits = {}
    for name in source_latency.columns:
        column = source_latency[name]
        ids = np.sort(column.index[np.isfinite(column.to_numpy(dtype=float))].to_numpy(dtype=np.int64))
        if len(ids) < 2:
            raise MultipredictError(f"source device {name!r} has {len(ids)} measured archs; pretraining needs at "
                                    "least 2 per device")
        values = column.loc[ids].to_numpy(dtype=float)
        low, high = float(values.min()), float(values.max())
        splits[name] = DeviceSplit(name, ids, ids, low, high if high > low else low + 1.0)
    return splits


class FewShotLatencyPredictor:
    """Pretrain on source devices, then add target devices from a few measurements each.

    ``options``: a `TransferOptions` (or keyword overrides of its defaults). ``seed`` fixes weights
    and shuffles; ``device`` the torch device (``auto``: CUDA when available); ``pretrain_dir`` keeps
    each pretraining's weights so a later process with the same inputs loads them;
    ``pretrained_dirs`` are read-only folders searched too (the shipped default models);
    ``progress``: optional ``callable(stage, fraction)``. Hooks (module docstring):
    ``index_position``, ``target_label_scaling``, ``network_parts``.

    ``fit(encoder, source_latency, splits=None, sample_vectors=None)``, then ``add_device(name,
    arch_ids, latency_ms)``, then ``predict(name, arch_ids)`` (ms).
    """

    def __init__(self, options: TransferOptions | None = None, *, seed: int = 0, device: str = "auto",
                 pretrain_dir: str | os.PathLike | None = None, pretrained_dirs: Sequence[str | os.PathLike] = (),
                 progress: Callable[[str, float], None] | None = None, index_position: IndexPosition | None = None,
                 target_label_scaling: LabelScaling | None = None, network_parts: NetworkParts | None = None,
                 **overrides):
        base = options if options is not None else TransferOptions()
        self.options = TransferOptions.parse({**base.model_dump(), **overrides}, "transfer") if overrides else base
        if self.options.eq1_starts > 1 and self.options.embedding != "table":
            raise MultipredictError(f"eq1_starts={self.options.eq1_starts} needs embedding='table' (Eq. 1 ranks the "
                                    f"source rows a target starts from); got {self.options.embedding!r}: set "
                                    "eq1_starts=1 or use the table embedding")
        self.seed = seed
        self.device = device
        self.pretrain_dir = pretrain_dir
        self.pretrained_dirs = [Path(p) for p in pretrained_dirs]
        self.progress = progress
        self.index_position = index_position
        self.target_label_scaling = target_label_scaling
        self.network_parts = network_parts

    def __getattr__(self, name: str):
        # options read as attributes (``model.target_lr``), as the estimator's settings
        options = self.__dict__.get("options")
        if options is not None and name in TransferOptions.model_fields:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---------------------------------------------------------------- pretraining

    def fit(self, encoder, source_latency: pd.DataFrame, splits: Mapping[str, DeviceSplit] | None = None, *,
            sample_vectors: Mapping[str, np.ndarray] | None = None) -> FewShotLatencyPredictor:
        """Pretrain on the source devices (the columns of ``source_latency``: ms, index = arch id), or
        reuse an identical pretraining. ``encoder``: unfitted, with ``fit(arch_ids)`` and
        ``transform(arch_ids) -> ArchFeatures``; it is fitted on the source training archs only.
        ``splits``: each device's `DeviceSplit` (training archs, label scaling); default every
        measured arch, min-max. ``sample_vectors``: each device's ``sample`` embedding."""
        if not isinstance(source_latency, pd.DataFrame) or source_latency.shape[1] == 0:
            raise MultipredictError("source_latency must be a DataFrame with one column per source device (ms) "
                                    "indexed by arch id; got none")
        self.source_devices = [str(c) for c in source_latency.columns]
        if len(set(self.source_devices)) != len(self.source_devices):
            raise MultipredictError(f"source devices are listed twice: {self.source_devices}")
        splits = dict(splits) if splits is not None else minmax_splits(source_latency)
        missing = [d for d in self.source_devices if d not in splits]
        if missing:
            raise MultipredictError(f"no split for source device {missing[0]!r}; pass one DeviceSplit per column")
        self.source_latency_ = _dense(source_latency)
        self.source_splits_ = {d: splits[d] for d in self.source_devices}
        ids, labels, rows = [], [], []
        for row, name in enumerate(self.source_devices):
            split_ = self.source_splits_[name]
            ids.append(split_.train_ids)
            labels.append(split_.normalise(self.source_latency_[name][split_.train_ids]))
            rows.append(np.full(len(split_.train_ids), row))
        ids, labels, rows = np.concatenate(ids), np.concatenate(labels), np.concatenate(rows)
        # normalisers see the training archs of the source devices only
        self.encoder_ = encoder.fit(np.unique(ids))
        features = self.encoder_.transform(ids)
        self.body_ = "gcn" if features.form == "graph" else "mlp"
        vectors = self._source_vectors(encoder, sample_vectors)
        model = self._new_predictor(features)
        self.pretraining_key_ = pretraining_key(self, features, labels, rows, vectors)
        cached = _PRETRAINED.get(self.pretraining_key_)
        if cached is None:
            cached = self._load(model, features, vectors) or self._train(model, features, labels, rows, vectors)
            _PRETRAINED[self.pretraining_key_] = cached
            while len(_PRETRAINED) > PRETRAIN_CACHE_SIZE:
                _PRETRAINED.popitem(last=False)
            self.pretrained_from_ = cached.source
        else:
            _PRETRAINED.move_to_end(self.pretraining_key_)
            self.pretrained_from_ = "memory"
        self.pretrained_ = cached.model
        self.pretrain_seconds_ = cached.seconds
        self.pretrain_cached_ = self.pretrained_from_ != "trained"
        self.targets_: dict[str, TargetDevice] = {}
        self.n_added_ = 0
        return self

    def _source_vectors(self, encoder, sample_vectors) -> np.ndarray | None:
        if self.embedding == "sample":
            if sample_vectors is None or any(d not in sample_vectors for d in self.source_devices):
                raise MultipredictError("embedding='sample' needs sample_vectors: each source device's latencies on "
                                        "HELP's reference archs (multipredict.methods.protocol.sample_vector)")
            return np.stack([np.asarray(sample_vectors[d], dtype=np.float32) for d in self.source_devices])
        if self.embedding == "index":
            space = getattr(encoder, "space", None)
            return np.stack([hardware.index_vector(self._index_position(space, name, row), self.embedding_dim)
                             for row, name in enumerate(self.source_devices)])
        return None

    def _new_predictor(self, features) -> LatencyPredictor:
        progress = None
        if self.progress is not None:
            progress = lambda fraction: self.progress("pretrain", fraction)  # noqa: E731
        return LatencyPredictor(body=self.body_, embedding=self.embedding, embedding_dim=self.embedding_dim,
                                gcn_aggregation=self.gcn_aggregation, head_layers=self.head_layers,
                                head_width=self.head_width, lr=self.source_lr, epochs=self.source_epochs,
                                batch_size=self.batch_size, seed=self.seed, device=self.device, progress=progress,
                                network_parts=self.network_parts)

    def _train(self, model: LatencyPredictor, features, labels, rows, vectors) -> _Pretrained:
        started = time.perf_counter()
        model.fit(features, labels, rows, device_vectors=vectors, n_devices=len(self.source_devices))
        model.progress = None  # the callable belongs to this call, not to the cached model
        seconds = time.perf_counter() - started
        if self.pretrain_dir is not None:
            save_pretrained(Path(self.pretrain_dir), self.pretraining_key_, model, seconds, self.key_payload_)
        return _Pretrained(self.encoder_, model, seconds, "trained")

    def _load(self, model: LatencyPredictor, features, vectors) -> _Pretrained | None:
        """The pretraining saved under this key in ``pretrain_dir`` or a ``pretrained_dirs`` folder;
        a file that cannot be read is set aside with one warning (`read_or_set_aside`) and the
        search goes on (in the end: train again)."""
        folders = ([Path(self.pretrain_dir)] if self.pretrain_dir is not None else []) + self.pretrained_dirs
        for folder in folders:
            path = folder / f"{self.pretraining_key_}.pt"

            def read(path=path):
                saved = torch.load(path, map_location="cpu", weights_only=True)
                model.restore(features, saved["predictor"], device_vectors=vectors,
                              n_devices=len(self.source_devices))
                return saved

            saved = read_or_set_aside(path, read, "pretraining cache")
            if saved is None:
                continue
            model.progress = None
            return _Pretrained(self.encoder_, model, float(saved.get("seconds", 0.0)), str(path))
        return None

    def _index_position(self, space: str | None, name: str, position: int) -> int:
        """The position an ``index`` code stands for: ``position`` (among the source devices, then
        the targets in the order they were added), or what the ``index_position`` hook makes of it."""
        if self.index_position is None:
            return position
        chosen = self.index_position(space, name, position)
        if isinstance(chosen, bool) or not isinstance(chosen, (int, np.integer)):
            raise MultipredictError(f"index_position({space!r}, {name!r}, {position}) returned {chosen!r}; "
                                    "the hook must return a non-negative int")
        return int(chosen)

    def _check_fitted(self) -> None:
        if not hasattr(self, "pretrained_"):
            raise MultipredictError("this FewShotLatencyPredictor is not pretrained; call fit(...) first")

    # ---------------------------------------------------------------- targets

    def add_device(self, name: str, arch_ids, latency_ms, *, reference_ms=None, reference_ids=None,
                   copy_from: str | None = None, starts: int | None = None) -> TargetDevice:
        """Add target device ``name`` from its measured ``latency_ms`` on ``arch_ids`` (Eq. 1 init for
        a ``table`` embedding, then fine-tuning). ``reference_ms``: its latencies on HELP's 10
        reference archs (``reference_ids``, to count measurements once), needed by ``sample``.
        ``copy_from``: a source device whose embedding row the target starts from instead of Eq. 1's
        pick (``table`` only). ``starts``: this target's number of starts, as the ``eq1_starts`` option
        sets it for every target (None: that option)."""
        return self.add_devices([TargetSamples(name, arch_ids, latency_ms, reference_ms, reference_ids,
                                               copy_from, starts)])[0]

    def add_devices(self, targets: Sequence[TargetSamples], *, stack: bool | None = None) -> list[TargetDevice]:
        """Add several target devices at once: each is initialised as `add_device` does, then their
        fine-tunes run together (`multipredict.predictors.stacked.fine_tune_many`: one step advances
        every target; ``stack=None`` lets `should_stack` decide: on a GPU, not on a CPU, where one
        fine-tune after another keeps each target's numbers independent of the others)."""
        self._check_fitted()
        started = time.perf_counter()
        prepared = [self._prepare_target(target) for target in targets]  # per target: one (copy, job) per start
        starts = [start for each in prepared for start in each]
        fine_tune_many([copy.predictor for copy, _ in starts], [job for _, job in starts], stack=stack)
        seconds = (time.perf_counter() - started) / max(len(prepared), 1)
        added = []
        for each in prepared:
            target = each[0][0]
            target.others = [copy for copy, _ in each[1:]]
            target.seconds = seconds
            self.targets_[target.name] = target
            added.append(target)
        return added

    def _prepare_target(self, samples: TargetSamples) -> list[tuple[TargetDevice, FineTuneJob]]:
        """A target's initialised copy (Eq. 1 row, label scaling, trained part) and its fine-tune; with
        more than one start (the target's ``starts``, else ``eq1_starts``), one more of each per further
        source row in Eq. 1's order."""
        name, reference_ms, reference_ids = samples.name, samples.reference_ms, samples.reference_ids
        ids = np.asarray(samples.arch_ids, dtype=np.int64).reshape(-1)
        latency = np.asarray(samples.latency_ms, dtype=float).reshape(-1)
        if len(ids) != len(latency) or len(ids) == 0:
            raise MultipredictError(f"{len(ids)} arch ids but {len(latency)} latencies; pass one latency per arch")
        if not np.isfinite(latency).all():
            raise MultipredictError("target latencies contain NaN or inf; pass measured archs only")
        if name in self.source_devices:
            raise MultipredictError(f"{name!r} is a source device; a target must be a device the predictor was "
                                    "not pretrained on")
        if self.embedding == "table" and len(ids) < 2:
            raise MultipredictError("the table embedding's Eq. 1 initialisation needs >= 2 few-shot samples")
        named = samples.copy_from
        if named is not None and (self.embedding != "table" or named not in self.source_devices):
            raise MultipredictError(
                f"copy_from={samples.copy_from!r}: a target can start from a source device's embedding row only "
                f"with embedding='table' (this predictor: {self.embedding!r}) and a source device it was pretrained "
                f"on ({', '.join(self.source_devices)}); pass one of those, or None for Eq. 1's pick")
        n_starts = self.eq1_starts if samples.starts is None else samples.starts
        if isinstance(n_starts, bool) or not isinstance(n_starts, (int, np.integer)) or n_starts < 1 or \
                (n_starts > 1 and self.embedding != "table"):
            raise MultipredictError(f"starts={samples.starts!r}: a target starts from Eq. 1's first n source rows for "
                                    f"an integer n >= 1, and n > 1 needs embedding='table' (this predictor: "
                                    f"{self.embedding!r}); pass 1, or None for the eq1_starts option")
        if self.embedding == "sample" and reference_ms is None:
            raise MultipredictError("embedding='sample' needs reference_ms: the target's latencies on HELP's 10 "
                                    "reference archs")
        code_position = None
        if self.embedding == "index":
            # unique per device added; a device the chosen order cannot code fails here, before any change
            code_position = self._index_position(getattr(self.encoder_, "space", None), name,
                                                 len(self.source_devices) + self.n_added_)
        model = self.pretrained_.copy()
        row, closest, correlations, further = None, None, {}, []
        self.n_added_ += 1
        n_measured = len(np.unique(ids))
        if self.embedding == "table" or (self.target_train == "auto" and len(ids) >= 2):
            source_ms = {d: self.source_latency_[d][ids] for d in self.source_devices}
            correlations = source_correlations(latency, source_ms, self.eq1_correlation)
        if self.embedding == "table":
            # Eq. 1, on the correlations above, unless the caller named the source device
            closest = samples.copy_from or _most_correlated(correlations, len(latency))
            row = model.add_device(copy_from=self.source_devices.index(closest))
            further = _ranked(correlations, exclude=closest)[:n_starts - 1]
        elif self.embedding == "sample":
            row = model.add_device(vector=hardware.sample_embedding(reference_ms, device=f"target {name!r}"))
            n_measured = (len(np.union1d(ids, reference_ids)) if reference_ids is not None
                          else n_measured + len(np.asarray(reference_ms).reshape(-1)))
        else:
            row = model.add_device(vector=hardware.index_vector(code_position, self.embedding_dim))
        features = self.encoder_.transform(ids)
        trained = self._fine_tuned_part(correlations)

        def start(model: LatencyPredictor, row: int, source: str | None) -> tuple[TargetDevice, FineTuneJob]:
            if self.target_label_scaling is not None:
                scale, offset = (float(v) for v in self.target_label_scaling(name, ids, latency))
            else:
                scale, offset = self._label_scaling(model, features, row, latency)
            job = FineTuneJob(features, scale * latency + offset, np.full(len(ids), row), lr=self.target_lr,
                              epochs=self.target_epochs, batch_size=self.target_batch_size, train=trained)
            return TargetDevice(name, model, row, ids, scale, offset, source, correlations, n_measured, 0.0,
                                trained), job

        starts = [start(model, row, closest)]
        for source in further:
            other = self.pretrained_.copy()
            starts.append(start(other, other.add_device(copy_from=self.source_devices.index(source)), source))
        return starts

    def _fine_tuned_part(self, correlations: Mapping[str, float]) -> str:
        """``head`` or ``all`` for one target. ``auto``: a source device that ranks the target's
        few-shot archs closely (correlation >= ``freeze_above``) means the pretrained arch
        representation already orders them as the target does, so only the device-specific part
        (embedding row, head) needs to move; a target unlike every source device (an adversarial
        one) needs the representation itself to change. Undefined correlations (fewer than 2
        samples, constant latencies) keep the body frozen: too little to retrain it from."""
        if self.target_train != "auto":
            return self.target_train
        finite = [rho for rho in correlations.values() if np.isfinite(rho)]
        return "all" if finite and max(finite) < float(self.freeze_above) else "head"

    def _label_scaling(self, model: LatencyPredictor, features, row: int, latency: np.ndarray) -> tuple[float, float]:
        """(a, b) with label = a * latency_ms + b for the target's fine-tuning labels.

        ``fewshot``: min-max over the k measurements (they span [0, 1]). ``matched``: the affine map
        that gives the k measurements the mean and standard deviation of the initialised model's
        predictions on the same archs, so fine-tuning corrects the ranking instead of first
        rescaling the outputs. Both use the k measurements only; ranking is unaffected by either.
        """
        low, high = float(latency.min()), float(latency.max())
        span = high - low if high > low else 1.0
        if self.target_labels == "matched" and len(latency) >= 2 and np.std(latency) > 0:
            initial = model.predict(features, np.full(len(latency), row))
            if np.std(initial) > 1e-6:
                scale = float(np.std(initial) / np.std(latency))
                return scale, float(np.mean(initial) - scale * np.mean(latency))
        return 1.0 / span, -low / span

    def arch_representation(self, arch_ids) -> np.ndarray:
        """(len(arch_ids), d): each arch as the pretrained predictor's head sees it, before a device
        embedding is added (`LatencyPredictor.representation`): what fine-tuning on a new device
        fits its few-shot labels on."""
        self._check_fitted()
        ids = np.asarray(arch_ids, dtype=np.int64).reshape(-1)
        return self.pretrained_.representation(self.encoder_.transform(ids))

    def source_views(self, arch_ids) -> np.ndarray:
        """(len(arch_ids), n_sources * head_width): each arch as the pretrained head's last hidden
        layer sees it on every source device, side by side (`LatencyPredictor.hidden_views`). With
        the ``table`` embedding a new device starts from a copy of one source device's row (Eq. 1),
        so these are what its fine-tuned output layer is linear in, whichever source it starts from."""
        self._check_fitted()
        ids = np.asarray(arch_ids, dtype=np.int64).reshape(-1)
        return self.pretrained_.hidden_views(self.encoder_.transform(ids), range(len(self.source_devices)))

    def predict(self, name: str, arch_ids, *, scale: str = "ms") -> np.ndarray:
        """Predicted latency of ``arch_ids`` on a source or target device, in ms (``scale="ms"``,
        rescaled with the device's label scaling) or as the normalised label (``"label"``)."""
        self._check_fitted()
        if scale not in ("ms", "label"):
            raise UnknownNameError("scale", scale, ("ms", "label"))
        ids = np.asarray(arch_ids, dtype=np.int64).reshape(-1)
        features = self.encoder_.transform(ids)
        if name in self.targets_:
            target = self.targets_[name]
            label = target.predictor.predict(features, np.full(len(ids), target.row))
            if not target.others:
                return label if scale == "label" else (label - target.label_offset) / target.label_scale
            # several starts (eq1_starts): the mean of their predictions in ms, as labels on the first's scale
            labels = [label] + [other.predictor.predict(features, np.full(len(ids), other.row))
                                for other in target.others]
            ms = np.mean([(value - start.label_offset) / start.label_scale
                          for value, start in zip(labels, [target, *target.others])], axis=0)
            return ms if scale == "ms" else target.label_scale * ms + target.label_offset
        if name in self.source_devices:
            label = self.pretrained_.predict(features, np.full(len(ids), self.source_devices.index(name)))
            return label if scale == "label" else self.source_splits_[name].denormalise(label)
        raise UnknownNameError("device of this predictor", name, self.source_devices + list(self.targets_),
                               "Add a target device with add_device(name, arch_ids, latency_ms) first.")


# --------------------------------------------------------------------------------------------
# the content key and the files


def _dense(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each column as an array indexed by arch id (NaN where not measured)."""
    index = table.index.to_numpy(dtype=np.int64)
    if len(index) and index.min() < 0:
        raise MultipredictError(f"arch ids must be non-negative integers; found {int(index.min())}")
    out = {}
    for name in table.columns:
        values = np.full(int(index.max()) + 1 if len(index) else 0, np.nan)
        values[index] = table[name].to_numpy(dtype=float)
        out[str(name)] = values
    return out


def pretraining_key(model: FewShotLatencyPredictor, features, labels, rows, vectors) -> str:
    """A content key of one pretraining: the options that decide it, the source names, the seed, the
    code revision, and the sha256 of exactly the arrays it trains on. Equal keys give equal weights
    (on one kind of machine); another torch or machine reuses them as a valid pretraining."""
    digest = hashlib.sha256()
    for array in (features.body, features.side, features.adjacency, labels, rows, vectors):
        if array is not None:
            array = np.ascontiguousarray(array)
            digest.update(str((array.dtype.str, array.shape)).encode())
            digest.update(array.tobytes())
    payload = {
        "revision": PRETRAIN_REVISION, "sources": model.source_devices, "seed": int(model.seed),
        "body": model.body_, "form": features.form,
        "options": {name: getattr(model.options, name) for name in
                    ("embedding", "source_epochs", "source_lr", "head_layers", "head_width", "embedding_dim",
                     "batch_size")},
        "data_sha256": digest.hexdigest(),
    }
    if model.body_ == "gcn":
        payload["options"]["gcn_aggregation"] = model.gcn_aggregation
    changed = model.network_parts.changed() if model.network_parts is not None else {}
    if changed:  # left out for the default network, so that default keys (and shipped models) stay valid
        payload["network_parts"] = changed
    model.key_payload_ = payload
    text = json.dumps(payload, sort_keys=True)
    return f"{getattr(model.encoder_, 'space', 'space')}-{model.body_}-{model.embedding}-" \
           f"{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def save_pretrained(folder: Path, key: str, model: LatencyPredictor, seconds: float, payload: Mapping,
                    metadata: Mapping | None = None) -> Path:
    """Write ``<key>.pt`` (weights: tensors and plain types) and ``<key>.json`` (what it was trained
    from) atomically: a reader sees the old file or the whole new one."""
    from .. import __version__

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.pt"
    part = path.with_name(path.name + f".{os.getpid()}.part")
    torch.save({"predictor": model.state(), "seconds": float(seconds)}, part)
    os.replace(part, path)
    info = {"key": key, **payload, "seconds": float(seconds), "multipredict": __version__,
            "torch": torch.__version__, "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            **dict(metadata or {})}
    meta = folder / f"{key}.json"
    part = meta.with_name(meta.name + f".{os.getpid()}.part")
    part.write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
    os.replace(part, meta)
    return path


__all__ = ["FewShotLatencyPredictor", "TransferOptions", "TargetDevice", "TargetSamples", "closest_source_device",
           "source_correlations", "clear_pretrain_cache", "pretraining_key", "save_pretrained", "minmax_splits",
           "PRETRAIN_REVISION", "EQ1_CORRELATIONS", "TRANSFER_EMBEDDINGS", "TARGET_LABELS", "TARGET_TRAIN",
           "IndexPosition", "LabelScaling", "NetworkParts"]
