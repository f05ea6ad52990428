"""benchmarks/: the results page is exactly what its generator makes of the committed CSVs, and every
script runs (``--quick``: tiny inputs, seconds) so that an engine change cannot break one silently."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_page():
    return _script("make_page")


def test_selection_counts_devices_against_random():
    """selection.py --against-random: per strategy, devices level with random at k, below it by one
    and two standard errors of the difference of the means, and level with random at 2k."""
    import pandas as pd

    rows = [("a", "random", 20, [0.90, 0.92]), ("b", "random", 20, [0.80, 0.80]), ("a", "random", 40, [0.95, 0.95]),
            ("b", "random", 40, [0.85, 0.85]), ("a", "x", 20, [0.91, 0.91]), ("b", "x", 20, [0.70, 0.72]),
            ("a", "y", 20, [0.96, 0.96]), ("b", "y", 20, [0.795, 0.795])]
    trials = pd.DataFrame([{"space": "s", "device": d, "strategy": st, "k": k, "seed": i, "spearman": v}
                           for d, st, k, values in rows for i, v in enumerate(values)])
    table = _script("selection").against_random(trials, 20).set_index("strategy")
    assert list(table.index) == ["x@20", "y@20"]
    # x: level on a (.91 = .91), .09 below on b with a standard error of .01; y: above 40 on a, .005 below on b
    # where random@20's spread is 0 and y's is 0 too, so any gap is more than two standard errors
    assert table.loc["x@20", ["level_with_random@20", "below_by_1se", "below_by_2se", "level_with_random@40"]].tolist() \
        == [1, 1, 1, 0]
    assert table.loc["y@20", ["level_with_random@20", "below_by_2se", "level_with_random@40"]].tolist() == [1, 1, 1]
    assert table.loc["x@20", "mean"] == pytest.approx(0.81) and table.loc["x@20", "random@40"] == pytest.approx(0.90)


def test_selection_reads_trials_once_each(tmp_path):
    """--from-trials keeps a trial that two runs share once (random at 2k comes with every run), and
    refuses runs that scored one trial differently."""
    import pandas as pd

    selection = _script("selection")
    first = pd.DataFrame({"space": "s", "device": "a", "strategy": ["random", "x"], "k": [40, 20], "seed": 0,
                          "spearman": [0.9, 0.8]})
    first.to_csv(tmp_path / "one.csv", index=False)
    first.assign(strategy=["random", "y"]).to_csv(tmp_path / "two.csv", index=False)
    trials = selection.read_trials([tmp_path / "one.csv", tmp_path / "two.csv"])
    assert sorted(trials["strategy"]) == ["random", "x", "y"]
    first.assign(spearman=[0.91, 0.8]).to_csv(tmp_path / "three.csv", index=False)
    with pytest.raises(SystemExit, match="scored differently"):
        selection.read_trials([tmp_path / "one.csv", tmp_path / "three.csv"])


def test_selection_keeps_trials_started_from_the_closest_device_apart(tmp_path):
    """--copy-from closest trials score the same (device, strategy, k, seed) differently from Eq. 1's:
    both are kept, summarised in their own columns, and left out of --against-random; trials written
    before the start column existed count as Eq. 1's."""
    import pandas as pd

    selection = _script("selection")
    old = pd.DataFrame({"space": "s", "device": "a", "strategy": ["random", "random", "x"], "k": [20, 40, 20],
                        "seed": 0, "spearman": [0.80, 0.90, 0.85]})
    old.to_csv(tmp_path / "eq1.csv", index=False)
    old.assign(start="closest", spearman=[0.82, 0.91, 0.89]).to_csv(tmp_path / "closest.csv", index=False)
    trials = selection.read_trials([tmp_path / "eq1.csv", tmp_path / "closest.csv"])
    assert len(trials) == 6 and sorted(trials["start"].unique()) == ["closest", "eq1"]
    row = selection.summary(trials, 20).set_index("device").loc["a"]
    assert row["x@20"] == 0.85 and row["x@20 closest"] == 0.89 and row["random@40 closest"] == 0.91
    table = selection.against_random(trials, 20).set_index("strategy")
    assert table.loc["x@20", "mean"] == 0.85 and table.loc["x@20", "random@20"] == 0.80


