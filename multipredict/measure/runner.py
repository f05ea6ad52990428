"""Measure many architectures into a results table that survives being killed.

Files of a run writing ``lat.csv`` (or ``lat.parquet``):

- ``lat.csv.journal.jsonl``: one JSON row per measured arch, appended and ``fsync``-ed as soon as
  the arch is measured; a run that is killed loses at most the arch it was timing. A torn last line
  (killed mid-write) is cut off on resume. An exclusive lock on this file keeps two runs from
  writing the same table.
- ``lat.csv``: the table, written (tmp file + ``os.replace``) when the run finishes, merging what
  it held before, the journal and the new rows; then the journal is removed.
- ``lat.csv.meta.json``: space, device profile, protocol and the machine's description. A rerun
  with the same ``out_path`` resumes: it measures only the archs not in the table or journal, and
  refuses to mix rows from a different profile, protocol, space, model or machine.

Table columns: ``arch_id, arch, latency_ms`` (median), ``spread_ms`` (IQR), ``repeats, outlier,
profile``, then ``q25_ms, q75_ms, mean_ms, min_ms, max_ms, outlying_samples, relative_spread,
attempts, measured_at``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from .. import spaces
from ..errors import MultipredictError
from .backends import INPUT_SEED, make_backend
from .profiles import DeviceProfile, MachineInfo, get_profile, machine_info
from .protocol import Measurement, MeasurementProtocol, measure_latency

ModelFactory = Callable[[str, str], nn.Module]
METADATA_FORMAT = "multipredict-latency/1"
MODEL_SEED = 0
COLUMNS: tuple[str, ...] = (
    "arch_id", "arch", "latency_ms", "spread_ms", "repeats", "outlier", "profile",
    "q25_ms", "q75_ms", "mean_ms", "min_ms", "max_ms", "outlying_samples", "relative_spread", "attempts",
    "measured_at",
)
TABLE_SUFFIXES = (".csv", ".parquet")


# ---------------------------------------------------------------------------------------------
# archs and models


def resolve_arch(space: str, arch: int | str | Sequence[int]) -> tuple[int, str]:
    """``(arch_id, arch string)`` of an arch given by benchmark id (int or digit string) or string."""
    module = spaces.get(space)
    if isinstance(arch, bool):
        raise MultipredictError(f"{space} arch {arch!r} is a bool; expected an arch id or an arch string")
    if isinstance(arch, str) and arch.strip().lstrip("-").isdigit():
        arch = int(arch.strip())
    if isinstance(arch, (int, np.integer)):
        arch_id = module.arch_id(int(arch))
        return arch_id, _arch_string(space, arch_id)
    arch_id = module.arch_id(arch)
    return arch_id, _arch_string(space, arch_id) if space == "fbnet" else str(arch).strip()


def _arch_string(space: str, arch_id: int) -> str:
    if space == "nb201":
        return spaces.nb201.arch_string(arch_id)
    return spaces.fbnet.arch_key(arch_id)


def resolve_archs(space: str, archs: Iterable[int | str]) -> list[tuple[int, str]]:
    """Resolve every arch first (so that a typo fails before any measuring), dropping repeats."""
    resolved: dict[int, str] = {}
    for arch in archs:
        arch_id, arch_str = resolve_arch(space, arch)
        resolved.setdefault(arch_id, arch_str)
    if not resolved:
        raise MultipredictError(f"no archs to measure in space {space!r}; pass arch ids or arch strings")
    return list(resolved.items())


def default_model_factory(space: str, arch: str) -> nn.Module:
    """The space's torch network (``spaces.models.build_model``), weights seeded by ``MODEL_SEED``."""
    from ..spaces.models import build_model

    return build_model(space, arch, seed=MODEL_SEED)


def _factory_name(factory: ModelFactory) -> str:
    # a callable object is named by its class, so that a resume with an equal factory is accepted
    named = factory if hasattr(factory, "__qualname__") else type(factory)
    return f"{named.__module__}.{named.__qualname__}"


def measure_arch(space: str, arch: int | str, profile: str | DeviceProfile = "cpu-1t-b1",
                 protocol: MeasurementProtocol | None = None, model_factory: ModelFactory | None = None) -> Measurement:
    """Measure one arch, no files: a quick look, or the building block of :func:`measure_archs`."""
    profile = get_profile(profile)
    backend = make_backend(profile)
    _, arch_str = resolve_arch(space, arch)
    return _measure_one(space, arch_str, profile, backend, protocol or MeasurementProtocol(),
                        model_factory or default_model_factory)


