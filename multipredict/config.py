"""Where the project keeps fetched files and where it may copy them from.

Settings come from environment variables, so that a notebook, the CLI and CI agree without passing
paths around:

- ``MULTIPREDICT_CACHE``: folder for fetched upstream files (default: the user cache folder,
  ``$XDG_CACHE_HOME/multipredict`` or ``~/.cache/multipredict``).
- ``MULTIPREDICT_MIRROR``: a local folder laid out like GitHub raw-file addresses
  (``<owner>/<repo>/<commit>/<path>``) that replaces the network.
- ``MULTIPREDICT_DATA``: which latency / proxy data the library reads. ``benchmarks`` (default):
  the public benchmark files (fetched and verified on first use); ``local``: the project's own
  ``data/`` folder only, no download at all (latencies measured on this machine, our proxies);
  ``all``: both, the local profiles listed as extra devices beside the public ones.
- ``MULTIPREDICT_LOCAL_DATA``: that ``data/`` folder (default: ``data/`` of this repository).

`configure` overrides any of them for the running process (a config option for library users).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .errors import UnknownNameError

DATA_SOURCES = ("benchmarks", "local", "all")
_overrides: dict[str, object] = {}


def configure(*, cache_dir: str | os.PathLike | None = None, mirror: str | os.PathLike | None = None,
              data: str | None = None, local_data: str | os.PathLike | None = None) -> None:
    """Override the cache folder, the mirror, the data source and/or the local data folder for this
    process (``None`` keeps the current)."""
    if data is not None:
        _check_source(data, "configure(data=...)")
    if cache_dir is not None:
        _overrides["cache"] = Path(cache_dir).expanduser()
    if mirror is not None:
        _overrides["mirror"] = Path(mirror).expanduser()
    if data is not None:
        _overrides["data"] = data
    if local_data is not None:
        _overrides["local_data"] = Path(local_data).expanduser()


def _check_source(value: str, where: str) -> str:
    if value not in DATA_SOURCES:
        raise UnknownNameError("data source", value, DATA_SOURCES,
                               f"Set {where} to one of them: benchmarks = the public files, local = this project's "
                               f"data/ folder only, all = both")
    return value


def data_source() -> str:
    """``benchmarks``, ``local`` or ``all`` (see the module docstring)."""
    if "data" in _overrides:
        return str(_overrides["data"])
    return _check_source(os.environ.get("MULTIPREDICT_DATA") or "benchmarks", "$MULTIPREDICT_DATA")


# resolved once: data_key() runs on every cached lookup (hundreds of thousands of times per table)
_REPOSITORY_DATA = Path(__file__).resolve().parents[1] / "data"


def local_data_dir() -> Path:
    if "local_data" in _overrides:
        return Path(_overrides["local_data"])
    if os.environ.get("MULTIPREDICT_LOCAL_DATA"):
        return Path(os.environ["MULTIPREDICT_LOCAL_DATA"]).expanduser()
    return _REPOSITORY_DATA


def data_key() -> tuple[str, str]:
    """What decides the data tables a process sees; caches of derived tables are keyed by it."""
    return data_source(), str(local_data_dir())


def cache_dir() -> Path:
    if "cache" in _overrides:
        return _overrides["cache"]
    if os.environ.get("MULTIPREDICT_CACHE"):
        return Path(os.environ["MULTIPREDICT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "multipredict"


def mirror_dir() -> Path | None:
    if "mirror" in _overrides:
        return _overrides["mirror"]
    value = os.environ.get("MULTIPREDICT_MIRROR")
    return Path(value).expanduser() if value else None


def cache_per_data_source(func=None, *, maxsize: int | None = None):
    """Cache ``func`` (positional, hashable arguments) once per data source: a table derived from
    the benchmarks is never served after `configure` / ``MULTIPREDICT_DATA`` switched to local data,
    or the other way round. Exceptions are not cached. ``@cache_per_data_source`` or
    ``@cache_per_data_source(maxsize=N)``."""
    def decorate(function):
        cached = functools.lru_cache(maxsize=maxsize)(lambda key, *args: function(*args))

        @functools.wraps(function)
        def wrapper(*args):
            return cached(data_key(), *args)

        wrapper.cache_clear = cached.cache_clear
        return wrapper

    return decorate if func is None else decorate(func)
