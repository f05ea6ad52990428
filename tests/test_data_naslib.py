"""NASLib and NATS loaders against the real files (through the benchmark mirror).

Expected numbers are only those stated in shared/benchmarks/README.md: row counts, the 341
disconnected NB201 cells, 725/725/724 NAS-Bench-Suite-Zero NB201 archs, the NB201 join's Spearman.
"""

import os
from pathlib import Path

os.environ.setdefault("MULTIPREDICT_MIRROR", str(Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from multipredict.data import help, naslib, nats  # noqa: E402
from multipredict.data.formats import load_zip_json  # noqa: E402
from multipredict.data.sources import source_file  # noqa: E402
from multipredict.errors import DataError, MultipredictError, UnknownNameError  # noqa: E402

NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
N_NB201 = 15625


# ---------------------------------------------------------------------------------------------
# NATS


def test_nats_test_accuracies_cover_every_nb201_cell():
    table = nats.test_accuracies()
    assert table.shape == (N_NB201, 3)
    assert list(table.columns) == list(NB201_DATASETS)
    assert table.index.name == "arch_id"
    assert (table.index == np.arange(N_NB201)).all()
    assert table.attrs["sentinels"] == dict.fromkeys(NB201_DATASETS, 0)
    assert table.notna().all().all()
    assert ((table > 0) & (table <= 100)).all().all()


def test_nats_rejects_rows_out_of_nb201_order(monkeypatch):
    real = nats.read_csv

    def swapped_first_rows(file, **kwargs):
        frame = real(file, **kwargs)
        return frame.iloc[[1, 0, *range(2, len(frame))]].reset_index(drop=True)

    monkeypatch.setattr(nats, "read_csv", swapped_first_rows)
    nats._test_accuracies.cache_clear()
    try:
        with pytest.raises(DataError, match="row 0"):
            nats.test_accuracies()
    finally:
        nats._test_accuracies.cache_clear()


# ---------------------------------------------------------------------------------------------
# the NB201 join


def test_nb201_tuple_to_string_swaps_a2_and_a3():
    expected = "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
    assert naslib.nb201_tuple_to_string((0, 1, 2, 3, 4, 0)) == expected
    assert naslib.nb201_tuple_to_string("(0, 1, 2, 3, 4, 0)") == expected
    assert naslib.nb201_tuple_to_string([0, 1, 2, 3, 4, 0]) == expected


@pytest.mark.parametrize("bad", [(0, 1, 2, 3, 4), (5, 0, 0, 0, 0, 0), "(0, 1, x)", "nonsense"])
def test_nb201_tuple_to_string_rejects_non_archs(bad):
    with pytest.raises(MultipredictError, match="6 op codes"):
        naslib.nb201_tuple_to_string(bad)


def test_naslib_nb201_arch_list_is_a_bijection_onto_the_index():
    ids = naslib.arch_list("nb201")
    assert len(ids) == N_NB201
    assert sorted(ids) == list(range(N_NB201))


@pytest.mark.parametrize("dataset", NB201_DATASETS)
def test_nb201_zen_covers_the_space_with_sentinels_counted(dataset):
    table = naslib.nb201_zen(dataset)
    assert table.shape == (N_NB201, 2)
    assert list(table.columns) == ["zen", "val_accuracy"]
    assert (table.index == np.arange(N_NB201)).all()
    assert table.attrs["sentinels"]["zen"] == 341
    assert table["zen"].isna().sum() == 341  # the sentinels became NaN ...
    assert not (table.to_numpy() == naslib.SENTINEL).any()  # ... and none is left as a value
    assert table["val_accuracy"].notna().all()


@pytest.mark.parametrize("dataset", NB201_DATASETS)
def test_nb201_join_agrees_with_nats(dataset):
    naslib_accuracy = naslib.nb201_zen(dataset)["val_accuracy"]
    nats_accuracy = nats.test_accuracies()[dataset]
    rho = spearmanr(naslib_accuracy.to_numpy(), nats_accuracy.loc[naslib_accuracy.index].to_numpy())[0]
    assert rho >= 0.97


@pytest.fixture(scope="module")
def raw_nb201_zen_records():
    members = load_zip_json(source_file("NASLib", "run/results/benchmarks/nb201_zen.zip"))
    by_dataset = {d: [] for d in NB201_DATASETS}
    for name, records in members.items():
        dataset = name.split("--")[2]
        by_dataset[dataset].extend(records)
    return by_dataset


def _spearman_with_mapping(records, to_string, dataset):
    index = help.nb201_index()
    ids = [index[to_string(tuple(int(c) for c in r["arch"].strip("()").split(",")))] for r in records]
    accuracy = [r["val_accuracy"] for r in records]
    return spearmanr(accuracy, nats.test_accuracies()[dataset].to_numpy()[ids])[0]


@pytest.mark.parametrize("dataset", NB201_DATASETS)
def test_naive_positional_mapping_would_fail_the_join(raw_nb201_zen_records, dataset):
    ops = naslib.NB201_NASLIB_OPS

    def positional(a):
        o = [ops[c] for c in a]
        return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"

    records = raw_nb201_zen_records[dataset]
    assert _spearman_with_mapping(records, positional, dataset) < 0.9
    assert _spearman_with_mapping(records, naslib.nb201_tuple_to_string, dataset) >= 0.97


# ---------------------------------------------------------------------------------------------
# NAS-Bench-Suite-Zero tables


@pytest.mark.parametrize(("dataset", "rows"), [("cifar10", 725), ("cifar100", 725), ("ImageNet16-120", 724)])
def test_nb201_proxies_has_13_proxies(dataset, rows):
    table = naslib.nb201_proxies(dataset)
    assert table.shape == (rows, 14)
    assert list(table.columns) == [*naslib.PROXIES, "val_accuracy"]
    assert len(naslib.PROXIES) == 13
    assert table.index.name == "arch_id" and table.index.is_unique
    assert table.index.isin(range(N_NB201)).all()
    assert table.attrs["absent"]["zen"] == 0  # every suite arch was found in the zen zip
    for column, count in table.attrs["sentinels"].items():
        assert table[column].isna().sum() == count + table.attrs["non_finite"][column] + table.attrs["absent"][column]
    # the two files agree on the accuracy of the archs they share: the join is on the right key
    zen = naslib.nb201_zen(dataset)
    assert np.allclose(table["val_accuracy"], zen.loc[table.index, "val_accuracy"])
    assert "zc_nasbench201.json" in table.attrs["source"] and "nb201_zen.zip" in table.attrs["source"]


def test_plain_float_and_score_records_are_both_read():
    nb101 = naslib.space_proxies("nb101")  # plain floats
    assert nb101.shape == (500, 12)
    assert nb101.notna().all().all()
    nb201 = naslib.space_proxies("nb201", "cifar100")  # {score, time}
    assert nb201.shape == (725, 13)
    assert nb201["synflow"].notna().all()


def test_table_builder_counts_what_it_drops():
    builder = naslib._TableBuilder(["zen", "val_accuracy"])
    records = [
        ("a", {"zen": {"score": 1.0, "time": 0.1}, "val_accuracy": 90.0}),
        ("b", {"zen": 2.0, "val_accuracy": 80.0}),
        ("c", {"zen": {"score": -1e8, "time": 0.1}, "val_accuracy": 70.0}),
        ("d", {"zen": float("-inf")}),
        ("a", {"zen": 5.0, "val_accuracy": 10.0}),  # duplicate: the first record is kept
    ]
    builder.add_source("test", records, ["zen", "val_accuracy"])
    builder.add_source("other", [("a", {"val_accuracy": 91.0}), ("e", {"val_accuracy": 1.0})], ["val_accuracy"],
                       only_existing_rows=True)
    table = builder.frame("nb101")
    assert list(table.index) == ["a", "b", "c", "d"]
    assert table.loc["a", "zen"] == 1.0 and table.loc["a", "val_accuracy"] == 90.0
    assert table.loc["b", "zen"] == 2.0
    assert table.attrs["duplicates"] == 1
    assert table.attrs["sentinels"] == {"zen": 1, "val_accuracy": 0}
    assert table.attrs["non_finite"] == {"zen": 1, "val_accuracy": 0}
    assert table.attrs["absent"] == {"zen": 0, "val_accuracy": 1}
    assert table.attrs["conflicts"] == {"val_accuracy": 1}
    assert table["zen"].isna().sum() == 2


@pytest.mark.parametrize("space", ["tnb101_micro", "tnb101_macro"])
def test_tnb101_suite_tables(space):
    tables = {task: naslib.space_proxies(space, task) for task in naslib.TNB101_TASKS}
    sizes = {len(t) for t in tables.values()}
    if space == "tnb101_micro":
        assert sizes == {711}
    else:
        assert min(sizes) >= 662 and max(sizes) <= 725
    # epe_nas failed for every arch on 6 of the 7 tasks: all sentinels, counted, none used
    all_failed = [task for task, t in tables.items() if t.attrs["sentinels"]["epe_nas"] == len(t)]
    assert len(all_failed) == 6
    for task in all_failed:
        assert tables[task]["epe_nas"].isna().all()


def test_nb301_keys_share_one_form_across_files():
    suite = naslib.space_proxies("nb301")
    assert suite.shape[0] == 725
    whole = naslib.full_space_proxy("nb301", "zen")
    nine = naslib.nine_x("nb301", "svhn")
    for ids in (suite.index, whole.index, nine.index):
        assert all(k.startswith("(((") for k in ids)
        assert all(naslib.arch_id("nb301", k) == k for k in ids[:50])
    # the json's list spelling turns into the tuple spelling
    assert naslib.arch_id("nb301", "[[(0, 1), (1, 2)], [(0, 3), (1, 4)]]") == "(((0, 1), (1, 2)), ((0, 3), (1, 4)))"


@pytest.mark.parametrize("task", naslib.TNB101_TASKS)
def test_tnb101_macro_keys_join_json_and_zips(task):
    suite = naslib.space_proxies("tnb101_macro", task)
    zen = naslib.full_space_proxy("tnb101_macro", "zen", task)
    assert len(zen) == 3256
    assert set(zen.index) == set(naslib.arch_list("tnb101_macro"))
    assert not any(k.endswith(", 0)") for k in suite.index)
    assert suite.index.isin(zen.index).all()
    joined = naslib.space_proxies("tnb101_macro", task, with_whole_space=True)
    assert joined["zen"].notna().all()


def test_tnb101_micro_keys_join_json_and_zips():
    suite = naslib.space_proxies("tnb101_micro", "jigsaw")
    zen = naslib.full_space_proxy("tnb101_micro", "zen", "jigsaw")
    assert len(zen) == 4096
    assert set(zen.index) == set(naslib.arch_list("tnb101_micro"))
    assert suite.index.isin(zen.index).all()


def test_whole_space_files_without_accuracies():
    assert naslib.full_space_proxy("nb101", "zen").shape == (10250, 1)
    assert naslib.full_space_proxy("nb301", "zen").shape == (11221, 1)
    assert list(naslib.full_space_proxy("nb301", "nwot").columns) == ["nwot"]


def test_full_space_proxy_file_choice():
    paths = naslib.full_space_files("tnb101_micro", "fisher", "class_object")
    assert len(paths) == 2
    default = naslib.full_space_proxy("tnb101_micro", "fisher", "class_object")
    other = naslib.full_space_proxy("tnb101_micro", "fisher", "class_object", file=paths[1])
    assert len(default) == 4096 and 0 < len(other) < 4096


@pytest.mark.parametrize(("space", "rows"), [("nb201", 199), ("nb301", 199), ("tnb101_micro", 192)])
def test_nine_x_tables(space, rows):
    table = naslib.nine_x(space, "ninapro")
    assert table.shape == (rows, 14)
    assert list(table.columns) == [*naslib.PROXIES, "val_accuracy"]
    assert table.attrs["conflicts"] == {}
    assert table["val_accuracy"].notna().all()
    if space == "nb201":
        assert table.index.isin(range(N_NB201)).all()


# ---------------------------------------------------------------------------------------------
# names, caching, catalogue


@pytest.mark.parametrize(("call", "listed"), [
    (lambda: naslib.space_proxies("nb999"), "tnb101_macro"),
    (lambda: naslib.space_proxies("nb101", "svhn"), "cifar10"),
    (lambda: naslib.nb201_proxies("imagenet"), "ImageNet16-120"),
    (lambda: naslib.nb201_zen("CIFAR10"), "cifar100"),
    (lambda: naslib.full_space_proxy("nb101", "synflow"), "zen"),
    (lambda: naslib.full_space_proxy("tnb101_macro", "fisher", "normal"), "jigsaw"),
    (lambda: naslib.full_space_proxy("nb201", "zen", "cifar10", file="x.zip"), "nb201_zen.zip"),
    (lambda: naslib.nine_x("nb101", "svhn"), "tnb101_micro"),
    (lambda: naslib.nine_x("nb201", "cifar10"), "scifar100"),
    (lambda: naslib.arch_list("nb101"), "tnb101_macro"),
    (lambda: nats.test_accuracy("mnist"), "ImageNet16-120"),
])
def test_unknown_names_list_the_valid_ones(call, listed):
    with pytest.raises(UnknownNameError) as caught:
        call()
    assert listed in str(caught.value)
    assert "valid" in str(caught.value)


def test_repeated_calls_are_cached_but_independent():
    first = naslib.nb201_zen("cifar10")
    first.loc[0, "zen"] = 123.0
    first.attrs["sentinels"]["zen"] = 0
    second = naslib.nb201_zen("cifar10")
    assert second.loc[0, "zen"] != 123.0
    assert second.attrs["sentinels"]["zen"] == 341
    assert naslib._full_space_proxy.cache_info().hits >= 1


def test_tables_catalogue_lists_loadable_tables():
    catalogue = naslib.tables() + nats.tables()
    names = [name for name, _ in catalogue]
    assert len(names) == len(set(names))
    for name, load in catalogue:
        table = load()
        assert isinstance(table, pd.DataFrame), name
        assert table.index.name == "arch_id" and table.index.is_unique and len(table) > 0, name
        assert set(table.attrs["sentinels"]) == set(table.columns), name
        assert table.attrs["source"], name
