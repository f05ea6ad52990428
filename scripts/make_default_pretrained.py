"""Generate the default pretrained transfer predictors shipped in ``data/pretrained/``.

One per latency space: the few-shot transfer predictor with its default settings (Vec encoding,
``table`` hardware embedding, the paper's 250 source epochs, seed 0), pretrained on every HELP
device of the space (HELP's latency tables are MIT-licensed, so derived weights may be
redistributed; no other source is used). ``multipredict onboard`` and the dashboard's onboarding
panel load it when their pretraining's content key matches, so a fresh clone onboards a device
without pretraining. Each ``<key>.pt`` has a ``<key>.json`` beside it naming the upstream files
(sha256, licence), the settings, the code revision and the training time.

    python scripts/make_default_pretrained.py [--space nb201 fbnet] [--out data/pretrained]

A pretraining already in the user cache (``<cache>/pretrained``) with the same key is reused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make(space: str, out: Path) -> Path:
    from multipredict.data import help, sources
    from multipredict.methods.transfer import BenchmarkTransfer

    devices = help.devices(space)
    bar = tqdm(total=100, desc=f"{space} pretraining", unit="%")

    def progress(stage: str, fraction: float) -> None:
        bar.n = round(100 * fraction)
        bar.refresh()

    started = time.perf_counter()
    model = BenchmarkTransfer(space, devices, seed=0, progress=progress).fit()
    bar.close()
    files = sources.files_in(f"help-{space}")
    licences = sorted({f.licence for f in files})
    if licences != ["MIT"]:
        sys.exit(f"refusing to ship a model derived from {licences}: only MIT-licensed sources may be redistributed")
    out.mkdir(parents=True, exist_ok=True)
    key = model.pretraining_key_
    cached = Path(model.pretrain_dir) / f"{key}.pt"
    if not cached.is_file():
        sys.exit(f"the pretraining was not saved at {cached}; check that the cache folder is writable")
    shutil.copyfile(cached, out / f"{key}.pt")
    meta = json.loads((Path(model.pretrain_dir) / f"{key}.json").read_text())
    meta.update({
        "space": space, "source_devices": devices, "settings": model.options.model_dump(),
        "encoding": model.encoding, "seed": 0, "generated_by": "scripts/make_default_pretrained.py",
        "code_revision": git_revision(), "torch": torch.__version__,
        "sources": [{"file": f.name, "url": f.url, "sha256": f.sha256, "licence": f.licence} for f in files],
        "pretrained_from": model.pretrained_from_, "wall_seconds_this_run": round(time.perf_counter() - started, 1),
    })
    (out / f"{key}.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n")
    print(f"{space}: {out / (key + '.pt')} ({(out / (key + '.pt')).stat().st_size / 1e6:.1f} MB), trained in "
          f"{meta.get('seconds', 0):.0f} s")
    return out / f"{key}.pt"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", nargs="+", default=["nb201", "fbnet"], choices=["nb201", "fbnet"])
    parser.add_argument("--out", default=str(ROOT / "data" / "pretrained"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for space in args.space:
        make(space, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
