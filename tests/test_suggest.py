"""Which archs to measure: the selection strategies of `multipredict suggest` (issue 21)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from multipredict import cli, suggest
from multipredict.data import help
from multipredict.errors import MultipredictError, UnknownNameError

SOURCES = ["1080ti_1", "pixel3", "silver_4114"]


def test_stratified_takes_one_arch_per_latency_stratum_and_is_reproducible():
    a = suggest.suggest("fbnet", 10, strategy="stratified", sources=SOURCES, seed=3)
    assert a == suggest.suggest("fbnet", 10, strategy="stratified", sources=SOURCES, seed=3)
    assert a != suggest.suggest("fbnet", 10, strategy="stratified", sources=SOURCES, seed=4)
    score = suggest.latency_profile("fbnet", SOURCES).mean(axis=1).sort_values(kind="stable")
    strata = np.array_split(score.index.to_numpy(), 10)
    hits = [sum(x in set(s.tolist()) for x in a) for s in strata]
    assert hits == [1] * 10
    where = [next(i for i, s in enumerate(strata) if x in set(s.tolist())) for x in a]
    assert where == [0, 8, 4, 2, 6, 1, 9, 5, 3, 7]  # interleaved: every prefix spans fast to slow


def test_sequential_suggestions_skip_measured_archs_and_fill_empty_strata():
    first = suggest.suggest("fbnet", 5, strategy="stratified", sources=SOURCES)
    more = suggest.suggest("fbnet", 5, strategy="stratified", sources=SOURCES, measured=first)
    assert not set(first) & set(more) and len(set(more)) == 5
    score = suggest.latency_profile("fbnet", SOURCES).mean(axis=1).sort_values(kind="stable")
    strata = np.array_split(score.index.to_numpy(), 10)
    assert sorted(sum(x in set(s.tolist()) for x in first + more) for s in strata) == [1] * 10


def test_reference_kcenter_random_and_candidates():
    ref = suggest.suggest("nb201", 12, strategy="reference", sources=SOURCES)
    assert ref[:10] == help.reference_archs("nb201") and len(set(ref)) == 12
    candidates = list(range(100, 400))
    for strategy in ("random", "kcenter", "stratified"):
        chosen = suggest.suggest("nb201", 8, strategy=strategy, sources=SOURCES, candidates=candidates)
        assert len(set(chosen)) == 8 and set(chosen) <= set(candidates), strategy
    kc = suggest.suggest("nb201", 6, strategy="kcenter", sources=SOURCES, candidates=candidates)
    profile = suggest.latency_profile("nb201", SOURCES).loc[kc].to_numpy()
    gaps = [np.min([((profile[i] - profile[j]) ** 2).sum() for j in range(i)]) for i in range(1, 6)]
    assert all(g > 0 for g in gaps)
    with pytest.raises(MultipredictError, match="'greedy'"):
        suggest.suggest("nb201", 3, strategy="greedy")
    with pytest.raises(MultipredictError, match="at least 5 measured"):
        suggest.suggest("nb201", 3, strategy="active", measured=[1, 2], measured_ms=[1.0, 2.0], sources=SOURCES)


def test_representative_follows_the_density_that_kcenter_reaches_past():
    """k-means centres: the candidates lie closer on average to the chosen archs than to kcenter's
    (which minimises the largest distance instead), reproducibly, skipping measured archs."""
    candidates = list(range(0, 3000))
    profile = suggest.latency_profile("nb201", SOURCES).loc[candidates].to_numpy()

    def mean_gap(chosen):
        points = suggest.latency_profile("nb201", SOURCES).loc[chosen].to_numpy()
        return float(np.min(((profile[:, None, :] - points[None]) ** 2).sum(axis=2), axis=1).mean())

    rep = suggest.suggest("nb201", 10, strategy="representative", sources=SOURCES, candidates=candidates, seed=1)
    kc = suggest.suggest("nb201", 10, strategy="kcenter", sources=SOURCES, candidates=candidates)
    assert rep == suggest.suggest("nb201", 10, strategy="representative", sources=SOURCES, candidates=candidates,
                                  seed=1)
    assert len(set(rep)) == 10 and set(rep) <= set(candidates)
    assert mean_gap(rep) < 0.8 * mean_gap(kc)
    more = suggest.suggest("nb201", 5, strategy="representative", sources=SOURCES, candidates=candidates,
                           measured=rep, seed=1)
    assert len(set(more)) == 5 and not set(more) & set(rep)


def test_suggest_command_writes_the_order_arch_and_id(tmp_path, capsys):
    (tmp_path / "c.csv").write_text("arch\n" + "\n".join(str(i) for i in range(50)) + "\n")
    out = tmp_path / "next.csv"
    # the default strategy places archs with the pretrained predictor shipped for the default sources
    code = cli.main(["suggest", "--space", "nb201", "--k", "4", "--candidates", str(tmp_path / "c.csv"),
                     "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["order", "arch", "arch_id"] and list(table["order"]) == [1, 2, 3, 4]
    assert set(table["arch_id"]) <= set(range(50)) and table["arch"].str.startswith("|").all()


@pytest.mark.parametrize("strategy", [s for s in suggest.STRATEGIES if s != "active"])
def test_suggest_command_offers_every_strategy(tmp_path, strategy):
    # the command's choices come from suggest.STRATEGIES: one a hand-kept list left out must still run
    # herding and design place archs with the pretrained predictor: on every public device, the one shipped in
    # data/pretrained
    sources = None if suggest.uses_predictor(strategy) else SOURCES
    out = tmp_path / "next.csv"
    code = cli.main(["suggest", "--space", "fbnet", "--k", "3", "--strategy", strategy, "--seed", "2",
                     "--out", str(out)] + (["--sources", ",".join(sources)] if sources else []))
    assert code == 0
    assert list(pd.read_csv(out)["arch_id"]) == suggest.suggest("fbnet", 3, strategy=strategy, sources=sources, seed=2)


def test_herding_matches_the_candidates_distribution():
    """Kernel herding on two well-separated clusters of 900 and 100 points picks from both in about
    that proportion (k-center would split 5/5, random often misses the small one), reproducibly,
    and continues from measured rows without repeating them."""
    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(0, 1, size=(900, 4)), rng.normal(12, 1, size=(100, 4))])
    rows = suggest._herding(features, 10, np.array([], dtype=int), np.random.default_rng(5))
    assert len(set(rows)) == 10
    assert sum(r >= 900 for r in rows) == 1
    assert rows == suggest._herding(features, 10, np.array([], dtype=int), np.random.default_rng(5))
    more = suggest._herding(features, 10, np.array(rows), np.random.default_rng(5))
    assert not set(more) & set(rows) and sum(r >= 900 for r in more) == 1
    # the mean of the chosen points is closer to the population mean than random picks' usually are
    gap = np.linalg.norm(features[rows].mean(axis=0) - features.mean(axis=0))
    random_gaps = [np.linalg.norm(features[rng.choice(1000, 10, replace=False)].mean(axis=0) - features.mean(axis=0))
                   for _ in range(200)]
    assert gap < np.quantile(random_gaps, 0.1)


def test_design_takes_the_rows_that_lower_the_posterior_variance_most():
    """Transductive experimental design: each pick is the row whose label lowers the summed
    posterior variance of a Bayesian linear model on the features most (checked by brute force),
    the chosen rows leave far less of it than random rows do, and a sequential call continues
    greedily from the measured rows without repeating them."""
    rng = np.random.default_rng(0)
    z = suggest._principal(rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) + 3, 16)  # correlated, centred
    moment = z.T @ z

    def left(chosen):  # sum over every row i of var(z_i . w), given labels on the chosen rows
        return np.trace(np.linalg.inv(np.eye(6) + z[chosen].T @ z[chosen] / suggest.DESIGN_NOISE) @ moment)

    def greedy_next(chosen):
        return min((r for r in range(500) if r not in chosen), key=lambda r: left(list(chosen) + [r]))

    rows = suggest._design(z, 8, np.array([], dtype=int))
    assert len(set(rows)) == 8
    assert all(rows[step] == greedy_next(rows[:step]) for step in range(8))
    assert left(rows) < min(left(list(rng.choice(500, 8, replace=False))) for _ in range(200))
    more = suggest._design(z, 3, np.array(rows))
    assert not set(more) & set(rows) and more[0] == greedy_next(rows)


def test_principal_scores_keep_the_top_axes_unwhitened():
    """`_principal`: the centred rows on their top principal axes (the same subspace an exact SVD
    finds), not whitened (the axes keep their variances' order and ratio), scaled to a mean variance
    of 1; rows of lower rank are only centred and scaled."""
    rng = np.random.default_rng(3)
    features = rng.normal(size=(400, 30)) * np.r_[[9.0, 5.0, 3.0], np.full(27, 0.2)] + 7
    scores = suggest._principal(features, 3)
    assert scores.shape == (400, 3)
    assert np.allclose(scores.mean(axis=0), 0) and np.isclose(scores.var(axis=0).mean(), 1)
    centred = features - features.mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:3]
    back = np.linalg.lstsq(scores, centred @ top.T, rcond=None)[0]  # one basis of the subspace in the other
    assert np.allclose(scores @ back, centred @ top.T, atol=1e-8)
    variances = np.sort(scores.var(axis=0))[::-1]
    exact = np.sort((centred @ top.T).var(axis=0))[::-1]
    assert np.allclose(variances / variances.sum(), exact / exact.sum())
    low = suggest._principal(features[:, :2], 3)
    assert np.allclose(low * np.sqrt((features[:, :2] - features[:, :2].mean(0)).var(0).mean()),
                       features[:, :2] - features[:, :2].mean(0))


@pytest.mark.parametrize("strategy", ["herding", "design"])
def test_placing_archs_in_the_predictors_representation(strategy):
    from multipredict.methods.transfer import BenchmarkTransfer

    predictor = BenchmarkTransfer("fbnet", SOURCES, source_samples=100, source_epochs=2).fit()
    candidates = predictor.pool_ids_[:400]
    features = predictor.arch_representation(candidates[:5])
    assert features.shape[0] == 5 and np.isfinite(features).all()
    # the head's last hidden layer on each source device: its output layer turns each view into that device's label
    views = predictor.source_views(candidates[:5])
    net = predictor.pretrained_.network_
    width = net.head[-1].in_features
    assert views.shape == (5, len(SOURCES) * width)
    for row, device in enumerate(SOURCES):
        with torch.no_grad():
            label = net.head[-1](torch.as_tensor(views[:, row * width:(row + 1) * width], dtype=torch.float32))
        assert np.allclose(label.squeeze(-1).numpy(), predictor.predict(device, candidates[:5], scale="label"),
                           atol=1e-5)
    chosen = suggest.suggest("fbnet", 6, strategy=strategy, sources=SOURCES, candidates=candidates,
                             predictor=predictor, seed=1)
    assert len(set(chosen)) == 6 and set(chosen) <= set(candidates.tolist())
    assert chosen == suggest.suggest("fbnet", 6, strategy=strategy, sources=SOURCES, candidates=candidates,
                                     predictor=predictor, seed=1)
    more = suggest.suggest("fbnet", 4, strategy=strategy, sources=SOURCES, candidates=candidates,
                           predictor=predictor, measured=chosen, seed=1)
    assert len(set(more)) == 4 and not set(more) & set(chosen)
    if strategy == "design":  # HELP's reference archs first, then design given them (as if measured)
        both = suggest.suggest("fbnet", 13, strategy="reference+design", sources=SOURCES, predictor=predictor,
                               seed=1)
        reference = help.reference_archs("fbnet")
        assert both[:10] == reference and len(set(both)) == 13
        rows = suggest._place_by_design(predictor, predictor.pool_ids_, 3,
                                        np.flatnonzero(np.isin(predictor.pool_ids_, reference)),
                                        suggest._rng(1, "fbnet", "reference+design"))
        assert both[10:] == [int(predictor.pool_ids_[r]) for r in rows]


def test_each_space_takes_its_own_default_strategy_and_design_size(tmp_path, capsys, monkeypatch):
    """Without --strategy, FBNet takes design alone and NB201 reference+design (measured best for each
    with onboard's two starts); FBNet's design places archs on its own number of principal axes."""
    out = tmp_path / "next.csv"
    assert cli.main(["suggest", "--space", "fbnet", "--k", "3", "--seed", "1", "--out", str(out)]) == 0
    assert "3 archs to measure next (design)" in capsys.readouterr().out
    chosen = list(pd.read_csv(out)["arch_id"])
    assert chosen == suggest.suggest("fbnet", 3, seed=1) == suggest.suggest("fbnet", 3, strategy="design", seed=1)
    assert suggest.default_strategy("nb201") == "reference+design"
    monkeypatch.setitem(suggest.DESIGN_COMPONENTS, "fbnet", suggest.DESIGN_COMPONENTS["nb201"])
    assert suggest.suggest("fbnet", 3, strategy="design", seed=1) != chosen
    with pytest.raises(UnknownNameError, match="nb101"):
        suggest.default_strategy("nb101")
