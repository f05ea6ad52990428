"""Encode a user's own models: zero-cost proxies (ZCP) and latencies on reference profiles (HWL).

`encode_models` takes a folder of ONNX files or ``{name: factory}`` and writes one row per model:
``model, source`` (``sha256:...`` of the file or ``factory:<name>``), ``input_shape`` (CxHxW),
``status`` (``ok`` / ``error``), ``error`` (what failed, per stage, with the values of the stages
that worked kept), ``seconds``, ``flops``, ``params``, the other proxies of the proxy engine
(`multipredict.proxies.compute_proxies` on a seeded synthetic batch of the model's input shape and
class count), then ``latency_ms:<profile>`` (the measurement protocol's median) and
``outlier:<profile>`` (the protocol flagged the measurement as too noisy) for each profile
(`multipredict.measure`: torch eager, onnxruntime, CUDA).

Files, as `multipredict measure` keeps them: ``enc.parquet.journal.jsonl`` gets one fsync-ed JSON
row per model as soon as it is done (a killed run loses at most the model it was on), the table is
written atomically when the run ends and the journal removed; ``enc.parquet.meta.json`` records the
profiles, protocol, proxies, batch and machine, and a rerun into the same table with other settings
is refused. A rerun skips every model already encoded with status ``ok`` (same name and content),
and tries failed ones again.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import MultipredictError
from ..measure.profiles import DeviceProfile, get_profile, machine_info
from ..measure.protocol import MeasurementProtocol
from ..messages import one_line
from ..outputs import TABLE_SUFFIXES, check_output_file
from ..proxies import ALL_PROXIES
from ..proxies.scores import validate_proxies
from .names import CPU_PROFILES, CUDA_PROFILE
from .sources import ModelSource, collect

METADATA_FORMAT = "multipredict-encodings/1"
LATENCY_PREFIX = "latency_ms:"
OUTLIER_PREFIX = "outlier:"
ID_COLUMNS = ("model", "source", "input_shape", "status", "error", "seconds")
PROXY_BATCH_SIZE = 32  # NAS-Bench-Suite-Zero's batch: small user models on 2 cores stay quick
PROXY_SEED = 0
ZEN_OUTPUT = "logits"  # a converted ONNX model has no forward_features


def default_profiles() -> tuple[str, ...]:
    """Four CPU profiles that rank models differently (eager vs onnxruntime's fused graph, batch 1
    vs 8), plus ``cuda-b1`` when torch sees a GPU."""
    return CPU_PROFILES + ((CUDA_PROFILE,) if torch.cuda.is_available() else ())


def latency_column(profile: str) -> str:
    return f"{LATENCY_PREFIX}{profile}"


def profile_columns(table: pd.DataFrame) -> list[str]:
    """The profiles an encoding table measured, in its column order."""
    return [c[len(LATENCY_PREFIX):] for c in table.columns if str(c).startswith(LATENCY_PREFIX)]


@dataclass
class EncodeResult:
    table: pd.DataFrame = field(repr=False)  # the rows of the requested models, in their order
    path: Path
    encoded: int  # models computed in this run
    skipped: int  # models found done in the table or journal
    failed: list[str]  # "name: reason" for each model whose row has status error
    seconds: float
    profiles: list[str]

    def summary(self) -> str:
        ok = int((self.table["status"] == "ok").sum())
        text = (f"{len(self.table)} models ({ok} ok, {len(self.failed)} with errors): {self.encoded} encoded now in "
                f"{self.seconds:.1f} s, {self.skipped} already done; profiles {', '.join(self.profiles)}; "
                f"table {self.path}")
        return text


def encode_models(models, out: str | os.PathLike, *, profiles: Iterable[str | DeviceProfile] | None = None,
                  input_shape=None, input_shapes=None, protocol: MeasurementProtocol | None = None,
                  proxies=ALL_PROXIES, batch_size: int = PROXY_BATCH_SIZE, seed: int = PROXY_SEED,
                  progress: bool = True, warn: Callable[[str], None] | None = None) -> EncodeResult:
    """Compute ZCP and HWL for ``models`` into ``out`` (``.parquet`` or ``.csv``), resumably.

    ``models``: a folder of ``.onnx`` files, one ``.onnx`` path, or ``{name: factory}`` (a
    zero-argument callable returning a ``torch.nn.Module``, a module, or an ONNX path).
    ``input_shape``: ``(C, H, W)`` for factories and for ONNX files with a dynamic input
    (``input_shapes``: per model name). ``profiles``: built-in names, profile files or
    `DeviceProfile` objects (default `default_profiles`). ``warn(message)`` receives one line per
    model that failed (default: `warnings.warn`).
    """
    from tqdm.auto import tqdm

    from ..measure.backends import make_backend
    from ..measure.runner import _lock, _read_journal, journal_path, metadata_path
    from ..onboard import write_table

    warn = warn or (lambda message: warnings.warn(message, stacklevel=3))
    out = check_output_file(out, suffixes=TABLE_SUFFIXES)
    profiles = [get_profile(p) for p in (default_profiles() if profiles is None else profiles)]
    if not profiles:
        raise MultipredictError("no profiles to measure on; pass at least one, e.g. --profiles cpu-1t-b1")
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise MultipredictError(f"--profiles names a profile twice ({', '.join(names)}); give each once")
    backends = [make_backend(p) for p in profiles]  # a profile this machine cannot run fails here, before any work
    proxies = validate_proxies(proxies)
    proxies = tuple(dict.fromkeys(("flops", "params", *proxies)))
    protocol = protocol or MeasurementProtocol()
    sources = collect(models, input_shape=input_shape, input_shapes=input_shapes, warn=warn)
    duplicated = sorted({s.name for s in sources if sum(t.name == s.name for t in sources) > 1})
    if duplicated:
        raise MultipredictError(f"model names must be unique; {', '.join(duplicated)} appear more than once")

    metadata = _metadata(profiles, protocol, proxies, batch_size, seed)
    meta_file, journal = metadata_path(out), journal_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    journal_existed = journal.exists()
    with open(journal, "a+b") as handle:
        _lock(handle, journal)
        journal_rows = _read_journal(handle, journal)
        previous = _read_previous(out)
        if len(previous) or journal_rows:
            try:
                _check_same_settings(out, meta_file, metadata)
            except MultipredictError:
                if not journal_existed:
                    journal.unlink()
                raise
        _write_json(meta_file, {**metadata, "updated_at": _now(), "finished": False})
        rows = previous.to_dict("records") + journal_rows
        done = {_key(r) for r in rows if r.get("status") == "ok"}
        todo = [s for s in sources if (s.name, s.source, s.shape_text) not in done]
        bar = tqdm(total=len(sources), initial=len(sources) - len(todo), unit="model", desc="encode",
                   disable=not progress)
        try:
            for source in todo:
                bar.set_postfix_str(source.name)
                row = encode_one(source, profiles, backends, protocol, proxies, batch_size, seed)
                if row["status"] != "ok":
                    warn(f"model {source.name!r}: {row['error']}; continuing with the others")
                handle.write((json.dumps(row, default=_plain) + "\n").encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
                rows.append(row)
                bar.update(1)
        finally:
            bar.close()
        table = tidy(rows, profiles)
        write_table(table, out)
        _write_json(meta_file, {**metadata, "updated_at": _now(), "finished": True, "rows": len(table)})
        journal.unlink()

    requested = table.set_index("model", drop=False).loc[[s.name for s in sources]].reset_index(drop=True)
    failed = [f"{r.model}: {r.error}" for r in requested.itertuples() if r.status != "ok"]
    return EncodeResult(requested, out, encoded=len(todo), skipped=len(sources) - len(todo), failed=failed,
                        seconds=time.perf_counter() - started, profiles=names)


def encode_one(source: ModelSource, profiles: list[DeviceProfile], backends, protocol: MeasurementProtocol,
               proxies: tuple[str, ...], batch_size: int, seed: int) -> dict:
    """One model's row; every stage that fails is named in ``error`` and the others still run."""
    from ..measure.protocol import measure_latency
    from ..proxies import compute_proxies, synthetic_batch
    from ..threads import torch_threads

    started = time.perf_counter()
    row: dict = {"model": source.name, "source": source.source, "input_shape": source.shape_text}

    def finish(errors: list[str]) -> dict:
        row.update(status="ok" if not errors else "error", error="; ".join(errors),
                   seconds=round(time.perf_counter() - started, 3), encoded_at=_now())
        return row

    if source.problem:
        return finish([source.problem])
    try:
        model = source.load()
        with torch.no_grad(), torch_threads(1):
            output = model.eval()(torch.zeros((1, *source.input_shape)))
    except Exception as error:  # noqa: BLE001 - a user's model may fail in any way; the rest go on
        return finish([f"does not run on a 1x{source.shape_text} input ({_message(error)})"])
    errors = []
    try:
        if not isinstance(output, torch.Tensor) or output.ndim != 2:
            shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise MultipredictError(f"the model's output is {shape}; the proxies need (N, classes) logits")
        batch = synthetic_batch(source.input_shape, int(output.shape[1]), batch_size, seed)
        with torch_threads(1):
            row.update(compute_proxies(model, batch, proxies, seed=seed, zen_output=ZEN_OUTPUT))
    except Exception as error:  # noqa: BLE001
        errors.append(f"proxies: {_message(error)}")
    for profile, backend in zip(profiles, backends):
        try:
            with backend.prepared(model, (profile.batch, *source.input_shape)) as run_once:
                measurement = measure_latency(run_once, protocol)
            row[latency_column(profile.name)] = measurement.latency_ms
            row[OUTLIER_PREFIX + profile.name] = bool(measurement.outlier)
        except Exception as error:  # noqa: BLE001
            errors.append(f"{profile.name}: {_message(error)}")
    return finish(errors)


