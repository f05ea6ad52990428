"""ExperimentSpec validation, the runner, the results store and reproduce, with a fake method.

The fake follows the fit_and_score contract and is deterministic in (seed, samples, device), so the
runner's bookkeeping can be checked exactly and fast; one smoke test runs a real method if present.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from multipredict.experiments import (COLUMNS, ExperimentSpec, MemoryStore, MethodRegistry, ParquetStore,
                                      expand_trials, format_comparison, reproduce, run, run_cached, use_registry)
from multipredict.experiments import spec as spec_module
from multipredict.experiments.reproduce import SUMMARY_COLUMNS
from multipredict.errors import MultipredictError, UnknownNameError
from multipredict.experiments.store import default_store

TRAIN = ["1080ti_1", "pixel3", "silver_4114"]
TEST = ["fpga", "raspi4", "eyeriss"]
CALLS: list[tuple] = []
INTERRUPT_AFTER: list[int | None] = [None]


def fake_fit_and_score(*, space, train_devices, test_devices, samples, seed, protocol="paper", **options):
    if INTERRUPT_AFTER[0] is not None and len(CALLS) >= INTERRUPT_AFTER[0]:
        raise KeyboardInterrupt  # a user pressing Ctrl-C in the middle of a long run
    CALLS.append((samples, seed, protocol, tuple(sorted(options.items()))))
    if options.get("fail_at") == samples:
        raise RuntimeError(f"boom at {samples}")
    rows = []
    for device in test_devices:
        rng = np.random.default_rng([seed, samples, sum(map(ord, device)), len(train_devices)])
        rows.append({"device": device, "spearman": float(rng.uniform(0.5, 1.0)),
                     "kendall": float(rng.uniform(0.3, 0.8)),
                     "n_eval": 100, "n_fewshot": samples, "seconds": 0.01,
                     # real methods report the pool as a count or as a label: one column must store both
                     "pool": "vec: 1000 archs" if options.get("variant") == "b" else 1000,
                     "note": np.float32(0.5)})  # a numpy scalar extra: must come back as a plain float
    return rows


@pytest.fixture
def fakes():
    """A registry of fakes only, for the length of one test."""
    CALLS.clear()
    INTERRUPT_AFTER[0] = None
    with use_registry(MethodRegistry()) as registry:
        registry.register("Fake A", fake_fit_and_score)
        registry.register("Fake B", fake_fit_and_score, variant="b")
        yield registry
    INTERRUPT_AFTER[0] = None


def make_spec(**overrides) -> ExperimentSpec:
    fields = dict(space="fbnet", methods=["Fake A", "Fake B"], train_devices=TRAIN, test_devices=TEST,
                  samples=[5, 10], repeats=2, seed=3)
    fields.update(overrides)
    return ExperimentSpec(**fields)


# ---- spec validation --------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, expected", [
    ({"train_devices": ["1080ti_1", "toaster_9000"]}, r"unknown fbnet device 'toaster_9000' in train_devices.*fpga"),
    ({"test_devices": ["titan_rtx_256"]}, r"unknown fbnet device 'titan_rtx_256'"),  # an NB201-only device
    ({"methods": ["Fake A", "Nope"]}, r"unknown method 'Nope'; valid methods: Fake A, Fake B"),
    ({"methods": []}, r"methods is empty"),
    ({"test_devices": []}, r"test_devices is empty"),
    ({"train_devices": []}, r"train_devices is empty, but 'Fake A', 'Fake B' pretrain"),
    ({"test_devices": ["fpga", "pixel3"]}, r"'pixel3' are in both train_devices and test_devices"),
    ({"samples": [-1]}, r"budget -1"),
    ({"samples": []}, r"samples is empty"),
    ({"space": "nb999"}, r"unknown space 'nb999'; expected one of nb201, fbnet"),
    ({"protocol": "mine"}, r"unknown protocol 'mine'; expected one of paper, help"),
    ({"train_devices": ["pixel3", "pixel3"]}, r"train_devices lists 'pixel3' twice"),
    ({"method_options": {"Fake C": {}}}, r"method_options names method 'Fake C', which is not in methods"),
    ({"options": {"hwl_devices": ["fpga"]}}, r"hwl_devices.*uses test device\(s\) 'fpga'"),
    ({"repeats": 0}, r"repeats"),
    ({"colour": "red"}, r"colour"),
])
def test_invalid_specs_name_the_bad_value(fakes, overrides, expected):
    with pytest.raises(ValidationError, match=expected):
        make_spec(**overrides)


def test_a_budget_larger_than_the_pool_is_caught_before_any_trial(fakes):
    spec = make_spec(samples=[10, 6000])  # valid on its own: the pool size is the data's
    with pytest.raises(MultipredictError, match=r"sample budget 6000 .* 5000 archs .* at most 5000"):
        spec.check_data()
    with pytest.raises(MultipredictError, match=r"sample budget 7000 for method 'Fake B'"):
        make_spec(method_samples={"Fake B": [7000]}).check_data()


def test_unknown_option_for_methods_that_declare_theirs(fakes):
    fakes.register("Strict", fake_fit_and_score, accepts={"source_epochs"})
    make_spec(methods=["Strict"], options={"source_epochs": 3})
    with pytest.raises(ValidationError, match=r"option 'episodez' is taken by none of the methods Strict.*source_ep"):
        make_spec(methods=["Strict"], options={"episodez": 3})
    with pytest.raises(ValidationError, match=r"method_options\['Strict'\] sets 'lr'"):
        make_spec(methods=["Strict"], method_options={"Strict": {"lr": 1}})


def test_encoding_without_data_for_the_pool(fakes, monkeypatch):
    fakes.register("Fake ZCP", fake_fit_and_score, encoding="zcp")
    real = spec_module.arch_pool_size

    def no_zcp_on_raspi4(space, encoding, devices, hwl_devices=(), data_key=()):
        return 0 if encoding == "zcp" and "raspi4" in devices else real(space, encoding, devices, hwl_devices, data_key)

    monkeypatch.setattr(spec_module, "arch_pool_size", no_zcp_on_raspi4)
    spec = make_spec(methods=["Fake ZCP"])  # built without reading data ...
    with pytest.raises(MultipredictError, match=r"encoding 'zcp' has no archs with data for fbnet device 'raspi4'"):
        spec.check_data()  # ... checked against it before any trial
    with pytest.raises(MultipredictError, match=r"encoding 'zcp' has no archs"):
        run(spec)
    make_spec(methods=["Fake A"]).check_data()  # Vec-like methods keep the whole pool


def test_presets_use_the_papers_device_sets(fakes):
    spec = ExperimentSpec.from_preset("fbnet-default", methods=["Fake A"])
    assert spec.test_devices == ("fpga", "raspi4", "eyeriss") and len(spec.train_devices) == 9
    adversarial = ExperimentSpec.from_preset("fbnet-adversarial", methods=["Fake A"], samples=[20])
    assert len(adversarial.train_devices) == 15 and "pixel2" in adversarial.test_devices
    with pytest.raises(Exception, match=r"unknown preset 'nb201-easy'.*nb201-default"):
        ExperimentSpec.from_preset("nb201-easy")


# ---- hashing and YAML ---------------------------------------------------------------------------

def test_spec_hash_is_stable_and_content_based(fakes):
    spec = make_spec(options={"a": 1, "b": [1, 2]})
    reordered = ExperimentSpec(seed=3, repeats=2, samples=[5, 10], options={"b": [1, 2], "a": 1},
                               test_devices=TEST, train_devices=TRAIN, methods=["Fake A", "Fake B"], space="fbnet")
    assert spec.spec_hash() == reordered.spec_hash() and len(spec.spec_hash()) == 64
    assert hash(spec) == hash(reordered)
    assert make_spec(name="a label", options={"a": 1, "b": [1, 2], "progress": True}).spec_hash() == spec.spec_hash()
    assert make_spec(options={"a": 2, "b": [1, 2]}).spec_hash() != spec.spec_hash()
    assert make_spec(seed=4, options={"a": 1, "b": [1, 2]}).spec_hash() != spec.spec_hash()


def test_yaml_round_trip(fakes, tmp_path):
    spec = make_spec(method_samples={"Fake B": [20]}, method_options={"Fake A": {"protocol": "help"}},
                     options={"source_epochs": 7}, quick=True, name="round trip")
    path = tmp_path / "spec.yaml"
    spec.to_yaml(path)
    assert ExperimentSpec.from_yaml(path) == spec
    assert ExperimentSpec.from_yaml(str(path)).spec_hash() == spec.spec_hash()
    assert ExperimentSpec.from_yaml(spec.to_yaml()) == spec
    from_preset = ExperimentSpec.from_yaml("preset: fbnet-default\nmethods: [Fake A]\nsamples: [20]\n")
    assert from_preset.test_devices == ("fpga", "raspi4", "eyeriss") and from_preset.samples == (20,)


# ---- runner -------------------------------------------------------------------------------------

def test_run_returns_one_row_per_trial_and_test_device(fakes):
    spec = make_spec()
    frame = run(spec)
    assert len(expand_trials(spec)) == spec.n_trials() == 2 * 2 * 2
    assert len(frame) == 2 * 2 * 2 * 3 == len(CALLS) * 3
    assert list(frame.columns[:len(COLUMNS)]) == COLUMNS
    assert set(frame["seed"]) == {3, 4} and set(frame["device"]) == set(TEST)
    assert frame["error"].isna().all() and frame.attrs["complete"] and not frame.attrs["cancelled"]
    assert frame["note"].map(type).eq(float).all()
    # fixed options reach the method: "Fake B" always gets variant="b"
    assert sum(("variant", "b") in call[3] for call in CALLS) == 4


def test_results_stream_in_trial_order(fakes):
    spec = make_spec()
    seen = []
    frame = run(spec, on_result=lambda r: seen.append((r.trial.method, r.trial.samples, r.trial.seed, r.completed)))
    expected = [(t.method, t.samples, t.seed) for t in expand_trials(spec)]
    assert [s[:3] for s in seen] == expected
    assert [s[3] for s in seen] == list(range(1, len(expected) + 1))
    assert expected[:4] == [("Fake A", 5, 3), ("Fake A", 10, 3), ("Fake B", 5, 3), ("Fake B", 10, 3)]
    trial_order = frame.drop_duplicates("trial")[["method", "samples", "seed"]]
    assert list(trial_order.itertuples(index=False, name=None)) == expected


@pytest.mark.parametrize("executor", [None, "threads"])
def test_cancel_stops_scheduling_new_trials(fakes, executor):
    cancel = threading.Event()

    def stop_after_two(result):
        if result.completed == 2:
            cancel.set()

    frame = run(make_spec(), executor, workers=1, on_result=stop_after_two, cancel=cancel)
    assert len(CALLS) == 2 and len(frame) == 2 * 3
    assert frame.attrs["cancelled"] and not frame.attrs["complete"]


def test_a_failed_trial_is_recorded_not_fatal(fakes):
    spec = make_spec(method_options={"Fake B": {"fail_at": 10}})
    frame = run(spec)
    failed = frame[frame["error"].notna()]
    assert len(frame) == 24 and len(failed) == 2 * 3  # Fake B at 10 samples, both seeds, every device
    assert set(failed["method"]) == {"Fake B"} and set(failed["samples"]) == {10}
    assert failed["error"].str.contains("RuntimeError: boom at 10").all() and failed["spearman"].isna().all()
    assert frame.loc[frame["error"].isna(), "spearman"].notna().all()


class CrashingFirstWorker(ThreadPoolExecutor):
    """A pool whose first trial dies with its worker, as a killed process would."""

    def __init__(self):
        super().__init__(max_workers=1)
        self.crashed = False

    def submit(self, fn, *args, **kwargs):
        if not self.crashed:
            self.crashed = True
            future = Future()
            future.set_exception(BrokenProcessPool("a worker process died"))
            return future
        return super().submit(fn, *args, **kwargs)


def test_a_crashed_worker_is_reported_not_stored(fakes):
    store = MemoryStore()
    spec = make_spec()
    with CrashingFirstWorker() as pool:
        frame = run(spec, pool, store=store)
    crashed = frame[frame["error"].notna()]
    assert len(crashed) == 3 and crashed["error"].str.contains("BrokenProcessPool: a worker process died").all()
    assert len(CALLS) == 7 and not frame.attrs["complete"]
    assert store.load_results(spec) is None  # an incomplete table is not stored as the spec's results
    again = run_cached(spec, store=store)  # only the crashed trial runs again, and now it is stored
    assert len(CALLS) == 8 and again["error"].isna().all()
    pd.testing.assert_series_equal(again["spearman"], run(spec)["spearman"])


def test_same_spec_same_numbers(fakes):
    first, second = run(make_spec()), run(make_spec())
    pd.testing.assert_series_equal(first["spearman"], second["spearman"])
    other_seed = run(make_spec(seed=11))
    assert not np.allclose(first["spearman"], other_seed["spearman"])


def test_any_executor_gives_the_serial_results(fakes):
    serial = run(make_spec())
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = run(make_spec(), pool)
    pd.testing.assert_frame_equal(serial.drop(columns="seconds"), threaded.drop(columns="seconds"))


def test_every_trial_row_says_where_it_ran(fakes, tmp_path, monkeypatch):
    import platform

    import torch

    from multipredict import __version__
    from multipredict.experiments.runner import PROVENANCE

    monkeypatch.setattr(platform, "node", lambda: "bench-7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    store = ParquetStore(tmp_path)
    frame = run_cached(make_spec(), store=store)
    assert set(frame["host"]) == {"bench-7"} and set(frame["torch"]) == {torch.__version__}
    assert set(frame["multipredict"]) == {__version__} and set(frame["python"]) == {platform.python_version()}
    threads = torch.get_num_threads()
    assert set(frame["compute"]) == {f"cpu, {threads} thread{'s' if threads != 1 else ''}"}
    monkeypatch.setattr(platform, "node", lambda: "elsewhere")
    again = run(make_spec(), store=store)  # stored trials keep the machine they ran on
    pd.testing.assert_frame_equal(again[PROVENANCE], frame[PROVENANCE])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H200")
    assert set(run(make_spec())["compute"]) == {"NVIDIA H200"}


def test_method_protocol_override(fakes):
    frame = run(make_spec(method_options={"Fake B": {"protocol": "help"}}))
    assert set(frame.loc[frame["method"] == "Fake B", "protocol"]) == {"help"}
    assert set(frame.loc[frame["method"] == "Fake A", "protocol"]) == {"paper"}


# ---- store --------------------------------------------------------------------------------------

def test_stored_spec_returns_without_running(fakes, tmp_path):
    store = ParquetStore(tmp_path)
    spec = make_spec()
    first = run_cached(spec, store=store)
    assert len(CALLS) == 8 and not first.attrs["cached"]
    assert (tmp_path / spec.spec_hash() / "results.parquet").exists()
    second = run_cached(spec, store=store)
    assert len(CALLS) == 8 and second.attrs["cached"]
    pd.testing.assert_frame_equal(first[COLUMNS].astype(str), second[COLUMNS].astype(str))
    assert not list(tmp_path.rglob("*.tmp"))
    assert store.specs()["spec_hash"].tolist() == [spec.spec_hash()]


def test_interrupted_run_resumes_where_it_stopped(fakes, tmp_path):
    store = ParquetStore(tmp_path)
    spec = make_spec()
    INTERRUPT_AFTER[0] = 3
    with pytest.raises(KeyboardInterrupt):
        run_cached(spec, store=store)
    assert len(CALLS) == 3 and not (tmp_path / spec.spec_hash() / "results.parquet").exists()
    INTERRUPT_AFTER[0] = None
    cached = []
    frame = run_cached(spec, store=store, on_result=lambda r: cached.append(r.cached))
    assert len(CALLS) == 8  # only the five missing trials ran
    assert cached == [True] * 3 + [False] * 5
    pd.testing.assert_series_equal(frame["spearman"], run(spec)["spearman"])


def test_trials_are_shared_between_specs(fakes):
    store = MemoryStore()
    run(make_spec(repeats=1), store=store)
    assert len(CALLS) == 4
    run(make_spec(repeats=2), store=store)  # the first repeat is already stored
    assert len(CALLS) == 8
    assert store.specs()["complete"].tolist() == [True, True]
    shifted = run(make_spec(seed=4, repeats=1), store=store)  # seed 4 was repeat 1 above, is repeat 0 here
    assert len(CALLS) == 8 and set(shifted["repeat"]) == {0}


def test_a_new_method_revision_recomputes_only_that_methods_trials(fakes):
    store = MemoryStore()
    run(make_spec(repeats=1), store=store)
    assert len(CALLS) == 4
    fakes.register("Fake B", fake_fit_and_score, variant="b", revision=2)  # e.g. a changed default
    run(make_spec(repeats=1), store=store)
    assert len(CALLS) == 6  # Fake B's two trials again, Fake A's still stored
    assert {c[3] for c in CALLS[4:]} == {(("variant", "b"),)}
    run(make_spec(repeats=1), store=store)
    assert len(CALLS) == 6  # revision 2's trials are stored now


def test_a_space_revision_recomputes_only_that_spaces_trials(fakes):
    store = MemoryStore()
    fbnet, nb201 = make_spec(repeats=1), make_spec(repeats=1, space="nb201")
    run(fbnet, store=store)
    run(nb201, store=store)
    assert len(CALLS) == 8
    fakes.register("Fake A", fake_fit_and_score, space_revisions={"nb201": 2})  # e.g. a change to the NB201 GCN
    run(fbnet, store=store)
    assert len(CALLS) == 8  # every FBNet trial is still stored
    run(nb201, store=store)
    assert len(CALLS) == 10 and {c[3] for c in CALLS[8:]} == {()}  # Fake A's two NB201 trials only


@pytest.mark.parametrize("kind", ["memory", "parquet"])
def test_a_stored_spec_result_is_not_returned_after_a_method_changed(fakes, tmp_path, kind):
    store = MemoryStore() if kind == "memory" else ParquetStore(tmp_path)
    spec = make_spec(repeats=1)
    assert not run_cached(spec, store=store).attrs["cached"] and len(CALLS) == 4
    assert run_cached(spec, store=store).attrs["cached"] and len(CALLS) == 4
    fakes.register("Fake A", fake_fit_and_score, revision=2)
    again = run_cached(spec, store=store)
    assert not again.attrs["cached"] and len(CALLS) == 6  # Fake A again; Fake B from its stored trials
    assert run_cached(spec, store=store).attrs["cached"] and len(CALLS) == 6


def test_default_store_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MULTIPREDICT_RESULTS", str(tmp_path / "elsewhere"))
    assert default_store().root == tmp_path / "elsewhere"


# ---- reproduce ----------------------------------------------------------------------------------

def test_reproduce_writes_ours_beside_the_paper(tmp_path):
    CALLS.clear()
    with use_registry(MethodRegistry()) as registry:
        for name in ("HELP", "TL Vec Sample", "TL Vec Index", "TL Vec ET"):
            registry.register(name, fake_fit_and_score)
        summary = reproduce("table3", repeats=2, out_dir=tmp_path)
    written = pd.read_csv(tmp_path / "table3.csv")
    assert list(written.columns) == SUMMARY_COLUMNS
    assert {"method", "samples", "device", "spearman_mean", "spearman_std", "paper"} <= set(written.columns)
    assert len(CALLS) == 4 * 2
    et_mean = written[(written["method"] == "TL Vec ET") & (written["device"] == "mean")].iloc[0]
    assert et_mean["paper"] == 0.96 and et_mean["n"] == 2
    per_device = written[(written["method"] == "TL Vec ET") & (written["device"] != "mean")]
    assert set(per_device["device"]) == {"fpga", "raspi4", "eyeriss"}
    assert et_mean["spearman_mean"] == pytest.approx(per_device["spearman_mean"].mean())
    assert written.loc[written["method"] == "HELP", "protocol"].eq("help").all()
    text = (tmp_path / "table3.txt").read_text()
    assert "Table 3" in text and "[0.96]" in text and "TL Vec ET (10)" in text
    assert format_comparison(summary).count("\n") >= 5


def test_quick_reproduce_says_what_it_ran(tmp_path):
    CALLS.clear()
    with use_registry(MethodRegistry()) as registry:
        for name in ("HELP", "TL Vec Sample", "TL Vec Index", "TL Vec ET"):
            registry.register(name, fake_fit_and_score, quick_options={"source_epochs": 2})
        summary = reproduce("table3", repeats=10, quick=True, out_dir=tmp_path)
    assert len(CALLS) == 2  # one repeat of the quick methods
    assert all(("source_epochs", 2) in call[3] for call in CALLS)
    text = (tmp_path / "table3.txt").read_text()
    assert "QUICK run" in text and "source_epochs=2" in text
    not_run = summary[(summary["method"] == "TL Vec Index") & (summary["device"] == "mean")].iloc[0]
    assert not_run["n"] == 0 and not_run["paper"] == 0.88  # a paper cell we did not run stays visible


# ---- a real method, when it is installed --------------------------------------------------------

@pytest.mark.slow
def test_real_help_smoke_run():
    pytest.importorskip("multipredict.baselines.help")
    pytest.importorskip("torch")
    spec = ExperimentSpec(space="fbnet", methods=["HELP"], train_devices=TRAIN, test_devices=["fpga"], samples=[5],
                          options={"episodes": 1, "mc_samples": 1}, method_options={"HELP": {"valid_devices": []}})
    frame = run(spec)
    assert len(frame) == 1 and frame["error"].isna().all(), frame["error"].tolist()
    assert -1 <= frame["spearman"].iloc[0] <= 1 and frame["n_fewshot"].iloc[0] == 5


def test_reporting_options_do_not_change_the_hash_or_break_yaml(fakes):
    plain = make_spec()
    with_callback = make_spec(options={"progress": print})
    assert with_callback.spec_hash() == plain.spec_hash()
    assert "progress" not in with_callback.to_yaml()


@pytest.mark.slow
def test_local_processes_give_the_serial_results(fakes):
    spec = make_spec(repeats=1)
    serial = run(spec)
    in_processes = run(spec, "processes", workers=2)
    # ``compute`` names the thread count, which a process worker sets to 1 by design
    pd.testing.assert_frame_equal(serial.drop(columns=["seconds", "compute"]),
                                  in_processes.drop(columns=["seconds", "compute"]))


@pytest.mark.parametrize("name", ["TL Vec ET", "HELP", "BRP-NAS", "FLOPs"])
def test_paper_methods_take_their_implementations_options(name):
    from multipredict.experiments import methods

    method = methods.REGISTRY.get(name)
    module_name = method.accepts_from.partition(":")[0]
    implementation = pytest.importorskip(module_name)
    assert method.accepted_options() == set(implementation.OPTIONS) == set(method.options_model().names())
    assert set(method.fixed) <= set(implementation.OPTIONS) and set(method.quick_options) <= set(implementation.OPTIONS)


def test_replace_revalidates(fakes):
    spec = make_spec()
    assert spec.replace(seed=9).seed == 9 and spec.replace(seed=9).methods == spec.methods
    with pytest.raises(ValidationError, match=r"'pixel3' are in both"):
        spec.replace(test_devices=["pixel3"])


def test_reproduce_some_methods_with_extra_options(tmp_path):
    CALLS.clear()
    with use_registry(MethodRegistry()) as registry:
        for name in ("HELP", "TL Vec Sample", "TL Vec Index", "TL Vec ET"):
            registry.register(name, fake_fit_and_score)
        summary = reproduce("table3", repeats=2, out_dir=tmp_path, methods=["TL Vec ET"],
                            options={"target_lr": 4e-4})
        assert len(CALLS) == 2 and all(("target_lr", 4e-4) in call[3] for call in CALLS)
        # the TL methods are told where to keep pretrained weights; that is no result-deciding option
        assert all(("pretrain_dir", str(tmp_path / "pretrained")) in call[3] for call in CALLS)
        text = (tmp_path / "table3.txt").read_text()
        assert "target_lr=0.0004" in text and "pretrain_dir" not in text
        ran = summary[summary["n"] > 0]["method"].unique().tolist()
        assert ran == ["TL Vec ET"]
        # a later run into the same folder adds another row and reuses the stored trials
        CALLS.clear()
        reproduce("table3", repeats=2, out_dir=tmp_path, methods=["TL Vec ET"], options={"target_lr": 4e-4})
        assert CALLS == []
        with pytest.raises(UnknownNameError, match="TL ET"):
            reproduce("table3", repeats=1, out_dir=tmp_path, methods=["TL ET"])


def test_table4_full_pretraining_rows_are_the_trials_of_tables_1_and_3():
    from multipredict.experiments.reproduce import table_specs

    def keys(table, source_samples=None):
        return {(t.method, t.seed, t.key) for part, spec in table_specs(table, repeats=2)
                if source_samples is None or part.source_samples == source_samples for t in expand_trials(spec)}

    full = keys("table4", 900) | keys("table4", 4000)
    assert len(full) == 2 * 2 * 2  # HELP and TL Vec ET, two repeats, two spaces
    assert full <= keys("table1") | keys("table3")
    # the smaller pretraining sets are other trials, and say so in their options
    smaller = keys("table4", 50) | keys("table4", 1000)
    assert len(smaller) == 8 and not smaller & (keys("table1") | keys("table3"))


def test_reproduce_at_other_few_shot_budgets(tmp_path):
    from multipredict.experiments.reproduce import table_specs

    CALLS.clear()
    with use_registry(MethodRegistry()) as registry:
        for name in ("FLOPs", "BRP-NAS", "HELP", "TL Vec Sample", "TL Vec Index", "TL Vec ET", "TL ZCPVec ET",
                     "TL HWLVec ET"):
            registry.register(name, fake_fit_and_score)
        budgets = {m: spec.budgets(m) for _, spec in table_specs("table1", repeats=1, samples=[5, 20])
                   for m in spec.methods}
        # few-shot rows take the new budgets; FLOPs and BRP-NAS keep the table's own
        assert budgets["FLOPs"] == (0,) and budgets["BRP-NAS"] == (900, 3200)
        assert budgets["HELP"] == budgets["TL Vec ET"] == budgets["TL Vec Sample"] == (5, 20)
        summary = reproduce("table3", repeats=1, out_dir=tmp_path, methods=["TL Vec ET"], samples=[20])
        assert sorted({call[0] for call in CALLS}) == [20]
        ran = summary[summary["n"] > 0]
        assert set(ran["samples"]) == {20} and ran["paper"].isna().all()  # the paper has no 20-sample TL ET cell
        for bad in ([], [0], [2.5]):
            with pytest.raises(MultipredictError, match="few-shot budgets"):
                table_specs("table3", samples=bad)


def test_reproduce_some_parts_of_a_table():
    from multipredict.experiments.reproduce import table_specs

    parts = table_specs("table2", repeats=1, parts=["fbnet-adversarial"])
    assert [part.label for part, _ in parts] == ["fbnet-adversarial"] and parts[0][1].space == "fbnet"
    table4 = table_specs("table4", repeats=1, parts=["nb201-default-50", "fbnet-default-1000"])
    assert [(p.preset, p.source_samples) for p, _ in table4] == [("fbnet-default", 1000), ("nb201-default", 50)]
    with pytest.raises(UnknownNameError, match="nb201-default-50"):
        table_specs("table4", parts=["nb201-50"])
    with pytest.raises(MultipredictError, match="TL ZCPVec ET"):
        table_specs("table2", parts=["fbnet-adversarial"], methods=["TL ZCPVec ET"])


def test_options_are_validated_against_each_methods_model_before_running():
    from multipredict.errors import MultipredictError, UnknownNameError
    from multipredict.experiments import methods

    assert methods.validate_options(["TL Vec ET", "HELP"], {"target_lr": 4e-4, "episodes": 10}) == \
        {"target_lr": 4e-4, "episodes": 10}
    with pytest.raises(MultipredictError, match="target_lr='abc' is not valid"):
        methods.validate_options(["TL Vec ET", "HELP"], {"target_lr": "abc"})
    with pytest.raises(UnknownNameError, match="unknown option 'foo'"):
        methods.validate_options(["FLOPs"], {"foo": 1})
    with pytest.raises(MultipredictError, match="episodes=-1 is not valid"):
        methods.validate_options(["HELP"], {"episodes": -1})
