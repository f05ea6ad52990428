"""Fetch pinned upstream files into the cache, verified by sha256 before anything parses them.

A file counts as present only once it sits at its final path with the pinned checksum: downloads
go to ``<name>.part`` and are renamed into place atomically after verification, so an interrupted
fetch never leaves a half file that looks complete. A rerun resumes a ``.part`` file with an HTTP
range request. With a mirror configured the file is copied from the mirror instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .. import config
from ..errors import DataError
from ..outputs import writable
from .sources import SourceFile

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_path(file: SourceFile) -> Path:
    return config.cache_dir() / file.relpath


def fix_command(file: SourceFile) -> str:
    return f"multipredict data fetch {file.group}"


def _check(file: SourceFile, path: Path, origin: str, actual: str | None = None) -> None:
    actual = sha256_of(path) if actual is None else actual
    if actual != file.sha256:
        raise DataError(
            f"checksum mismatch for {file.name} ({origin}): sha256 {actual}, expected {file.sha256} "
            f"(pinned for {file.url}). The file is corrupt or not the pinned version; it was not "
            f"parsed. Delete it and run `{fix_command(file)}`."
        )


def _check_cache_writable(file: SourceFile, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        problem = None if writable(path.parent) else "not writable"
    except OSError as error:
        problem = (error.strerror or str(error)).lower()
    if problem:
        raise DataError(f"cannot store {file.name} in the cache {config.cache_dir()} ({problem}: it is read-only or "
                        f"not yours); set MULTIPREDICT_CACHE to a folder you can write to, e.g. "
                        f"MULTIPREDICT_CACHE=~/multipredict-cache, and rerun")


def is_present(file: SourceFile) -> bool:
    """True when the cached copy exists with the pinned size (checksum is checked on use)."""
    path = cached_path(file)
    return path.is_file() and path.stat().st_size == file.bytes


def _download(file: SourceFile, part: Path, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    if have > file.bytes:
        part.unlink()
        have = 0
    request = urllib.request.Request(file.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except OSError as exc:
        raise DataError(
            f"cannot download {file.name} from {file.url}: {exc}. Check the network, or point "
            f"MULTIPREDICT_MIRROR at a local mirror of the benchmark files, then run "
            f"`{fix_command(file)}`."
        ) from exc
    with response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        mode = "ab" if have else "wb"
        with open(part, mode) as out, tqdm(
            total=file.bytes, initial=have, unit="B", unit_scale=True, desc=Path(file.path).name,
            disable=not progress, leave=False,
        ) as bar:
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                bar.update(len(block))


def _copy_from_mirror(file: SourceFile, source: Path, part: Path) -> None:
    with open(source, "rb") as src, open(part, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


def _refuse_local(file: SourceFile) -> None:
    if config.data_source() == "local":
        # local means no download at all: reaching here is a bug in the caller, so say where it came from
        raise DataError(f"{file.name} is a public benchmark file, but MULTIPREDICT_DATA=local reads the project's "
                        "data/ folder only (no download). Use a device or encoding that data/ holds, or set "
                        "MULTIPREDICT_DATA=benchmarks (or all) to fetch it")


def ensure(file: SourceFile, *, progress: bool = True) -> Path:
    """Return the verified local path of ``file``, fetching it first if it is not cached. A cached
    file is hashed on every call; parsers use `read_verified`, which parses the bytes it hashed."""
    _refuse_local(file)
    path = cached_path(file)
    if path.is_file():
        _check(file, path, f"cached at {path}")
        return path
    return _fetch_missing(file, path, progress)


def read_verified(file: SourceFile, *, progress: bool = True) -> bytes:
    """The bytes of ``file``, checked against the pinned sha256 every time: a reader parses exactly
    the bytes that were hashed, so a file swapped on disk (even with its size and mtime kept) is
    refused instead of parsed."""
    _refuse_local(file)
    path = cached_path(file)
    if not path.is_file():
        _fetch_missing(file, path, progress)
    data = path.read_bytes()
    _check(file, path, f"cached at {path}", hashlib.sha256(data).hexdigest())
    return data


def _fetch_missing(file: SourceFile, path: Path, progress: bool) -> Path:
    _check_cache_writable(file, path)
    part = path.with_name(path.name + ".part")
    mirror = config.mirror_dir()
    if mirror is not None:
        source = mirror / file.relpath
        if not source.is_file():
            raise DataError(
                f"{file.name} is missing from the mirror: expected {source} "
                f"(MULTIPREDICT_MIRROR={mirror}). Fix the mirror path, or unset MULTIPREDICT_MIRROR "
                f"to download from {file.url}, then run `{fix_command(file)}`."
            )
        # a copy is not resumed: a private part file, so two processes filling one cache never collide
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        _copy_from_mirror(file, source, part)
        origin = f"copied from mirror {source}"
    else:
        _download(file, part, progress)
        origin = f"downloaded from {file.url}"
        got = part.stat().st_size
        if got < file.bytes:  # the connection dropped: keep the .part so that a rerun resumes it
            raise DataError(
                f"download of {file.name} from {file.url} stopped at {got} of {file.bytes} bytes; "
                f"rerun `{fix_command(file)}` to resume")
    try:
        _check(file, part, origin)
    except DataError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, path)
    return path


def fetch(files: list[SourceFile], *, progress: bool = True) -> list[Path]:
    """Fetch several files with one progress bar over files (a read-only cache is reported first)."""
    missing = [file for file in files if not cached_path(file).is_file()]
    if missing and config.data_source() != "local":
        _check_cache_writable(missing[0], cached_path(missing[0]))
    paths = []
    for file in tqdm(files, desc="fetch", unit="file", disable=not progress or len(files) < 2):
        paths.append(ensure(file, progress=progress))
    return paths