def tidy(rows: list[dict], profiles: list[DeviceProfile]) -> pd.DataFrame:
    """One row per model (the latest), the columns in a fixed order."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=list(ID_COLUMNS))
    frame = frame.drop_duplicates("model", keep="last").reset_index(drop=True)
    proxies = [p for p in ("flops", "params", *ALL_PROXIES) if p in frame.columns]
    latency = [latency_column(p.name) for p in profiles]
    outliers = [OUTLIER_PREFIX + p.name for p in profiles]
    for column in (*ID_COLUMNS, *latency, *outliers, "encoded_at"):
        if column not in frame.columns:
            frame[column] = np.nan
    ordered = [*ID_COLUMNS, *dict.fromkeys(proxies), *latency, *outliers, "encoded_at"]
    frame = frame[ordered]
    frame["error"] = frame["error"].fillna("").astype(str)
    for column in (*proxies, *latency, "seconds"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def _key(row: dict) -> tuple[str, str, str]:
    return str(row.get("model")), str(row.get("source")), str(row.get("input_shape") or "")


def _read_previous(out: Path) -> pd.DataFrame:
    if not out.exists():
        return pd.DataFrame()
    from .predict import read_encodings

    return read_encodings(out, flag="--out")


def _metadata(profiles, protocol, proxies, batch_size, seed) -> dict:
    machines = {}
    for profile in profiles:
        machines.update({k: v for k, v in machine_info(profile).fingerprint().items() if v is not None})
    return {"format": METADATA_FORMAT,
            "profiles": [p.settings() for p in profiles],
            "protocol": protocol.model_dump(mode="json"),
            "proxies": list(proxies),
            "proxy_batch": {"source": "synthetic", "size": int(batch_size), "seed": int(seed), "zen_output": ZEN_OUTPUT},
            "machine": machines}


def _check_same_settings(out: Path, meta_file: Path, metadata: dict) -> None:
    if not meta_file.exists():
        raise MultipredictError(f"{str(out)!r} holds encodings but its metadata {str(meta_file)!r} is missing, so "
                                f"they cannot be checked against these settings; choose another --out or remove it")
    old = json.loads(meta_file.read_text(encoding="utf-8"))
    diffs = [f"{key} {json.dumps(old.get(key))} -> {json.dumps(metadata[key])}"
             for key in ("format", "profiles", "protocol", "proxies", "proxy_batch", "machine")
             if old.get(key) != metadata[key]]
    if diffs:
        raise MultipredictError(f"{str(out)!r} was encoded with other settings ({'; '.join(diffs)[:600]}); adding "
                                f"rows would mix incomparable values. Use another --out, or rerun with the old "
                                f"settings")


def _write_json(path: Path, record: dict) -> None:
    from ..onboard import write_json

    write_json(record, path)


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)


def _message(error: BaseException) -> str:
    from ..messages import user_message

    return (user_message(error) or one_line(f"{type(error).__name__}: {error}"))[:400]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
