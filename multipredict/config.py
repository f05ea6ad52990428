"""Where the project keeps fetched files and where it may copy them from.

Settings come from environment variables, so that a notebook, the CLI and CI agree without passing
paths around:

- ``MULTIPREDICT_CACHE``: folder for fetched upstream files (default: the user cache folder,
  ``$XDG_CACHE_HOME/multipredict`` or ``~/.cache/multipredict``).
- ``MULTIPREDICT_MIRROR``: a local folder laid out like GitHub raw-file addresses
  (``<owner>/<repo>/<commit>/<path>``) that replaces the network.

`configure` overrides either for the running process (a config option for library users).
"""

from __future__ import annotations

import os
from pathlib import Path

_overrides: dict[str, Path | None] = {}


def configure(*, cache_dir: str | os.PathLike | None = None, mirror: str | os.PathLike | None = None) -> None:
    """Override the cache folder and/or the mirror for this process (``None`` keeps the current)."""
    if cache_dir is not None:
        _overrides["cache"] = Path(cache_dir).expanduser()
    if mirror is not None:
        _overrides["mirror"] = Path(mirror).expanduser()


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
