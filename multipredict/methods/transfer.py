"""Few-shot latency transfer (Multi-Predict) on the public benchmark: the trial layer.

`multipredict.predictors.fewshot.FewShotLatencyPredictor` is the estimator (it receives data).
This module looks the data up for it: the arch pool an encoding covers, each source device's
protocol split (900 NB201 / 4,000 FBNet training archs), their latencies, the encoder, HELP's
reference latencies for the ``sample`` embedding. `BenchmarkTransfer` is the estimator bound to
the public tables (``BenchmarkTransfer(space, sources, **options).fit()``); `fit_and_score` is the
experiments runner's entry point (one trial: pretrain, add each test device from ``samples``
few-shot archs, score it on the protocol's held-out archs).

Pretrainings are cached by content key (the estimator's `pretraining_key`): in memory, in
``pretrain_dir`` (default: ``<cache>/pretrained``, `multipredict.config.cache_dir`) and in the
default models shipped in the repository's ``data/pretrained`` (read only), so that onboarding a
device, the dashboard, the notebooks and ``reproduce`` share one pretraining.

`TrialHooks` passes the estimator's hooks through a trial (``fit_and_score(..., hooks=...)``), plus
``source_split``, which changes the source devices' protocol splits; none is an option, so specs and
the experiments runner never set one (replication studies in ``benchmarks/replication`` do).

Defaults follow the paper's text (and the authors' code where the text is silent); the authors'
released code differs in places, each available as an option: a 2-layer head of width 1000
(``head_layers=2, head_width=1000``), Spearman on all pool archs including the few-shot ones
(``score_on="all"``), 150 source epochs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from .. import config, encodings
from ..errors import MultipredictError, UnknownNameError
from ..predictors.fewshot import (EQ1_CORRELATIONS, FewShotLatencyPredictor, IndexPosition, LabelScaling,
                                  NetworkParts, TargetDevice, TargetSamples, TransferOptions, clear_pretrain_cache,
                                  closest_source_device, source_correlations)
from ..protocols import PROTOCOLS, DeviceSplit
from ..spaces import LATENCY_SPACES
from .protocol import (device_latency, device_split, few_shot_ids, rank_correlations, reference_archs,
                       resolve_predictor, sample_vector, target_split)

METHOD = "transfer"
SHIPPED_PRETRAINED = Path(__file__).resolve().parents[2] / "data" / "pretrained"


class TrialOptions(TransferOptions):
    """Options of a transfer trial: the estimator's (`TransferOptions`) plus what the trial looks up."""

    encoding: encodings.EncodingName = Field(
        "vec", description="arch encoding: Vec (topology), ZCP (zero-cost proxies), HWL (reference-device "
                           "latencies), or Vec with ZCP / HWL beside it")
    predictor: Literal["auto", "gcn", "mlp"] = Field(
        "auto", description="network body: auto = the GCN for NB201 Vec-based encodings, else the MLP")
    source_samples: int | None = Field(
        None, ge=1, description="training archs per source device (None: 900 NB201 / 4000 FBNet)")
    score_on: Literal["heldout", "all"] = Field(
        "heldout", description="score on the held-out pool archs, or on all of them (the authors' code)")
    hwl_devices: tuple[str, ...] | None = Field(
        None, description="HWL encodings: the reference devices (default: the train devices)")
    device: str = Field("auto", description="torch device: auto (CUDA when available), cpu, cuda")
    pretrain_dir: Path | None = Field(None, description="keep / reuse pretrained weights there (default: the cache)")
    progress: Callable[[str, float], None] | None = Field(
        None, description="callable(stage, fraction) for progress", exclude=True)


OPTIONS = TrialOptions.names()
DEFAULT_OPTIONS: dict[str, object] = TrialOptions.defaults()
_TRIAL_ONLY = tuple(n for n in OPTIONS if n not in TransferOptions.model_fields)


