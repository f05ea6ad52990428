"""Accuracy predictors: the latency predictor's estimator with another target.

`AccuracyOptions` is the paper's Table 14 recipe (an MLP of width 128 and depth 4 on the ZCP
vector, AdamW, pretraining lr 4e-3 for 250 epochs, transfer lr 4e-4 for 50 epochs, weight decay
5e-4, cosine schedule, L1 loss summed, as in the authors' ``transfer_experiments.py``).
`accuracy_predictor` builds a `LatencyPredictor` from it: the same network code, training loop and
fine-tuning, with a task embedding in place of the hardware embedding.

`TaskTransferPredictor` is the few-shot estimator over tasks: pretrain on one or several source
tasks (with a learnable task-embedding table when there are several: the accuracy analogue of the
hardware embedding table), then `adapt` to a new task from k labelled archs: the new task's row is
copied from the source row whose predictions on the k archs correlate best with their labels (the
analogue of the paper's Eq. 1, which needs no shared archs, so it works across search spaces),
then every weight is fine-tuned on the k archs.

Labels are min-max scaled per task over the rows a model trains on (`scale_labels`); Spearman and
Kendall are unchanged by it. Nothing here reads benchmark data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field
from scipy import stats

from ..encodings import ArchFeatures
from ..errors import MultipredictError, UnknownNameError
from ..options import Options
from .latency import LatencyPredictor


class AccuracyOptions(Options):
    """Accuracy predictor and transfer options (defaults: the paper's Table 14)."""

    width: int = Field(128, ge=1, description="MLP width")
    depth: int = Field(4, ge=2, description="linear layers in all (the last outputs the prediction)")
    lr: float = Field(4e-3, gt=0, description="learning rate when training from scratch or pretraining")
    epochs: int = Field(250, ge=0, description="epochs when training from scratch or pretraining")
    transfer_lr: float = Field(4e-4, gt=0, description="fine-tuning learning rate on the target task")
    transfer_epochs: int = Field(50, ge=0, description="fine-tuning epochs on the target task")
    weight_decay: float = Field(5e-4, ge=0, description="AdamW weight decay")
    batch_size: int = Field(128, ge=1, description="batch size (fine-tuning: the k samples in one batch)")
    embedding_dim: int = Field(8, ge=1, description="task embedding size (multi-task pretraining)")


def accuracy_predictor(options: AccuracyOptions | None = None, *, embedding: str = "none", seed: int = 0,
                       device: str = "cpu") -> LatencyPredictor:
    """An unfitted MLP predictor with the Table 14 recipe: ``depth`` linear layers of ``width``
    (body: depth - 2 layers to a width-wide feature; head: 2 layers over [feature, task embedding,
    side features])."""
    o = options or AccuracyOptions()
    return LatencyPredictor(body="mlp", embedding=embedding, embedding_dim=o.embedding_dim,
                            mlp_layers=o.depth - 2 if o.depth > 2 else 1, mlp_width=o.width, body_dim=o.width,
                            head_layers=2 if o.depth > 2 else 1, head_width=o.width, lr=o.lr,
                            weight_decay=o.weight_decay, epochs=o.epochs, batch_size=o.batch_size,
                            schedule="cosine", seed=seed, device=device)


def scale_labels(values) -> np.ndarray:
    """Min-max over the given values (a constant set maps to 0)."""
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        raise MultipredictError("accuracy labels contain NaN or inf; drop those archs before training")
    low, high = float(values.min()), float(values.max())
    return ((values - low) / (high - low if high > low else 1.0)).astype(np.float32)


def _concat(parts: Sequence[ArchFeatures]) -> ArchFeatures:
    widths = {p.body.shape[1] for p in parts}
    if len(widths) != 1:
        raise MultipredictError(f"source tasks have features of different widths {sorted(widths)}; transfer across "
                                "tasks needs one encoding of one width (ZCP with one proxy set)")
    side = None if parts[0].side is None else np.concatenate([p.side for p in parts])
    return ArchFeatures(np.concatenate([p.body for p in parts]), side)


def fit_scratch(X: ArchFeatures, y, options: AccuracyOptions | None = None, *, seed: int = 0,
                device: str = "cpu") -> LatencyPredictor:
    """An accuracy predictor trained from scratch on ``(X, y)`` (labels scaled here)."""
    return accuracy_predictor(options, seed=seed, device=device).fit(X, scale_labels(y))


class TaskTransferPredictor:
    """Pretrain on source tasks, adapt to a target task from k labelled archs.

    ``task_embedding``: ``"auto"`` (a learnable table when there are 2+ sources, none for one),
    ``True`` or ``False``.
    """

    def __init__(self, options: AccuracyOptions | None = None, *, seed: int = 0, device: str = "cpu",
                 task_embedding="auto"):
        self.options = options or AccuracyOptions()
        self.seed = seed
        self.device = device
        self.task_embedding = task_embedding

    def fit(self, sources: Sequence[tuple[ArchFeatures, np.ndarray]], names: Sequence[str] | None = None
            ) -> TaskTransferPredictor:
        """Pretrain on ``[(features, accuracies), ...]``, one pair per source task."""
        if not sources:
            raise MultipredictError("no source tasks; pass at least one (features, accuracies) pair")
        names = list(names) if names is not None else [f"source {i}" for i in range(len(sources))]
        if len(names) != len(sources):
            raise MultipredictError(f"{len(names)} names for {len(sources)} source tasks")
        use_table = (len(sources) > 1) if self.task_embedding == "auto" else bool(self.task_embedding)
        X = _concat([x for x, _ in sources])
        y = np.concatenate([scale_labels(labels) for _, labels in sources])
        rows = np.concatenate([np.full(len(labels), i) for i, (_, labels) in enumerate(sources)])
        self.model_ = accuracy_predictor(self.options, embedding="table" if use_table else "none", seed=self.seed,
                                         device=self.device)
        self.model_.fit(X, y, rows if use_table else None, n_devices=len(sources) if use_table else None)
        self.source_names_ = names
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise MultipredictError("this TaskTransferPredictor is not fitted; call fit(sources) first")

    def source_correlations(self, X: ArchFeatures, y) -> np.ndarray:
        """Spearman of each source row's predictions on ``X`` with ``y`` (one value for a single
        source); NaN where undefined."""
        self._check_fitted()
        model = self.model_
        if model.embedding == "none":
            predictions = [model.predict(X)]
        else:
            predictions = [model.predict(X, np.full(len(X), r)) for r in range(model.n_devices_)]
        out = []
        for p in predictions:
            rho = stats.spearmanr(p, y).statistic if len(y) > 2 and np.ptp(p) > 0 and np.ptp(y) > 0 else np.nan
            out.append(float(rho))
        return np.asarray(out)

    def adapt(self, X: ArchFeatures, y, mode: str = "finetune") -> AdaptedTask:
        """A predictor for a new task from its k labelled archs (the pretrained model is unchanged).

        ``mode``: ``"finetune"`` (copy the best-correlated source row, then fine-tune every weight
        on the k archs: the paper's recipe with Eq. 1's initialisation), ``"ensemble"`` (no
        training: the source rows' predictions averaged with weights max(0, Spearman on the k
        archs)), or ``"ensemble+finetune"`` (the mean of the two)."""
        self._check_fitted()
        if mode not in ADAPT_MODES:
            raise UnknownNameError("adaptation mode", mode, ADAPT_MODES)
        y = np.asarray(y, dtype=float)
        if len(y) < 2 or len(y) != len(X):
            raise MultipredictError(f"adapting needs at least 2 labelled archs, one label per arch; got {len(X)} "
                                    f"archs and {len(y)} labels")
        correlations = self.source_correlations(X, y)
        chosen = int(np.nanargmax(correlations)) if np.isfinite(correlations).any() else 0
        weights = np.clip(np.nan_to_num(correlations, nan=0.0), 0.0, None)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1.0 / len(weights))
        model, row = None, None
        if mode != "ensemble":
            model = self.model_.copy()
            if model.embedding == "table":
                row = model.add_device(copy_from=chosen)
            o = self.options
            model.fine_tune(X, scale_labels(y), None if row is None else np.full(len(y), row), lr=o.transfer_lr,
                            epochs=o.transfer_epochs, batch_size=o.batch_size)
        return AdaptedTask(model, row, self.source_names_[chosen], float(correlations[chosen]),
                           pretrained=self.model_ if mode != "finetune" else None, weights=weights)


