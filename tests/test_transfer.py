"""Few-shot transfer on real benchmark data: it beats training on the few samples alone, Eq. 1
picks the most correlated source device, results are reproducible, options are checked."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from multipredict.methods import transfer
from multipredict.baselines import brpnas, flops, latency_method
from multipredict.errors import MultipredictError, UnknownNameError
from multipredict.methods.protocol import device_latency

SOURCES = ["1080ti_1", "silver_4114", "pixel3", "samsung_s7"]
TARGETS = ["fpga", "raspi4", "eyeriss", "gold_6226"]
# small but real: 4 source devices x 300 archs, 30 source epochs; the MLP keeps it fast on a CPU
SMALL = dict(predictor="mlp", source_samples=300, source_epochs=30, target_epochs=50)


def _scores(rows):
    return [(r["device"], r["spearman"], r["kendall"], r["n_eval"], r["closest_source"]) for r in rows]


def test_transfer_beats_training_on_the_few_samples_alone(mirror):
    ours = transfer.fit_and_score(space="nb201", train_devices=SOURCES, test_devices=TARGETS, samples=10, seed=0,
                                  **SMALL)
    alone = brpnas.fit_and_score(space="nb201", train_devices=SOURCES, test_devices=TARGETS, samples=10, seed=0,
                                 predictor="mlp", epochs=50)
    ours_rho = np.array([r["spearman"] for r in ours])
    alone_rho = np.array([r["spearman"] for r in alone])
    # both scored on the same held-out archs of each device
    assert [r["n_eval"] for r in ours] == [r["n_eval"] for r in alone] == [15625 - 10] * 4
    assert ours_rho.mean() > alone_rho.mean() + 0.2, (ours_rho, alone_rho)
    assert (ours_rho > alone_rho).sum() >= 3
    row = ours[0]
    for key in ("device", "spearman", "kendall", "n_eval", "n_fewshot", "pool", "seconds"):
        assert key in row
    assert row["pool"] == "nb201 latency: 15625 of 15625 archs" and row["n_fewshot"] == 10


def test_eq1_picks_the_most_correlated_source(mirror):
    rng = np.random.default_rng(0)
    ids = rng.choice(15625, size=10, replace=False)
    target = device_latency("nb201", "raspi4")[ids]
    sources = {d: device_latency("nb201", d)[ids] for d in SOURCES}
    by_hand = {d: stats.spearmanr(v, target)[0] for d, v in sources.items()}
    assert transfer.closest_source_device(target, sources) == max(by_hand, key=by_hand.get)
    assert transfer.source_correlations(target, sources) == pytest.approx(by_hand)
    # with enough samples Eq. 1 finds the device that is truly closest over the whole space
    ids = rng.choice(15625, size=400, replace=False)
    whole = {d: stats.spearmanr(device_latency("nb201", d), device_latency("nb201", "raspi4"))[0] for d in SOURCES}
    truly = max(whole, key=whole.get)
    assert truly == "pixel3"  # the paper's Table 9: pixel3 vs raspi4 rho 0.97
    chosen = transfer.closest_source_device(device_latency("nb201", "raspi4")[ids],
                                            {d: device_latency("nb201", d)[ids] for d in SOURCES})
    assert chosen == truly
    # an anti-correlated device is never chosen over a correlated one
    assert transfer.closest_source_device([1, 2, 3, 4], {"down": [4, 3, 2, 1], "up": [1, 3, 2, 4]}) == "up"
    with pytest.raises(MultipredictError, match="at least 2 archs"):
        transfer.closest_source_device([1, 1], {"a": [1, 2]})


def test_same_seed_same_results_and_eq1_in_the_pipeline(mirror, tmp_path):
    kwargs = dict(space="fbnet", train_devices=["1080ti_1", "pixel3", "silver_4114"], test_devices=["raspi4", "fpga"],
                  samples=10, seed=3, source_samples=300, source_epochs=10, target_epochs=20)
    first = transfer.fit_and_score(**kwargs, pretrain_dir=tmp_path / "first")
    transfer.clear_pretrain_cache()  # the second run pretrains again (another folder) instead of reusing the first
    second = transfer.fit_and_score(**kwargs, pretrain_dir=tmp_path / "second")
    assert not first[0]["pretrain_cached"] and not second[0]["pretrain_cached"]
    assert _scores(first) == _scores(second)
    third = transfer.fit_and_score(**kwargs)  # shares the cached pretraining
    assert third[0]["pretrain_cached"] and _scores(third) == _scores(first)
    other_seed = transfer.fit_and_score(**{**kwargs, "seed": 4})
    assert _scores(other_seed) != _scores(first)
    # the row reports the Eq. 1 choice on the few-shot archs the run drew
    from multipredict.methods.protocol import few_shot_ids, target_split

    for row in first:
        split = target_split("paper", "fbnet", row["device"], np.arange(5000), 3, 10)
        shots = few_shot_ids(split, 10, 3)
        target = device_latency("fbnet", row["device"])[shots]
        by_hand = {d: stats.spearmanr(device_latency("fbnet", d)[shots], target)[0] for d in kwargs["train_devices"]}
        assert row["closest_source"] == max(by_hand, key=by_hand.get)


def test_normalisers_see_source_training_archs_only(mirror):
    model = transfer.BenchmarkTransfer("fbnet", ["1080ti_1", "pixel3"], encoding="zcpvec", source_samples=150,
                                             source_epochs=1, seed=0).fit()
    trained_on = np.union1d(*[s.train_ids for s in model.source_splits_.values()])
    assert np.array_equal(model.encoder_.fitted_ids_, trained_on)
    assert len(trained_on) <= 300 < len(model.pool_ids_)
    # onboarding a device from a few measurements leaves the scaling alone; predictions come in ms
    latency = device_latency("fbnet", "raspi4")
    target = model.add_device("raspi4", np.arange(10), latency[:10])
    assert np.array_equal(model.encoder_.fitted_ids_, trained_on)
    assert target.closest_source in ("1080ti_1", "pixel3")
    predicted = model.predict("raspi4", np.arange(10, 20))
    assert predicted.shape == (10,) and np.isfinite(predicted).all() and predicted.mean() > 0


def test_options_and_devices_are_checked(mirror):
    base = dict(space="nb201", train_devices=SOURCES, test_devices=["fpga"], samples=10, seed=0)
    with pytest.raises(UnknownNameError, match="valid transfer options: batch_size") as info:
        transfer.fit_and_score(**base, source_epoch=3)
    assert "source_epochs" in str(info.value)
    with pytest.raises(MultipredictError, match="both train and test"):
        transfer.fit_and_score(**{**base, "test_devices": ["pixel3"]})
    with pytest.raises(MultipredictError, match="leak"):
        transfer.fit_and_score(**base, encoding="hwl", hwl_devices=["fpga"])
    with pytest.raises(MultipredictError, match="predictor='gcn'"):
        transfer.fit_and_score(**{**base, "space": "fbnet", "train_devices": ["pixel3"]}, predictor="gcn")
    with pytest.raises(MultipredictError, match="score_on='everything' is not valid"):
        transfer.fit_and_score(**base, score_on="everything")
    with pytest.raises(UnknownNameError, match="latency method"):
        latency_method("brp")


def test_flops_baseline(mirror):
    values = flops.nb201_flops()
    assert values.shape == (15625,)
    assert values.max() == pytest.approx(220.14, abs=0.01)  # the all-conv3x3 cell
    try:
        from multipredict.data import tables

        naslib = tables.zcp("nb201")["flops"]
    except Exception as exc:
        pytest.skip(f"NASLib NB201 table unavailable: {exc}")
    assert stats.spearmanr(values[naslib.index.to_numpy()], naslib.to_numpy())[0] > 0.9999
    rows = latency_method("flops")(space="fbnet", train_devices=[], test_devices=["fpga"], samples=10, seed=0)
    assert rows[0]["n_eval"] == 4990 and rows[0]["spearman"] > 0.9 and rows[0]["n_fewshot"] == 0


@pytest.mark.parametrize("embedding", ["sample", "index"])
def test_fixed_embeddings_transfer(mirror, embedding):
    rows = transfer.fit_and_score(space="fbnet", train_devices=["1080ti_1", "pixel3"], test_devices=["raspi4", "fpga"],
                                  samples=10, seed=0, embedding=embedding, source_samples=100, source_epochs=2,
                                  target_epochs=2)
    assert all(np.isfinite(r["spearman"]) and r["closest_source"] is None for r in rows)
    # the sample embedding measures HELP's 10 reference archs on the target as well
    assert rows[0]["n_measured"] == (20 if embedding == "sample" else 10)


def test_a_saved_pretraining_is_reused_by_another_run(mirror, tmp_path):
    kwargs = dict(space="fbnet", train_devices=["1080ti_1", "pixel3", "silver_4114"], test_devices=["raspi4"],
                  samples=10, seed=5, source_samples=300, source_epochs=5, target_epochs=10, pretrain_dir=str(tmp_path))
    transfer.clear_pretrain_cache()
    first = transfer.fit_and_score(**kwargs)
    saved = list(tmp_path.glob("fbnet-mlp-table-*.pt"))
    assert len(list(tmp_path.glob("fbnet-mlp-table-*.json"))) == 1  # what it was trained from
    assert len(saved) == 1 and not first[0]["pretrain_cached"]
    transfer.clear_pretrain_cache()  # as if in another process: only the file is left
    second = transfer.fit_and_score(**{**kwargs, "target_lr": 4e-4})
    assert second[0]["pretrain_cached"]
    transfer.clear_pretrain_cache()
    again = transfer.fit_and_score(**kwargs)
    assert again[0]["pretrain_cached"] and _scores(again) == _scores(first)
    # another pretraining setting gets its own file
    transfer.clear_pretrain_cache()
    transfer.fit_and_score(**{**kwargs, "source_epochs": 4})
    assert len(list(tmp_path.glob("*.pt"))) == 2
    # a damaged file is set aside (kept, renamed), trained again (same numbers) and rewritten, never trusted
    saved[0].write_bytes(b"not a torch file")
    transfer.clear_pretrain_cache()
    retrained = transfer.fit_and_score(**kwargs)
    assert not retrained[0]["pretrain_cached"] and _scores(retrained) == _scores(first)
    aside = list(tmp_path.glob(saved[0].name + ".unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"not a torch file"
    transfer.clear_pretrain_cache()
    assert transfer.fit_and_score(**kwargs)[0]["pretrain_cached"]


def test_the_gcn_aggregation_names_its_own_pretraining(mirror, tmp_path):
    keys = {}
    for predictor in ("gcn", "mlp"):
        for aggregation in ("sum", "mean"):
            model = transfer.BenchmarkTransfer("nb201", SOURCES, predictor=predictor, gcn_aggregation=aggregation,
                                               source_samples=20, source_epochs=0, pretrain_dir=str(tmp_path)).fit()
            keys[predictor, aggregation] = model.pretraining_key_
    assert keys["gcn", "sum"] != keys["gcn", "mean"]  # never load one GCN's weights into the other
    assert keys["mlp", "sum"] == keys["mlp", "mean"]  # an MLP has nothing to aggregate
    with pytest.raises(MultipredictError, match="gcn_aggregation='max' is not valid"):
        transfer.fit_and_score(space="nb201", train_devices=SOURCES, test_devices=TARGETS[:1], samples=10, seed=0,
                               gcn_aggregation="max")


def test_eq1_with_pearson_on_log_latency(mirror):
    rng = np.random.default_rng(1)
    ids = rng.choice(15625, size=10, replace=False)
    target = device_latency("nb201", "raspi4")[ids]
    sources = {d: device_latency("nb201", d)[ids] for d in SOURCES}
    by_hand = {d: np.corrcoef(np.log(v), np.log(target))[0, 1] for d, v in sources.items()}
    assert transfer.source_correlations(target, sources, "pearson_log") == pytest.approx(by_hand)
    assert transfer.closest_source_device(target, sources, "pearson_log") == max(by_hand, key=by_hand.get)
    with pytest.raises(UnknownNameError, match="kendall"):
        transfer.closest_source_device(target, sources, "kendall")
    with pytest.raises(MultipredictError, match="eq1_correlation='kendall' is not valid"):
        transfer.fit_and_score(space="nb201", train_devices=SOURCES, test_devices=["fpga"], samples=10, seed=0,
                               eq1_correlation="kendall", **SMALL)
    rows = transfer.fit_and_score(space="fbnet", train_devices=["1080ti_1", "pixel3", "silver_4114"],
                                  test_devices=["eyeriss"], samples=10, seed=2, source_samples=300, source_epochs=5,
                                  target_epochs=5, eq1_correlation="pearson_log")
    assert rows[0]["eq1_correlation"] == "pearson_log" and rows[0]["closest_source"] in {"1080ti_1", "pixel3",
                                                                                          "silver_4114"}


def test_a_prepared_trial_transfers_exactly_what_the_trial_does(mirror):
    """`prepare_trial` is `fit_and_score` up to pretraining: the same draws, the same scores."""
    kwargs = dict(space="nb201", train_devices=SOURCES, test_devices=TARGETS[:2], samples=10, seed=2,
                  **{**SMALL, "source_epochs": 5})
    rows = transfer.fit_and_score(**kwargs)
    transfer.clear_pretrain_cache()
    model, draws, score_on = transfer.prepare_trial(**kwargs)
    assert score_on == "heldout" and not hasattr(model, "pretrained_") and set(draws) == set(TARGETS[:2])
    model.fit()
    for row in rows:
        split_, shots = draws[row["device"]]
        latency = device_latency("nb201", row["device"])
        model.add_device(row["device"], shots, latency[shots])
        scored = split_.scored_ids(shots)
        assert len(scored) == row["n_eval"]
        spearman = stats.spearmanr(model.predict(row["device"], scored, scale="label"), latency[scored])[0]
        assert spearman == pytest.approx(row["spearman"], abs=1e-12)
    with pytest.raises(MultipredictError, match="samples"):
        transfer.prepare_trial(**{**kwargs, "samples": 0})


def test_fine_tuning_freezes_the_body_for_targets_close_to_a_source_device(mirror):
    kwargs = dict(space="nb201", train_devices=SOURCES, test_devices=TARGETS[:1], samples=10, seed=1,
                  **{**SMALL, "source_epochs": 5})
    head = transfer.fit_and_score(**kwargs, target_train="head")
    every = transfer.fit_and_score(**kwargs, target_train="all")  # the same (cached) pretraining
    assert (head[0]["fine_tuned"], every[0]["fine_tuned"]) == ("head", "all")
    assert every[0]["pretrain_cached"] and head[0]["spearman"] != every[0]["spearman"]
    assert head[0]["target_batch_size"] is None  # the source batch size: one full batch of 10
    # auto: the body stays frozen when Eq. 1's closest source correlates at freeze_above or more
    rho = head[0]["closest_source_spearman"]
    close = transfer.fit_and_score(**kwargs, freeze_above=rho)
    far = transfer.fit_and_score(**kwargs, freeze_above=min(rho + 0.01, 1.0))
    assert close[0]["target_train"] == "auto" and close[0]["fine_tuned"] == "head"
    assert close[0]["spearman"] == head[0]["spearman"]
    assert far[0]["fine_tuned"] == "all" and far[0]["spearman"] == every[0]["spearman"]
    with pytest.raises(MultipredictError, match="target_train='body' is not valid"):
        transfer.fit_and_score(**kwargs, target_train="body")
    with pytest.raises(MultipredictError, match=r"freeze_above=1\.5 is not valid .*less than or equal to 1"):
        transfer.fit_and_score(**kwargs, freeze_above=1.5)
    # no defined correlation (constant latencies, one sample): too little to retrain the body from
    model = transfer.BenchmarkTransfer("nb201", SOURCES)
    assert model._fine_tuned_part({"a": float("nan")}) == "head"
    assert model._fine_tuned_part({"a": 0.5, "b": 0.84}) == "all"
    assert model._fine_tuned_part({"a": 0.5, "b": 0.85}) == "head"


def test_the_estimator_fits_on_a_users_own_tables(mirror):
    """No benchmark lookups inside the estimator: a plain frame of the user's sources is enough."""
    import pandas as pd

    from multipredict.encodings import ArchEncoder
    from multipredict.predictors import FewShotLatencyPredictor

    ids = np.arange(0, 5000, 25)
    own = pd.DataFrame({"lab_gpu": device_latency("fbnet", "1080ti_1")[ids],
                        "lab_phone": device_latency("fbnet", "1080ti_1")[ids] * 3.0}, index=ids)
    model = FewShotLatencyPredictor(source_epochs=3, target_epochs=5, seed=1, pretrain_dir=None)
    model.fit(ArchEncoder("fbnet", "vec"), own)
    assert model.source_devices == ["lab_gpu", "lab_phone"] and model.pretrained_from_ in ("trained", "memory")
    new = ids[:12]
    target = model.add_device("lab_npu", new, device_latency("fbnet", "fpga")[new])
    assert target.closest_source in ("lab_gpu", "lab_phone") and len(model.predict("lab_npu", ids)) == len(ids)
    # the source predictions come back in ms, on the scale of the user's own table
    assert np.isclose(np.median(model.predict("lab_phone", ids)) / np.median(model.predict("lab_gpu", ids)), 3.0,
                      rtol=0.5)
    with pytest.raises(MultipredictError, match="one column per source device"):
        FewShotLatencyPredictor().fit(ArchEncoder("fbnet", "vec"), pd.DataFrame())


