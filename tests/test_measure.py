"""Latency measurement: protocol statistics on known timings, profiles and their errors, both
backends on a real NB201 arch, and a run that resumes after being killed (in-process and SIGKILL).

Timings on a shared 2-core machine are noisy: no test asserts on absolute speed."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import torch

from multipredict.errors import MultipredictError
from multipredict.measure import (COLUMNS, DeviceProfile, MeasurementProtocol, OnnxRuntimeCPUBackend, TorchCPUBackend,
                                  get_profile, journal_path, load_profile, make_protocol, measure_arch, measure_archs,
                                  measure_latency, metadata_path, read_measurements, resolve_arch, summarize)
from multipredict.measure.backends import export_onnx, seeded_input
from multipredict.measure.command import add_measure_parser, parse_arch_selection
from multipredict.measure.runner import default_model_factory

# small inputs keep a real NB201 network to a few ms per call
TINY_SHAPES = {"nb201": (3, 8, 8), "fbnet": (3, 8, 8)}
QUICK = MeasurementProtocol(warmup=1, min_warmup_seconds=0.0, repeats=3, max_attempts=1)
CONV_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def tiny_profile(**changes) -> DeviceProfile:
    fields = dict(name="tiny-cpu", backend="torch-cpu", threads=1, batch=1, input_shapes=TINY_SHAPES)
    fields.update(changes)
    return DeviceProfile(**fields)


# ---------------------------------------------------------------- protocol statistics


class FakeTimedCall:
    """``run_once`` whose calls take the given milliseconds on a fake nanosecond clock."""

    def __init__(self, durations_ms):
        self.durations_ms = list(durations_ms)
        self.now_ns = 0
        self.calls = 0

    def clock(self) -> int:
        return self.now_ns

    def __call__(self) -> None:
        self.now_ns += int(round(self.durations_ms[self.calls] * 1e6))
        self.calls += 1


def test_summarize_known_samples():
    stats = summarize([3.0, 1.0, 100.0, 2.0, 4.0])
    assert stats.median_ms == 3.0
    assert (stats.q25_ms, stats.q75_ms, stats.spread_ms) == (2.0, 4.0, 2.0)
    assert stats.mean_ms == pytest.approx(22.0)
    assert (stats.min_ms, stats.max_ms, stats.repeats) == (1.0, 100.0, 5)
    assert stats.outlying_samples == 1  # 100 lies beyond Q3 + 1.5 IQR = 7
    assert stats.relative_spread == pytest.approx(2 / 3)


def test_summarize_rejects_too_few_or_bad_samples():
    with pytest.raises(MultipredictError, match="at least 3 timed calls; got 2"):
        summarize([1.0, 2.0])
    with pytest.raises(MultipredictError, match="finite and non-negative"):
        summarize([1.0, float("nan"), 2.0])


def test_noisy_attempt_is_measured_again_and_quiet_one_kept():
    protocol = MeasurementProtocol(warmup=2, min_warmup_seconds=0, repeats=5, max_relative_spread=0.25, max_attempts=3)
    noisy = [50, 50] + [1, 2, 3, 4, 100]  # warm-up calls, then IQR/median = 2/3
    quiet = [9, 9] + [10, 10, 10, 11, 10]  # IQR 0
    fake = FakeTimedCall(noisy + quiet)
    result = measure_latency(fake, protocol, clock=fake.clock)
    assert fake.calls == 14  # two attempts of 2 warm-up + 5 timed calls; no third attempt
    assert result.attempts == 2 and not result.outlier
    assert result.latency_ms == pytest.approx(10.0)
    assert result.stats.spread_ms == pytest.approx(0.0)
    assert result.samples_ms == pytest.approx((10, 10, 10, 11, 10))


def test_always_noisy_arch_is_flagged_with_its_least_noisy_attempt():
    protocol = MeasurementProtocol(warmup=0, min_warmup_seconds=0, repeats=5, max_relative_spread=0.1, max_attempts=3)
    attempts = [[1, 2, 3, 4, 5], [8, 9, 10, 11, 12], [1, 5, 10, 15, 20]]  # relative spreads 2/3, 0.2, 1
    fake = FakeTimedCall([d for attempt in attempts for d in attempt])
    result = measure_latency(fake, protocol, clock=fake.clock)
    assert result.outlier and result.attempts == 3
    assert result.latency_ms == pytest.approx(10.0)
    assert result.stats.relative_spread == pytest.approx(0.2)


def test_warm_up_lasts_at_least_min_warmup_seconds():
    protocol = MeasurementProtocol(warmup=1, min_warmup_seconds=0.05, repeats=3, max_attempts=1)
    fake = FakeTimedCall([10.0] * 100)
    measure_latency(fake, protocol, clock=fake.clock)
    assert fake.calls == 5 + 3  # 5 warm-up calls of 10 ms reach 50 ms, then 3 timed


def test_bad_protocol_names_the_value():
    with pytest.raises(MultipredictError, match=r"repeats.*got 2"):
        make_protocol(repeats=2)


# ---------------------------------------------------------------- profiles


def test_builtin_and_file_profiles(tmp_path):
    profile = get_profile("cpu-1t-b32")
    assert (profile.backend, profile.threads, profile.batch, profile.precision) == ("torch-cpu", 1, 32, "fp32")
    assert profile.batch_shape("nb201") == (32, 3, 32, 32)
    assert get_profile("ort-cpu-1t-b1").backend == "onnxruntime-cpu"

    yaml_file = tmp_path / "laptop.yaml"
    yaml_file.write_text("name: laptop-2t-b4\nbackend: onnxruntime-cpu\nthreads: 2\nbatch: 4\n"
                         "input_shapes: {nb201: [3, 16, 16]}\n")
    loaded = get_profile(str(yaml_file))
    assert loaded == load_profile(yaml_file)
    assert loaded.batch_shape("nb201") == (4, 3, 16, 16)
    json_file = tmp_path / "same.json"
    json_file.write_text(json.dumps(loaded.model_dump(mode="json")))
    assert get_profile(json_file) == loaded
    with pytest.raises(MultipredictError, match=r"'fbnet'.*input_shapes"):
        loaded.input_shape("fbnet")


def test_bad_profiles_name_the_value(tmp_path):
    with pytest.raises(MultipredictError, match=r"unknown device profile 'cpu-9t-b1'.*cpu-1t-b1.*yaml"):
        get_profile("cpu-9t-b1")
    bad_backend = tmp_path / "tpu.yaml"
    bad_backend.write_text("name: tpu\nbackend: tpu-v5\n")
    with pytest.raises(MultipredictError, match=r"backend.*'tpu-v5'.*torch-cpu"):
        get_profile(bad_backend)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"name": "x", "backend": "torch-cpu", "thread": 2}))
    with pytest.raises(MultipredictError, match=r"thread: Extra inputs"):
        get_profile(typo)
    with pytest.raises(MultipredictError, match=r"threads.*got 0"):
        get_profile({"name": "x", "backend": "torch-cpu", "threads": 0})
    with pytest.raises(MultipredictError, match="does not exist"):
        get_profile(tmp_path / "missing.yaml")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_profile_without_cuda_says_so(tmp_path):
    with pytest.raises(MultipredictError, match=r"'cuda-b1'.*no CUDA GPU.*cpu-1t-b1"):
        measure_archs("nb201", [CONV_ARCH], "cuda-b1", tmp_path / "lat.csv")
    assert not list(tmp_path.iterdir())  # refused before writing anything


# ---------------------------------------------------------------- archs


def test_bad_arch_or_space_fails_before_any_file(tmp_path, mirror):
    out = tmp_path / "lat.csv"
    with pytest.raises(MultipredictError, match="99999"):
        measure_archs("nb201", [0, 99999], tiny_profile(), out, protocol=QUICK, progress=False)
    with pytest.raises(MultipredictError, match="not a NAS-Bench-201 arch string: '|conv_7x7~0|"):
        resolve_arch("nb201", "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(MultipredictError, match=r"unknown space 'nb999'.*nb201"):
        measure_archs("nb999", [0], tiny_profile(), out, protocol=QUICK, progress=False)
    with pytest.raises(MultipredictError, match=r"must end in .csv or .parquet"):
        measure_archs("nb201", [0], tiny_profile(), tmp_path / "lat.xlsx", protocol=QUICK, progress=False)
    assert not list(tmp_path.iterdir())
    assert resolve_arch("nb201", "0") == resolve_arch("nb201", 0)
    assert resolve_arch("nb201", CONV_ARCH)[1] == CONV_ARCH


def test_arch_selection(tmp_path):
    (tmp_path / "archs.txt").write_text(f"# my archs\n5\n{CONV_ARCH}\n")
    assert parse_arch_selection("nb201", "0-2,7") == [0, 1, 2, 7]
    assert parse_arch_selection("fbnet", "reference")[:2] == [3328, 3790]
    randoms = parse_arch_selection("nb201", "random:4:1")
    assert len(set(randoms)) == 4 and randoms == parse_arch_selection("nb201", "random:4:1")
    from multipredict.spaces import nb201

    conv_id = nb201.arch_id(CONV_ARCH)
    assert parse_arch_selection("nb201", f"@{tmp_path / 'archs.txt'}") == [5, conv_id]
    assert parse_arch_selection("nb201", str(tmp_path / "archs.txt")) == [5, conv_id]
    assert parse_arch_selection("nb201", f"3,{CONV_ARCH}") == [3, conv_id]
    with pytest.raises(MultipredictError, match="'9-3'"):
        parse_arch_selection("nb201", "9-3")
    with pytest.raises(MultipredictError, match="'random:x'"):
        parse_arch_selection("nb201", "random:x")


# ---------------------------------------------------------------- backends


def test_torch_and_onnxruntime_give_positive_latencies_for_the_same_arch():
    torch_cpu = measure_arch("nb201", CONV_ARCH, tiny_profile(), QUICK)
    ort_cpu = measure_arch("nb201", CONV_ARCH, tiny_profile(name="tiny-ort", backend="onnxruntime-cpu"), QUICK)
    for result in (torch_cpu, ort_cpu):
        assert math.isfinite(result.latency_ms) and result.latency_ms > 0
        assert result.stats.repeats == 3 and len(result.samples_ms) == 3


def test_backends_fix_threads_and_run_the_real_model():
    model = default_model_factory("nb201", CONV_ARCH)
    before = torch.get_num_threads()
    profile = tiny_profile(threads=1, batch=2)
    with TorchCPUBackend(profile).prepared(model, profile.batch_shape("nb201")) as run_once:
        assert torch.get_num_threads() == 1 and torch.is_inference_mode_enabled()
        assert not model.training
        run_once()
    assert torch.get_num_threads() == before
    ort_profile = tiny_profile(backend="onnxruntime-cpu", threads=1, batch=2)
    backend = OnnxRuntimeCPUBackend(ort_profile)
    assert backend.session_options().intra_op_num_threads == 1
    with backend.prepared(model, ort_profile.batch_shape("nb201")) as run_once:
        run_once()


def test_onnx_export_computes_what_torch_computes(tmp_path):
    import onnxruntime as ort

    model = default_model_factory("nb201", CONV_ARCH).eval()
    x = seeded_input((2, 3, 8, 8))
    export_onnx(model, x, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x.numpy()})
    with torch.inference_mode():
        expected = model(x).numpy()
    assert logits.shape == (2, 10)
    assert abs(logits - expected).max() < 1e-4


# ---------------------------------------------------------------- runner: resume


class KilledAfter:
    """The space's model builder, raising like a kill when building its ``fail_at``-th model."""

    def __init__(self, fail_at: int | None):
        self.fail_at, self.built = fail_at, []

    def __call__(self, space: str, arch: str):
        if self.fail_at is not None and len(self.built) + 1 == self.fail_at:
            raise KeyboardInterrupt("simulated kill")
        self.built.append(arch)
        return default_model_factory(space, arch)