def _measure_one(space, arch_str, profile, backend, protocol, model_factory) -> Measurement:
    model = model_factory(space, arch_str)
    with backend.prepared(model, profile.batch_shape(space)) as run_once:
        measurement = measure_latency(run_once, protocol)
    if not np.isfinite(measurement.latency_ms) or measurement.latency_ms <= 0:
        # a timer that reads 0 cannot rank archs; say so instead of writing a useless row
        raise MultipredictError(f"measured latency of {space} arch {arch_str!r} on {profile.name!r} is "
                                f"{measurement.latency_ms} ms; expected a positive time (is the timer too coarse?)")
    return measurement


# ---------------------------------------------------------------------------------------------
# files


def journal_path(out_path: str | os.PathLike) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".journal.jsonl")


def metadata_path(out_path: str | os.PathLike) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".meta.json")


def _check_suffix(out_path: Path) -> None:
    if out_path.suffix.lower() not in TABLE_SUFFIXES:
        raise MultipredictError(f"latency table {str(out_path)!r} must end in {' or '.join(TABLE_SUFFIXES)}")


def _read_table(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    missing = [c for c in ("arch_id", "latency_ms") if c not in frame.columns]
    if missing:
        raise MultipredictError(f"{str(path)!r} is not a latency table: it lacks the columns {missing}")
    return frame


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() == ".parquet":
        _write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        _write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))


def _write_json(data: dict, path: Path) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8"))


def _tidy(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NA
    frame = frame[list(COLUMNS)].drop_duplicates("arch_id", keep="first").reset_index(drop=True)
    return frame.astype({"arch_id": "int64", "repeats": "int64", "outlier": "bool", "attempts": "int64",
                         "outlying_samples": "int64"})


def _read_journal(handle, path: Path) -> list[dict]:
    """Rows of an open journal; a torn last line (the run was killed while writing it) is cut off."""
    handle.seek(0)
    data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) < len(data):
        handle.truncate(len(complete))
    rows = []
    for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise MultipredictError(f"line {number} of the journal {str(path)!r} is corrupt ({exc}); remove that "
                                    f"line (that arch is measured again) and rerun") from None
    return rows


