"""Named methods an ExperimentSpec can list: each is one ``fit_and_score`` plus fixed options.

Every method follows one contract (see ``multipredict.methods.transfer``)::

    fit_and_score(*, space, train_devices, test_devices, samples, seed, protocol="paper", **options)
        -> list[dict]   # one dict per test device: device, spearman, kendall, n_eval, n_fewshot, pool, seconds

A method refers to its implementation by import path (``"multipredict.methods.transfer:fit_and_score"``) so
that the engine modules are imported only when a trial runs (in whichever process runs it), or by a
callable for methods a user or a test registers::

    from multipredict.experiments import register
    register("My predictor", my_fit_and_score, encoding="zcp")

``accepts`` names the options a method takes (``None``: any); ``accepts_from`` reads them from the
implementation's options model instead (``"module:ModelClass"``, a `multipredict.options.Options`:
one source of truth for names, defaults, types and docs; a module that cannot be imported checks
nothing here, and its trials report the import error); `validate_options` checks a run's options
against the chosen methods' models before any trial starts;
``quick_options`` are the cheaper settings a ``quick`` spec uses (fewer epochs / episodes);
``revision`` counts changes to what a method computes with the same options (e.g. a new default):
it is part of every trial's cache key, so stored trials of an older revision are computed again
while other methods' stored trials stay valid; ``space_revisions`` overrides it for one search space
when a change reaches only that space's trials (e.g. the NB201 GCN), so the others stay valid too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from ..errors import MultipredictError, UnknownNameError

FitAndScore = Callable[..., list[dict]]

# Options that change how a run reports, never what it computes: left out of every cache key.
REPORTING_OPTIONS = frozenset({"progress", "pretrain_dir"})

# Settings of a ``quick`` spec: a smoke run of the whole pipeline in minutes, not a reproduction.
TRANSFER_QUICK = {"source_epochs": 3, "source_samples": 500, "target_epochs": 20}
HELP_QUICK = {"episodes": 10, "mc_samples": 2}
BRPNAS_QUICK = {"epochs": 10}


@dataclass(frozen=True)
class Method:
    """One named, runnable method: an implementation plus the options that define it."""

    name: str
    target: str | FitAndScore  # "package.module:function" or the function itself
    fixed: Mapping[str, Any] = field(default_factory=dict)
    accepts: frozenset[str] | None = None
    quick_options: Mapping[str, Any] = field(default_factory=dict)
    needs_train_devices: bool = True
    description: str = ""
    accepts_from: str | None = None  # "module:OptionsModel" (or a tuple of names), read when first needed
    revision: int = 1
    space_revisions: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))
        object.__setattr__(self, "quick_options", MappingProxyType(dict(self.quick_options)))
        object.__setattr__(self, "space_revisions", MappingProxyType(dict(self.space_revisions)))

    def revision_for(self, space: str) -> int:
        """The revision of this method's trials on ``space`` (part of their cache keys)."""
        return int(self.space_revisions.get(space, self.revision))

    @property
    def encoding(self) -> str | None:
        """The feature encoding the method predicts from, where it fixes one (decides its arch pool)."""
        return self.fixed.get("encoding")

    @property
    def target_path(self) -> str:
        """A stable name of the implementation: part of every cache key of this method's trials."""
        if isinstance(self.target, str):
            return self.target
        return f"{self.target.__module__}:{self.target.__qualname__}"

    def resolve(self) -> FitAndScore:
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attribute = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise MultipredictError(
                f"method {self.name!r} needs module {module_name!r}, which cannot be imported ({error}); "
                "install the missing dependency or pick another method") from error
        try:
            return getattr(module, attribute or "fit_and_score")
        except AttributeError as error:
            raise MultipredictError(
                f"method {self.name!r}: module {module_name!r} has no {attribute!r}; "
                "expected a fit_and_score function there") from error

    def accepted_options(self) -> frozenset[str] | None:
        """The options this method takes (None: any)."""
        if self.accepts_from is not None:
            found = _options_of(self.accepts_from)
            if found is not None:
                return found
        return self.accepts

    def options_model(self):
        """The implementation's `Options` model, where ``accepts_from`` names one (else None)."""
        if self.accepts_from is None:
            return None
        found = _attribute(self.accepts_from)
        return found if isinstance(found, type) and hasattr(found, "parse") else None

    def validate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check one call's options against the method's model (names, types, ranges): a bad value
        raises a one-line `MultipredictError` before anything runs. Returns the options unchanged."""
        model = self.options_model()
        if model is not None:
            model.parse(options, self.name)
        return dict(options)

    def takes(self, option: str) -> bool:
        accepted = self.accepted_options()
        return accepted is None or option in accepted

    def options_for(self, spec_options: Mapping[str, Any], method_options: Mapping[str, Any] = MappingProxyType({}),
                    quick: bool = False) -> dict[str, Any]:
        """The options one call gets: quick defaults < spec-wide options it takes < its own < fixed ones."""
        options = dict(self.quick_options) if quick else {}
        options.update({k: v for k, v in spec_options.items() if self.takes(k)})
        options.update(method_options)
        options.update(self.fixed)  # the name promises these: "TL Vec ET" always uses the table embedding
        return options


@cache
def _attribute(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):  # not importable: its trials will say why
        return None


def _options_of(path: str) -> frozenset[str] | None:
    found = _attribute(path)
    if found is None:
        return None
    return frozenset(found.names() if hasattr(found, "names") else found)


class MethodRegistry:
    """Name -> Method. One default instance holds the paper's methods; tests may swap in their own."""

    def __init__(self, methods: Mapping[str, Method] | None = None):
        self._methods: dict[str, Method] = dict(methods or {})

    def add(self, method: Method) -> Method:
        self._methods[method.name] = method
        return method

    def register(self, name: str, fn: str | FitAndScore, *, accepts: frozenset[str] | set[str] | None = None,
                 quick_options: Mapping[str, Any] | None = None, needs_train_devices: bool = True,
                 description: str = "", accepts_from: str | None = None, revision: int = 1,
                 space_revisions: Mapping[str, int] | None = None, **fixed: Any) -> Method:
        if not isinstance(fn, str) and not callable(fn):
            raise MultipredictError(
                f"register({name!r}, ...): expected a fit_and_score callable or a 'module:function' path, "
                f"got {fn!r}")
        return self.add(Method(name, fn, fixed, None if accepts is None else frozenset(accepts),
                               quick_options or {}, needs_train_devices, description, accepts_from, revision,
                               space_revisions or {}))

    def unregister(self, name: str) -> None:
        self.get(name)
        del self._methods[name]

    def get(self, name: str) -> Method:
        if name not in self._methods:
            raise UnknownNameError("method", name, self.names(),
                                   "Register new methods with multipredict.experiments.register(name, fn, **options)")
        return self._methods[name]

    def names(self) -> list[str]:
        return list(self._methods)

    def copy(self) -> MethodRegistry:
        return MethodRegistry(self._methods)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[str]:
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)