def test_a_trials_targets_fine_tune_together_with_the_same_results(mirror):
    """add_devices stacks the targets' fine-tunes (one step advances every target); the predictions
    equal one fine-tune after another within floating-point tolerance."""
    from multipredict.predictors.fewshot import TargetSamples

    model = transfer.BenchmarkTransfer("nb201", SOURCES, source_samples=100, source_epochs=1, target_epochs=8,
                                       target_train="all", pretrain_dir=None).fit()
    ids = np.arange(0, 15625, 977)[:12]
    targets = [TargetSamples(name, ids, device_latency("nb201", name)[ids]) for name in TARGETS[:3]]
    together = model.add_devices(targets, stack=True)
    apart = model.add_devices(targets, stack=False)
    probe = np.arange(0, 15625, 61)
    for one, two in zip(together, apart):
        assert one.closest_source == two.closest_source and one.row == two.row
        first = one.predictor.predict(model.encoder_.transform(probe), np.full(len(probe), one.row))
        second = two.predictor.predict(model.encoder_.transform(probe), np.full(len(probe), two.row))
        np.testing.assert_allclose(first, second, rtol=1e-4, atol=1e-5)


def test_a_target_can_start_from_a_named_source_device_instead_of_eq1s_pick(mirror):
    """copy_from overrides Eq. 1's pick: the new row starts as a copy of the named source's row, and
    the same measurements then predict otherwise; a name that is not a source, or another embedding,
    is refused before anything changes."""
    model = transfer.BenchmarkTransfer("fbnet", ["1080ti_1", "pixel3"], source_samples=150, source_epochs=2,
                                       target_epochs=0, seed=0, pretrain_dir=None).fit()
    ids = np.arange(0, 300, 15)
    latency = device_latency("fbnet", "raspi4")[ids]
    eq1 = model.add_device("a", ids, latency)
    other = next(d for d in model.source_devices if d != eq1.closest_source)
    forced = model.add_device("b", ids, latency, copy_from=other)
    assert forced.closest_source == other and forced.correlations == eq1.correlations
    # no fine-tuning (0 epochs): each new row is still an exact copy of the row it started from
    for target, source in ((eq1, eq1.closest_source), (forced, other)):
        row = target.predictor.embedding_table()[target.row]
        assert np.array_equal(row, target.predictor.embedding_table()[model.source_devices.index(source)])
    probe = np.arange(300, 600)
    assert not np.allclose(model.predict("a", probe), model.predict("b", probe))
    added = len(model.targets_)
    with pytest.raises(MultipredictError, match="copy_from='fpga'.*1080ti_1, pixel3"):
        model.add_device("c", ids, latency, copy_from="fpga")
    fixed = transfer.BenchmarkTransfer("fbnet", ["1080ti_1", "pixel3"], embedding="sample", source_samples=150,
                                       source_epochs=2, target_epochs=0, seed=0, pretrain_dir=None).fit()
    with pytest.raises(MultipredictError, match="only with embedding='table'"):
        fixed.add_device("raspi4", ids, latency, copy_from="pixel3")
    assert len(model.targets_) == added