ADAPT_MODES = ("finetune", "ensemble", "ensemble+finetune")


class AdaptedTask:
    """A predictor adapted to one target task: ``predict(X)``; ``source_`` is the source task its
    row was initialised from and ``source_spearman_`` that source's correlation on the k archs;
    ``weights_`` the source rows' ensemble weights."""

    def __init__(self, model: LatencyPredictor | None, row: int | None, source: str, source_spearman: float, *,
                 pretrained: LatencyPredictor | None = None, weights=None):
        self.model_ = model
        self.row_ = row
        self.source_ = source
        self.source_spearman_ = source_spearman
        self.pretrained_ = pretrained
        self.weights_ = weights

    def _ensemble(self, X: ArchFeatures) -> np.ndarray:
        p = self.pretrained_
        if p.embedding == "none":
            return p.predict(X)
        return sum(w * p.predict(X, np.full(len(X), r)) for r, w in enumerate(self.weights_) if w > 0)

    def predict(self, X: ArchFeatures) -> np.ndarray:
        parts = []
        if self.model_ is not None:
            parts.append(self.model_.predict(X, None if self.row_ is None else np.full(len(X), self.row_)))
        if self.pretrained_ is not None:
            parts.append(self._ensemble(X))
        return np.mean(parts, axis=0)
