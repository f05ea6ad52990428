"""The pinned upstream files as objects: address, checksum, licence and source group."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ..errors import UnknownNameError
from ._pinned import PINNED

RAW_URL = "https://raw.githubusercontent.com/{owner}/{repo}/{commit}/{path}"


@dataclass(frozen=True)
class SourceFile:
    group: str
    owner: str
    repo: str
    commit: str
    path: str
    bytes: int
    sha256: str
    licence: str

    @property
    def relpath(self) -> str:
        """Where the file lies in a mirror or the cache: ``<owner>/<repo>/<commit>/<path>``."""
        return f"{self.owner}/{self.repo}/{self.commit}/{self.path}"

    @property
    def url(self) -> str:
        return RAW_URL.format(owner=self.owner, repo=self.repo, commit=self.commit, path=self.path)

    @property
    def name(self) -> str:
        """Short human name: ``repo:path``."""
        return f"{self.repo}:{self.path}"


SOURCE_FILES: tuple[SourceFile, ...] = tuple(SourceFile(*row) for row in PINNED)

GROUP_DESCRIPTIONS: dict[str, str] = {
    "help-nb201": "HELP NAS-Bench-201 latencies (27 devices), arch index, reference archs",
    "help-fbnet": "HELP FBNet latencies (27 devices), architecture list, reference archs",
    "eagle": "EAGLE / BRP-NAS (LatBench) NAS-Bench-201 latencies (14 devices, seconds)",
    "oneproxy": "OneProxy subsets of HW-NAS-Bench and EAGLE (1,999 NB201 archs)",
    "zc-fbnet": "13 zero-cost proxies for the 5,000 HELP FBNet archs",
    "nats": "NATS / NAS-Bench-201 test accuracies (CIFAR-10, CIFAR-100, ImageNet16-120)",
    "naslib-nb201": "NASLib / NAS-Bench-Suite-Zero NB201 proxies, zen and validation accuracies",
    "naslib-nb101": "NASLib NB101 proxies and validation accuracies",
    "naslib-nb301": "NASLib NB301 proxies and validation accuracies",
    "naslib-tnb101": "NASLib TransNAS-Bench-101 micro/macro proxies and validation accuracies",
    "naslib-9x": "NASLib proxies on NB201/NB301/TNB-micro for svhn, ninapro, scifar100",
}


def groups() -> list[str]:
    return list(GROUP_DESCRIPTIONS)


def files_in(group: str) -> list[SourceFile]:
    if group not in GROUP_DESCRIPTIONS:
        raise UnknownNameError("source", group, groups(), "List them with `multipredict data report`.")
    return [f for f in SOURCE_FILES if f.group == group]


@cache
def _by_repo_path() -> dict[tuple[str, str], SourceFile]:
    return {(f.repo, f.path): f for f in SOURCE_FILES}


def source_file(repo: str, path: str) -> SourceFile:
    """The pinned file ``path`` of repository ``repo`` (e.g. ``("HELP", "data/fbnet/arch.pt")``)."""
    try:
        return _by_repo_path()[(repo, path)]
    except KeyError:
        valid = sorted(p for r, p in _by_repo_path() if r == repo) or sorted({r for r, _ in _by_repo_path()})
        raise UnknownNameError(f"file of {repo}", path, valid) from None