def test_page_is_generated_from_the_committed_csvs():
    make_page = _make_page()
    assert (BENCHMARKS / "README.md").read_text() == make_page.render(), (
        "benchmarks/README.md differs from benchmarks/manifest.yaml + benchmarks/results/: "
        "run python benchmarks/make_page.py")


def test_every_csv_the_manifest_names_exists_and_every_csv_is_named():
    make_page = _make_page()
    manifest = make_page.load_manifest()
    measured = make_page.csv_paths(manifest, pending=False)
    assert measured, "the page has no measured section"
    missing = [path for path in measured if not (ROOT / path).exists()]
    assert not missing, f"the manifest names CSVs that are not committed: {missing}"
    named = set(make_page.csv_paths(manifest))
    orphans = sorted(str(p.relative_to(ROOT)) for p in (BENCHMARKS / "results").glob("*.csv")
                     if str(p.relative_to(ROOT)) not in named)
    assert not orphans, f"CSVs under benchmarks/results/ that no section of benchmarks/manifest.yaml shows: {orphans}"
    for section in manifest["sections"]:
        assert section["description"].strip() and all(part["command"].strip() for part in section["parts"])


def test_a_pending_section_says_how_to_measure_it(tmp_path):
    make_page = _make_page()
    section = {"title": "T", "description": "d", "layout": "table",
               "parts": [{"command": "python x.py --csv benchmarks/results/x.csv", "csv": "benchmarks/results/x.csv"}]}
    text = make_page.render_section(section, root=tmp_path)
    assert "Not yet measured" in text and "python x.py --csv benchmarks/results/x.csv" in text


def test_joined_parts_stand_side_by_side_and_must_agree_on_shared_columns(tmp_path):
    make_page = _make_page()
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "a.csv").write_text("device,random@20,kcenter@20\npixel2,0.87,0.89\nmean,0.95,0.96\n")
    (results / "b.csv").write_text("device,random@20,other@20\npixel2,0.87,0.88\nmean,0.95,0.94\n")
    section = {"title": "T", "description": "d", "layout": "table", "join": "device", "digits": 2,
               "parts": [{"label": "a", "command": "a", "csv": "benchmarks/results/a.csv"},
                         {"label": "b", "command": "b", "csv": "benchmarks/results/b.csv"}]}
    text = make_page.render_section(section, root=tmp_path)
    assert "| device | random@20 | kcenter@20 | other@20 |" in text
    assert "| pixel2 | 0.87 | 0.89 | 0.88 |" in text and text.index("| pixel2") < text.index("| mean")
    (results / "b.csv").write_text("device,random@20,other@20\npixel2,0.86,0.88\nmean,0.95,0.94\n")
    with pytest.raises(ValueError, match="'random@20' differs"):
        make_page.render_section(section, root=tmp_path)


def _onboarding_args(tmp: Path) -> list[str]:
    # the lead is giving onboarding.py its own --quick; until then the smallest run its flags allow
    if "--quick" in (BENCHMARKS / "onboarding.py").read_text():
        return ["--quick"]
    return ["--source-epochs", "1", "--samples", "10"]


