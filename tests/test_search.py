"""Predictor-guided search on the whole NB201 space (paper Fig 10)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from multipredict import cli, search
from multipredict.errors import MultipredictError
from multipredict.predictors.tasktransfer import AccuracyOptions

FAST = AccuracyOptions(epochs=20)


def test_the_whole_space_table_has_every_cell():
    table = search.space_table("cifar100")
    assert len(table) == 15625 and np.isfinite(table.val).all() and np.isfinite(table.test).all()
    assert table.best_test == pytest.approx(np.max(table.test)) and "zen" in table.proxies.columns
    X = search.features("cifar100", "zcpvec")
    assert X.shape[0] == 15625 and X.shape[1] >= 30 + 2  # Vec, zen and its indicator (341 cells zen cannot score)
    with pytest.raises(MultipredictError, match="'svhn'"):
        search.space_table("svhn")


def test_mutation_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    for arch in (0, 1234, 15624):
        child = search._mutate(arch, rng)
        digits = [np.base_repr(a, 5).zfill(6) for a in (arch, child)]
        assert sum(x != y for x, y in zip(*digits)) == 1 and 0 <= child < 15625


@pytest.mark.parametrize("strategy", search.STRATEGIES)
def test_every_strategy_trains_budget_distinct_archs_from_the_same_start(strategy):
    frame = search.search("cifar10", strategy, encoding="vec", budget=25, seed=4, options=FAST)
    assert len(frame) == 25 and frame["arch_id"].is_unique
    start = search.initial(search.space_table("cifar10"), 4, 10)
    assert list(frame["arch_id"][:10]) == list(start)  # every strategy starts from the same 10 archs
    assert (np.diff(frame["val"].cummax()) >= 0).all()
    returned_val = search.space_table("cifar10").val[frame["returned_arch"]]
    assert np.allclose(returned_val, frame["val"].cummax())  # it returns the best by validation accuracy
    assert (frame["regret"] >= 0).all()
    again = search.search("cifar10", strategy, encoding="vec", budget=25, seed=4, options=FAST)
    pd.testing.assert_frame_equal(frame, again)


def test_search_command_writes_the_trajectory_the_chosen_arch_and_an_onnx_export(tmp_path):
    out = tmp_path / "s"
    assert cli.main(["search", "--task", "cifar10", "--strategy", "evolution", "--budget", "15", "--out",
                     str(out)]) == 0
    chosen = json.loads((out / "chosen.json").read_text())
    trajectory = pd.read_csv(out / "trajectory.csv")
    assert chosen["arch_id"] == trajectory["returned_arch"].iloc[-1] and chosen["arch"].startswith("|")
    assert (out / "chosen.onnx").stat().st_size > 1000


def test_fig10_quick_run_reports_samples_to_near_optimal(tmp_path):
    from multipredict.experiments import search as fig10

    trials = fig10.reproduce_search(out_dir=tmp_path, quick=True, repeats=1, progress=False,
                                    arms=["random", "ZCP"], budget=20)
    near = pd.read_csv(tmp_path / "fig10_near_optimal.csv")
    assert set(near["arm"]) == {"random", "ZCP"} and set(trials["n_trained"]) == set(range(1, 21))
    assert "paper:" in (tmp_path / "fig10.txt").read_text()


def test_without_plotly_the_figure_writers_leave_a_note_and_the_csvs_are_written(tmp_path, monkeypatch):
    from multipredict.experiments import accuracy, crossspace, units
    from multipredict.experiments import search as fig10

    for module in (fig10, crossspace, accuracy):
        monkeypatch.setattr(module, "plotly_or_none", lambda: None)
    fig10.reproduce_search(out_dir=tmp_path, quick=True, repeats=1, progress=False, arms=["random"], budget=12)
    assert (tmp_path / "fig10.html").read_text() == units.NO_PLOTLY_HTML
    assert (tmp_path / "fig10_near_optimal.csv").stat().st_size > 0
    assert crossspace.figures_html(None) == units.NO_PLOTLY_HTML
    assert accuracy.figures_html("fig8", None) == units.NO_PLOTLY_HTML


def test_a_warm_start_from_the_other_datasets_reads_nothing_of_the_target_and_starts_from_its_ranking(monkeypatch):
    real = search.space_table
    read = []
    monkeypatch.setattr(search, "space_table", lambda d="cifar10": read.append(d) or real(d))
    warm = search.pretrain_other_tasks("cifar100", seed=1, fraction=0.02, options=FAST)
    assert warm.source_names_ == ["cifar10", "ImageNet16-120"] and "cifar100" not in read[1:]
    frame = search.search("cifar100", "predictor", encoding="zcp", budget=20, seed=1, options=FAST, warm=warm)
    cold = search.search("cifar100", "predictor", encoding="zcp", budget=20, seed=1, options=FAST)
    start = set(frame["arch_id"][:10])
    assert start != set(cold["arch_id"][:10]) and frame["arch_id"].is_unique
    # the first 10 are the pretrained model's own best: higher validation accuracy than a random draw
    assert frame["val"][:10].mean() > cold["val"][:10].mean()
    again = search.search("cifar100", "predictor", encoding="zcp", budget=20, seed=1, options=FAST, warm=warm)
    pd.testing.assert_frame_equal(frame, again)
    with pytest.raises(MultipredictError, match="warm start needs the predictor"):
        search.search("cifar100", "random", budget=20, warm=warm)
