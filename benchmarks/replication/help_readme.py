"""The Spearman numbers HELP's README publishes (its meta-test devices, 10 few-shot samples): what
`benchmarks/help_baseline.py` puts our HELP baseline (`multipredict.baselines.help`) beside."""

from __future__ import annotations

# Spearman rho per meta-test device (HELP's device splits: `multipredict.baselines.help.HELP_DEVICE_SPLITS`)
HELP_README_SPEARMAN: dict[str, dict[str, float]] = {
    "nb201": {"titan_rtx_256": 0.987, "gold_6226": 0.989, "fpga": 0.985, "pixel2": 0.802,
              "raspi4": 0.890, "eyeriss": 0.940},
    "fbnet": {"fpga": 0.892, "raspi4": 0.887, "eyeriss": 0.943},
}
# the README's mean over those devices
HELP_README_MEAN = {"nb201": 0.932, "fbnet": 0.910}

__all__ = ["HELP_README_SPEARMAN", "HELP_README_MEAN"]
