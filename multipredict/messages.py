"""Errors as the one line a user reads: what was wrong, the value, what is valid, how to fix it.

Every front end (the command line, the dashboard, the notebooks) shows an *expected* failure, one
caused by the input or the environment, as its message on one line, and calls anything else an
internal error (a bug, shown with its traceback on request)::

    message = user_message(error)    # None: not the user's fault, an internal error
"""

from __future__ import annotations

import errno
import os

from .errors import MultipredictError

_OS_HINTS = {
    errno.EACCES: "choose a location you can write to, or fix its permissions",
    errno.EPERM: "choose a location you can write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "the disk is full; free some space or choose another location",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
}


def one_line(text: str) -> str:
    """Join a multi-line message into one line (a list of bad lines stays readable)."""
    parts = [line.strip() for line in str(text).splitlines() if line.strip()]
    joined = ""
    for part in parts:
        joined += part if not joined else (" " if joined.endswith(":") else "; ") + part
    return joined


def validation_message(error) -> str:
    """A pydantic ValidationError as one plain line: ``field=value is not valid (reason)``."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()))
        reason = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        value = f"={item['input']!r}" if "input" in item and not isinstance(item["input"], dict) else ""
        parts.append(f"{where}{value} is not valid ({reason})" if where else reason)
    return "; ".join(dict.fromkeys(parts)) or str(error)


def os_message(error: OSError) -> str:
    """An operating-system error on a named file: the reason, the file, and what to do."""
    where = f" {error.filename}" if error.filename else ""
    if error.filename2:
        where += f" -> {error.filename2}"
    reason = error.strerror or type(error).__name__
    hint = _OS_HINTS.get(error.errno or 0, "check the path and its permissions")
    return f"{reason.lower()}:{where}; {hint}"


def user_message(error: BaseException) -> str | None:
    """The one-line message of an expected failure, or None when ``error`` is an internal error.

    Expected: the project's own errors (`MultipredictError`: bad names, values, files), pydantic's
    validation errors, and operating-system errors on a named file (permissions, disk full). A bare
    ``KeyError`` or ``ValueError`` from deep inside is a bug, never a message for the user."""
    if isinstance(error, MultipredictError):
        return one_line(str(error))
    if type(error).__name__ == "ValidationError" and callable(getattr(error, "errors", None)):
        return one_line(validation_message(error))
    if isinstance(error, OSError) and (error.filename or error.errno in _OS_HINTS):
        return one_line(os_message(error))
    return None


def debug_requested(argv=()) -> bool:
    """``--debug`` among the arguments, or ``MULTIPREDICT_DEBUG`` set to anything but 0/empty."""
    return "--debug" in argv or os.environ.get("MULTIPREDICT_DEBUG", "").strip() not in ("", "0", "false", "no")
