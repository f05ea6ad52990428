"""The one summary every front end writes (``multipredict.experiments.summarise``), from results
frames built by hand: no training."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from multipredict.experiments import compare_with_paper, format_comparison, summarise
from multipredict.experiments.summary import SUMMARY_COLUMNS

DEVICES = ["fpga", "raspi4", "eyeriss"]


def results(tl_error: str | None = None, seeds=(0, 1)) -> pd.DataFrame:
    """Table 3's HELP (fine) and TL Vec ET (failing with ``tl_error``) at two seeds."""
    rows = []
    for seed in seeds:
        for k, device in enumerate(DEVICES):
            rows.append({"method": "HELP", "space": "fbnet", "device": device, "samples": 20, "seed": seed,
                         "protocol": "help", "spearman": 0.8 + 0.05 * k + 0.01 * seed, "kendall": 0.6, "error": None})
            rows.append({"method": "TL Vec ET", "space": "fbnet", "device": device, "samples": 10, "seed": seed,
                         "protocol": "paper", "spearman": math.nan if tl_error else 0.9, "kendall": math.nan,
                         "error": tl_error})
    return pd.DataFrame(rows)


def cell(summary: pd.DataFrame, method: str, device: str) -> pd.Series:
    return summary[(summary["method"] == method) & (summary["device"] == device)].iloc[0]


def test_mean_and_std_over_repeats_per_device_and_a_mean_device():
    summary = summarise(results())
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["device"]) == DEVICES + ["mean"] + DEVICES + ["mean"]
    raspi4 = cell(summary, "HELP", "raspi4")
    assert raspi4["spearman_mean"] == pytest.approx(0.855) and raspi4["spearman_std"] == pytest.approx(0.01 / 2 ** .5)
    assert raspi4["n"] == 2 and raspi4["failed"] == 0 and raspi4["kendall_mean"] == pytest.approx(0.6)
    mean = cell(summary, "HELP", "mean")  # each repeat's mean over devices, then over repeats
    assert mean["spearman_mean"] == pytest.approx(0.855) and mean["spearman_std"] == pytest.approx(0.01 / 2 ** .5)
    one_repeat = summarise(results(seeds=(0,)))
    assert one_repeat["spearman_std"].isna().all() and (one_repeat["n"] == 1).all()


def test_one_method_failing_keeps_every_other_methods_cells():
    """`reproduce table3 --quick --option target_lr=abc`: TL fails, HELP ran. The summary used to drop
    HELP's mean (an outer join on keys with a missing level)."""
    trials = results(tl_error="ValueError: target_lr 'abc' is not a number")
    for summary in (summarise(trials), compare_with_paper(trials, "table3")):
        help_mean = cell(summary, "HELP", "mean")
        assert help_mean["spearman_mean"] == pytest.approx(0.855) and help_mean["n"] == 2
        tl_mean = cell(summary, "TL Vec ET", "mean")
        assert tl_mean["n"] == 0 and math.isnan(tl_mean["spearman_mean"])
        assert tl_mean["failed"] == 2 and tl_mean["errors"].startswith("2 failed: ValueError: target_lr")
        assert (summary.loc[summary["method"] == "TL Vec ET", "failed"] == 2).all()
    beside = compare_with_paper(trials, "table3")
    assert cell(beside, "HELP", "mean")["paper"] == 0.91
    text = format_comparison(beside)
    assert "HELP (20)" in text and "±0.01 [0.91]" in text and "ERR [0.96]" in text


def test_a_failed_device_leaves_the_repeats_other_devices_in():
    trials = results()
    failed = (trials["method"] == "HELP") & (trials["device"] == "eyeriss") & (trials["seed"] == 1)
    trials.loc[failed, ["spearman", "error"]] = [np.nan, "RuntimeError: out of memory"]
    summary = summarise(trials)
    assert cell(summary, "HELP", "eyeriss")[["n", "failed"]].tolist() == [1, 1]
    assert cell(summary, "HELP", "fpga")[["n", "failed"]].tolist() == [2, 0]
    assert cell(summary, "HELP", "mean")[["n", "failed"]].tolist() == [2, 1]


def test_empty_results_and_extra_keys():
    assert list(summarise(pd.DataFrame()).columns) == SUMMARY_COLUMNS
    trials = pd.concat([results().assign(bound=1.0), results(seeds=(5,)).assign(bound=0.7)], ignore_index=True)
    summary = summarise(trials, by=["bound"])
    assert list(summary.columns) == ["bound"] + SUMMARY_COLUMNS
    assert cell(summary[summary["bound"] == 0.7], "HELP", "mean")["n"] == 1


def test_the_dashboards_csv_download_is_the_engines_summary():
    figures = pytest.importorskip("mpwidgets.figures")
    trials = results(tl_error="ValueError: boom")
    pd.testing.assert_frame_equal(figures.summarise(trials), summarise(trials))
    table = figures.results_table(trials)  # the dashboard's table still shows per-device cells
    assert "mean" not in table.index.get_level_values("device")
