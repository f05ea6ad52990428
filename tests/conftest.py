"""Test set-up: read benchmark files from the local mirror (no network here) into a project-local
cache, unless the caller already pointed MULTIPREDICT_MIRROR / MULTIPREDICT_CACHE elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("MULTIPREDICT_MIRROR") or ROOT.parent / "shared" / "benchmarks")
os.environ.setdefault("MULTIPREDICT_MIRROR", str(MIRROR))
os.environ.setdefault("MULTIPREDICT_CACHE", str(ROOT / ".cache" / "multipredict"))
os.environ.setdefault("MULTIPREDICT_RESULTS", str(ROOT / ".cache" / "results"))


@pytest.fixture(autouse=True)
def _own_onboarding_store(tmp_path_factory, monkeypatch):
    """Each test keeps its onboarding results apart (`multipredict.onboardstore`), so that none reads
    back another's, in CI or after an earlier run here; pretrainings and data stay shared."""
    from multipredict import onboardstore

    folder = tmp_path_factory.mktemp("onboard-store")
    monkeypatch.setattr(onboardstore, "folder", lambda: folder)


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not (MIRROR / "SOURCES.tsv").exists():
        pytest.fail(f"benchmark mirror not found at {MIRROR}; set MULTIPREDICT_MIRROR to the folder holding SOURCES.tsv")
    return MIRROR


def pytest_configure(config):
    # On 2 cores small models train faster single-threaded, and parallel test workers don't fight
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
