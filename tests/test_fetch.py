"""The fetch layer: checksums refused before parsing, atomic and resumable downloads, mirror copies."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from multipredict import config
from multipredict.data import fetch, formats, sources
from multipredict.errors import DataError

SMALL = sources.source_file("HELP", "data/nasbench201/hardware_embedding_index.pt")
MEDIUM = sources.source_file("HELP", "data/nasbench201/latency/pixel2.pt")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTIPREDICT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_mirror(tmp_path: Path, mirror: Path, file: sources.SourceFile, corrupt: bool) -> Path:
    root = tmp_path / "mirror"
    target = root / file.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray((mirror / file.relpath).read_bytes())
    if corrupt:
        data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return root


def test_pinned_list_covers_the_mirror(mirror):
    rows = (mirror / "SOURCES.tsv").read_text().splitlines()[1:]
    assert len(rows) == len(sources.SOURCE_FILES)
    pinned = {(f.owner, f.repo, f.commit, f.path, f.sha256) for f in sources.SOURCE_FILES}
    for row in rows:
        owner, repo, commit, path, _size, sha, _licence = row.split("\t")
        assert (owner, repo, commit, path, sha) in pinned
    assert SMALL.url == ("https://raw.githubusercontent.com/HayeonLee/HELP/45f70eb92d0d735970a33b608d1544ad3c52f285/"
                         "data/nasbench201/hardware_embedding_index.pt")


def test_mirror_copy_is_verified_and_parsed(fresh_cache, mirror):
    assert not fetch.is_present(SMALL)
    assert formats.load_torch(SMALL) == [11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462]
    assert fetch.is_present(SMALL)
    assert (fresh_cache / SMALL.relpath).is_file()


def test_checksum_mismatch_in_mirror_is_refused_before_parsing(tmp_path, fresh_cache, mirror, monkeypatch):
    monkeypatch.setenv("MULTIPREDICT_MIRROR", str(_fake_mirror(tmp_path, mirror, MEDIUM, corrupt=True)))
    import torch

    def never(*args, **kwargs):
        raise AssertionError("a file with a wrong checksum reached the parser")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(DataError, match="checksum mismatch.*pixel2.pt.*multipredict data fetch help-nb201"):
        formats.load_torch(MEDIUM)
    assert not (fresh_cache / MEDIUM.relpath).exists()
    assert not list((fresh_cache).rglob("*.part"))


def test_corrupt_cached_file_is_refused(fresh_cache, mirror):
    path = fresh_cache / MEDIUM.relpath
    path.parent.mkdir(parents=True)
    data = bytearray((mirror / MEDIUM.relpath).read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch.ensure(MEDIUM)


def test_missing_mirror_file_names_file_source_and_fix(tmp_path, fresh_cache, monkeypatch):
    monkeypatch.setenv("MULTIPREDICT_MIRROR", str(tmp_path / "empty"))
    with pytest.raises(DataError) as info:
        fetch.ensure(MEDIUM)
    message = str(info.value)
    assert "pixel2.pt" in message and MEDIUM.url in message and "multipredict data fetch help-nb201" in message


def test_interrupted_mirror_copy_leaves_nothing_present(fresh_cache, mirror, monkeypatch):
    def half_then_die(file, source, part):
        part.write_bytes(source.read_bytes()[: file.bytes // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "_copy_from_mirror", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        fetch.ensure(MEDIUM)
    assert not fetch.is_present(MEDIUM)
    assert not (fresh_cache / MEDIUM.relpath).exists()
    monkeypatch.undo()
    monkeypatch.setenv("MULTIPREDICT_CACHE", str(fresh_cache))
    assert fetch.ensure(MEDIUM).is_file()  # the rerun completes


class _RangeHandler(SimpleHTTPRequestHandler):
    """Serves the mirror like raw.githubusercontent.com, honouring ``Range: bytes=N-`` and
    optionally dropping the connection halfway through a full download."""

    cut_after: int | None = None
    ranges_seen: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        requested = self.headers.get("Range")
        start = 0
        if requested:
            type(self).ranges_seen.append(requested)
            start = int(requested.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.cut_after is not None and not requested:
            self.wfile.write(body[: self.cut_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def local_upstream(mirror, monkeypatch):
    handler = type("Handler", (_RangeHandler,), {"ranges_seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(mirror)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("MULTIPREDICT_MIRROR", raising=False)
    monkeypatch.setattr(sources, "RAW_URL", f"http://127.0.0.1:{server.server_port}/" + "{owner}/{repo}/{commit}/{path}")
    yield handler
    server.shutdown()
    server.server_close()


def test_download_interrupted_then_resumed_with_range(fresh_cache, local_upstream):
    assert config.mirror_dir() is None
    local_upstream.cut_after = MEDIUM.bytes // 3
    with pytest.raises(Exception):
        fetch.ensure(MEDIUM, progress=False)
    final = fresh_cache / MEDIUM.relpath
    part = final.with_name(final.name + ".part")
    assert not final.exists() and not fetch.is_present(MEDIUM)
    assert 0 < part.stat().st_size < MEDIUM.bytes
    local_upstream.cut_after = None
    assert fetch.ensure(MEDIUM, progress=False) == final
    assert local_upstream.ranges_seen and local_upstream.ranges_seen[-1].startswith("bytes=")
    assert fetch.sha256_of(final) == MEDIUM.sha256 and not part.exists()