def _lock(handle, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one run per table is the user's care
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise MultipredictError(f"another measure run is writing {str(path)!r}; wait for it, or choose another "
                                f"--out") from None


def _metadata(space, profile, protocol, machine, factory_name) -> dict:
    return {
        "format": METADATA_FORMAT,
        "space": space,
        "profile": profile.model_dump(mode="json"),
        "protocol": protocol.model_dump(mode="json"),
        "model": {"factory": factory_name, "seed": MODEL_SEED, "input_seed": INPUT_SEED,
                  "input_shape": list(profile.batch_shape(space))},
        "machine": machine.model_dump(mode="json"),
    }


def _differences(old: dict, new: dict, profile: DeviceProfile) -> list[str]:
    diffs = []
    if old.get("space") != new["space"]:
        diffs.append(f"space {old.get('space')!r} -> {new['space']!r}")
    old_profile = {k: v for k, v in (old.get("profile") or {}).items() if k != "description"}
    if old_profile != profile.settings():
        keys = sorted(set(old_profile) | set(profile.settings()))
        diffs += [f"profile.{k} {old_profile.get(k)!r} -> {profile.settings().get(k)!r}" for k in keys
                  if old_profile.get(k) != profile.settings().get(k)]
    for section in ("protocol", "model"):
        old_part, new_part = old.get(section) or {}, new[section]
        diffs += [f"{section}.{k} {old_part.get(k)!r} -> {new_part.get(k)!r}"
                  for k in sorted(set(old_part) | set(new_part)) if old_part.get(k) != new_part.get(k)]
    old_machine = MachineInfo.model_validate(old["machine"]).fingerprint() if old.get("machine") else {}
    new_machine = MachineInfo.model_validate(new["machine"]).fingerprint()
    diffs += [f"machine.{k} {old_machine.get(k)!r} -> {v!r}" for k, v in new_machine.items() if old_machine.get(k) != v]
    return diffs


def _check_resumable(out_path: Path, meta_file: Path, metadata: dict, profile: DeviceProfile) -> str | None:
    """Refuse to add rows measured in other settings; the earlier run's start time otherwise."""
    if not meta_file.exists():
        raise MultipredictError(
            f"{str(out_path)!r} holds measurements but its metadata {str(meta_file)!r} is missing, so "
            f"they cannot be checked against profile {profile.name!r}; choose another --out or remove them")
    old = json.loads(meta_file.read_text(encoding="utf-8"))
    diffs = _differences(old, metadata, profile)
    if diffs:
        raise MultipredictError(
            f"{str(out_path)!r} was measured with other settings ({'; '.join(diffs)}); resuming would mix "
            f"incomparable latencies. Use another --out for the new settings, or rerun with the old ones")
    return old.get("started_at")


def read_measurements(out_path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """A finished or interrupted run's rows (table + journal) and its metadata."""
    out_path = Path(out_path)
    meta_file = metadata_path(out_path)
    if not meta_file.exists():
        raise MultipredictError(f"no measurement metadata {str(meta_file)!r}; was {str(out_path)!r} written by "
                                f"`multipredict measure`?")
    metadata = json.loads(meta_file.read_text(encoding="utf-8"))
    parts = [_read_table(out_path)] if out_path.exists() else []
    journal = journal_path(out_path)
    if journal.exists():
        with open(journal, "rb") as f:
            lines = f.read().decode("utf-8").splitlines()
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line; the writer's resume cuts it off
        parts.append(pd.DataFrame(rows))
    frame = _tidy(pd.concat(parts, ignore_index=True)) if parts else _tidy([])
    return frame, metadata


# ---------------------------------------------------------------------------------------------
# the run


def measure_archs(space: str, archs: Iterable[int | str], profile: str | os.PathLike | DeviceProfile,
                  out_path: str | os.PathLike, *, protocol: MeasurementProtocol | None = None, progress: bool = True,
                  model_factory: ModelFactory | None = None) -> pd.DataFrame:
    """Measure ``archs`` of ``space`` on ``profile`` into ``out_path`` (``.csv`` / ``.parquet``),
    resuming a run that stopped; returns the rows of the requested archs, in the requested order.

    ``profile``: a built-in name (``cpu-1t-b1``...), a YAML/JSON profile file or a
    :class:`DeviceProfile`. ``model_factory(space, arch_string)`` replaces the space's model
    builder (it is recorded, so a resume with another factory is refused).
    """
    from tqdm.auto import tqdm

    out_path = Path(out_path).expanduser()
    _check_suffix(out_path)
    profile = get_profile(profile)
    protocol = protocol or MeasurementProtocol()
    model_factory = model_factory or default_model_factory
    backend = make_backend(profile)  # fails here, before any file, when the backend cannot run
    spaces.get(space)  # an unknown space fails naming the valid ones...
    profile.input_shape(space)  # ...and a profile without this space's input says how to add it
    requested = resolve_archs(space, archs)
    machine = machine_info(profile)
    if machine.usable_cores and profile.threads > machine.usable_cores:
        warnings.warn(f"profile {profile.name!r} uses {profile.threads} threads but this process may run on "
                      f"{machine.usable_cores} cores; threads will compete and latencies will not reflect the "
                      f"profile", stacklevel=2)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    meta_file, journal = metadata_path(out_path), journal_path(out_path)
    metadata = _metadata(space, profile, protocol, machine, _factory_name(model_factory))

    journal_existed = journal.exists()
    with open(journal, "a+b") as handle:
        _lock(handle, journal)
        journal_rows = _read_journal(handle, journal)
        previous = _read_table(out_path) if out_path.exists() else None
        started_at = None
        if previous is not None or journal_rows:
            try:
                started_at = _check_resumable(out_path, meta_file, metadata, profile)
            except MultipredictError:
                if not journal_existed:  # leave the refused table as it was, without an empty journal
                    journal.unlink()
                raise
        metadata.update(started_at=started_at or _now(), finished=False, updated_at=_now())
        _write_json(metadata, meta_file)

        done_rows = (previous.to_dict("records") if previous is not None else []) + journal_rows
        done_ids = {int(r["arch_id"]) for r in done_rows}
        todo = [(i, a) for i, a in requested if i not in done_ids]
        bar = tqdm(total=len(requested), initial=len(requested) - len(todo), unit="arch",
                   desc=f"measure {space} on {profile.name}", disable=not progress)
        try:
            for arch_id, arch_str in todo:
                measurement = _measure_one(space, arch_str, profile, backend, protocol, model_factory)
                row = {"arch_id": arch_id, "arch": arch_str, "latency_ms": measurement.latency_ms,
                       "spread_ms": measurement.stats.spread_ms, "repeats": measurement.stats.repeats,
                       "outlier": measurement.outlier, "profile": profile.name, **measurement.as_row(),
                       "measured_at": _now()}
                handle.write((json.dumps(row) + "\n").encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
                done_rows.append(row)
                bar.update(1)
                bar.set_postfix(latency=f"{measurement.latency_ms:.3g} ms", outlier=measurement.outlier)
        finally:
            bar.close()

        table = _tidy(done_rows)
        _write_table(table, out_path)
        metadata.update(finished=True, updated_at=_now(), rows=len(table),
                        outliers=int(table["outlier"].sum()))
        _write_json(metadata, meta_file)
        journal.unlink()  # everything in it is in the table now; the lock goes with the handle

    by_id = table.set_index("arch_id", drop=False)
    return by_id.loc[[i for i, _ in requested]].reset_index(drop=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
