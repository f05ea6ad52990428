"""Check where a command will write before it does any work.

A long run that fails on its last step because ``--out`` names a folder, sits under a file, is
read-only, or is the very input file it read, wastes the run (or the user's data). These checks
run first and create nothing: writability is probed with an anonymous temporary file.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .errors import MultipredictError
from .messages import one_line

log = logging.getLogger("multipredict")

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def check_output_file(path: str | os.PathLike, *, flag: str = "--out", suffixes: Iterable[str] | None = None,
                      inputs: Mapping[str, str | os.PathLike | None] | None = None) -> Path:
    """Validate a file the command will (re)write: not a folder, its folder creatable and writable,
    a known suffix, and never one of ``inputs`` (``{flag: path}`` of the files the command reads)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise MultipredictError(f"{flag} {str(path)!r} is a folder; give a file name inside it, "
                                f"e.g. {flag} {path / ('out' + (tuple(suffixes or ()) or ('.csv',))[0])}")
    if suffixes is not None and path.suffix.lower() not in tuple(suffixes):
        raise MultipredictError(f"{flag} {str(path)!r} has the suffix {path.suffix or '(none)'!r}; expected one of "
                                f"{', '.join(suffixes)} (e.g. {path.with_suffix(tuple(suffixes)[0]).name})")
    for input_flag, source in (inputs or {}).items():
        if source is not None and same_file(path, source):
            raise MultipredictError(f"{flag} {str(path)!r} is the input file {input_flag} {str(source)!r}; "
                                    f"writing would overwrite it. Give {flag} another file name")
    _check_folder(path.parent, flag, path)
    return path


def check_output_dir(path: str | os.PathLike, *, flag: str = "--out") -> Path:
    """Validate a folder the command will create or fill: not a file, and writable."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise MultipredictError(f"{flag} {str(path)!r} is a file, but a folder is needed here; give a folder "
                                f"name (it is created if missing)")
    _check_folder(path, flag, path)
    return path


def check_input_file(path: str | os.PathLike, *, flag: str, expected: str) -> Path:
    """An existing, readable file (not a folder); ``expected`` says what it should hold."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise MultipredictError(f"{flag} {str(path)!r} is a folder, not a file; give {expected} (a file inside it?)")
    if not path.exists():
        raise MultipredictError(f"{flag} {path} does not exist; give {expected}")
    if not os.access(path, os.R_OK):
        raise MultipredictError(f"{flag} {str(path)!r} cannot be read (permission denied); fix its permissions")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (links and relative paths resolved; hard links too)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_folder(folder: Path, flag: str, path: Path) -> None:
    existing = folder
    while not existing.exists():  # the folders that do not exist yet are created by the writer
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise MultipredictError(f"{flag} {str(path)!r}: {str(existing)!r} is a file, not a folder; "
                                f"give a path whose folders are folders")
    if not writable(existing):
        raise MultipredictError(f"{flag} {str(path)!r}: the folder {str(existing)!r} is not writable "
                                f"(read-only or permission denied); choose a location you can write to")


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (probed: permission bits say nothing for root or on a
    read-only mount)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):  # O_TMPFILE on Linux: no name ever appears
            return True
    except OSError:
        return False


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` to a temporary name beside ``path``, then moved into place: a crash never
    leaves half a file at ``path`` (and never removes what was there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_or_set_aside(path: Path, read, what: str = "results store") -> object:
    """``read()`` of a stored file; None when it is missing, or unreadable: then it is moved aside as
    ``<name>.unreadable-<time>`` (kept, for a look) with one warning naming it, so that its content
    is computed again. ``what`` names the store in the warning."""
    if not path.exists():
        return None
    try:
        return read()
    except Exception as error:  # pyarrow / yaml / pydantic / torch each raise their own types for a damaged file
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")
        try:
            os.replace(path, aside)
        except FileNotFoundError:  # another process set it aside first
            return None
        except OSError:  # a read-only folder (e.g. the shipped models): leave it, compute again
            log.warning("%s: cannot read %s (%s); computing it again", what, path,
                        one_line(f"{type(error).__name__}: {error}")[:300])
            return None
        log.warning("%s: cannot read %s (%s); moved it aside to %s, its content is computed again", what, path,
                    one_line(f"{type(error).__name__}: {error}")[:300], aside.name)
        return None
