"""Onboarding a new device from a user's CSV: validation with clear errors, and a small real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from multipredict import onboard
from multipredict.cli import main
from multipredict.data import help
from multipredict.errors import MultipredictError


def _csv(tmp_path, rows, name="m.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["arch", "latency_ms"]).to_csv(path, index=False)
    return path


def test_ids_and_arch_strings_are_both_accepted(tmp_path):
    strings = help.nb201_arch_strings()
    path = _csv(tmp_path, [(strings[7], 1.5), (8, 2.0), ("9", 2.5), (strings[10], 3.0), (11, 3.5)])
    table = onboard.read_measurements("nb201", path)
    assert table["arch_id"].tolist() == [7, 8, 9, 10, 11]


@pytest.mark.parametrize("rows,message", [
    ([("|conv~0|", 1.0)] + [(i, 1.0) for i in range(5)], "(?s)unknown nb201 arch.*line 2.*'\\|conv~0\\|'"),
    ([(3, 1.0), (3, 2.0)] + [(i, 1.0) for i in range(10, 14)], "more than once \\(lines 2, 3\\)"),
    ([(1, -2.0)] + [(i, 1.0) for i in range(10, 14)], "positive number.*line 2: -2.0"),
    ([(1, None)] + [(i, 1.0) for i in range(10, 14)], "positive number.*line 2"),
    ([(1, 1.0), (2, 2.0)], "2 measurements; onboarding needs at least 5"),
    ([(99999, 1.0)] + [(i, 1.0) for i in range(10, 14)], "out of range"),
])
def test_bad_measurements_are_refused_with_the_line(tmp_path, rows, message):
    with pytest.raises(MultipredictError, match=message):
        onboard.read_measurements("nb201", _csv(tmp_path, rows))


def test_wrong_columns_and_missing_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,ms\n1,2\n")
    with pytest.raises(MultipredictError, match="expected columns arch,latency_ms; found \\['id', 'ms'\\]"):
        onboard.read_measurements("nb201", path)
    with pytest.raises(MultipredictError, match="does not exist"):
        onboard.read_measurements("nb201", tmp_path / "nope.csv")


@pytest.mark.slow
def test_onboarding_a_held_out_public_device(tmp_path, capsys):
    """raspi4 is held out; 20 of its measurements give a useful predictor of the rest."""
    latency = help.latency("nb201", "raspi4")
    ids = np.random.default_rng(0).choice(len(latency), 20, replace=False)
    path = _csv(tmp_path, list(zip(ids.tolist(), latency[ids])))
    out = tmp_path / "pred.csv"
    code = main(["onboard", "--space", "nb201", "--measurements", str(path), "--sources",
                 "pixel3,silver_4114,1080ti_1", "--source-epochs", "3", "--target-epochs", "20", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "cross-validated Spearman" in printed and "closest public device (Eq. 1) pixel3" in printed
    close = stats.spearmanr(help.latency("nb201", "pixel3")[ids], latency[ids]).statistic >= 0.85
    assert ("the arch body kept" if close else "fine-tuned every weight") in printed
    predictions = pd.read_csv(out)
    assert len(predictions) == 15625 and predictions["predicted_ms"].notna().all()
    unseen = predictions["measured_ms"].isna()
    rho = stats.spearmanr(predictions.loc[unseen, "predicted_ms"], latency[predictions.loc[unseen, "arch_id"]])
    assert rho.statistic > 0.7
