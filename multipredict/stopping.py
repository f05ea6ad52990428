"""Stop a long job on SIGTERM the way Ctrl-C stops it: with its results saved.

Long jobs (zero-cost proxies, measurements, reproductions) save what they finished in ``finally``
blocks, which Ctrl-C (``KeyboardInterrupt``) runs but a plain SIGTERM (``kill``, a batch system, a
container stop) skips. Inside ``terminate_as_interrupt()`` SIGTERM raises ``KeyboardInterrupt`` too.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` in the main thread while inside (a no-op elsewhere:
    signal handlers belong to the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
