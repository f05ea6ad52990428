"""Trials on a Dask cluster (``executor="dask"``): an existing one by its scheduler address, or a
``LocalCluster`` on this machine when no address is given.

    from multipredict.experiments import run
    run(spec, "dask", scheduler="tcp://10.0.0.5:8786")   # workers started with `dask worker ADDRESS`
    run(spec, "dask", workers=4)                         # a LocalCluster: 4 processes, 1 thread each

Every trial carries the caller's ``multipredict.config.configure`` overrides and runs with one torch
thread (see ``runner.execute_trial``). Environment variables are the workers' own: a LocalCluster's
worker processes inherit this process's (``MULTIPREDICT_MIRROR``, ``MULTIPREDICT_CACHE``,
``MULTIPREDICT_DATA``); on a remote cluster set them where ``dask worker`` starts, and give the workers
the benchmark files (a shared cache folder, or a mirror, or internet access to fetch them).

``dask.distributed`` is an optional dependency: ``pip install 'multipredict[cluster]'``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import __version__
from ..errors import MultipredictError

INSTALL_HINT = "pip install 'multipredict[cluster]' (dask and distributed)"
CONNECT_TIMEOUT_S = 30
WORKER_TIMEOUT_S = 120


def is_dask(executor: Any) -> bool:
    """Whether ``executor`` is a ``distributed.Client`` or the executor ``Client.get_executor()`` returns."""
    if "distributed" not in sys.modules:  # nobody made one: don't import dask just to ask
        return False
    from distributed import Client
    from distributed.cfexecutor import ClientExecutor

    return isinstance(executor, (Client, ClientExecutor))


def client_of(executor: Any):
    from distributed import Client

    return executor if isinstance(executor, Client) else executor._client


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: connected to ``scheduler`` (left running afterwards), or to a
    ``LocalCluster`` of ``workers`` processes (default: the CPU count) with one thread each, on
    127.0.0.1 and without a dashboard, closed afterwards."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise MultipredictError(f"executor 'dask' needs dask.distributed, which is not installed: {INSTALL_HINT}") \
            from error
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as error:
            raise MultipredictError(
                f"cannot reach a Dask scheduler at {scheduler!r} ({type(error).__name__}: {error}); start one with "
                "`dask scheduler` and pass the address it prints, e.g. --scheduler tcp://HOST:8786") from error
        with client:
            _check_workers(client, scheduler)
            yield client
        return
    if workers is not None and workers < 1:
        raise MultipredictError(f"workers={workers!r}: a LocalCluster needs at least one worker process")
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _worker_version() -> str:
    import multipredict

    return multipredict.__version__


def _check_workers(client, scheduler: str) -> None:
    """A remote cluster must have workers, and they must run this multipredict version (trial keys
    hold the version: rows computed by another one would be stored under this one's keys)."""
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT_S)
    except TimeoutError as error:
        raise MultipredictError(f"the Dask scheduler at {scheduler!r} has no workers after {WORKER_TIMEOUT_S} s; "
                                f"start some with `dask worker {scheduler}`") from error
    try:
        versions = client.run(_worker_version)
    except Exception as error:  # e.g. multipredict not importable there
        raise MultipredictError(f"the Dask workers of {scheduler!r} cannot import multipredict ({error}); install "
                                "the same multipredict version on every worker") from error
    wrong = {worker: version for worker, version in versions.items() if version != __version__}
    if wrong:
        raise MultipredictError(f"Dask workers run other multipredict versions than this one ({__version__}): "
                                f"{wrong}; install {__version__} on every worker")


__all__ = ["dask_client", "is_dask", "client_of"]