@dataclass(frozen=True)
class TrialHooks:
    """Extension points of a transfer trial; each None (the default) keeps the paper's method.

    ``index_position``, ``target_label_scaling``, ``network_parts``: the estimator's hooks
    (`multipredict.predictors.fewshot`). ``source_split(split, latency_ms) -> DeviceSplit``: called
    with each source device's protocol split and its latencies (ms, indexed by arch id), returns the
    split to pretrain on (e.g. labels scaled over other archs).
    """

    index_position: IndexPosition | None = None
    target_label_scaling: LabelScaling | None = None
    network_parts: NetworkParts | None = None
    source_split: Callable[[DeviceSplit, np.ndarray], DeviceSplit] | None = None


def default_pretrain_dir() -> Path:
    """Where pretrainings are kept between processes: ``<cache>/pretrained``."""
    return config.cache_dir() / "pretrained"


class BenchmarkTransfer(FewShotLatencyPredictor):
    """The transfer estimator bound to the public benchmark tables of ``space``.

    ``BenchmarkTransfer(space, source_devices, **options).fit()`` looks up the pool, the source
    devices' splits and latencies, the encoder and the ``sample`` vectors, then pretrains (or
    loads an identical pretraining). ``add_device(name, arch_ids, latency_ms)`` works for any
    device; for a benchmark device the ``sample`` embedding's reference latencies are looked up.
    Options: `TrialOptions` (``score_on`` is the trial's, not the estimator's); ``protocol``
    (paper|help), ``seed``, ``pool_devices`` (devices, e.g. the test devices, that must be
    measured on every pool arch), ``pretrained_dirs`` (read-only folders searched for a
    pretraining; default the shipped ``data/pretrained``), ``hooks`` (`TrialHooks`).
    """

    def __init__(self, space: str, source_devices: Sequence[str], *, encoding: str = "vec", predictor: str = "auto",
                 hwl_devices: Sequence[str] | None = None, source_samples: int | None = None,
                 protocol: str = "paper", seed: int = 0, device: str = "auto", pool_devices: Sequence[str] = (),
                 pretrain_dir: str | None = None, pretrained_dirs: Sequence[str] | None = None,
                 progress: Callable[[str, float], None] | None = None, hooks: TrialHooks | None = None,
                 **options):
        hooks = hooks if hooks is not None else TrialHooks()
        trial = TrialOptions.parse({"encoding": encoding, "predictor": predictor, "source_samples": source_samples,
                                    "device": device, **options}, METHOD)
        super().__init__(TransferOptions(**trial.model_dump(include=set(TransferOptions.model_fields))),
                         seed=seed, device=device,
                         pretrain_dir=pretrain_dir if pretrain_dir is not None else default_pretrain_dir(),
                         pretrained_dirs=[SHIPPED_PRETRAINED] if pretrained_dirs is None else pretrained_dirs,
                         progress=progress, index_position=hooks.index_position,
                         target_label_scaling=hooks.target_label_scaling, network_parts=hooks.network_parts)
        self.hooks = hooks
        self.space = space
        self.requested_sources = list(source_devices)
        self.source_devices = list(source_devices)
        self.encoding = encoding
        self.predictor = predictor
        self.hwl_devices = None if hwl_devices is None else list(hwl_devices)
        self.source_samples = source_samples
        self.protocol = protocol
        self.pool_devices = list(pool_devices)

    @property
    def hwl_devices_(self) -> list[str]:
        if "hwl" not in encodings.uses(self.encoding):
            return []
        return list(self.hwl_devices) if self.hwl_devices is not None else list(self.requested_sources)

    def _validate(self) -> None:
        if self.space not in LATENCY_SPACES:
            raise UnknownNameError("space", self.space, tuple(LATENCY_SPACES),
                                   "Latency transfer needs a space with latency data.")
        if self.protocol not in PROTOCOLS:
            raise UnknownNameError("protocol", self.protocol, PROTOCOLS)
        if not self.requested_sources:
            raise MultipredictError("transfer needs at least one source (training) device")
        if len(set(self.requested_sources)) != len(self.requested_sources):
            raise MultipredictError(f"source devices are listed twice: {self.requested_sources}")

    def resolve_pool(self) -> np.ndarray:
        """Validate the configuration and fix the pool (``pool_ids_``, ``pool_label_``) and the
        network body (``body_``) without training; `fit` calls it first."""
        self._validate()
        self.body_ = resolve_predictor(self.space, self.encoding, self.predictor)
        self.pool_ids_ = encodings.pool(self.space, self.encoding, self.requested_sources + self.pool_devices,
                                        hwl_devices=self.hwl_devices_)
        if len(self.pool_ids_) < 2:
            raise MultipredictError(f"only {len(self.pool_ids_)} archs have the {self.encoding!r} encoding and a "
                                    f"latency on every device of {self.requested_sources + self.pool_devices}; "
                                    "choose other devices")
        self.pool_label_ = encodings.describe_pool(self.space, self.encoding, self.pool_ids_)
        return self.pool_ids_

    def fit(self) -> BenchmarkTransfer:
        """Look up the source devices' data and pretrain (or reuse an identical pretraining)."""
        self.resolve_pool()
        splits: dict[str, DeviceSplit] = {}
        for name in self.requested_sources:
            splits[name] = device_split(self.protocol, self.space, name, self.pool_ids_, self.seed,
                                        source_samples=self.source_samples)
            if self.hooks.source_split is not None:
                splits[name] = self.hooks.source_split(splits[name], device_latency(self.space, name))
        table = encodings.latency_table(self.space)[self.requested_sources]
        form = "graph" if self.body_ == "gcn" else "flat"
        encoder = encodings.ArchEncoder(self.space, self.encoding, form=form, hwl_devices=self.hwl_devices_)
        vectors = ({d: sample_vector(self.space, d) for d in self.requested_sources}
                   if self.embedding == "sample" else None)
        super().fit(encoder, table, splits, sample_vectors=vectors)
        return self

    def add_devices(self, targets: Sequence[TargetSamples], *, stack: bool | None = None) -> list[TargetDevice]:
        """As the estimator's; a benchmark device's ``sample`` reference latencies are looked up when
        a target's ``reference_ms`` is None."""
        return super().add_devices([self._with_references(t) for t in targets], stack=stack)

    def _with_references(self, target: TargetSamples) -> TargetSamples:
        if self.embedding != "sample":
            return target
        references = reference_archs(self.space)
        reference_ms = target.reference_ms
        if reference_ms is None:
            reference_ms = device_latency(self.space, target.name)[references]
        elif np.asarray(reference_ms).shape != (len(references),):
            raise MultipredictError(f"reference_ms must hold {len(references)} measured latencies, on archs "
                                    f"{references}; got shape {np.asarray(reference_ms).shape}")
        return dataclasses.replace(target, reference_ms=reference_ms, reference_ids=references)


