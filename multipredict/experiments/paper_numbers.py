"""The published Spearman rho of the Multi-Predict paper, Tables 1-4, as data to put ours beside.

One row per cell: ``table, space, method, samples, device, value`` (+ ``source_samples`` for Table 4,
the number of pretraining samples per training device). ``device == "mean"`` is the paper's mean
over the table's test devices. Method names are this project's registry names (the paper's
"TL Sample (20)" of Table 3 is "TL Vec Sample" at 20 samples); FLOPs uses no samples (0).
Source: Akhauri & Abdelfattah, "Multi-Predict: Few Shot Predictors For Efficient Neural Architecture
Search", AutoML-Conf 2023, Tables 1-4, transcribed by hand.
"""

from __future__ import annotations

import pandas as pd

NB201_TEST = ("titan_rtx_256", "gold_6226", "pixel2", "raspi4", "eyeriss", "fpga")  # GPU, CPU, ..., ASIC, FPGA
FBNET_TEST = ("fpga", "raspi4", "eyeriss")

# method, samples, per-device values in the device order above, mean
_TABLE1 = [
    ("FLOPs", 0, (.95, .83, .77, .85, .44, .90), .79),
    ("BRP-NAS", 900, (.81, .80, .67, .85, .81, .80), .79),
    ("BRP-NAS", 3200, (.82, .81, .69, .85, .83, .83), .81),
    ("HELP", 20, (.98, .99, .80, .89, .94, .99), .93),
    ("TL Vec Sample", 20, (.87, .92, .94, .87, .82, .69), .85),
    ("TL Vec Index", 10, (.94, .93, .87, .77, .73, .90), .86),
    ("TL Vec ET", 10, (.99, .95, .88, .90, .90, .99), .94),
    ("TL ZCPVec ET", 10, (.97, .96, .86, .91, .95, .97), .94),
    ("TL HWLVec ET", 10, (.95, .97, .81, .88, .93, .95), .91),
]
_TABLE3 = [
    ("HELP", 20, (.89, .94, .89), .91),
    ("TL Vec Sample", 20, (.74, .79, .81), .78),
    ("TL Vec Index", 10, (.92, .86, .87), .88),
    ("TL Vec ET", 10, (.96, .95, .98), .96),
]
# Table 2: adversarial device sets, 20 samples, means only
_TABLE2 = [
    ("nb201", "HELP", .36), ("nb201", "TL Vec ET", .65), ("nb201", "TL ZCPVec ET", .78),
    ("nb201", "TL HWLVec ET", .73),
    ("fbnet", "HELP", .37), ("fbnet", "TL Vec ET", .39),
]
# Table 4: fewer pretraining samples; HELP at 20 and TL ET at 10 samples (its 4000 / 900 rows are
# the means of Tables 3 / 1)
_TABLE4 = [
    ("fbnet", 4000, .91, .96), ("fbnet", 1000, .85, .91),
    ("nb201", 900, .93, .94), ("nb201", 50, .91, .91),
]

TABLES = ("table1", "table2", "table3", "table4")
# latency predictors from scratch against total hardware measurements: NB201 (Fig 6), NB201's
# adversarial devices (Fig 16), FBNet (Fig 17)
FIGURES = ("fig6", "fig16", "fig17")
FIGURE_CLAIMS = {f: ("ZCP and HWL predictors trained from scratch reach HELP's Spearman in under 80 total hardware "
                     "measurements, a 100x saving") for f in FIGURES}
COLUMNS = ["table", "space", "source_samples", "method", "samples", "device", "value"]


def _rows():
    for table, space, devices, cells in (("table1", "nb201", NB201_TEST, _TABLE1),
                                         ("table3", "fbnet", FBNET_TEST, _TABLE3)):
        for method, samples, values, mean in cells:
            for device, value in zip(devices, values, strict=True):
                yield table, space, None, method, samples, device, value
            yield table, space, None, method, samples, "mean", mean
    for space, method, mean in _TABLE2:
        yield "table2", space, None, method, 20, "mean", mean
    for space, source_samples, help_mean, tl_mean in _TABLE4:
        yield "table4", space, source_samples, "HELP", 20, "mean", help_mean
        yield "table4", space, source_samples, "TL Vec ET", 10, "mean", tl_mean


def paper_numbers(table: str | None = None) -> pd.DataFrame:
    """The published cells (all tables, or one of ``TABLES``)."""
    frame = pd.DataFrame(list(_rows()), columns=COLUMNS)
    frame["source_samples"] = frame["source_samples"].astype("Int64")
    if table is not None:
        if table in FIGURES:  # the paper states these figures' results in words (`FIGURE_CLAIMS`)
            return frame.iloc[:0].reset_index(drop=True)
        if table not in TABLES:
            from ..errors import UnknownNameError

            raise UnknownNameError("table", table, TABLES + FIGURES)
        frame = frame[frame["table"] == table].reset_index(drop=True)
    return frame
