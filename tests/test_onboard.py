"""Onboarding a new device from a user's CSV: validation with clear errors, and a small real run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from multipredict import onboard, onboardstore
from multipredict.cli import main
from multipredict.data import help
from multipredict.errors import MultipredictError


def _csv(tmp_path, rows, name="m.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["arch", "latency_ms"]).to_csv(path, index=False)
    return path


def test_ids_and_arch_strings_are_both_accepted(tmp_path):
    strings = help.nb201_arch_strings()
    path = _csv(tmp_path, [(strings[7], 1.5), (8, 2.0), ("9", 2.5), (strings[10], 3.0), (11, 3.5)])
    table = onboard.read_measurements("nb201", path)
    assert table["arch_id"].tolist() == [7, 8, 9, 10, 11]


@pytest.mark.parametrize("rows,message", [
    ([("|conv~0|", 1.0)] + [(i, 1.0) for i in range(5)], "(?s)unknown nb201 arch.*line 2.*'\\|conv~0\\|'"),
    ([(3, 1.0), (3, 2.0)] + [(i, 1.0) for i in range(10, 14)], "more than once \\(lines 2, 3\\)"),
    ([(1, -2.0)] + [(i, 1.0) for i in range(10, 14)], "positive number.*line 2: -2.0"),
    ([(1, None)] + [(i, 1.0) for i in range(10, 14)], "positive number.*line 2"),
    ([(1, 1.0), (2, 2.0)], "2 measurements; onboarding needs at least 5"),
    ([(99999, 1.0)] + [(i, 1.0) for i in range(10, 14)], "out of range"),
])
def test_bad_measurements_are_refused_with_the_line(tmp_path, rows, message):
    with pytest.raises(MultipredictError, match=message):
        onboard.read_measurements("nb201", _csv(tmp_path, rows))


def test_wrong_columns_and_missing_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,ms\n1,2\n")
    with pytest.raises(MultipredictError, match="expected columns arch,latency_ms; found \\['id', 'ms'\\]"):
        onboard.read_measurements("nb201", path)
    with pytest.raises(MultipredictError, match="does not exist"):
        onboard.read_measurements("nb201", tmp_path / "nope.csv")


SMALL = ["--sources", "pixel3,silver_4114,1080ti_1", "--source-epochs", "3", "--target-epochs", "20"]


@pytest.mark.slow
def test_onboarding_a_held_out_public_device(tmp_path, capsys, monkeypatch):
    """raspi4 is held out; 20 of its measurements give a useful predictor of the rest. The command
    keeps its result: the same onboarding again reads it back, identical; --recompute computes."""
    monkeypatch.setattr(onboardstore, "folder", lambda: tmp_path / "store")
    latency = help.latency("nb201", "raspi4")
    ids = np.random.default_rng(0).choice(len(latency), 20, replace=False)
    path = _csv(tmp_path, list(zip(ids.tolist(), latency[ids])))
    out = tmp_path / "pred.csv"
    summary = tmp_path / "summary.json"
    code = main(["onboard", "--space", "nb201", "--measurements", str(path), *SMALL, "--out", str(out),
                 "--summary", str(summary)])
    assert code == 0
    record = json.loads(summary.read_text())
    assert record["reused_from"] is None and len(list((tmp_path / "store").glob("*.parquet"))) == 1
    assert record["n_measurements"] == 20 and record["closest_source"] == record["start_sources"][0] == "pixel3"
    assert len(record["start_sources"]) == 2 and record["settings"]["eq1_starts"] == 2
    assert -1 <= record["spearman_low"] <= record["spearman_estimate"] <= record["spearman_high"] <= 1
    assert "10 more archs" in record["advice"] and record["level"] == 0.8
    printed = capsys.readouterr().out
    assert "cross-validated Spearman" in printed and "closest public device (Eq. 1) pixel3" in printed
    close = stats.spearmanr(help.latency("nb201", "pixel3")[ids], latency[ids]).statistic >= 0.85
    assert ("the arch body kept" if close else "fine-tuned every weight") in printed
    predictions = pd.read_csv(out)
    assert len(predictions) == 15625 and predictions["predicted_ms"].notna().all()
    unseen = predictions["measured_ms"].isna()
    rho = stats.spearmanr(predictions.loc[unseen, "predicted_ms"], latency[predictions.loc[unseen, "arch_id"]])
    assert rho.statistic > 0.7

    for again, reused in ((["--out", str(tmp_path / "again.csv")], True), (["--recompute"], False)):
        assert main(["onboard", "--space", "nb201", "--measurements", str(path), *SMALL, "--quiet",
                     "--summary", str(tmp_path / "again.json"), *again]) == 0
        repeat = json.loads((tmp_path / "again.json").read_text())
        assert (repeat.pop("reused_from") is not None) == reused
        ignore = {"reused_from"} | (set() if reused else {"pretrained_from"})  # recomputed: pretraining in memory
        assert {k: v for k, v in repeat.items() if k not in ignore} == \
            {k: v for k, v in record.items() if k not in ignore}
        assert ("stored result reused" in capsys.readouterr().out) == reused
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), predictions)


@pytest.mark.slow
def test_a_stored_onboarding_is_reused_only_for_the_same_measurements_and_settings(tmp_path, caplog):
    """Reused when measurements, name and settings are the same (the result equal to the computed
    one, field by field); computed anew when a latency, the seed or the name changes; what other
    code stored is removed; a damaged stored file is set aside with a warning and computed again."""
    latency = help.latency("nb201", "pixel2")
    ids = np.random.default_rng(1).choice(len(latency), 8, replace=False)
    table = pd.DataFrame({"arch": ids, "latency_ms": latency[ids]})
    store = tmp_path / "store"
    store.mkdir()
    (store / "0123456789ab-fromothercode.parquet").write_bytes(b"a result other code stored")
    options = dict(source_devices=["pixel3", "silver_4114", "1080ti_1"], source_epochs=3, target_epochs=5, folds=2,
                   store=store)
    first = onboard.onboard("nb201", table, **options)
    again = onboard.onboard("nb201", table, **options)
    assert first.reused_from is None and [str(p) for p in store.glob("*.parquet")] == [again.reused_from]
    pd.testing.assert_frame_equal(again.predictions, first.predictions)
    pd.testing.assert_frame_equal(again.cv_predictions, first.cv_predictions)
    assert {k: v for k, v in vars(again).items() if k not in ("predictions", "cv_predictions", "reused_from")} == \
        {k: v for k, v in vars(first).items() if k not in ("predictions", "cv_predictions", "reused_from")}
    changed = table.assign(latency_ms=table["latency_ms"].where(table.index != 3, table["latency_ms"] * 1.5))
    for variant in (onboard.onboard("nb201", changed, **options), onboard.onboard("nb201", table, **options, seed=1),
                    onboard.onboard("nb201", table, **options, device="other")):
        assert variant.reused_from is None
    assert len(list(store.glob("*.parquet"))) == 4
    damaged = next(iter(sorted(store.glob("*.parquet"))))
    damaged.write_bytes(b"not parquet")
    redone = [onboard.onboard("nb201", t, **o) for t, o in ((table, options), (changed, options),
                                                            (table, dict(options, seed=1)),
                                                            (table, dict(options, device="other")))]
    assert sum(r.reused_from is None for r in redone) == 1 and "moved it aside" in caplog.text
    assert len(list(store.glob("*.parquet"))) == 4 and len(list(store.glob("*.unreadable-*"))) == 1


def test_the_onboarded_device_averages_eq1s_two_first_starts_and_its_estimate_is_one_start_features():
    """`onboard`'s own predictor fine-tunes from the two source rows Eq. 1 ranks first (named in the
    summary) unless eq1_starts is set; the cross-validation and the out-of-bag estimate, the
    calibration's features, are the one-start fits either way, so they do not change."""
    sources = ["pixel3", "silver_4114", "1080ti_1"]
    latency = help.latency("nb201", "raspi4")
    ids = np.random.default_rng(2).choice(len(latency), 12, replace=False)
    table = pd.DataFrame({"arch": ids, "latency_ms": latency[ids]})
    options = dict(source_devices=sources, source_epochs=3, target_epochs=5, folds=2, predict_archs=np.arange(500))
    two, one = onboard.onboard("nb201", table, **options), onboard.onboard("nb201", table, **options, eq1_starts=1)
    ranked = sorted(sources, key=lambda d: stats.spearmanr(help.latency("nb201", d)[ids], latency[ids]).statistic,
                    reverse=True)
    assert two.start_sources == ranked[:2] and one.start_sources == ranked[:1] == [two.closest_source]
    assert (two.settings["eq1_starts"], one.settings["eq1_starts"]) == (2, 1)
    assert two.summary_record()["start_sources"] == ranked[:2]
    assert f"average fine-tunes started from {ranked[0]}, {ranked[1]}" in two.summary()
    assert "average fine-tunes" not in one.summary()
    pd.testing.assert_frame_equal(two.cv_predictions, one.cv_predictions)
    # the same estimate; with one start the shipped (two-start) calibration says it is a rough guide
    assert {k: v for k, v in two.quality.items() if k != "interval_from"} == \
        {k: v for k, v in one.quality.items() if k != "interval_from"}
    assert two.quality["interval_from"].endswith("; you gave 12, so the interval is a rough guide")
    assert one.quality["interval_from"].endswith("; you gave 12 and your predictor took 1 start(s), it was fitted "
                                                 "for 2, so the interval is a rough guide")
    assert not np.allclose(two.predictions["predicted_ms"], one.predictions["predicted_ms"])
    # three starts: all three sources, the folds still one start each; more starts than sources is refused
    three = onboard.onboard("nb201", table, **options, eq1_starts=3)
    assert three.start_sources == ranked and three.settings["eq1_starts"] == 3
    pd.testing.assert_frame_equal(three.cv_predictions, one.cv_predictions)
    with pytest.raises(MultipredictError, match="--starts 4 .* more starts than the 3 source devices"):
        onboard.onboard("nb201", table, **options, eq1_starts=4)