# --------------------------------------------------------------------------------------------
# the experiments runner's entry point

def prepare_trial(*, space: str, train_devices: list[str], test_devices: list[str], samples: int, seed: int,
                  protocol: str = "paper", hooks: TrialHooks | None = None, **options):
    """A `fit_and_score` trial up to pretraining: the validated, unfitted model, each test device's
    (split, few-shot archs) and ``score_on``. Benchmarks that score a trial differently start here,
    so they transfer exactly what the trial does; ``hooks``: `TrialHooks`."""
    parsed = TrialOptions.parse(options, METHOD)
    config = {name: getattr(parsed, name) for name in OPTIONS}
    score_on = config.pop("score_on")
    train_devices, test_devices = list(train_devices), list(test_devices)
    overlap = sorted(set(train_devices) & set(test_devices))
    if overlap:
        raise MultipredictError(f"devices {overlap} are both train and test devices; a test device must be unseen")
    hwl = config.get("hwl_devices")
    if hwl is not None and sorted(set(hwl) & set(test_devices)):
        raise MultipredictError(f"hwl_devices {sorted(set(hwl) & set(test_devices))} are test devices: their latencies "
                                "would leak into the encoding; choose other reference devices")
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise MultipredictError(f"samples={samples!r} is not valid; expected a positive number of few-shot archs")
    model = BenchmarkTransfer(space, train_devices, protocol=protocol, seed=seed, pool_devices=test_devices,
                              hooks=hooks, **config)
    pool_ids = model.resolve_pool()
    # draw every target's few-shot archs before pretraining, so that a bad budget fails fast
    targets = {}
    for name in test_devices:
        split_ = target_split(protocol, space, name, pool_ids, seed, samples, score_on)
        targets[name] = (split_, few_shot_ids(split_, samples, seed))
    return model, targets, score_on


