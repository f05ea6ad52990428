"""Bad input never shows a traceback, never wastes an hour, never loses a file or a number (issue 20).

The table `CASES` runs the command line in this process (`multipredict.cli.main`) on a bad input
each; every case must exit with status 2, print exactly one line on stderr starting
``multipredict: error:``, show no traceback, and leave every file of its folder as it was. Add a
case for every new subcommand or option.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multipredict import cli, outputs
from multipredict.data import fetch, formats, sources
from multipredict.errors import DataError, MultipredictError

ROOT = Path(__file__).resolve().parents[1]
READ_ONLY = Path("/sys/kernel")  # read-only even for root, unlike a chmod-ed folder
needs_read_only = pytest.mark.skipif(not READ_ONLY.is_dir() or outputs.writable(READ_ONLY),
                                     reason=f"needs a folder nobody can write to ({READ_ONLY})")

GOOD_ROWS = "arch,latency_ms\n" + "".join(f"{i},{1 + 0.1 * i:.2f}\n" for i in range(20))
DIR = None  # in `files`: make a folder


def _rows(replace: dict[int, str]) -> str:
    lines = GOOD_ROWS.splitlines()
    for index, text in replace.items():
        lines[index] = text
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    id: str
    argv: list[str]
    files: dict[str, str | bytes | None] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    expect: str = ""  # a piece of the message
    absent: str = ""  # must not be in the message
    marks: tuple = ()
    subprocess: bool = False  # needs a fresh process (tables already cached in this one)

    def param(self):
        return pytest.param(self, id=self.id, marks=self.marks)


ONBOARD = ["onboard", "--space", "nb201", "--measurements", "m.csv"]
REPRO = ["reproduce", "table3", "--quick", "--methods", "HELP", "--out", "repro"]
CASES = [
    # data
    Case("data-fetch-unknown-source", ["data", "fetch", "help-nb999", "--quiet"], expect="help-nb999"),
    Case("data-fetch-all-and-names", ["data", "fetch", "--all", "help-nb201"], expect="either --all or source"),
    Case("data-fetch-nothing", ["data", "fetch"], expect="--all"),
    Case("data-fetch-read-only-cache", ["data", "fetch", "help-nb201", "--quiet"],
         env={"MULTIPREDICT_CACHE": str(READ_ONLY / "mp-cache")}, expect="MULTIPREDICT_CACHE",
         marks=(needs_read_only,)),
    Case("data-report-bad-format", ["data", "report", "--format", "xml"], expect="'xml'"),
    # devices
    Case("devices-unknown-space", ["devices", "--space", "nb999"], expect="valid spaces"),
    Case("devices-local-fbnet", ["devices", "--space", "fbnet"], env={"MULTIPREDICT_DATA": "local"},
         expect="MULTIPREDICT_DATA=benchmarks", absent="batch"),
    Case("devices-bad-data-source", ["devices", "--space", "nb201"], env={"MULTIPREDICT_DATA": "offline"},
         expect="valid data sources: benchmarks, local, all", absent="DATAs"),
    Case("devices-unknown-flag", ["devices", "--space", "nb201", "--colour"], expect="--colour"),
    # distance
    Case("distance-device-twice", ["distance", "--space", "fbnet", "--train", "pixel3,pixel3", "--test", "raspi4"],
         expect="listed 2 times"),
    Case("distance-same-train-test", ["distance", "--space", "fbnet", "--train", "pixel3", "--test", "pixel3"],
         expect="both a train and a test"),
    Case("distance-unknown-device", ["distance", "--space", "fbnet", "--train", "toaster", "--test", "raspi4"],
         expect="toaster"),
    Case("distance-no-test", ["distance", "--space", "fbnet", "--train", "pixel3"], expect="no test devices"),
    Case("distance-preset-other-space", ["distance", "--space", "nb201", "--preset", "fbnet-default"],
         expect="--space fbnet"),
    Case("distance-read-only-cache", ["distance", "--space", "fbnet", "--train", "pixel3", "--test", "raspi4"],
         env={"MULTIPREDICT_CACHE": str(READ_ONLY / "mp-cache")}, expect="MULTIPREDICT_CACHE",
         marks=(needs_read_only,), subprocess=True),
    # reproduce
    Case("reproduce-repeats-0", ["reproduce", "table3", "--repeats", "0", "--out", "repro"], expect="--repeats 0"),
    Case("reproduce-repeats-negative", ["reproduce", "table3", "--repeats", "-3", "--out", "repro"],
         expect="--repeats -3"),
    Case("reproduce-quick-repeats-0", [*REPRO, "--repeats", "0"], expect="--repeats 0"),
    Case("reproduce-quick-repeats-3", [*REPRO, "--repeats", "3"], expect="--quick runs 1 repeat"),
    Case("reproduce-workers-negative", [*REPRO, "--executor", "processes", "--workers", "-2"], expect="--workers: -2"),
    Case("reproduce-workers-0", [*REPRO, "--executor", "processes", "--workers", "0"], expect="--workers: 0"),
    Case("reproduce-samples-too-many", [*REPRO, "--samples", "100000"], expect="100000"),
    Case("reproduce-samples-not-a-number", [*REPRO, "--samples", "ten"], expect="'ten'"),
    Case("reproduce-out-is-a-file", ["reproduce", "table3", "--quick", "--out", "afile"], files={"afile": "x"},
         expect="is a file"),
    Case("reproduce-out-read-only", ["reproduce", "table3", "--quick", "--out", str(READ_ONLY / "repro")],
         expect="not writable", marks=(needs_read_only,)),
    Case("reproduce-unknown-method", ["reproduce", "table3", "--methods", "HELLO", "--out", "repro"], expect="HELLO"),
    Case("reproduce-unknown-part", ["reproduce", "table2", "--parts", "nb999", "--out", "repro"], expect="nb999"),
    Case("reproduce-unknown-table", ["reproduce", "table9", "--out", "repro"], expect="table9"),
    Case("reproduce-local-data", ["reproduce", "table1", "--methods", "HELP", "--out", "repro"],
         env={"MULTIPREDICT_DATA": "local"}, expect="MULTIPREDICT_DATA"),
    Case("reproduce-option-not-key-value", [*REPRO, "--option", "target_lr"], expect="KEY=VALUE"),
    Case("reproduce-option-bad-type", ["reproduce", "table3", "--quick", "--methods", "TL Vec ET", "--out", "repro",
                                        "--option", "target_lr=abc"], expect="abc"),
    Case("reproduce-option-unknown", [*REPRO, "--option", "foo=bar"], expect="foo"),
    # accuracy figures and the task catalogue (issue 17)
    Case("tasks-unknown-space", ["tasks", "--space", "nb999"], expect="nb999"),
    Case("fig9-unknown-task", ["reproduce", "fig9", "--quick", "--tasks", "nb201/cifar10,nb201/cifar11", "--out",
                               "repro"], expect="'cifar11'"),
    Case("fig9-task-not-space-slash-task", ["reproduce", "fig9", "--quick", "--tasks", "cifar10,nb201/cifar100",
                                            "--out", "repro"], expect="'cifar10' is not 'space/task'"),
    Case("fig9-source-is-target", ["reproduce", "fig9", "--quick", "--tasks", "nb201/cifar10", "--out", "repro"],
         expect="transferred to itself"),
    Case("fig9-samples-above-pool", ["reproduce", "fig9", "--quick", "--tasks", "nb201/cifar10,nb201/svhn",
                                     "--samples", "300", "--out", "repro"], expect="pool of 197"),
    Case("fig9-proxy-missing", ["reproduce", "fig9", "--quick", "--tasks", "nb201/cifar10,nb101/cifar10",
                                "--proxy-set", "nwot,jacov", "--out", "repro"], expect="has no 'nwot' proxy"),
    Case("fig9-unknown-proxy", ["reproduce", "fig9", "--quick", "--tasks", "nb201/cifar10,nb201/cifar100",
                                "--proxy-set", "foo", "--out", "repro"], expect="'foo'"),
    Case("fig9-source-fraction", ["reproduce", "fig9", "--quick", "--source-fraction", "1.5", "--out", "repro"],
         expect="--source-fraction 1.5"),
    Case("fig8-unknown-arm", ["reproduce", "fig8", "--quick", "--methods", "ZCP,Foo", "--out", "repro"],
         expect="'Foo'"),
    Case("fig8-option-bad", ["reproduce", "fig8", "--quick", "--option", "lr=abc", "--out", "repro"], expect="abc"),
    Case("fig15-quick-repeats", ["reproduce", "fig15", "--quick", "--repeats", "3", "--out", "repro"],
         expect="--quick runs 1 repeat"),
    Case("onboard-summary-not-json", ["onboard", "--space", "nb201", "--measurements", "m.csv", "--summary", "s.txt"],
         files={"m.csv": GOOD_ROWS}, expect="--summary 's.txt'"),
    Case("onboard-summary-is-the-measurements", ["onboard", "--space", "nb201", "--measurements", "m.json",
                                                 "--summary", "m.json"], files={"m.json": GOOD_ROWS},
         expect="--summary"),
    Case("fig7-unknown-device", ["reproduce", "fig7", "--quick", "--devices", "fpga,foo", "--out", "repro"],
         expect="'foo'"),
    Case("fig7-bad-source-archs", ["reproduce", "fig7", "--quick", "--source-archs", "0", "--out", "repro"],
         expect="source_archs=0"),
    Case("fig7-unknown-source", ["reproduce", "fig7", "--quick", "--sources", "nb101", "--out", "repro"],
         expect="'nb101'"),
    Case("fig7-samples-1", ["reproduce", "fig7", "--quick", "--samples", "1,4", "--out", "repro"], expect="samples=1"),
    Case("fig7-option-not-offered", ["reproduce", "fig7", "--quick", "--option", "lr=1", "--out", "repro"],
         expect="--option does not apply to fig7"),
    Case("table1-devices", ["reproduce", "table1", "--devices", "fpga", "--out", "repro"], expect="fig7 only"),
    Case("fig10-unknown-arm", ["reproduce", "fig10", "--quick", "--methods", "foo", "--out", "repro"], expect="'foo'"),
    Case("fig10-budget-too-small", ["reproduce", "fig10", "--quick", "--budget", "5", "--out", "repro"],
         expect="budget=5"),
    Case("fig10-unknown-dataset", ["reproduce", "fig10", "--quick", "--datasets", "svhn", "--out", "repro"],
         expect="'svhn'"),
    Case("search-unknown-encoding", ["search", "--encoding", "foo", "--out", "s"], expect="'foo'"),
    Case("search-other-space", ["search", "--space", "fbnet", "--out", "s"], expect="nb201"),
    Case("search-budget-too-small", ["search", "--budget", "3", "--out", "s"], expect="--budget"),
    # suggest (issue 21)
    Case("suggest-k-above-candidates", ["suggest", "--space", "nb201", "--k", "5", "--candidates", "c.csv", "--out",
                                        "s.csv"], files={"c.csv": "arch\n1\n2\n3\n"}, expect="k=5 is more than the 3"),
    Case("suggest-unknown-candidate", ["suggest", "--space", "nb201", "--k", "1", "--candidates", "c.csv", "--out",
                                       "s.csv"], files={"c.csv": "arch\n1\nfoo\n"}, expect="line 3"),
    Case("suggest-measured-outside-candidates", ["suggest", "--space", "nb201", "--k", "1", "--candidates", "c.csv",
                                                 "--measured", "m.csv", "--out", "s.csv"],
         files={"c.csv": "arch\n1\n2\n3\n", "m.csv": "arch\n7\n"}, expect="not among the candidates"),
    Case("suggest-all-measured", ["suggest", "--space", "nb201", "--k", "1", "--candidates", "c.csv", "--measured",
                                  "c.csv", "--out", "s.csv"], files={"c.csv": "arch\n1\n2\n"},
         expect="already measured"),
    Case("suggest-unknown-space", ["suggest", "--space", "nb999", "--k", "1", "--out", "s.csv"], expect="nb999"),
    Case("suggest-k-0", ["suggest", "--space", "nb201", "--k", "0", "--out", "s.csv"], expect="--k"),
    Case("suggest-active-without-latency", ["suggest", "--space", "nb201", "--k", "1", "--strategy", "active",
                                            "--measured", "m.csv", "--out", "s.csv"], files={"m.csv": "arch\n7\n"},
         expect="latency_ms"),
    Case("suggest-no-arch-column", ["suggest", "--space", "fbnet", "--k", "1", "--candidates", "c.csv", "--out",
                                    "s.csv"], files={"c.csv": "id\n1\n"}, expect="'arch'"),
    # zcp
    Case("zcp-out-read-only", ["zcp", "--space", "nb201", "--archs", "0-1", "--out", str(READ_ONLY / "z.csv")],
         expect="not writable", marks=(needs_read_only,)),
    Case("zcp-out-is-a-folder", ["zcp", "--space", "nb201", "--archs", "0-1", "--out", "folder"],
         files={"folder": DIR}, expect="is a folder"),
    Case("zcp-out-under-a-file", ["zcp", "--space", "nb201", "--archs", "0-1", "--out", "afile/z.csv"],
         files={"afile": "x"}, expect="is a file"),
    Case("zcp-workers-0", ["zcp", "--space", "nb201", "--archs", "0-1", "--out", "z.csv", "--workers", "0"],
         expect="--workers"),
    Case("zcp-unknown-proxy", ["zcp", "--space", "nb201", "--archs", "0-1", "--out", "z.csv", "--proxies", "foo"],
         expect="unknown proxy 'foo'; valid proxies:"),
    Case("zcp-unknown-space", ["zcp", "--space", "nb999", "--archs", "0-1", "--out", "z.csv"], expect="nb999"),
    Case("zcp-images-missing", ["zcp", "--space", "nb201", "--archs", "0", "--out", "z.csv", "--images", "nowhere"],
         expect="--images"),
    # measure
    Case("measure-unknown-profile", ["measure", "--space", "nb201", "--device", "toaster", "--archs", "0",
                                     "--out", "lat.csv"], expect="toaster"),
    Case("measure-missing-flags", ["measure", "--space", "nb201"], expect="--device"),
    Case("measure-out-read-only", ["measure", "--space", "nb201", "--device", "cpu-1t-b1", "--archs", "0",
                                   "--out", str(READ_ONLY / "lat.csv")], expect="not writable",
         marks=(needs_read_only,)),
    Case("measure-out-is-a-folder", ["measure", "--space", "nb201", "--device", "cpu-1t-b1", "--archs", "0",
                                     "--out", "folder"], files={"folder": DIR}, expect="is a folder"),
    # onboard
    Case("onboard-out-is-the-input", [*ONBOARD, "--out", "m.csv"], files={"m.csv": GOOD_ROWS},
         expect="is the input file"),
    Case("onboard-out-is-the-input-by-another-path", [*ONBOARD, "--out", "./sub/../m.csv"],
         files={"m.csv": GOOD_ROWS, "sub": DIR}, expect="is the input file"),
    Case("onboard-out-under-a-file", [*ONBOARD, "--out", "afile/pred.csv"], files={"m.csv": GOOD_ROWS, "afile": "x"},
         expect="is a file"),
    Case("onboard-out-read-only", [*ONBOARD, "--out", str(READ_ONLY / "pred.csv")], files={"m.csv": GOOD_ROWS},
         expect="not writable", marks=(needs_read_only,)),
    Case("onboard-folds-0", [*ONBOARD, "--folds", "0"], files={"m.csv": GOOD_ROWS}, expect=">= 2"),
    Case("onboard-folds-1", [*ONBOARD, "--folds", "1"], files={"m.csv": GOOD_ROWS}, expect=">= 2"),
    Case("onboard-starts-0", [*ONBOARD, "--starts", "0"], files={"m.csv": GOOD_ROWS}, expect="--starts: 0"),
    Case("onboard-starts-above-sources", [*ONBOARD, "--sources", "pixel3,silver_4114", "--starts", "3"],
         files={"m.csv": GOOD_ROWS}, expect="--starts 3 (eq1_starts) asks for more starts than the 2 source devices"),
    Case("onboard-inf-latency", ONBOARD, files={"m.csv": _rows({5: "4,inf"})}, expect="line 6: inf"),
    Case("onboard-nan-latency", ONBOARD, files={"m.csv": _rows({5: "4,nan"})}, expect="line 6"),
    Case("onboard-negative-latency", ONBOARD, files={"m.csv": _rows({5: "4,-1"})}, expect="line 6"),
    Case("onboard-empty-file", ONBOARD, files={"m.csv": ""}, expect="is empty"),
    Case("onboard-not-utf8", ONBOARD, files={"m.csv": GOOD_ROWS.encode() + b"\xe9\xff,3\n"},
         expect="line 22: not UTF-8"),
    Case("onboard-empty-arch-cell", ONBOARD, files={"m.csv": _rows({5: ",1.5"})}, expect="line 6",
         absent="line 2:"),
    Case("onboard-measurements-is-a-folder", ONBOARD, files={"m.csv": DIR}, expect="is a folder"),
    Case("onboard-measurements-missing", ONBOARD, expect="does not exist"),
    Case("onboard-semicolons", ONBOARD, files={"m.csv": GOOD_ROWS.replace(",", ";")}, expect="line 1"),
    Case("onboard-wrong-header", ONBOARD, files={"m.csv": GOOD_ROWS.replace("latency_ms", "ms")},
         expect="line 1: expected columns"),
    Case("onboard-too-many-fields", ONBOARD, files={"m.csv": _rows({5: "4,1.5,9"})}, expect="line 6"),
    Case("onboard-unknown-arch", ONBOARD, files={"m.csv": _rows({5: "99999,1.5"})}, expect="99999"),
    Case("onboard-too-few-rows", ONBOARD, files={"m.csv": "arch,latency_ms\n1,1.0\n2,2.0\n"}, expect="at least"),
    Case("onboard-unknown-source", [*ONBOARD, "--sources", "pixel3,toaster"], files={"m.csv": GOOD_ROWS},
         expect="toaster"),
    Case("onboard-name-is-a-source", [*ONBOARD, "--sources", "pixel3", "--name", "pixel3"],
         files={"m.csv": GOOD_ROWS}, expect="--name"),
    Case("onboard-source-epochs-0", [*ONBOARD, "--source-epochs", "0"], files={"m.csv": GOOD_ROWS}, expect=">= 1"),
    # run (a stored spec)
    Case("run-spec-missing", ["run", "nowhere.yaml", "--out", "runs"], expect="nowhere.yaml"),
    Case("run-workers-0", ["run", "spec.yaml", "--out", "runs", "--executor", "processes", "--workers", "0"],
         files={"spec.yaml": "name: x\n"}, expect="--workers: 0"),
    Case("run-out-is-a-file", ["run", "spec.yaml", "--out", "afile"], files={"spec.yaml": "name: x\n", "afile": "x"},
         expect="is a file"),
    # encode / predict (your own models)
    Case("encode-models-missing", ["encode", "--models", "nowhere", "--out", "enc.parquet"], expect="'nowhere'"),
    Case("encode-no-onnx-files", ["encode", "--models", "m", "--out", "enc.parquet"], files={"m/notes.txt": "x"},
         expect="no .onnx files"),
    Case("predict-encodings-missing", ["predict", "--encodings", "e.parquet", "--measurements", "m.csv", "--out",
                                       "p.csv"], files={"m.csv": "model,latency_ms\na,1\n"}, expect="e.parquet"),
    Case("predict-encodings-pickle", ["predict", "--encodings", "e.pkl", "--measurements", "m.csv", "--out", "p.csv"],
         files={"e.pkl": b"\x80\x04N.", "m.csv": "model,latency_ms\na,1\n"}, expect="pickle"),
    # the command line itself
    Case("no-command", [], expect="command"),
    Case("unknown-command", ["frobnicate"], expect="frobnicate"),
]


def _no_work(*args, **kwargs):
    raise AssertionError("the expensive work started before the bad input was refused")


# what each command does once its inputs are valid: never reached by a bad input
EXPENSIVE = [("multipredict.experiments.reproduce", "reproduce"), ("multipredict.onboard", "onboard"),
             ("multipredict.proxies.runner", "run_zcp"), ("multipredict.measure.runner", "measure_archs")]


def _make(root: Path, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is DIR:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_mtime_ns, None if p.is_dir() else p.read_bytes())
            for p in root.rglob("*")}


def _run_in_subprocess(argv: list[str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "multipredict.cli", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, done.stderr


def _check_one_line(code: int, err: str, case: Case) -> str:
    lines = err.strip().splitlines()
    assert code == 2, f"exit status {code}, stderr: {err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"{len(lines)} lines on stderr: {err}"
    assert lines[0].startswith("multipredict: error: "), lines[0]
    assert case.expect in lines[0], f"{case.expect!r} not in {lines[0]!r}"
    assert not case.absent or case.absent not in lines[0], lines[0]
    return lines[0]


def test_the_table_covers_every_subcommand_and_reports_its_size():
    commands = {" ".join(c.argv[:2]) if c.argv[:1] == ["data"] else (c.argv[0] if c.argv else "") for c in CASES}
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    expected = {name for name in subcommands.choices if name != "data"} | {"data fetch", "data report"}
    assert expected <= commands, f"subcommands without a bad-input case: {sorted(expected - commands)}"
    print(f"\n{len(CASES)} bad-input cases over {len(expected)} subcommands")


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case: Case, tmp_path, monkeypatch, capsys):
    if case.argv[:1] == ["run"] and "run" not in cli.build_parser()._subparsers._group_actions[0].choices:
        pytest.skip("no `run` subcommand in this checkout")
    _make(tmp_path, case.files)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MULTIPREDICT_DEBUG", raising=False)
    monkeypatch.setenv("MULTIPREDICT_RESULTS", str(tmp_path / "results"))
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    for module, name in EXPENSIVE:
        monkeypatch.setattr(importlib.import_module(module), name, _no_work)
    before = _snapshot(tmp_path)
    if case.subprocess:
        code, err = _run_in_subprocess(case.argv, tmp_path)
    else:
        code = cli.main(case.argv)
        err = capsys.readouterr().err
    _check_one_line(code, err, case)
    assert _snapshot(tmp_path) == before, "a refused command wrote or changed files"


def test_a_bad_onboard_out_fails_before_any_work(tmp_path, monkeypatch, capsys):
    """The better part of an hour of pretraining must not run before a bad --out is found."""
    (tmp_path / "m.csv").write_text(GOOD_ROWS)
    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    code = cli.main([*ONBOARD, "--out", "afile/pred.csv"])
    seconds = time.perf_counter() - started
    assert code == 2 and "is a file" in capsys.readouterr().err
    print(f"\nonboard --out under a file refused in {seconds:.3f} s (in-process)")
    assert seconds < 2.0


def test_an_internal_error_says_so_names_debug_and_exits_1(monkeypatch, capsys):
    def broken(args):
        raise KeyError("batch")  # a bug deep inside: never shown as if it were a message

    monkeypatch.delenv("MULTIPREDICT_DEBUG", raising=False)
    monkeypatch.setattr(cli, "cmd_devices", broken)
    code = cli.main(["devices", "--space", "nb201"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "internal error" in err and "--debug" in err and "multipredict: error: batch" not in err
    for argv, env in ((["--debug", "devices", "--space", "nb201"], None), (["devices", "--space", "nb201", "--debug"],
                      None), (["devices", "--space", "nb201"], "1")):
        if env:
            monkeypatch.setenv("MULTIPREDICT_DEBUG", env)
        assert cli.main(argv) == 1
        assert "Traceback" in capsys.readouterr().err


def test_debug_shows_the_traceback_of_an_expected_error_too(monkeypatch, capsys):
    monkeypatch.delenv("MULTIPREDICT_DEBUG", raising=False)
    assert cli.main(["devices", "--space", "nb999", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("multipredict: error: unknown space")


# ---- input files --------------------------------------------------------------------------------

@pytest.mark.parametrize("encode", [
    pytest.param(lambda text: text.encode(), id="utf8"),
    pytest.param(lambda text: b"\xef\xbb\xbf" + text.encode(), id="utf8-bom"),
    pytest.param(lambda text: text.replace("\n", "\r\n").encode(), id="crlf"),
    pytest.param(lambda text: b"\xef\xbb\xbf" + text.replace("\n", "\r\n").replace(",", ", ").encode(),
                 id="bom-crlf-spaces"),
])
def test_measurements_in_any_common_utf8_form_are_read(encode, tmp_path):
    from multipredict.onboard import read_measurements

    path = tmp_path / "m.csv"
    path.write_bytes(encode(GOOD_ROWS))
    table = read_measurements("nb201", path)
    assert table["arch_id"].tolist() == list(range(20))
    np.testing.assert_allclose(table["latency_ms"], [1 + 0.1 * i for i in range(20)])


def test_a_frame_with_a_gap_in_its_id_column_names_only_that_row():
    from multipredict.onboard import read_measurements

    frame = pd.DataFrame({"arch": [float(i) for i in range(10)], "latency_ms": np.arange(1.0, 11.0)})
    assert read_measurements("nb201", frame)["arch_id"].tolist() == list(range(10))
    frame.loc[3, "arch"] = np.nan
    with pytest.raises(MultipredictError, match=r"1 unknown nb201 arch\(s\):\n  line 5: the arch cell is empty$"):
        read_measurements("nb201", frame)


# ---- the results store heals --------------------------------------------------------------------

def _fake_method(*, space, train_devices, test_devices, samples, seed, protocol="paper", fail=False, **options):
    _fake_method.calls += 1
    if fail:
        raise ValueError("target_lr='abc' is not a number")
    return [{"device": d, "spearman": 0.5 + 0.01 * seed, "kendall": 0.4, "n_eval": 10, "n_fewshot": samples,
             "seconds": 0.0, "pool": 10} for d in test_devices]


@pytest.fixture
def fake_method():
    from multipredict.experiments import MethodRegistry, use_registry

    _fake_method.calls = 0
    with use_registry(MethodRegistry()) as registry:
        registry.register("Fake", _fake_method)
        yield registry


def _spec(**overrides):
    from multipredict.experiments import ExperimentSpec

    fields = dict(space="fbnet", methods=["Fake"], train_devices=["1080ti_1", "pixel3"], test_devices=["raspi4"],
                  samples=[5], repeats=2, seed=0)
    return ExperimentSpec(**{**fields, **overrides})


def test_an_unreadable_store_entry_is_set_aside_and_recomputed(fake_method, tmp_path, caplog):
    from multipredict.experiments import ParquetStore, expand_trials, run_cached

    store = ParquetStore(tmp_path / "store")
    spec = _spec()
    first = run_cached(spec, store=store)
    assert _fake_method.calls == 2
    trial_file = store.trial_path(expand_trials(spec)[0].key)
    results_file = store.spec_dir(spec) / "results.parquet"
    for damaged in (trial_file, results_file):
        damaged.write_bytes(b"PAR1 this is not parquet")
    with caplog.at_level(logging.WARNING, logger="multipredict.experiments.store"):
        again = run_cached(spec, store=store)
    assert _fake_method.calls == 3  # only the damaged trial ran again
    pd.testing.assert_series_equal(again["spearman"], first["spearman"])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("moved it aside" in w and "\n" not in w for w in warnings)
    assert any(str(trial_file) in w for w in warnings) and any(str(results_file) in w for w in warnings)
    kept = list(tmp_path.rglob("*.unreadable-*"))  # kept for a look, under a new name
    assert len(kept) == 2 and all(p.read_bytes() == b"PAR1 this is not parquet" for p in kept)
    assert store.load_trial(expand_trials(spec)[0].key) is not None and store.load_results(spec) is not None


def test_a_failed_trial_is_not_stored_and_is_retried(fake_method, tmp_path):
    from multipredict.experiments import ParquetStore, run_cached

    store = ParquetStore(tmp_path / "store")
    spec = _spec(options={"fail": True}, repeats=1)
    frame = run_cached(spec, store=store)
    assert frame["error"].notna().all() and not frame.attrs["complete"]
    assert not list((tmp_path / "store").rglob("trials/*/*.parquet")) and store.load_results(spec) is None
    run_cached(spec, store=store)
    assert _fake_method.calls == 2  # tried again, not read back as a result


# ---- verified files -----------------------------------------------------------------------------

PICKLE = sources.source_file("OneProxy", "latency_data/eagle_cpu_855.pickle")


def test_the_pickle_loader_refuses_a_swapped_file(tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("MULTIPREDICT_CACHE", str(tmp_path / "cache"))
    first = formats.load_verified_pickle(PICKLE)  # fetched from the mirror, verified, unpickled
    path = fetch.cached_path(PICKLE)
    stat = path.stat()
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "code ran"))

    evil = pickle.dumps(Payload())
    evil += b"." * (stat.st_size - len(evil))  # the same size...
    path.write_bytes(evil)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the same mtime
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(DataError, match="checksum mismatch"):
        formats.load_verified_pickle(PICKLE)
    assert not marker.exists()
    assert first is not None


# ---- long jobs save on SIGTERM ------------------------------------------------------------------

def test_zcp_saves_every_finished_arch_on_sigterm(tmp_path, monkeypatch):
    from multipredict.proxies import runner

    monkeypatch.setattr(runner, "_score_arch", lambda job, arch_id, batch=None: {
        "arch_id": arch_id, **{name: float(arch_id) for name in job[1]}, "seconds": 0.0})

    def terminate_after_three(arch_id, row):
        if arch_id == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    out, before = tmp_path / "zcp.csv", signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        runner.run_zcp("nb201", range(20), out, chunk_size=8, progress=False, on_result=terminate_after_three)
    assert pd.read_csv(out)["arch_id"].tolist() == [0, 1, 2]  # saved although no checkpoint was due
    assert signal.getsignal(signal.SIGTERM) == before