def test_onboard_starts_sets_how_many_source_rows_the_device_is_fine_tuned_from(tmp_path, monkeypatch):
    """`onboard --starts 1` gives the paper's one-start predictor, says so in the summary, and keys
    its stored result apart from the default's."""
    monkeypatch.setattr(onboardstore, "folder", lambda: tmp_path / "store")
    latency = help.latency("nb201", "raspi4")
    ids = np.random.default_rng(3).choice(len(latency), 12, replace=False)
    path = _csv(tmp_path, list(zip(ids.tolist(), latency[ids])))
    common = ["onboard", "--space", "nb201", "--measurements", str(path), "--sources", "pixel3,silver_4114,1080ti_1",
              "--source-epochs", "3", "--target-epochs", "5", "--folds", "2", "--quiet"]
    records = {}
    for starts in ("1", None):
        summary = tmp_path / f"s{starts}.json"
        assert main([*common, *(["--starts", starts] if starts else []), "--summary", str(summary)]) == 0
        records[starts] = json.loads(summary.read_text())
    one, default = records["1"], records[None]
    assert (one["settings"]["eq1_starts"], default["settings"]["eq1_starts"]) == (1, 2)
    assert one["start_sources"] == default["start_sources"][:1] and len(default["start_sources"]) == 2
    assert one["reused_from"] is None and default["reused_from"] is None
    assert "took 1 start(s), it was fitted for 2" in one["interval_from"]


