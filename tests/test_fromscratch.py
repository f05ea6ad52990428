"""Figs 6, 16, 17: latency predictors from scratch against total hardware measurements."""

from __future__ import annotations

import pandas as pd

from multipredict.experiments import fromscratch, methods
from multipredict.experiments.reproduce import reproduce_with_trials, table_specs


def test_the_counting_rule_charges_pretraining_and_reference_devices():
    assert fromscratch.total_measurements("Scratch ZCP", 20, "nb201", 9, 0) == 20
    assert fromscratch.total_measurements("BRP-NAS", 900, "nb201", 9, 0) == 900
    assert fromscratch.total_measurements("Scratch HWL", 10, "nb201", 9, 9) == 100  # 10 targets + 9 x 10 references
    assert fromscratch.total_measurements("Scratch HWLVec", 5, "nb201", 17, 17) == 90
    assert fromscratch.total_measurements("HELP", 20, "nb201", 9, 0) == 9 * 900 + 20
    assert fromscratch.total_measurements("TL Vec ET", 10, "fbnet", 9, 0) == 9 * 4000 + 10
    assert fromscratch.total_measurements("TL Vec ET", 10, "nb201", 9, 0, source_samples=50) == 460
    assert fromscratch.total_measurements("FLOPs", 0, "nb201", 9, 0) == 0


def test_every_figure_has_the_five_scratch_encodings_and_the_few_shot_methods():
    for figure, space in (("fig6", "nb201"), ("fig16", "nb201"), ("fig17", "fbnet")):
        (part, spec), = table_specs(figure, repeats=2)
        assert spec.space == space and {"HELP", "TL Vec ET", "BRP-NAS"} <= set(spec.methods)
        scratch = [m for m in spec.methods if m.startswith("Scratch ")]
        assert len(scratch) == 5 and {methods.get(m).encoding for m in scratch} == {"vec", "zcp", "zcpvec", "hwl",
                                                                                   "hwlvec"}
        assert spec.method_samples["Scratch ZCP"] == (5, 10, 20, 40, 80, 160)


def test_claim_finds_the_first_budget_that_reaches_the_reference():
    curve = pd.DataFrame({
        "space": "nb201", "method": ["HELP", "Scratch ZCP", "Scratch ZCP", "Scratch ZCP", "Scratch Vec"],
        "samples": [20, 10, 20, 40, 160], "total_measurements": [8120, 10, 20, 40, 160],
        "spearman_mean": [0.90, 0.80, 0.91, 0.95, 0.85]})
    claim = fromscratch.claim(curve).set_index("method")
    assert claim.loc["Scratch ZCP", "reaches_at_total"] == 20 and claim.loc["Scratch ZCP", "saving"] == 406.0
    assert pd.isna(claim.loc["Scratch Vec", "reaches_at_total"]) and claim.loc["Scratch Vec", "best_spearman"] == 0.85
    text = fromscratch.claim_text("fig6", fromscratch.claim(curve))
    assert "reaches HELP's 0.900 at 20" in text and "Scratch Vec: does not reach" in text
    # with TL Vec ET beside HELP, each method is measured against both
    tl = pd.DataFrame({"space": "nb201", "method": ["TL Vec ET"], "samples": [10], "total_measurements": [8110],
                       "spearman_mean": [0.93]})
    both = fromscratch.claim(pd.concat([curve, tl], ignore_index=True)).set_index(["reference", "method"])
    assert both.loc[("HELP", "Scratch ZCP"), "reaches_at_total"] == 20
    assert both.loc[("TL Vec ET", "Scratch ZCP"), "reaches_at_total"] == 40
    assert both.loc[("TL Vec ET", "Scratch ZCP"), "saving"] == round(8110 / 40, 1)
    assert pd.isna(both.loc[("TL Vec ET", "Scratch Vec"), "reaches_at_total"])


def test_a_quick_fig6_run_writes_the_curve_with_totals(tmp_path):
    summary, trials = reproduce_with_trials("fig6", quick=True, out_dir=tmp_path, methods=["Scratch HWL", "Scratch ZCP"],
                                            samples=[5])
    curve = pd.read_csv(tmp_path / "fig6_curve.csv").set_index("method")
    assert curve.loc["Scratch HWL", "total_measurements"] == 5 * 10  # 9 reference (training) devices
    assert curve.loc["Scratch ZCP", "total_measurements"] == 5
    assert curve.loc["Scratch HWL", "devices"] == 6 and -1 <= curve.loc["Scratch HWL", "spearman_mean"] <= 1
    assert trials["hwl_devices"].dropna().str.count(",").eq(8).all()
    assert "paper: ZCP and HWL" in (tmp_path / "fig6.txt").read_text()
    assert (tmp_path / "fig6.html").exists()