def test_resume_after_interrupt_measures_only_the_rest(tmp_path, mirror):
    out = tmp_path / "lat.csv"
    archs = [0, 9, 55, 431, 1462]
    first = KilledAfter(fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        measure_archs("nb201", archs, tiny_profile(), out, protocol=QUICK, progress=False, model_factory=first)
    assert len(first.built) == 2 and not out.exists()
    journal = [json.loads(line) for line in journal_path(out).read_text().splitlines()]
    assert [row["arch_id"] for row in journal] == [0, 9]
    partial, metadata = read_measurements(out)
    assert list(partial["arch_id"]) == [0, 9] and metadata["finished"] is False

    # a run killed while writing a row leaves a torn line: it must be dropped, not break the resume
    with open(journal_path(out), "ab") as f:
        f.write(b'{"arch_id": 55, "arch": "|avg_po')
    second = KilledAfter(fail_at=None)
    table = measure_archs("nb201", archs, tiny_profile(), out, protocol=QUICK, progress=False, model_factory=second)
    assert len(second.built) == 3  # only 55, 431, 1462
    assert list(table["arch_id"]) == archs and list(table.columns) == list(COLUMNS)
    saved = pd.read_csv(out)
    assert sorted(saved["arch_id"]) == sorted(archs) and saved["arch_id"].is_unique
    kept = saved.set_index("arch_id").loc[[0, 9], "latency_ms"].tolist()
    assert kept == pytest.approx([row["latency_ms"] for row in journal])  # measured once, never redone
    assert (saved["latency_ms"] > 0).all() and (saved["profile"] == "tiny-cpu").all()
    assert not journal_path(out).exists()
    metadata = json.loads(metadata_path(out).read_text())
    assert metadata["finished"] and metadata["rows"] == 5 and metadata["machine"]["cpu_model"]
    assert metadata["profile"]["input_shapes"]["nb201"] == [3, 8, 8]

    # a finished table grows: only the new arch is measured
    third = KilledAfter(fail_at=None)
    table = measure_archs("nb201", [9, 11982], tiny_profile(), out, protocol=QUICK, progress=False,
                          model_factory=third)
    assert len(third.built) == 1 and list(table["arch_id"]) == [9, 11982]
    assert len(pd.read_csv(out)) == 6

    # other settings must not be mixed into the same table
    with pytest.raises(MultipredictError, match=r"profile.batch 1 -> 2.*another --out"):
        measure_archs("nb201", archs, tiny_profile(batch=2), out, protocol=QUICK, progress=False, model_factory=third)
    with pytest.raises(MultipredictError, match=r"protocol.repeats 3 -> 4"):
        measure_archs("nb201", archs, tiny_profile(), out, protocol=QUICK.model_copy(update={"repeats": 4}),
                      progress=False, model_factory=third)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lat.csv", "lat.csv.meta.json"]  # refusals left no litter
    assert len(third.built) == 1


KILLED_RUN = textwrap.dedent("""
    import sys
    from multipredict.measure import DeviceProfile, MeasurementProtocol, measure_archs
    profile = DeviceProfile(name="tiny-cpu", backend="torch-cpu", input_shapes={"nb201": (3, 8, 8)})
    protocol = MeasurementProtocol(warmup=1, min_warmup_seconds=0.4, repeats=3, max_attempts=1)
    measure_archs("nb201", [0, 9, 55, 431, 1462, 6196], profile, sys.argv[1], protocol=protocol, progress=False)
""")


def test_resume_after_sigkill(tmp_path, mirror, monkeypatch):
    out = tmp_path / "lat.parquet"
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stderr=subprocess.PIPE)
    journal = journal_path(out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.02)
    assert child.poll() is None, f"the child ended before it could be killed: {child.stderr.read().decode()[-2000:]}"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    measured_before = [json.loads(line) for line in journal.read_bytes().decode().splitlines() if line.endswith("}")]
    assert 2 <= len(measured_before) < 6 and not out.exists()

    from multipredict.spaces import models

    built = []
    build_model = models.build_model

    def counting_build_model(space, arch, **kwargs):
        built.append(arch)
        return build_model(space, arch, **kwargs)

    monkeypatch.setattr(models, "build_model", counting_build_model)
    profile = DeviceProfile(name="tiny-cpu", backend="torch-cpu", input_shapes={"nb201": (3, 8, 8)})
    protocol = MeasurementProtocol(warmup=1, min_warmup_seconds=0.4, repeats=3, max_attempts=1)
    table = measure_archs("nb201", [0, 9, 55, 431, 1462, 6196], profile, out, protocol=protocol, progress=False)
    assert len(built) == 6 - len(measured_before)  # the resume times only what the killed run had not
    saved = pd.read_parquet(out)
    assert len(saved) == 6 and saved["arch_id"].is_unique and list(table["arch_id"]) == [0, 9, 55, 431, 1462, 6196]
    before = {row["arch_id"]: row["latency_ms"] for row in measured_before}
    assert saved.set_index("arch_id").loc[list(before), "latency_ms"].tolist() == pytest.approx(list(before.values()))


# ---------------------------------------------------------------- command


def test_measure_command_with_a_yaml_profile(tmp_path, mirror, capsys):
    profile_file = tmp_path / "tiny.yaml"
    profile_file.write_text("name: tiny-ort\nbackend: onnxruntime-cpu\nthreads: 1\nbatch: 1\n"
                            "input_shapes: {nb201: [3, 8, 8]}\n")
    parser = argparse.ArgumentParser(prog="multipredict")
    add_measure_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "lat.csv"
    args = parser.parse_args(["measure", "--space", "nb201", "--device", str(profile_file), "--archs", "0,9",
                              "--out", str(out), "--warmup", "1", "--min-warmup-seconds", "0", "--repeats", "3",
                              "--quiet"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "2 archs of nb201 on tiny-ort" in printed
    assert list(pd.read_csv(out)["arch_id"]) == [0, 9]
    assert json.loads(metadata_path(out).read_text())["machine"]["onnxruntime"]

    args = parser.parse_args(["measure", "--list-profiles"])
    assert args.func(args) == 0
    assert "ort-cpu-1t-b1" in capsys.readouterr().out
    with pytest.raises(MultipredictError, match=r"--space, --device"):
        args = parser.parse_args(["measure", "--archs", "0"])
        args.func(args)