def test_out_of_bag_concordance_and_the_tau_to_rho_relation():
    assert onboard.concordance([1, 2, 3, 4], [10, 20, 30, 40]) == (6.0, 6)
    assert onboard.concordance([4, 3, 2, 1], [10, 20, 30, 40]) == (0.0, 6)
    assert onboard.concordance([1, 1, 2], [1, 2, 3]) == (2.5, 3)  # a tied prediction counts half
    assert onboard.tau_to_spearman(1.0) == pytest.approx(1.0) and onboard.tau_to_spearman(0.0) == 0.0
    rng = np.random.default_rng(0)  # on a Gaussian pair the relation holds to sampling error
    x = rng.normal(size=20000)
    y = 0.8 * x + 0.6 * rng.normal(size=20000)
    assert onboard.tau_to_spearman(stats.kendalltau(x, y).statistic) == pytest.approx(
        stats.spearmanr(x, y).statistic, abs=0.01)


def test_quality_estimate_uses_the_calibration_and_says_when_there_is_none():
    calibration = {"features": ["oob", "eq1"], "coef": [0.5, 0.2, 0.3], "residual_low": -0.03,
                   "residual_high": 0.02, "level": 0.8, "devices": ["a", "b"], "samples": 20,
                   "gain_coef": [0.0, 0.1]}
    q = onboard.quality_estimate("fbnet", {"spearman": 0.8, "member_spearman": [0.7, 0.9]}, 0.9, 20, calibration)
    assert q["spearman_estimate"] == pytest.approx(0.5 + 0.16 + 0.27)
    assert q["spearman_low"] == pytest.approx(0.93 - 0.03) and q["spearman_high"] == pytest.approx(0.95)
    assert q["expected_gain_10"] == pytest.approx(0.1 * (1 - 0.93), abs=1e-4) and "little to gain" in q["advice"]
    assert "calibrated on 2 public" in q["interval_from"] and "rough guide" not in q["interval_from"]
    other = onboard.quality_estimate("fbnet", {"spearman": 0.8}, 0.9, 20, dict(calibration, starts=2), starts=1)
    assert other["spearman_estimate"] == q["spearman_estimate"]
    assert other["interval_from"].endswith("; your predictor took 1 start(s), it was fitted for 2, so the interval "
                                           "is a rough guide")
    near_perfect = onboard.quality_estimate("fbnet", {"spearman": 0.99}, 0.99, 20,
                                            dict(calibration, gain_coef=[-0.01, 0.1]))
    assert near_perfect["expected_gain_10"] == 0 and "expected to add +0.000 (little to gain)" in near_perfect["advice"]
    raw = onboard.quality_estimate("fbnet", {"spearman": 0.8, "member_spearman": [0.6, 0.7, 0.9, 0.95]}, 0.9, 20,
                                   calibration={})
    assert raw["spearman_estimate"] == 0.8 and "not calibrated" in raw["interval_from"]
    assert raw["spearman_low"] < 0.8 < raw["spearman_high"]


def test_the_shipped_calibrations_were_fitted_on_devices_held_out_from_pretraining():
    from multipredict import tasks

    for space in ("nb201", "fbnet"):
        calibration = onboard.load_calibration(space)
        if calibration is None:
            continue
        train = set(tasks.device_set(f"{space}-default").train)
        assert not train & set(calibration["devices"]) and len(calibration["devices"]) >= 10
        loo = calibration["leave_one_device_out"]
        assert loo["mae"] < 0.1 and 0 < loo["coverage"] <= 1
        assert calibration["starts"] == onboard.ONBOARD_STARTS  # scored the predictor onboard fits