def _paper_methods() -> MethodRegistry:
    registry = MethodRegistry()
    transfer = "multipredict.methods.transfer:fit_and_score"
    # revision 2: fine-tuning a target trains the embedding and head only (target_train="head");
    # 3: target_train="auto" (the body frozen only for targets close to a source device);
    # NB201 4: the GCN sums a node's inputs (gcn_aggregation="sum"; it averaged them before)
    transfer_revision = 3
    gcn_revisions = {"nb201": 4}
    for name, encoding, embedding in [
        ("TL Vec ET", "vec", "table"),
        ("TL Vec Sample", "vec", "sample"),
        ("TL Vec Index", "vec", "index"),
        ("TL ZCPVec ET", "zcpvec", "table"),
        ("TL HWLVec ET", "hwlvec", "table"),
        ("TL ZCP ET", "zcp", "table"),
        ("TL HWL ET", "hwl", "table"),
    ]:
        registry.register(name, transfer, accepts_from="multipredict.methods.transfer:TrialOptions",
                          quick_options=TRANSFER_QUICK, revision=transfer_revision, space_revisions=gcn_revisions,
                          description=f"Multi-Predict transfer: {encoding} encoding, {embedding} hardware embedding",
                          encoding=encoding, embedding=embedding)
    for name, module, model, quick, needs_train, description, space_revisions in [
        ("HELP", "multipredict.baselines.help", "HELPTrialOptions", HELP_QUICK, True,
         "HELP meta-learning baseline (Meta-SGD, z-modulator)", {}),
        # NB201 2: the GCN sums a node's inputs, as the transfer methods' does
        ("BRP-NAS", "multipredict.baselines.brpnas", "BRPNASOptions", BRPNAS_QUICK, False,
         "BRP-NAS: a GCN trained from scratch on the target's samples", {"nb201": 2}),
        ("FLOPs", "multipredict.baselines.flops", "FlopsOptions", {}, False,
         "FLOPs as the latency predictor (no training)", {}),
    ]:
        registry.register(name, f"{module}:fit_and_score", accepts_from=f"{module}:{model}", quick_options=quick,
                          needs_train_devices=needs_train, description=description, space_revisions=space_revisions)
    # Figs 6, 16, 17: latency predictors trained from scratch on the target's k samples with each
    # encoding (BRP-NAS's trainer with an MLP body; HWL's reference devices are the training devices)
    for encoding, label in (("vec", "Vec"), ("zcp", "ZCP"), ("zcpvec", "ZCPVec"), ("hwl", "HWL"), ("hwlvec", "HWLVec")):
        registry.register(f"Scratch {label}", "multipredict.baselines.brpnas:fit_and_score",
                          accepts_from="multipredict.baselines.brpnas:BRPNASOptions", quick_options=BRPNAS_QUICK,
                          needs_train_devices="hwl" in encoding,
                          description=f"an MLP trained from scratch on the target's samples, {label} encoding",
                          encoding=encoding, predictor="mlp")
    return registry