def fit_and_score(*, space: str, train_devices: list[str], test_devices: list[str], samples: int,
                  seed: int, protocol: str = "paper", hooks: TrialHooks | None = None, **options) -> list[dict]:
    """Pretrain on ``train_devices``, transfer to each test device from ``samples`` few-shot archs,
    score it on the protocol's held-out archs. One dict per test device.

    Options: `TrialOptions` (defaults = the paper's text; ``TrialOptions.describe()`` lists them).
    ``hooks``: `TrialHooks` (not an option: the experiments runner never passes one).

    ``seconds`` = the device's fine-tuning and scoring plus an equal share of the pretraining
    (``pretrain_seconds``; 0 when ``pretrain_cached``).
    """
    model, targets, score_on = prepare_trial(space=space, train_devices=train_devices, test_devices=test_devices,
                                             samples=samples, seed=seed, protocol=protocol, hooks=hooks, **options)
    model.fit()
    rows = []
    # every test device's fine-tune starts from the same pretraining: they run together (stacked
    # where `should_stack` says so: on a GPU), then each is scored
    added = model.add_devices([TargetSamples(name, targets[name][1], device_latency(space, name)[targets[name][1]])
                               for name in test_devices])
    for j, (name, target) in enumerate(zip(test_devices, added)):
        started = time.perf_counter()
        split_, shots = targets[name]
        latency = device_latency(space, name)
        scored = split_.scored_ids(shots)
        prediction = model.predict(name, scored, scale="label")
        spearman, kendall = rank_correlations(prediction, latency[scored])
        del model.targets_[name]
        rows.append({
            "method": METHOD, "space": space, "device": name, "samples": int(samples), "seed": int(seed),
            "protocol": protocol, "spearman": spearman, "kendall": kendall, "n_eval": int(len(scored)),
            "n_fewshot": int(samples), "n_measured": int(target.n_measured), "pool": model.pool_label_,
            "pool_size": int(len(model.pool_ids_)), "seconds": time.perf_counter() - started + target.seconds,
            "pretrain_seconds": 0.0 if model.pretrain_cached_ else model.pretrain_seconds_,
            "pretrain_cached": bool(model.pretrain_cached_), "encoding": model.encoding, "embedding": model.embedding,
            "predictor": model.body_, "gcn_aggregation": model.gcn_aggregation if model.body_ == "gcn" else None,
            "head_layers": model.head_layers, "head_width": model.head_width,
            "source_epochs": model.source_epochs, "target_epochs": model.target_epochs,
            "source_lr": float(model.source_lr), "target_lr": float(model.target_lr),
            "target_labels": model.target_labels, "eq1_correlation": model.eq1_correlation,
            "target_train": model.target_train, "fine_tuned": target.fine_tuned,
            "freeze_above": float(model.freeze_above), "target_batch_size": model.target_batch_size,
            "source_samples": int(len(next(iter(model.source_splits_.values())).train_ids)),
            "score_on": score_on, "closest_source": target.closest_source,
            "closest_source_spearman": (target.correlations.get(target.closest_source, float("nan"))
                                        if target.closest_source else float("nan")),
            "hwl_devices": ",".join(model.hwl_devices_) or None,
        })
        if model.progress is not None:
            model.progress(f"transfer {name}", (j + 1) / len(test_devices))
    share = (0.0 if model.pretrain_cached_ else model.pretrain_seconds_) / max(len(rows), 1)
    for row in rows:
        row["seconds"] += share
    return rows


__all__ = ["BenchmarkTransfer", "FewShotLatencyPredictor", "TargetDevice", "TrialOptions", "TrialHooks",
           "fit_and_score", "prepare_trial", "closest_source_device", "source_correlations", "resolve_predictor",
           "clear_pretrain_cache", "default_pretrain_dir", "OPTIONS", "DEFAULT_OPTIONS", "EQ1_CORRELATIONS"]