# script (relative to benchmarks/), its arguments ({tmp}: a temporary folder), what its output shows,
# files it must write, and whether it takes more than ~10 s on 2 shared cores
SMOKE = [
    ("make_page.py", ["--check"], "up to date", [], False),
    ("eq1_choice.py", ["--quick", "--csv", "{tmp}/eq1.csv"], "closest source", ["eq1.csv"], False),
    ("proxies_speed.py", ["--quick", "--csv", "{tmp}/speed.csv"], "fused s/arch", ["speed.csv"], False),
    ("proxies_agreement.py", ["--quick", "--out-dir", "{tmp}/zcp", "--csv", "{tmp}/agree.csv"], "synflow",
     ["agree.csv"], True),
    ("device_speed.py", ["--quick"], "TL Vec ET pretraining", [], True),
    ("help_baseline.py", ["--quick", "--csv", "{tmp}/help.csv"], "HELP on nb201", ["help.csv"], True),
    ("latency_transfer.py", ["--quick", "--csv", "{tmp}/lat.csv"], "Table 3 (fbnet)", ["lat.csv"], True),
    ("transfer_curve.py", ["--quick"], "from scratch (BRP-NAS), 50 samples", [], True),
    ("onboarding.py", _onboarding_args, "mean true", [], True),
    ("vectorised_training.py", ["--quick"], "", [], True),
    ("selection.py", ["--quick", "--csv", "{tmp}/sel.csv", "--trials", "{tmp}/t.csv"], "stratified@10",
     ["sel.csv", "t.csv"], True),
    ("selection.py", ["--quick", "--draws", "3", "--csv", "{tmp}/draws.csv"], "reach_2k_mean", ["draws.csv"], True),
    ("selection.py", ["--quick", "--strategies", "random", "--copy-from", "closest", "--trials", "{tmp}/t.csv"],
     "random@10 closest", ["t.csv"], True),
    ("selection.py", ["--quick", "--strategies", "random", "--starts", "2", "--trials", "{tmp}/t.csv"],
     "random@10 top2", ["t.csv"], True),
    ("calibration.py", ["--quick", "--csv", "{tmp}/cal.csv"], "oob", ["cal.csv"], True),
    ("calibration.py", ["--quick", "--pretrain", "halves", "--check", str(ROOT / "data/calibration/onboard_fbnet.json"),
                        "--check-csv", "{tmp}/check.csv"], "interval covers", ["check.csv"], True),
    ("fig9_baselines.py", ["--quick", "--csv", "{tmp}/b.csv"], "authors' baseline", ["b.csv"], True),
    ("replication/brpnas_recipes.py", ["--quick", "--out", "{tmp}/brp"], "eagle 20 seed 0", [], True),
    ("replication/brpnas_recipes.py", ["--quick", "--help-query"], "help query 20 seed 0", [], True),
    ("replication/authors_embedding_lookup.py", ["--quick", "--dir", "table3={tmp}/lookup", "--csv", "{tmp}/l.csv"],
     "authors_lookup", ["l.csv"], True),
    ("replication/authors_index_loop.py", ["--quick", "--pretrain-dir", "{tmp}/loop",
                                           "--emulate", "embedding_mlp,sigmoid,labels"], "lookup_summed", [], True),
    ("replication/authors_index_loop.py", ["--quick", "--table", "table1", "--rounds", "1", "--pretrain-dir", "{tmp}/loop",
                                           "--emulate", "gcn"], "lookup_summed", [], True),
]


def _case(script, args, shows, writes, slow):
    name = f"{script} {' '.join(a for a in args if '{tmp}' not in a) if isinstance(args, list) else ''}".strip()
    return pytest.param(script, args, shows, writes, id=name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("script, args, shows, writes", [_case(*entry) for entry in SMOKE])
def test_script_runs_quick(script, args, shows, writes, tmp_path):
    path = BENCHMARKS / script
    if not path.exists():
        pytest.skip(f"benchmarks/{script} is not in the tree yet")
    args = args(tmp_path) if callable(args) else [a.replace("{tmp}", str(tmp_path)) for a in args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the engine of this tree, as the tests import it
    done = subprocess.run([sys.executable, str(path), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"benchmarks/{script} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert shows in done.stdout, f"benchmarks/{script} printed no {shows!r}:\n{done.stdout[-3000:]}"
    for name in writes:
        written = tmp_path / name
        assert written.exists() and written.stat().st_size > 0, f"benchmarks/{script} wrote no {name}"
    assert not list((BENCHMARKS / "results").glob("*quick*")), "a smoke run wrote into benchmarks/results/"