REGISTRY = _paper_methods()
_active: list[MethodRegistry] = [REGISTRY]


def active_registry() -> MethodRegistry:
    return _active[-1]


@contextmanager
def use_registry(registry: MethodRegistry | None = None) -> Iterator[MethodRegistry]:
    """Run a block against another registry (default: a copy of the active one), e.g. fakes in tests."""
    registry = active_registry().copy() if registry is None else registry
    _active.append(registry)
    try:
        yield registry
    finally:
        _active.remove(registry)


def register(name: str, fn: str | FitAndScore, **fixed: Any) -> Method:
    """Add (or replace) a named method in the active registry; keyword options are fixed for that name.

    ``accepts=``, ``quick_options=``, ``needs_train_devices=``, ``description=`` configure the method
    itself; every other keyword is a fixed option passed to ``fn`` on each call.
    """
    return active_registry().register(name, fn, **fixed)


def validate_options(method_names: list[str], options: Mapping[str, Any]) -> dict[str, Any]:
    """Check a run's spec-wide ``options`` before any trial starts: each must be taken by at least
    one of the methods, and every method's share must pass its options model. Raises a one-line
    `MultipredictError`; returns the options unchanged."""
    chosen = [get(name) for name in method_names]
    for option in options:
        if not any(method.takes(option) for method in chosen):
            valid = sorted(set().union(*(method.accepted_options() or () for method in chosen)))
            raise UnknownNameError("option", option, valid, f"None of {', '.join(method_names)} takes it")
    for method in chosen:
        method.validate(method.options_for(options))
    return dict(options)


def get(name: str) -> Method:
    return active_registry().get(name)


def names() -> list[str]:
    return active_registry().names()
