"""ExperimentSpec: one validated, serialisable description of a transfer experiment.

The CLI reads it from YAML or flags, papermill passes its fields as notebook parameters, the widgets
build it from their controls, and the results store files its results under ``spec_hash()``::

    spec = ExperimentSpec.from_preset("nb201-default", methods=["TL Vec ET", "HELP"], samples=[10, 20])
    spec.to_yaml("exp.yaml"); ExperimentSpec.from_yaml("exp.yaml") == spec

Validation happens at construction and raises pydantic's ``ValidationError`` (a ``ValueError``) whose
messages name the bad value, what was expected and how to fix it. Checks that need benchmark data
(the arch pool of a method's encoding, the budgets it can hold) are a separate step,
``spec.check_data()``, which the runner calls before any trial: they use the local cache/mirror and
are skipped when the data is not there yet (the run then reports the missing data).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import to_jsonable_python

from .. import config
from ..errors import DataError, MultipredictError
from ..spaces import LATENCY_SPACES
from ..protocols import PROTOCOLS
from . import methods as method_registry

# options whose values are device names: they must exist and must not be a test device (label leak)
DEVICE_OPTIONS = ("hwl_devices", "valid_devices")
PER_METHOD_ONLY = ("protocol",)  # a method may run under its own protocol (e.g. HELP under "help")
HWL_ENCODINGS = ("hwl", "hwlvec")
ZCP_ENCODINGS = ("zcp", "zcpvec")


def valid_devices(space: str) -> list[str]:
    """Every device with latency data in ``space`` (no download needed)."""
    from ..data.tables import latency_sources

    return [d for names in latency_sources(space).values() for d in names]


def preset_names() -> list[str]:
    from ..tasks import DEVICE_SETS

    return list(DEVICE_SETS)


def _listing(values, limit: int = 60) -> str:
    values = list(values)
    text = ", ".join(map(str, values[:limit]))
    return text + (f", ... ({len(values)} in all)" if len(values) > limit else "")


class ExperimentSpec(BaseModel):
    """What to run: methods x sample budgets x repeats on train -> test devices of one search space.

    ``options`` go to every method that takes them (e.g. ``source_epochs`` to the TL methods,
    ``episodes`` to HELP); ``method_options[name]`` to one method only (``protocol`` included).
    ``method_samples[name]`` replaces ``samples`` for one method (e.g. ``{"BRP-NAS": [900, 3200]}``).
    Seeds are ``seed + repeat`` for ``repeat in range(repeats)``. ``quick`` swaps in each method's
    cheaper settings (fewer epochs / episodes) under anything set explicitly. ``name`` is a label only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    space: str
    methods: tuple[str, ...]
    train_devices: tuple[str, ...] = ()
    test_devices: tuple[str, ...]
    samples: tuple[int, ...] = (10,)
    method_samples: dict[str, tuple[int, ...]] = Field(default_factory=dict)
    repeats: int = Field(1, ge=1)
    seed: int = 0
    protocol: str = "paper"
    options: dict[str, Any] = Field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    quick: bool = False
    name: str = ""

    # ---- field checks -------------------------------------------------------------------------
    @field_validator("space")
    @classmethod
    def _known_space(cls, space: str) -> str:
        if space not in LATENCY_SPACES:
            raise ValueError(f"unknown space {space!r}; expected one of {', '.join(LATENCY_SPACES)} (the spaces with "
                             "latency data); set space: nb201 or space: fbnet")
        return space

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, protocol: str) -> str:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)} "
                             "(see multipredict.protocols)")
        return protocol

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("methods is empty; list at least one of: "
                             f"{_listing(method_registry.names())}")
        registry = method_registry.active_registry()
        for name in names:
            if name not in registry:
                raise ValueError(f"unknown method {name!r}; valid methods: {_listing(registry.names())}. "
                                 "Register your own with multipredict.experiments.register(name, fn)")
        _no_duplicates("methods", names)
        return names

    @field_validator("samples")
    @classmethod
    def _budgets(cls, budgets: tuple[int, ...]) -> tuple[int, ...]:
        if not budgets:
            raise ValueError("samples is empty; give at least one few-shot sample budget, e.g. samples: [10]")
        _check_budgets("samples", budgets)
        return budgets

    # ---- checks across fields -----------------------------------------------------------------
    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        known = valid_devices(self.space)
        registry = method_registry.active_registry()
        chosen = [registry.get(m) for m in self.methods]

        if not self.test_devices:
            raise ValueError(f"test_devices is empty; name at least one {self.space} device to score, "
                             f"e.g. {known[0]!r}; valid devices: {_listing(known)}")
        needs_train = [m.name for m in chosen if m.needs_train_devices]
        if not self.train_devices and needs_train:
            raise ValueError(f"train_devices is empty, but {', '.join(map(repr, needs_train))} pretrain on "
                             f"training devices; name some (valid: {_listing(known)}) or use a preset such as "
                             f"ExperimentSpec.from_preset('{self.space}-default')")
        for role, devices in (("train_devices", self.train_devices), ("test_devices", self.test_devices)):
            _no_duplicates(role, devices)
            _known_devices(self.space, role, devices, known)
        both = [d for d in self.test_devices if d in self.train_devices]
        if both:
            raise ValueError(f"device(s) {', '.join(map(repr, both))} are in both train_devices and test_devices; "
                             "a test device must be unseen in training: remove it from one of the two lists")

        for field_name, mapping in (("method_samples", self.method_samples), ("method_options", self.method_options)):
            for name in mapping:
                if name not in self.methods:
                    raise ValueError(f"{field_name} names method {name!r}, which is not in methods "
                                     f"({', '.join(self.methods)}); add it to methods or drop the entry")
        for name, budgets in self.method_samples.items():
            if not budgets:
                raise ValueError(f"method_samples[{name!r}] is empty; give at least one budget or drop the entry")
            _check_budgets(f"method_samples[{name!r}]", budgets)

        self._check_options(chosen, known)
        return self

    def check_data(self) -> ExperimentSpec:
        """Check the spec against the data (the runner does, before any trial): every method's
        encoding must cover each device, and each test device's pool must hold every sample
        budget. Reads the benchmark tables where they are already local (a spec itself is built and
        validated without touching data). Raises a one-line `MultipredictError`; returns ``self``."""
        registry = method_registry.active_registry()
        try:
            self._check_pools([registry.get(m) for m in self.methods])
        except ValueError as error:
            raise MultipredictError(str(error)) from None
        return self

    def _check_options(self, chosen: list[method_registry.Method], known: list[str]) -> None:
        accepted = [m.accepted_options() for m in chosen]
        if all(a is not None for a in accepted):
            taken = set().union(*accepted)
            for option in self.options:
                if option not in taken:
                    raise ValueError(f"option {option!r} is taken by none of the methods {', '.join(self.methods)}; "
                                     f"options they take: {_listing(sorted(taken))}")
        for method in chosen:
            for option in self.method_options.get(method.name, {}):
                if option not in PER_METHOD_ONLY and not method.takes(option):
                    raise ValueError(f"method_options[{method.name!r}] sets {option!r}, which {method.name} does not "
                                     f"take; it takes: {_listing(sorted(method.accepted_options() or ()))}, protocol")
            protocol = self.method_options.get(method.name, {}).get("protocol", self.protocol)
            if protocol not in PROTOCOLS:
                raise ValueError(f"method_options[{method.name!r}] sets unknown protocol {protocol!r}; "
                                 f"expected one of {', '.join(PROTOCOLS)}")
        for where, options in [("options", self.options)] + [
                (f"method_options[{m!r}]", o) for m, o in self.method_options.items()]:
            for option in DEVICE_OPTIONS:
                if option not in options:
                    continue
                devices = options[option]
                if isinstance(devices, str) or not all(isinstance(d, str) for d in devices):
                    raise ValueError(f"{where}[{option!r}] = {devices!r}; expected a list of device names")
                _known_devices(self.space, f"{where}[{option!r}]", devices, known)
                leaked = [d for d in devices if d in self.test_devices]
                if leaked:
                    raise ValueError(f"{where}[{option!r}] uses test device(s) {', '.join(map(repr, leaked))}; "
                                     "a test device's latencies must not be seen before its few-shot samples: "
                                     "remove them from that list")

    def _check_pools(self, chosen: list[method_registry.Method]) -> None:
        """Every device needs archs that the method's encoding covers, and enough for each budget."""
        for method in chosen:
            options = self.options_for(method)
            # a fixed encoding (the TL methods) or a chosen one (BRP-NAS encoding, FLOPs pool_encoding)
            encoding_name = options.get("encoding") or options.get("pool_encoding")
            # HWL features are latencies on reference devices: an arch needs those too
            references = tuple(options.get("hwl_devices") or self.train_devices) \
                if encoding_name in HWL_ENCODINGS else ()
            for device in self.train_devices + self.test_devices:
                size = arch_pool_size(self.space, encoding_name, (device,), references, config.data_key())
                if size is None:  # data not fetched yet: the run reports it
                    return
                encoding = f"encoding {encoding_name!r}" if encoding_name else "its data"
                if size == 0:
                    raise ValueError(
                        f"method {method.name!r}: {encoding} has no archs with data for {self.space} device "
                        f"{device!r}, so its pool is empty; pick another device or a method whose encoding "
                        "covers it (Vec covers every arch)")
                if device in self.test_devices:
                    too_big = [b for b in self.budgets(method.name) if b > size]
                    if too_big:
                        raise ValueError(
                            f"sample budget {too_big[0]} for method {method.name!r} is larger than the pool of "
                            f"test device {device!r}: {size} archs have {encoding} and its latency; "
                            f"lower the budget to at most {size}")

    # ---- helpers ------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> ExperimentSpec:
        """A validated copy with some fields changed (``model_copy(update=...)`` would skip validation)."""
        return type(self)(**{**{k: getattr(self, k) for k in type(self).model_fields}, **changes})

    def budgets(self, method: str) -> tuple[int, ...]:
        return tuple(self.method_samples.get(method, self.samples))

    def seeds(self) -> list[int]:
        return [self.seed + repeat for repeat in range(self.repeats)]

    def options_for(self, method: method_registry.Method | str) -> dict[str, Any]:
        """The options a method's calls get (quick settings, spec-wide, per-method, fixed; protocol apart)."""
        if isinstance(method, str):
            method = method_registry.get(method)
        own = {k: v for k, v in self.method_options.get(method.name, {}).items() if k not in PER_METHOD_ONLY}
        return method.options_for(self.options, own, self.quick)

    def protocol_for(self, method: str) -> str:
        return self.method_options.get(method, {}).get("protocol", self.protocol)

    def canonical_json(self) -> str:
        """Sorted-key JSON of everything that decides the results (``name`` and reporting options left out)."""
        data = self._plain_data()
        del data["name"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)

    def _plain_data(self) -> dict[str, Any]:
        """The fields as JSON types, without reporting options (a progress callback is no data)."""
        data = self.model_dump(exclude={"options", "method_options"}, mode="json")
        data["options"] = to_jsonable_python(_without_reporting(self.options), fallback=str)
        data["method_options"] = {m: to_jsonable_python(_without_reporting(o), fallback=str)
                                  for m, o in self.method_options.items()}
        return data

    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def __hash__(self) -> int:  # dict fields make pydantic's field hash fail; the content hash is stable
        return hash(self.spec_hash())

    def n_trials(self) -> int:
        return sum(len(self.budgets(m)) for m in self.methods) * self.repeats

    # ---- presets and YAML ---------------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> ExperimentSpec:
        """A spec on one of the paper's device sets (``nb201-default``, ``fbnet-default``,
        ``nb201-adversarial``, ``fbnet-adversarial``); keyword arguments replace any field."""
        from ..tasks import DEVICE_SETS

        if preset not in DEVICE_SETS:
            raise MultipredictError(f"unknown preset {preset!r}; valid presets: {', '.join(DEVICE_SETS)}")
        device_set = DEVICE_SETS[preset]
        fields: dict[str, Any] = {"space": device_set.space, "methods": ["TL Vec ET"],
                                  "train_devices": list(device_set.train), "test_devices": list(device_set.test),
                                  "samples": [10], "name": preset}
        fields.update(overrides)
        return cls(**fields)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the spec (written to ``path`` too if given); reporting options are left out."""
        fields = list(type(self).model_fields)
        data = self._plain_data()
        text = yaml.safe_dump({k: data[k] for k in fields}, sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, source: str | Path) -> ExperimentSpec:
        """From a YAML file or YAML text; a ``preset:`` key starts from that preset."""
        if isinstance(source, Path) or ("\n" not in source and Path(source).suffix in (".yaml", ".yml")):
            path = Path(source)
            if not path.exists():
                raise MultipredictError(f"spec file {str(path)!r} does not exist; pass a path to a YAML file "
                                        "or the YAML text itself")
            source = path.read_text()
        data = yaml.safe_load(source) or {}
        if not isinstance(data, dict):
            raise MultipredictError(f"a spec YAML must be a mapping of field: value, got {type(data).__name__}")
        if "preset" in data:
            return cls.from_preset(data.pop("preset"), **data)
        return cls(**data)


def _without_reporting(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in method_registry.REPORTING_OPTIONS}


def _no_duplicates(role: str, values) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{role} lists {value!r} twice; list each entry once")
        seen.add(value)


def _check_budgets(role: str, budgets) -> None:
    for budget in budgets:
        if budget < 0:
            raise ValueError(f"{role} has budget {budget}; a sample budget is a count of archs, expected >= 0")


def _known_devices(space: str, role: str, devices, known: list[str]) -> None:
    for device in devices:
        if device not in known:
            raise ValueError(f"unknown {space} device {device!r} in {role}; valid {space} devices: "
                             f"{_listing(known)}")


@cache
def arch_pool_size(space: str, encoding: str | None, devices: tuple[str, ...],
                   hwl_devices: tuple[str, ...] = (), data_key: tuple = ()) -> int | None:
    """How many archs have ``encoding`` features and latencies on all ``devices`` (None: data not local)."""
    try:
        try:
            from .. import encodings
        except ImportError:  # the encodings module is optional here: fall back to latency coverage
            encodings = None
        if encodings is not None and encoding is not None and hasattr(encodings, "pool"):
            return len(encodings.pool(space, encoding, list(devices), hwl_devices=list(hwl_devices)))
        from ..data import tables

        covered = tables.latencies(space)[list(devices) + list(hwl_devices)].notna().all(axis=1)
        ids = covered.index[covered.to_numpy()]
        if encoding in ZCP_ENCODINGS:
            ids = ids.intersection(tables.zcp(space).index)
        return len(ids)
    except DataError:
        return None
    except MultipredictError as error:  # e.g. an encoding that does not exist for this space
        raise ValueError(f"encoding {encoding!r} has no data for {space} devices {', '.join(devices)}: {error}") \
            from error
