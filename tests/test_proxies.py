"""Model builders against the benchmark files, the zero-cost proxy engine, and the resumable runner.

Small real inputs: full-size builders for parameter/FLOP checks (no training, one-sample forwards),
reduced networks and tiny batches for the proxy passes.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from multipredict.errors import MultipredictError, UnknownNameError
from multipredict.proxies import (ALL_PROXIES, ProxyBatch, compute_proxies, compute_proxy, make_batch,
                                  synthetic_batch)
from multipredict.proxies.runner import resolve_arch_ids, run_zcp
from multipredict.proxies.scores import FlopCounter
from multipredict.spaces import fbnet, models, nb201

NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
CONV_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
FBNET_ARCH = "7_8_1_3_4_5_6_2_0_1_3_8_8_7_6_5_4_3_2_1_0_5"  # every op, the g2 blocks included


def naslib_to_arch_string(key: str) -> str:
    # the verified join of the benchmarks README: note a2 and a3 trade places
    a = [NASLIB_OPS[int(x)] for x in key.strip("()").split(",")]
    return f"|{a[0]}~0|+|{a[1]}~0|{a[3]}~1|+|{a[2]}~0|{a[4]}~1|{a[5]}~2|"


@pytest.fixture(scope="module")
def naslib_nb201(mirror):
    from multipredict.data.formats import load_json, source_file

    return load_json(source_file("NASLib", "naslib/data/zc_nasbench201.json"))["cifar10"]


@pytest.fixture(scope="module")
def zc_fbnet(mirror):
    from multipredict.data.formats import load_json, source_file

    return load_json(source_file("nasflat_latency", "fbnet_zcp/zc_fbnet.json"))


def one_sample_flops(model) -> int:
    counter = FlopCounter(model)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 32, 32))
    counter.remove()
    return counter.total


# --- builders vs the benchmark files ----------------------------------------------------------------

def test_nb201_parameter_counts_equal_naslib(naslib_nb201):
    keys = list(naslib_nb201)[:40]
    ours = [models.count_parameters(models.build_nb201(naslib_to_arch_string(k))) for k in keys]
    published = [round(naslib_nb201[k]["params"]["score"] * 1e6) for k in keys]
    assert ours == published


def test_nb201_flops_rank_like_naslib(naslib_nb201):
    keys = list(naslib_nb201)[:25]
    ours = [one_sample_flops(models.build_nb201(naslib_to_arch_string(k))) for k in keys]
    published = [naslib_nb201[k]["flops"]["score"] for k in keys]
    # NASLib's counter adds BN/ReLU/pooling operations; ours counts Conv2d/Linear MACs only
    assert spearmanr(ours, published)[0] > 0.99


def test_fbnet_parameter_counts_equal_zc_fbnet(zc_fbnet):
    ids = list(range(0, 5000, 250))
    ours = [models.count_parameters(models.build_fbnet(i)) for i in ids]
    published = [int(zc_fbnet[fbnet.arch_key(i)]["params"]) for i in ids]
    assert ours == published


def test_fbnet_flops_rank_like_zc_fbnet(zc_fbnet):
    ids = list(range(0, 5000, 250))
    ours = [one_sample_flops(models.build_fbnet(i)) for i in ids]
    published = [zc_fbnet[fbnet.arch_key(i)]["flops"] for i in ids]
    assert spearmanr(ours, published)[0] > 0.99


def test_nb201_builder_shapes_and_known_sizes():
    model = models.build_nb201(CONV_ARCH, num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 64, 8, 8)
    all_none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    all_conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert models.count_parameters(models.build_nb201(all_none)) == 73306  # the fixed skeleton
    assert models.count_parameters(models.build_nb201(all_conv)) == 1531546  # NB201's largest cell


def test_fbnet_builder_settings():
    cifar = models.build_fbnet(FBNET_ARCH)
    assert cifar(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert cifar.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 1504, 4, 4)
    imagenet = models.FBNetNetwork(fbnet.parse(FBNET_ARCH), num_classes=1000, dataset="imagenet")
    assert imagenet.forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 1984, 7, 7)
    with pytest.raises(UnknownNameError, match="'mnist'"):
        models.FBNetNetwork(fbnet.parse(FBNET_ARCH), dataset="mnist")


def test_builders_are_seeded_without_touching_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = models.build_fbnet(FBNET_ARCH, seed=5)
    after = torch.rand(1)
    b = models.build_fbnet(FBNET_ARCH, seed=5)
    assert torch.equal(expected, after)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_builders_reject_bad_archs():
    with pytest.raises(MultipredictError, match="nor_conv_5x5"):
        models.build_nb201("|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(MultipredictError, match="22 op indices"):
        models.build_fbnet([0, 1, 2])
    with pytest.raises(UnknownNameError, match="'nb101'"):
        models.build_model("nb101", 0)


# --- the proxy engine ------------------------------------------------------------------------------

def small_nb201(arch=CONV_ARCH):
    return models.build_nb201(arch, channels=8, cells_per_stage=1, seed=0)


@pytest.fixture(scope="module")
def nb201_batch():
    return synthetic_batch((3, 32, 32), num_classes=10, batch_size=8, seed=3)


@pytest.fixture(scope="module")
def fbnet_batch():
    return synthetic_batch((3, 32, 32), num_classes=100, batch_size=6, seed=3)


@pytest.fixture(scope="module")
def nb201_fused(nb201_batch):
    return compute_proxies(small_nb201(), nb201_batch, device="cpu")


def test_all_thirteen_proxies_finite(nb201_fused):
    assert tuple(nb201_fused) == ALL_PROXIES
    bad = {k: v for k, v in nb201_fused.items() if not math.isfinite(v)}
    assert not bad
    assert nb201_fused["params"] == models.count_parameters(small_nb201())
    assert nb201_fused["synflow"] > 0 and nb201_fused["snip"] > 0 and nb201_fused["grad_norm"] > 0


def test_fused_equals_one_pass_per_proxy_nb201(nb201_batch, nb201_fused):
    model = small_nb201()
    for name in ALL_PROXIES:
        alone = compute_proxy(model, nb201_batch, name, device="cpu")
        assert alone == pytest.approx(nb201_fused[name], rel=1e-4, abs=1e-9), name


def test_fused_equals_one_pass_per_proxy_fbnet(fbnet_batch):
    model = models.build_fbnet(FBNET_ARCH, seed=1)
    fused = compute_proxies(model, fbnet_batch, device="cpu")
    for name in ALL_PROXIES:
        assert math.isfinite(fused[name]), name
        alone = compute_proxy(model, fbnet_batch, name, device="cpu")
        assert alone == pytest.approx(fused[name], rel=1e-4, abs=1e-9), name


def test_proxies_are_deterministic_and_leave_the_model_alone(nb201_batch, nb201_fused):
    model = small_nb201()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    again = compute_proxies(model, nb201_batch, device="cpu")
    assert again == nb201_fused
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_a_subset_comes_back_in_the_order_asked(nb201_batch, nb201_fused):
    subset = compute_proxies(small_nb201(), nb201_batch, ["zen", "flops", "fisher"], device="cpu")
    assert list(subset) == ["zen", "flops", "fisher"]
    assert subset == {k: nb201_fused[k] for k in subset}


def test_scores_depend_on_the_batch_seed(nb201_fused):
    other = synthetic_batch((3, 32, 32), num_classes=10, batch_size=8, seed=4)
    changed = compute_proxies(small_nb201(), other, ["jacov", "nwot", "zen", "synflow"], device="cpu")
    assert changed["jacov"] != nb201_fused["jacov"] and changed["zen"] != nb201_fused["zen"]
    assert changed["synflow"] == nb201_fused["synflow"]  # synflow reads no data


def test_proxies_separate_architectures(nb201_batch):
    wide = compute_proxies(small_nb201(), nb201_batch, ["params", "flops", "synflow"], device="cpu")
    pools = compute_proxies(small_nb201("|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|"
                                        "avg_pool_3x3~1|skip_connect~2|"), nb201_batch,
                            ["params", "flops", "synflow"], device="cpu")
    assert all(wide[k] > pools[k] for k in wide)


def test_disconnected_cell_gives_undefined_jacobian_proxies(nb201_batch):
    dead = small_nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    values = compute_proxies(dead, nb201_batch, ["jacov", "params"], device="cpu")
    assert math.isnan(values["jacov"]) and values["params"] > 0


def test_nb201_edges_follow_the_arch_string(nb201_batch):
    # string order is (0->1), (0->2), (1->2), (0->3), (1->3), (2->3): a lone skip on 0->3 connects
    # input and output, a lone skip on 2->3 reads node 2, which only zero ops feed
    connected = small_nb201("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    cut = small_nb201("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert math.isfinite(compute_proxies(connected, nb201_batch, ["jacov"], device="cpu")["jacov"])
    assert math.isnan(compute_proxies(cut, nb201_batch, ["jacov"], device="cpu")["jacov"])


def test_zen_logits_option_and_errors(nb201_batch):
    model = small_nb201()
    logits = compute_proxies(model, nb201_batch, ["zen"], device="cpu", zen_output="logits")["zen"]
    assert math.isfinite(logits)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    plain(torch.zeros(1, 3, 32, 32))
    with pytest.raises(MultipredictError, match="forward_features"):
        compute_proxies(plain, nb201_batch, ["zen"], device="cpu")
    with pytest.raises(UnknownNameError, match="'pooled'"):
        compute_proxies(model, nb201_batch, ["zen"], device="cpu", zen_output="pooled")


def test_unknown_proxy_and_class_mismatch_are_explained(nb201_batch):
    with pytest.raises(UnknownNameError, match="'synflw'.*synflow"):
        compute_proxies(small_nb201(), nb201_batch, ["synflw"])
    five_classes = models.build_nb201(CONV_ARCH, channels=8, cells_per_stage=1, num_classes=5)
    batch = ProxyBatch(torch.randn(4, 3, 32, 32), torch.tensor([0, 9, 2, 9]), 10, "synthetic", 0)
    with pytest.raises(MultipredictError, match="class 9 but the model has 5 outputs"):
        compute_proxies(five_classes, batch, ["snip"], device="cpu")
    with pytest.raises(MultipredictError, match="out of range for num_classes=5"):
        ProxyBatch(torch.randn(4, 3, 32, 32), torch.tensor([0, 9, 2, 9]), 5, "synthetic", 0)


def test_batches_are_seeded_and_recorded():
    a, b = make_batch("fbnet", batch_size=4, seed=1), make_batch("fbnet", batch_size=4, seed=1)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert a.num_classes == 100
    # every class in a synthetic batch appears at least twice, so that epe_nas is defined
    small = synthetic_batch(num_classes=100, batch_size=16, seed=7)
    assert torch.bincount(small.targets)[small.targets].min() >= 2
    assert len(set(small.targets.tolist())) == 8
    assert a.info == {"batch_source": "synthetic", "batch_size": 4, "batch_seed": 1, "batch_shape": "3x32x32"}
    with pytest.raises(MultipredictError, match="does not exist"):
        make_batch("nb201", "/no/such/folder")


def test_image_folder_needs_pillow_or_says_so(tmp_path, monkeypatch):
    (tmp_path / "cat").mkdir()
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if it were not installed
    with pytest.raises(MultipredictError, match="pip install pillow"):
        make_batch("nb201", tmp_path)
    with pytest.raises(MultipredictError, match="does not exist"):
        make_batch("nb201", tmp_path / "nowhere")


def _image_folder(root, classes=("cat", "dog", "emu"), per_class=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):  # sizes differ: the batch resizes and centre-crops them
            pixels = (rng.random((40 + 8 * i, 48, 3)) * 80 + 60 * c).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_proxies_on_a_real_image_folder(tmp_path):
    from multipredict.proxies import image_folder_batch

    folder = _image_folder(tmp_path / "images")
    batch = make_batch("nb201", folder, batch_size=8, seed=3)
    assert tuple(batch.inputs.shape) == (8, 3, 32, 32) and batch.num_classes == 10  # the model's classes
    assert batch.source == f"imagefolder:{folder}"
    assert batch.inputs.mean().abs() < 1e-5 and set(batch.targets.tolist()) <= {0, 1, 2}
    again = make_batch("nb201", folder, batch_size=8, seed=3)
    assert torch.equal(batch.inputs, again.inputs) and torch.equal(batch.targets, again.targets)
    other = make_batch("nb201", folder, batch_size=8, seed=4)
    assert not torch.equal(batch.targets, other.targets) or not torch.equal(batch.inputs, other.inputs)
    assert image_folder_batch(folder, batch_size=100).inputs.shape[0] == 12  # all there is
    (folder / "dog" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(MultipredictError, match="broken.png"):
        image_folder_batch(folder, batch_size=100)
    (folder / "dog" / "broken.png").unlink()
    scores = compute_proxies(models.build_model("nb201", POOL_CELLS[0], seed=0), batch)
    assert all(math.isfinite(v) for k, v in scores.items() if k not in ("jacov", "epe_nas", "nwot"))
    # a real batch gives other data-dependent scores than the synthetic one, the same params
    synthetic = compute_proxies(models.build_model("nb201", POOL_CELLS[0], seed=0),
                                make_batch("nb201", batch_size=8, seed=3))
    assert scores["params"] == synthetic["params"] and scores["grad_norm"] != synthetic["grad_norm"]
    # the runner records which batch the scores came from
    table = run_zcp("nb201", [0], tmp_path / "zcp.csv", batch=str(folder), batch_size=8, seed=3, proxies=CHEAP,
                    progress=False)
    assert table["batch_source"].tolist() == [f"imagefolder:{folder}"] and table["batch_size"].tolist() == [8]


# --- the runner -----------------------------------------------------------------------------------

CHEAP = ["params", "flops", "l2_norm", "synflow", "nwot"]
# NB201 ids of cells without convolutions: quick to score
POOL_CELLS = [nb201.format_arch(ops) for ops in [
    ("avg_pool_3x3", "skip_connect", "none", "skip_connect", "none", "avg_pool_3x3"),
    ("skip_connect", "avg_pool_3x3", "skip_connect", "none", "avg_pool_3x3", "skip_connect"),
    ("avg_pool_3x3", "avg_pool_3x3", "skip_connect", "skip_connect", "none", "none"),
    ("none", "skip_connect", "avg_pool_3x3", "avg_pool_3x3", "skip_connect", "none"),
    ("skip_connect", "none", "none", "avg_pool_3x3", "avg_pool_3x3", "skip_connect"),
]]


@pytest.fixture(scope="module")
def pool_ids(mirror):
    return [nb201.arch_id(s) for s in POOL_CELLS]


class Killed(Exception):
    pass


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_runner_resumes_without_recomputing(tmp_path, pool_ids, suffix):
    out = tmp_path / f"zcp{suffix}"
    computed: list[int] = []

    def die_after_two(arch_id, row):
        computed.append(arch_id)
        if len(computed) == 2:
            raise Killed

    with pytest.raises(Killed):
        run_zcp("nb201", pool_ids, out, batch_size=4, proxies=CHEAP, chunk_size=1, progress=False,
                on_result=die_after_two)
    partial = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert sorted(partial["arch_id"]) == sorted(computed)

    rerun: list[int] = []
    table = run_zcp("nb201", pool_ids, out, batch_size=4, proxies=CHEAP, chunk_size=2, progress=False,
                    on_result=lambda arch_id, row: rerun.append(arch_id))
    assert sorted(rerun) == sorted(set(pool_ids) - set(computed))
    on_disk = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert sorted(on_disk["arch_id"]) == sorted(pool_ids) == list(table["arch_id"])
    assert list(on_disk.columns) == ["arch_id", *CHEAP, "batch_source", "batch_size", "batch_seed",
                                     "batch_shape", "init_seed", "seconds"]
    first = on_disk.set_index("arch_id").loc[computed, CHEAP]
    assert np.allclose(first.to_numpy(), partial.set_index("arch_id").loc[computed, CHEAP].to_numpy())
    assert set(on_disk["batch_size"]) == {4} and set(on_disk["batch_source"]) == {"synthetic"}
    assert not list(tmp_path.glob(".*tmp"))

    nothing: list[int] = []
    run_zcp("nb201", pool_ids, out, batch_size=4, proxies=CHEAP, progress=False,
            on_result=lambda a, r: nothing.append(a))
    assert nothing == []


def test_runner_refuses_to_mix_batches(tmp_path, pool_ids):
    out = tmp_path / "zcp.csv"
    run_zcp("nb201", pool_ids[:1], out, batch_size=4, proxies=["params"], progress=False)
    with pytest.raises(MultipredictError, match="batch_seed"):
        run_zcp("nb201", pool_ids[:2], out, batch_size=4, seed=1, proxies=["params"], progress=False)
    with pytest.raises(MultipredictError, match="lacks the columns"):
        run_zcp("nb201", pool_ids[:2], out, batch_size=4, proxies=["params", "zen"], progress=False)
    wide = tmp_path / "wide.csv"
    run_zcp("nb201", pool_ids[:1], wide, batch_size=4, proxies=["params", "flops"], progress=False)
    with pytest.raises(MultipredictError, match="would drop"):
        run_zcp("nb201", pool_ids[:2], wide, batch_size=4, proxies=["params"], progress=False)
    assert list(pd.read_csv(wide).columns[:3]) == ["arch_id", "params", "flops"]


def test_runner_in_worker_processes_matches_serial(tmp_path, pool_ids):
    serial = run_zcp("nb201", pool_ids[:3], tmp_path / "a.csv", batch_size=4, proxies=CHEAP, progress=False)
    parallel = run_zcp("nb201", pool_ids[:3], tmp_path / "b.csv", workers=2, batch_size=4, proxies=CHEAP,
                       progress=False)
    assert np.allclose(serial[CHEAP].to_numpy(), parallel[CHEAP].to_numpy(), rtol=1e-6)


def test_runner_scores_match_the_engine(tmp_path, pool_ids):
    table = run_zcp("nb201", pool_ids[:1], tmp_path / "z.csv", batch_size=4, progress=False)
    direct = compute_proxies(models.build_model("nb201", pool_ids[0], seed=0), make_batch("nb201", batch_size=4))
    row = table.iloc[0]
    for name in ALL_PROXIES:
        assert row[name] == pytest.approx(direct[name], rel=1e-9, nan_ok=True), name


def test_arch_selection_strings(tmp_path, mirror):
    assert resolve_arch_ids("nb201", "0,5,10-12") == [0, 5, 10, 11, 12]
    assert len(resolve_arch_ids("fbnet", "all")) == 5000
    listing = tmp_path / "archs.txt"
    listing.write_text(f"# picked\n7\n{nb201.arch_string(42)}\n")
    assert resolve_arch_ids("nb201", str(listing)) == [7, 42]
    with pytest.raises(MultipredictError, match="'x7'"):
        resolve_arch_ids("nb201", "1,x7")
    with pytest.raises(MultipredictError, match="out of range"):
        resolve_arch_ids("fbnet", "4999-5000")


def test_expected_l2_norm_is_the_rms_over_initialisations():
    from multipredict.proxies import expected_l2_norm_score
    from multipredict.proxies.scores import l2_norm_score

    layer = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3), torch.nn.Linear(16, 4))
    # per layer sqrt(numel / (3 fan_in)) = sqrt(out / 3)
    assert expected_l2_norm_score(layer) == pytest.approx(math.sqrt(16 / 3) + math.sqrt(4 / 3))
    draws = []
    for seed in range(400):
        torch.manual_seed(seed)
        draws.append(float(torch.nn.Conv2d(8, 16, 3).weight.detach().double().pow(2).sum()))
    assert math.sqrt(np.mean(draws)) == pytest.approx(math.sqrt(16 / 3), rel=0.01)
    # an NB201 cell's expected score counts its convs: a 1x1 and a 3x3 conv weigh the same
    one = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"
    three = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"
    none = "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"
    expected = {a: expected_l2_norm_score(models.build_model("nb201", a, seed=0)) for a in (one, three, none)}
    assert expected[one] == pytest.approx(expected[three]) and expected[one] > expected[none]
    drawn = {a: l2_norm_score(models.build_model("nb201", a, seed=s)) for s, a in enumerate((one, three))}
    assert drawn[one] != drawn[three]  # one draw separates them by noise only
