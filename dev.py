#!/usr/bin/env python3
"""Set up and run the project from a fresh clone, with or without conda.

    python3 dev.py run     create .venv/ from environment.yml if needed, then serve the dashboard
    python3 dev.py test    create .venv/ if needed, then run the whole test suite
    python3 dev.py setup   only create / update .venv/

environment.yml is the single list of what the project needs: conda users can create the same
environment from it; here (no conda) this script makes a venv with the running Python 3.11 and
pip-installs the file's `pip:` section. The venv is rebuilt when environment.yml or
pyproject.toml change (their hash is stored in .venv/.multipredict-env).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".multipredict-env"
PARSE_PIP_SECTION = (
    "import sys, yaml\n"
    "env = yaml.safe_load(open(sys.argv[1]))\n"
    "deps = [d for d in env['dependencies'] if isinstance(d, dict) and 'pip' in d]\n"
    "print('\\n'.join(p for d in deps for p in d['pip']))\n"
)


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> None:
    say(" ".join(map(str, cmd)))
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)


def env_hash() -> str:
    digest = hashlib.sha256()
    for name in ("environment.yml", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def setup() -> None:
    if STAMP.exists() and STAMP.read_text() == env_hash() and PY.exists():
        return
    if sys.version_info[:2] != (3, 11):
        python311 = shutil.which("python3.11")
        if python311 is None:
            sys.exit(f"environment.yml asks for Python 3.11; this is {sys.version.split()[0]} and no "
                     f"python3.11 is on PATH. Install Python 3.11 and rerun.")
        base = python311
    else:
        base = sys.executable
    if not PY.exists():
        run([base, "-m", "venv", str(VENV)])
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run(pip + ["pyyaml>=6"])
    packages = subprocess.run([str(PY), "-c", PARSE_PIP_SECTION, str(ROOT / "environment.yml")],
                              check=True, capture_output=True, text=True).stdout.split("\n")
    args: list[str] = []
    for spec in filter(None, packages):
        args += spec.split(maxsplit=1) if spec.startswith("-") else [spec]
    run(pip + args)
    STAMP.write_text(env_hash())


def ensure_browser() -> None:
    """The dashboard's browser test needs Debian's chromium; install it when we can (root + apt)."""
    if Path("/usr/bin/chromium").exists():
        return
    if subprocess.call(["bash", str(ROOT / "scripts" / "install_browser.sh")], cwd=ROOT) != 0:
        say("chromium could not be installed: the browser test will be skipped outside CI")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"setup", "run", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    setup()
    env = dict(os.environ)
    if command == "setup":
        return 0
    if command == "run":
        # the main job: the Voila dashboard on 127.0.0.1 (mpwidgets.serve --help lists options)
        return subprocess.call([str(PY), "-m", "mpwidgets.serve", *rest], cwd=ROOT, env=env)
    ensure_browser()
    return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
