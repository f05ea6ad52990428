"""Search under a latency budget on a device (issue 19): the latency side, the constrained search,
the Pareto front, the command and its bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from multipredict import cli, latencybudget, search, searchjob
from multipredict.errors import MultipredictError
from multipredict.methods.protocol import device_latency
from multipredict.predictors.tasktransfer import AccuracyOptions
from multipredict.spaces import nb201

FAST = AccuracyOptions(epochs=20)


def _measured(device: str, k: int = 20, seed: int = 0) -> pd.DataFrame:
    latency = device_latency("nb201", device)
    ids = np.random.default_rng(seed).choice(15625, size=k, replace=False)
    return pd.DataFrame({"arch_id": ids, "latency_ms": latency[ids]})


def test_conformal_factor_is_the_finite_sample_rank_of_the_cross_validated_ratios():
    residuals = np.log(np.linspace(0.9, 1.3, 20))
    estimate = latencybudget.LatencyEstimate("d", "onboard", np.ones(15625), pd.Series([2.0], index=[7]), residuals)
    assert estimate.factor(0.95) == pytest.approx(1.3)  # ceil(21 * .95) = 20: the largest of 20
    assert estimate.factor(0.5) == pytest.approx(np.exp(np.sort(residuals)[10]))  # ceil(21 * .5) = 11th
    assert estimate.factor(None) == 1.0
    bound = estimate.bounded_ms(0.95)
    assert bound[7] == 2.0 and bound[0] == pytest.approx(1.3)  # a measured arch counts with its measurement
    assert estimate.feasible(1.2).sum() == 0 and estimate.feasible(1.3).sum() == 15624
    with pytest.raises(MultipredictError, match="level=1.5"):
        estimate.factor(1.5)


def test_flops_baseline_fits_a_power_law_and_keeps_leave_one_out_residuals():
    frame = _measured("eyeriss")
    estimate = latencybudget.from_flops(frame, device="eyeriss")
    assert estimate.source == "flops" and estimate.n_measurements == 20 and len(estimate.log_residuals) == 20
    truth = device_latency("nb201", "eyeriss")
    from scipy import stats

    rho = stats.spearmanr(estimate.predicted_ms, truth[:15625]).statistic
    assert 0.3 < rho < 0.999  # FLOPs rank eyeriss latency, imperfectly
    assert estimate.factor(0.95) > 1.0


def test_budget_errors_name_the_fastest_arch_and_the_range():
    table = latencybudget.from_table("nb201", "eyeriss")
    fastest = int(np.argmin(table.predicted_ms))
    with pytest.raises(MultipredictError, match=rf"below every arch on 'eyeriss'.*id {fastest}"):
        table.check_budget(0.1)
    slim = float(np.sort(table.predicted_ms)[20])
    with pytest.raises(MultipredictError, match=r"lower --budget to at most \d+"):
        table.check_budget(slim, at_least=100)
    with pytest.raises(MultipredictError, match="positive number"):
        table.check_budget(-3)


def test_pareto_front_keeps_exactly_the_non_dominated_archs():
    rng = np.random.default_rng(1)
    accuracy, latency = rng.random(300), rng.random(300)
    front = set(latencybudget.pareto_front(accuracy, latency).tolist())
    dominated = {i for i in range(300) if any(accuracy[j] >= accuracy[i] and latency[j] <= latency[i]
                                              and (accuracy[j], latency[j]) != (accuracy[i], latency[i])
                                              for j in range(300))}
    assert front == set(range(300)) - dominated


@pytest.mark.parametrize("strategy", search.STRATEGIES)
def test_every_strategy_trains_only_allowed_archs(strategy):
    table = latencybudget.from_table("nb201", "titan_rtx_256")
    allowed = table.feasible(float(np.percentile(table.predicted_ms, 10)))
    frame = search.search("cifar10", strategy, encoding="zcp", budget=25, seed=2, options=FAST, allowed=allowed)
    assert allowed[frame["arch_id"]].all() and frame["arch_id"].is_unique and len(frame) == 25
    best_allowed = float(np.max(search.space_table("cifar10").test[allowed]))
    assert np.allclose(frame["regret"], best_allowed - frame["returned_test"])


def test_a_resumed_search_gives_the_uninterrupted_result(tmp_path):
    state = tmp_path / "state.json"
    seen = []
    whole = searchjob.run_search("cifar100", budget=30, seed=3, options=FAST, on_batch=seen.append)
    partial = seen[0]  # the archs after the first batch (20): as if stopped there
    state.write_text(json.dumps({"trained": partial}))
    resumed = searchjob.run_search("cifar100", budget=30, seed=3, options=FAST, state_path=state)
    pd.testing.assert_frame_equal(whole.trajectory, resumed.trajectory)
    state.write_text(json.dumps({"trained": list(range(100, 120))}))
    with pytest.raises(MultipredictError, match="does not belong to this search"):
        searchjob.run_search("cifar100", budget=30, seed=3, options=FAST, state_path=state)


def test_an_onboarded_device_gives_a_front_a_shortlist_and_calibrated_predictions():
    latency = searchjob.latency_for(measurements=_measured("eyeriss", seed=5), name="mine")
    assert latency.source == "onboard" and latency.n_measurements == 20
    max_ms = float(np.percentile(latency.predicted_ms, 50))
    result = searchjob.run_search("cifar10", budget=20, seed=0, latency=latency, max_ms=max_ms, options=FAST)
    assert result.allowed[result.trajectory["arch_id"]].all()
    truth = device_latency("nb201", "eyeriss")[:15625]
    assert np.median(latency.predicted_ms / truth) == pytest.approx(1.0, abs=0.1)  # ms, not a rank score
    front = result.front()
    assert (np.diff(front["latency_ms"]) >= 0).all() and (np.diff(front["predicted_val"]) > 0).all()
    # accuracy points, back from the predictor's 0..1 scale, and never past 100 (here the rescaled
    # prediction of the best archs went to 112 before it was bounded)
    assert 40 < front["predicted_val"].max() <= 100 and (result.predicted_accuracy >= 0).all()
    shortlist = result.shortlist()
    assert len(shortlist) == 20 and (np.diff(shortlist["val"]) <= 0).all()
    arch, spent = latencybudget.verify(shortlist["arch_id"], truth, max_ms)
    assert arch is None or truth[arch] <= max_ms and 1 <= spent <= 20


def test_search_command_under_a_budget_writes_front_shortlist_and_chosen(tmp_path, capsys):
    out = tmp_path / "s"
    truth = device_latency("nb201", "pixel2")[:15625]
    max_ms = float(np.percentile(truth, 50))
    assert cli.main(["search", "--device", "pixel2", "--max-latency-ms", str(max_ms), "--budget", "20",
                     "--strategy", "evolution", "--quiet", "--out", str(out)]) == 0
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["device"] == "pixel2" and truth[chosen["arch_id"]] <= max_ms and chosen["chosen_latency_certain"]
    assert nb201.arch_string(chosen["arch_id"]) == chosen["arch"]
    front = pd.read_csv(out / "pareto.csv")
    assert front["trained"].dtype == bool and len(front) > 2
    assert (out / "chosen.onnx").stat().st_size > 1000 and (out / "shortlist.csv").exists()
    assert "counted under" in capsys.readouterr().out


def test_search_without_a_margin_counts_more_archs_and_says_to_walk_the_shortlist(tmp_path, capsys, monkeypatch):
    """Without the margin more archs count as feasible and the summary says to walk the shortlist;
    the second search reads back the onboarding of the same measurements the first one kept."""
    from multipredict import onboard

    onboardings = []
    real = onboard._onboard
    monkeypatch.setattr(onboard, "_onboard", lambda *a, **k: onboardings.append(1) or real(*a, **k))
    mine = tmp_path / "mine.csv"
    _measured("eyeriss", seed=2).rename(columns={"arch_id": "arch"}).to_csv(mine, index=False)
    truth = device_latency("nb201", "eyeriss")[:15625]
    max_ms = str(float(np.percentile(truth, 40)))
    counted = {}
    for flags in ([], ["--no-margin"]):
        out = tmp_path / ("plain" if flags else "margin")
        assert cli.main(["search", "--measurements", str(mine), "--max-latency-ms", max_ms, "--budget", "10",
                         "--strategy", "random", "--quiet", "--out", str(out), *flags]) == 0
        chosen = json.loads((out / "chosen.json").read_text())
        counted[bool(flags)] = chosen["archs_counted_feasible"]
        assert (chosen["conformal_level"] is None) == bool(flags)
        assert (chosen["conformal_factor"] == 1.0) == bool(flags)
    assert counted[True] > counted[False] and len(onboardings) == 1
    assert "shortlist.csv in order" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--device", "eyeriss", "--max-latency-ms", "0.5"], "below every arch on 'eyeriss'"),
    (["--device", "no_such", "--max-latency-ms", "5"], "'no_such'"),
    (["--max-latency-ms", "5"], "needs a device"),
    (["--device", "eyeriss", "--level", "1.2"], "--level 1.2"),
    (["--device", "eyeriss", "--level", "0.9", "--no-margin"], "--level 0.9 and --no-margin"),
    (["--budget", "20000"], "budget=20000 must lie in"),
])
def test_search_bad_input_is_one_line_naming_the_value(tmp_path, capsys, argv, message):
    out = tmp_path / "o"
    assert cli.main(["search", "--strategy", "random", "--quiet", "--out", str(out), *argv]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (out / "chosen.json").exists()


def test_search_with_too_few_measurements_says_how_many_are_needed(tmp_path, capsys):
    few = tmp_path / "few.csv"
    _measured("eyeriss", k=3).rename(columns={"arch_id": "arch"}).to_csv(few, index=False)
    assert cli.main(["search", "--measurements", str(few), "--max-latency-ms", "5", "--quiet",
                     "--out", str(tmp_path / "o")]) != 0
    assert "3 measurements; onboarding needs at least 5" in capsys.readouterr().err


def test_budget_quick_run_reports_regret_and_violations_per_arm(tmp_path):
    from multipredict.experiments import search as figure

    rows = figure.reproduce_budget(out_dir=tmp_path, repeats=1, quick=True, progress=False,
                                   arms=["oracle", "flops-nomargin"], percentiles=(50,))
    overview = pd.read_csv(tmp_path / "budget_overview.csv")
    assert set(overview["arm"]) == {"oracle", "flops-nomargin"}
    oracle = rows[rows["arm"].eq("oracle") & rows["status"].eq("ok")]
    assert not oracle["violated"].any()  # the true table never violates
    assert (oracle["regret"] >= -1e-9).all()
    assert "goal:" in (tmp_path / "budget.txt").read_text()
