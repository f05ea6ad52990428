"""The command line: formats, the Tables 9/10 printout, and errors that list valid names."""

from __future__ import annotations

import csv
import io
import json

import pytest

from multipredict.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_distance_csv_has_one_row_per_pair(capsys):
    code, out, _ = run(capsys, "distance", "--space", "nb201", "--train", "pixel3,silver_4210r",
                       "--test", "raspi4,fpga", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["train", "test", "spearman", "kendall"]
    assert len(rows) == 4
    cell = {(r["train"], r["test"]): float(r["spearman"]) for r in rows}
    assert round(cell[("pixel3", "raspi4")], 2) == 0.97
    assert round(cell[("silver_4210r", "fpga")], 2) == 0.97


def test_distance_preset_prints_matrix_and_closest(capsys):
    code, out, _ = run(capsys, "distance", "--space", "fbnet", "--preset", "fbnet-default")
    assert code == 0
    assert "Closest training device" in out
    pixel3 = next(line for line in out.splitlines() if line.startswith("pixel3"))
    assert pixel3.split()[1:] == ["0.91", "0.96", "0.98"]  # Table 10: fpga, raspi4, eyeriss


def test_distance_json(capsys):
    code, out, _ = run(capsys, "distance", "--space", "nb201", "--train", "1080ti_256", "--test", "eyeriss",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0 and round(data["pairs"][0]["spearman"], 2) == 0.89
    assert data["closest"][0]["closest_train"] == "1080ti_256"


def test_max_correlation_drops_training_devices(capsys):
    code, out, err = run(capsys, "distance", "--space", "fbnet", "--preset", "fbnet-default",
                         "--max-correlation", "0.3", "--format", "csv")
    assert code == 0 and "1 of 9" in err
    assert {r["train"] for r in csv.DictReader(io.StringIO(out))} == {"1080ti_1"}


@pytest.mark.parametrize("argv,expected", [
    (("distance", "--space", "nb999", "--train", "a", "--test", "b"), "valid spaces: nb201, fbnet"),
    (("distance", "--space", "nb201", "--train", "pixel9", "--test", "raspi4"), "'pixel9'"),
    (("devices", "--space", "darts"), "valid spaces"),
    (("data", "fetch", "helpp"), "valid sources: help-nb201"),
    (("distance", "--space", "nb201", "--preset", "fbnet-default"), "pass --space fbnet"),
    (("zcp", "--space", "nb201", "--archs", "0,x", "--out", "unused.csv"), "not a NAS-Bench-201 arch string: 'x'"),
    (("zcp", "--space", "nb101", "--archs", "0", "--out", "unused.csv"), "valid spaces: nb201, fbnet"),
    (("onboard", "--space", "nb201", "--measurements", "missing.csv"), "missing.csv does not exist"),
])
def test_bad_names_exit_non_zero_and_list_valid_names(capsys, argv, expected):
    code, _, err = run(capsys, *argv)
    assert code != 0
    assert expected in err


def test_devices_json_and_data_report(capsys):
    code, out, _ = run(capsys, "devices", "--space", "fbnet", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 27
    code, out, _ = run(capsys, "data", "report", "--files-only")
    assert code == 0 and "help-nb201" in out and "naslib-tnb101" in out


@pytest.mark.slow
def test_reproduce_quick_writes_ours_beside_the_paper(tmp_path, capsys):
    """A real `reproduce --quick` smoke run (the real methods, quick settings)."""
    code = main(["reproduce", "table3", "--quick", "--repeats", "1", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "wrote" in out
    table = list(csv.DictReader(open(tmp_path / "table3.csv")))
    assert {"method", "samples", "device", "spearman_mean", "spearman_std", "paper"} <= set(table[0])
    by_key = {(r["method"], r["device"]): r for r in table}
    assert float(by_key[("TL Vec ET", "mean")]["paper"]) == 0.96  # the published cell sits beside ours
    for row in table:
        if row["spearman_mean"]:
            assert -1.0 <= float(row["spearman_mean"]) <= 1.0
    assert {r["device"] for r in table} >= {"fpga", "raspi4", "eyeriss", "mean"}


def test_reproduce_options_are_parsed_and_checked(tmp_path, capsys):
    from multipredict.cli import parse_option

    assert parse_option("target_lr=4e-4") == ("target_lr", 4e-4)
    assert parse_option("source_epochs=3") == ("source_epochs", 3)
    assert parse_option("target_labels=matched") == ("target_labels", "matched")
    assert parse_option("hwl_devices=none") == ("hwl_devices", None)
    code = main(["reproduce", "table3", "--option", "target_lr", "--out", str(tmp_path), "--quiet"])
    assert code != 0 and "KEY=VALUE" in capsys.readouterr().err
    code = main(["reproduce", "table3", "--methods", "TL ET", "--out", str(tmp_path), "--quiet"])
    assert code != 0 and "TL Vec ET" in capsys.readouterr().err


def test_reproduce_samples_flag_is_checked(tmp_path, capsys):
    code = main(["reproduce", "table3", "--samples", "ten", "--out", str(tmp_path), "--quiet"])
    assert code != 0 and "--samples 'ten' is not a whole number" in capsys.readouterr().err
    code = main(["reproduce", "table3", "--samples", "0", "--out", str(tmp_path), "--quiet"])
    assert code != 0 and "few-shot budgets" in capsys.readouterr().err


def test_reproduce_parts_flag_names_the_parts(tmp_path, capsys):
    code = main(["reproduce", "table2", "--parts", "fbnet", "--out", str(tmp_path), "--quiet"])
    assert code != 0 and "fbnet-adversarial" in capsys.readouterr().err


def test_data_report_shows_the_tnb_accuracy_disagreement(capsys, monkeypatch, mirror):
    """`data report` lists the 28 accuracy tables and prints the TNB-101 zc-json vs zen-zip
    accuracy comparison (the table report itself is stubbed: building every table takes a while)."""
    import pandas as pd

    from multipredict.data import report

    names = [name for name, _ in report.table_builders()]
    accuracy_tables = [n for n in names if n.startswith("accuracy/")]
    assert len(accuracy_tables) == 28 and "accuracy/tnb101_macro/room_layout" in accuracy_tables
    table = dict(report.table_builders())["accuracy/nb201/cifar10"]()
    assert len(table) == 725 and list(table.columns)[-1] == "val_accuracy"
    monkeypatch.setattr(report, "tables_report", lambda progress=True: pd.DataFrame(
        [{"table": "stub", "column": "c", "rows": 1, "missing": 0, "sentinels": 0}]))
    code, out, _ = run(capsys, "data", "report", "--quiet")
    assert code == 0
    section = out[out.index("TNB-101 accuracy: zc json (used) against the zen zips, 14 tasks"):].splitlines()
    assert "zc json's" in section[1] and "the paper's source" in section[1]
    assert section[2].split() == ["task", "n_archs", "spearman", "max_abs_diff"]
    rows = [line.split() for line in section[3:] if line.strip().startswith("tnb101_")]
    assert len(rows) == 14 and {r[0].split("/")[0] for r in rows} == {"tnb101_micro", "tnb101_macro"}
    for task, n_archs, rho, diff in rows:
        assert int(n_archs) >= 600 and 0.85 < float(rho) <= 1.0 and float(diff) >= 0, task
    # the two files disagree most on TNB-micro class_scene (our measurement: up to 6.7 % top-1)
    assert max(rows, key=lambda r: float(r[3]))[0] == "tnb101_micro/class_scene"


def test_the_command_line_parser_does_not_import_torch():
    """Every command's parser is built before one runs: ``--help`` and a stored onboarding must not
    wait for torch (the your-models names come from a module without it)."""
    import subprocess
    import sys

    from multipredict.yourmodels import names, predict

    assert tuple(predict.PREDICTORS) == names.PREDICTOR_NAMES and predict.ENCODINGS == names.ENCODINGS
    done = subprocess.run([sys.executable, "-c", "import sys; from multipredict import cli; cli.build_parser(); "
                           "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