def test_eq1_starts_fine_tunes_from_eq1s_first_rows_and_averages_in_ms(mirror):
    """eq1_starts=2: a second fine-tune of the same measurements from the source row Eq. 1 ranks
    second; predictions are the mean of both in ms. The first start is exactly the one-start target."""
    sources, ids = ["1080ti_1", "pixel3", "silver_4114"], np.arange(0, 400, 20)
    latency = device_latency("fbnet", "raspi4")[ids]
    common = dict(source_samples=150, source_epochs=2, target_epochs=3, seed=0, pretrain_dir=None)
    one = transfer.BenchmarkTransfer("fbnet", sources, **common).fit()
    two = transfer.BenchmarkTransfer("fbnet", sources, eq1_starts=2, **common).fit()
    single, double = one.add_device("t", ids, latency), two.add_device("t", ids, latency)
    ranked = sorted(single.correlations, key=single.correlations.get, reverse=True)
    assert single.others == [] and double.closest_source == single.closest_source == ranked[0]
    assert [other.closest_source for other in double.others] == [ranked[1]]
    probe = np.arange(400, 700)
    first = one.predict("t", probe)
    assert np.array_equal(double.predictor.predict(two.encoder_.transform(probe), np.full(len(probe), double.row)),
                          single.predictor.predict(one.encoder_.transform(probe), np.full(len(probe), single.row)))
    other = double.others[0]
    second = (other.predictor.predict(two.encoder_.transform(probe), np.full(len(probe), other.row))
              - other.label_offset) / other.label_scale
    np.testing.assert_allclose(two.predict("t", probe), (first + second) / 2, rtol=1e-6)
    assert not np.allclose(two.predict("t", probe), first)
    np.testing.assert_allclose(two.predict("t", probe, scale="label"),
                               double.label_scale * two.predict("t", probe) + double.label_offset, rtol=1e-6)
    with pytest.raises(MultipredictError, match="eq1_starts=2 needs embedding='table'"):
        transfer.BenchmarkTransfer("fbnet", sources, embedding="sample", eq1_starts=2, **common)
    # one target's own number of starts (what onboard gives the device it onboards) overrides the option
    del one.targets_["t"]
    assert one.add_device("t", ids, latency, starts=2).others[0].closest_source == ranked[1]
    np.testing.assert_array_equal(one.predict("t", probe), two.predict("t", probe))
    assert two.add_device("u", ids, latency, starts=1).others == []
    np.testing.assert_array_equal(two.predict("u", probe), first)
    added = len(one.targets_)
    for bad in (0, True, 1.5):
        with pytest.raises(MultipredictError, match=f"starts={bad!r}: .*integer n >= 1"):
            one.add_device("v", ids, latency, starts=bad)
    fixed = transfer.BenchmarkTransfer("fbnet", sources, embedding="sample", **common).fit()
    with pytest.raises(MultipredictError, match="starts=2: .*needs embedding='table' \\(this predictor: 'sample'\\)"):
        fixed.add_device("raspi4", ids, latency, starts=2)
    assert len(one.targets_) == added and fixed.targets_ == {}
