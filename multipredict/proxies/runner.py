"""Score many archs of a space into one table, resumably and in parallel.

The table (parquet for ``.parquet``/``.pq``, else CSV) has one row per arch: ``arch_id``, the
proxies, the batch that produced them (``batch_source``, ``batch_size``, ``batch_seed``,
``batch_shape``), the model init seed and the seconds the arch took.

Resuming: the table is rewritten atomically (temporary file + rename) every ``chunk_size`` archs,
at the end, and when the run stops on an error, Ctrl-C or SIGTERM, so the file on disk is always a
complete table. Where it goes is checked (a writable folder, not a folder itself) before anything
is computed. A rerun with the same ``out_path`` reads it, skips the archs already there and appends the
rest; a hard kill (SIGKILL, power loss) loses at most the ``chunk_size - 1`` most recent archs.
Rerunning with another batch, seed or proxy list into the same file is refused, because the
columns would silently mix two experiments.

Parallelism: ``workers > 1`` runs archs in that many local processes (spawned, one torch thread
each: small networks on few cores run faster as separate 1-thread processes than as threads).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import MultipredictError
from ..outputs import check_output_file
from ..stopping import terminate_as_interrupt
from .batch import DEFAULT_BATCH_SIZE, DEFAULT_SEED, ProxyBatch, make_batch
from .engine import compute_proxies
from .scores import ALL_PROXIES, validate_proxies

META_COLUMNS = ("batch_source", "batch_size", "batch_seed", "batch_shape", "init_seed")


def run_zcp(space: str, arch_ids: Iterable[int], out_path: str | os.PathLike, *, workers: int = 1,
            batch: ProxyBatch | str | os.PathLike | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
            seed: int = DEFAULT_SEED, proxies=ALL_PROXIES, device: str | None = None, zen_output: str = "features",
            chunk_size: int = 8, progress: bool = True,
            on_result: Callable[[int, dict], None] | None = None) -> pd.DataFrame:
    """Compute ``proxies`` for ``arch_ids`` of ``space`` ('nb201' or 'fbnet') into ``out_path``.

    ``batch``: a `ProxyBatch`, an image-folder path, or None for the seeded synthetic batch
    (``batch_size``, ``seed``). Every model is initialised from ``seed`` too. Returns the whole
    table (earlier rows included), sorted by arch_id. ``on_result(arch_id, row)`` is called after
    each newly computed arch (progress reporting, tests).
    """
    from ..spaces.models import space_defaults

    space_defaults(space)  # validates the space name
    names = validate_proxies(proxies)
    ids = _unique_ids(arch_ids)
    if workers < 1:
        raise MultipredictError(f"workers must be >= 1; got {workers}")
    if chunk_size < 1:
        raise MultipredictError(f"chunk_size must be >= 1; got {chunk_size}")
    out_path = check_output_file(out_path, flag="out_path")
    batch = make_batch(space, batch, batch_size=batch_size, seed=seed)
    meta = {**batch.info, "init_seed": int(seed)}
    done = _read_existing(out_path, names, meta)
    already = set(done["arch_id"].tolist())
    todo = [i for i in ids if i not in already]

    new_rows: list[dict] = []
    unsaved = 0
    bar = _progress_bar(len(ids), len(ids) - len(todo), progress, space)

    def record(row: dict) -> None:
        nonlocal unsaved
        new_rows.append(row)
        unsaved += 1
        bar.update(1)
        if unsaved >= chunk_size:
            _write_table(out_path, _combine(done, new_rows, names))
            unsaved = 0
        if on_result is not None:
            on_result(row["arch_id"], row)

    job = (space, names, device, zen_output, int(seed))
    try:
        with terminate_as_interrupt():  # SIGTERM saves what is done, as Ctrl-C does
            if workers == 1 or len(todo) <= 1:
                for arch_id in todo:
                    record(_score_arch(job, arch_id, batch))
            else:
                _run_parallel(job, todo, batch, workers, record)
    finally:
        bar.close()
        table = _combine(done, new_rows, names)
        if new_rows:
            _write_table(out_path, table)
    return table


def _run_parallel(job, todo: list[int], batch: ProxyBatch, workers: int, record) -> None:
    # spawn, not fork: a forked child of a process that has already run torch ops can deadlock
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                             initargs=(batch, True)) as pool:
        pending = iter(todo)
        running = set()
        try:
            # keep a bounded queue so that stopping early does not leave thousands of queued tasks
            for arch_id in pending:
                running.add(pool.submit(_score_arch, job, arch_id))
                if len(running) >= 2 * workers:
                    break
            failure: BaseException | None = None
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        row = future.result()
                    except Exception as exc:  # keep what the other workers finish, then report
                        failure = failure or exc
                        continue
                    record(row)
                    next_id = None if failure else next(pending, None)
                    if next_id is not None:
                        running.add(pool.submit(_score_arch, job, next_id))
            if failure is not None:
                raise failure
        except BaseException:
            for future in running:
                future.cancel()
            raise


_WORKER_BATCH: ProxyBatch | None = None


def _worker_init(batch: ProxyBatch, limit_threads: bool) -> None:
    global _WORKER_BATCH
    _WORKER_BATCH = batch
    if limit_threads:
        torch.set_num_threads(1)


def _score_arch(job, arch_id: int, batch: ProxyBatch | None = None) -> dict:
    from ..spaces.models import build_model

    space, names, device, zen_output, seed = job
    started = time.perf_counter()
    try:
        model = build_model(space, arch_id, seed=seed)
        scores = compute_proxies(model, batch if batch is not None else _WORKER_BATCH, names, device=device, seed=seed,
                                 zen_output=zen_output)
    except Exception as exc:
        raise MultipredictError(f"computing proxies for {space} arch {arch_id} failed: {exc}") from exc
    return {"arch_id": arch_id, **scores, "seconds": time.perf_counter() - started}


# --- the table ---------------------------------------------------------------------------------

def _columns(names) -> list[str]:
    return ["arch_id", *names, *META_COLUMNS, "seconds"]


def _combine(done: pd.DataFrame, new_rows: list[dict], names) -> pd.DataFrame:
    meta = done.attrs.get("meta", {})
    if new_rows:
        new = pd.DataFrame(new_rows)
        for key, value in meta.items():
            new[key] = value
        table = pd.concat([done, new], ignore_index=True) if len(done) else new
    else:
        table = done
    table = table[_columns(names)].sort_values("arch_id", kind="stable").reset_index(drop=True)
    table["arch_id"] = table["arch_id"].astype("int64")
    table.attrs["meta"] = meta
    return table


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _read_existing(path: Path, names, meta: dict) -> pd.DataFrame:
    empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in _columns(names)})
    empty["arch_id"] = empty["arch_id"].astype("int64")
    empty.attrs["meta"] = meta
    if not path.exists():
        return empty
    try:
        table = pd.read_parquet(path) if _is_parquet(path) else pd.read_csv(path)
    except Exception as exc:
        raise MultipredictError(f"cannot read the existing proxy table {str(path)!r} to resume: {exc}. "
                                "Move it away or pass another output path") from exc
    missing = [c for c in _columns(names) if c not in table.columns]
    if missing:
        raise MultipredictError(
            f"{str(path)!r} exists but lacks the columns {missing} this run writes; it was made with other "
            "proxies or by another program. Pass another output path, or the same proxies as before")
    extra = [c for c in ALL_PROXIES if c in table.columns and c not in names]
    if extra:  # rewriting the file with fewer columns would throw those scores away
        before = ", ".join(c for c in ALL_PROXIES if c in table.columns)
        raise MultipredictError(
            f"{str(path)!r} also holds the proxies {extra}, which this run does not compute; resuming into it "
            f"would drop them. Ask for the same proxies as before ({before}), or pass another output path")
    for key, value in meta.items():
        found = set(table[key].astype(str)) if len(table) else {str(value)}
        if found != {str(value)}:
            raise MultipredictError(
                f"{str(path)!r} holds scores computed with {key}={sorted(found)}, this run uses {key}={value!r}; "
                "mixing batches in one table would make the proxies incomparable. Pass another output path, "
                "or the batch/seed of the existing file")
    table = table[_columns(names)].drop_duplicates("arch_id", keep="last").copy()
    table["arch_id"] = table["arch_id"].astype("int64")
    table.attrs["meta"] = meta
    return table


def _write_table(path: Path, table: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    plain = pd.DataFrame(table)  # attrs (run metadata) are not part of the file
    plain.attrs = {}
    if _is_parquet(path):
        plain.to_parquet(temporary, index=False)
    else:
        plain.to_csv(temporary, index=False)
    os.replace(temporary, path)


def _unique_ids(arch_ids: Iterable[int]) -> list[int]:
    ids = []
    for a in arch_ids:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise MultipredictError(f"arch ids must be integers; got {a!r}. Convert arch strings with the "
                                    "space's arch_id() first")
        ids.append(int(a))
    return list(dict.fromkeys(ids))


def _progress_bar(total: int, initial: int, enabled: bool, space: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="arch", desc=f"zcp {space}", disable=not enabled,
                dynamic_ncols=True)


# --- arch selection for the CLI --------------------------------------------------------------------

def resolve_arch_ids(space: str, spec: str | Iterable[int]) -> list[int]:
    """Arch ids from a CLI-style selection (``multipredict.spaces.selection.SELECTION_HELP``)."""
    from ..spaces.selection import select_archs

    return select_archs(space, spec)


__all__ = ["run_zcp", "resolve_arch_ids", "META_COLUMNS"]
