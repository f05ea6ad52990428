"""Write benchmarks/README.md, the current-results page, from the committed CSVs named in
benchmarks/manifest.yaml.

Every table on the page is rendered from one CSV under benchmarks/results/, and every section names
the command that wrote that CSV, so no number appears without its source. A section whose CSV is not
committed yet shows "not yet measured" and the command to run. Where the paper has a number, ours
stands beside it: Tables 1-4 from `multipredict.experiments.paper_numbers`, other quoted cells
from the manifest (Akhauri & Abdelfattah, AutoML-Conf 2023).

    python benchmarks/make_page.py            # rewrite benchmarks/README.md
    python benchmarks/make_page.py --check    # exit 1 if the committed page differs from the CSVs
    python benchmarks/make_page.py --quick    # the same check (the smoke test of every benchmark script)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "benchmarks" / "manifest.yaml"
PAGE = ROOT / "benchmarks" / "README.md"
RESULTS = "benchmarks/results/"
LAYOUTS = ("matrix", "reproduce", "closest", "table")


def load_manifest(path: Path = MANIFEST) -> dict:
    manifest = yaml.safe_load(path.read_text())
    for section in manifest["sections"]:
        if "parts" not in section:
            section["parts"] = [{"command": section["command"], "csv": section["csv"]}]
        if section.get("layout", "table") not in LAYOUTS:
            raise ValueError(f"section {section['title']!r}: layout {section['layout']!r}; expected one of {LAYOUTS}")
        for part in section["parts"]:
            if not part["csv"].startswith(RESULTS):
                raise ValueError(f"section {section['title']!r}: {part['csv']} is not under {RESULTS}")
    return manifest


def csv_paths(manifest: dict, pending: bool | None = None) -> list[str]:
    """Every CSV the manifest names (``pending``: only those of placeholder sections, or only the others)."""
    return [part["csv"] for section in manifest["sections"] for part in section["parts"]
            if pending is None or bool(section.get("pending")) == pending]


def _number(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.{digits}f}"


def _markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _with_paper(ours: str, paper) -> str:
    return ours if paper is None else f"{ours} [{paper:.2f}]"


def render_matrix(frame: pd.DataFrame, section: dict) -> str:
    """``rows`` x ``columns`` of ``values``; the paper's quoted cells in brackets."""
    digits = section.get("digits", 2)
    paper = {(c["row"], c["column"]): c["value"] for c in section.get("paper_cells", [])}
    rows, columns = list(dict.fromkeys(frame[section["rows"]])), list(dict.fromkeys(frame[section["columns"]]))
    cells = frame.set_index([section["rows"], section["columns"]])[section["values"]]
    table = pd.DataFrame([[f"**{r}**"] + [_with_paper(_number(cells.get((r, c)), digits), paper.get((r, c)))
                                          for c in columns] for r in rows],
                         columns=[f"{section['rows']} \\ {section['columns']}"] + columns)
    return _markdown(table)


def _summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method x samples x device: mean, std, n of Spearman over repeats, plus a ``mean`` device
    (each repeat's mean over devices, then over repeats). Takes a `multipredict reproduce` summary
    (``<table>.csv``) as it is, or its trials (``<table>_trials.csv``)."""
    if "spearman_mean" in frame:
        return frame[frame["n"] > 0]
    ok = frame[frame["error"].isna()] if "error" in frame else frame
    keys = ["method", "samples"]
    per_device = ok.groupby(keys + ["device"], sort=False)["spearman"].agg(
        spearman_mean="mean", spearman_std="std", n="count").reset_index()
    per_repeat = ok.groupby(keys + ["seed"], sort=False)["spearman"].mean()
    means = per_repeat.groupby(level=keys, sort=False).agg(spearman_mean="mean", spearman_std="std", n="count")
    return pd.concat([per_device, means.reset_index().assign(device="mean")], ignore_index=True)


def render_reproduce(frame: pd.DataFrame, section: dict) -> str:
    """`multipredict reproduce` rows: method (samples) x devices, cells ours±std [paper]."""
    from multipredict.experiments.paper_numbers import paper_numbers

    digits = section.get("digits", 3)
    summary = _summary(frame)
    published = paper_numbers(section["table"])
    paper = {(r.method, int(r.samples), r.device): r.value for r in published.itertuples()}
    devices = [d for d in dict.fromkeys(list(published["device"]) + list(summary["device"])) if d != "mean"]
    devices = [d for d in devices if d in set(summary["device"])] + ["mean"]
    lines = []
    for (method, samples), block in summary.groupby(["method", "samples"], sort=False):
        cells = {}
        for row in block.itertuples():
            ours = _number(row.spearman_mean, digits)
            if row.n > 1 and not pd.isna(row.spearman_std):
                ours += f"±{_number(row.spearman_std, digits)}"
            cells[row.device] = _with_paper(ours, paper.get((method, int(samples), row.device)))
        n = int(block["n"].max())
        label = f"{method}" + (f" ({int(samples)})" if samples else "") + f", {n} repeat{'s' * (n != 1)}"
        lines.append([label] + [cells.get(d, "") for d in devices])
    return _markdown(pd.DataFrame(lines, columns=["method (samples)"] + devices))


def render_closest(frame: pd.DataFrame, section: dict) -> str:
    """Per part and test device: the most correlated kept training device and its Spearman."""
    digits = section.get("digits", 2)
    lines = []
    for label, part in frame.groupby("part", sort=False):
        best = part.loc[part.groupby("test", sort=False)["spearman"].idxmax()]
        cells = [f"{r.train} {_number(r.spearman, digits)}" for r in best.itertuples()]
        lines.append([label, part["train"].nunique()] + cells
                     + [section.get("paper_by_part", {}).get(label, "")])
    tests = list(dict.fromkeys(frame["test"]))
    columns = ["training devices", "kept"] + [f"{t}: closest kept" for t in tests] + [section["paper_column"]]
    return _markdown(pd.DataFrame(lines, columns=columns))


def render_table(frame: pd.DataFrame, section: dict) -> str:
    """The CSV's ``columns`` (all by default; the ``part`` label only when the section has several
    parts), floats to ``digits`` (a column given as a mapping may set its own ``digits``)."""
    digits = section.get("digits", 3)
    columns = section.get("columns") or [c for c in frame.columns if c != "part" or len(section["parts"]) > 1]
    shown = frame[[c["name"] if isinstance(c, dict) else c for c in columns]].copy()
    shown.columns = [c.get("label", c["name"]) if isinstance(c, dict) else c for c in columns]
    for column, name in zip(columns, shown.columns, strict=True):
        places = column.get("digits", digits) if isinstance(column, dict) else digits
        shown[name] = [v if isinstance(v, str) else _number(v, places) for v in shown[name]]
    return _markdown(shown)


def _joined(frames: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """Parts side by side on their ``key`` column (a section's ``join``): a column that several parts
    hold appears once, and only if they agree on it (the same arm measured again must give the same
    numbers)."""
    out = frames[0].drop(columns="part")
    for frame in frames[1:]:
        frame = frame.drop(columns="part")
        for column in [c for c in frame.columns if c != key and c in out.columns]:
            mine = out.set_index(key)[column]
            theirs = frame.set_index(key)[column].reindex(mine.index)
            numeric = pd.api.types.is_numeric_dtype(mine) and pd.api.types.is_numeric_dtype(theirs)
            if not (np.allclose(mine.to_numpy(float), theirs.to_numpy(float), equal_nan=True) if numeric
                    else mine.astype(str).equals(theirs.astype(str))):
                raise ValueError(f"column {column!r} differs between the parts joined on {key!r}: rename it in one "
                                 f"part's CSV, or show the parts one below the other (no join)")
        order = list(dict.fromkeys([*out[key], *frame[key]]))  # the parts' row order (an outer merge sorts)
        out = out.merge(frame[[key] + [c for c in frame.columns if c not in out.columns]], on=key, how="outer")
        out = out.set_index(key).loc[order].reset_index()
    return out


RENDERERS = {"matrix": render_matrix, "reproduce": render_reproduce, "closest": render_closest,
             "table": render_table}


def render_section(section: dict, root: Path = ROOT) -> str:
    out = [f"## {section['title']}", "", section["description"].strip(), ""]
    commands = "\n".join(part["command"] for part in section["parts"])
    out += ["```", commands, "```", ""]
    missing = [part for part in section["parts"] if not (root / part["csv"]).exists()]
    if missing:
        out += [f"*Not yet measured: run the command above to write `{missing[0]['csv']}`.*", ""]
        return "\n".join(out)
    frames = [pd.read_csv(root / part["csv"]).assign(part=part.get("label", "")) for part in section["parts"]]
    frame = _joined(frames, section["join"]) if section.get("join") else pd.concat(frames, ignore_index=True)
    out += [RENDERERS[section.get("layout", "table")](frame, section), ""]
    sources = ", ".join(f"`{part['csv']}`" for part in section["parts"])
    measured = f" Measured at commit {section['measured']}." if section.get("measured") else ""
    written = "the commands above" if len(section["parts"]) > 1 else "the command above"
    out += [f"Source: {sources}, written by {written}.{measured}"]
    if section.get("note"):
        out += ["", section["note"].strip()]
    return "\n".join(out + [""])


def render(manifest: dict | None = None, root: Path = ROOT) -> str:
    manifest = load_manifest() if manifest is None else manifest
    out = [f"# {manifest['title']}", "", manifest["intro"].strip(), "",
           "<!-- generated by benchmarks/make_page.py from benchmarks/manifest.yaml and benchmarks/results/: "
           "edit those, not this file -->", ""]
    for section in manifest["sections"]:
        out.append(render_section(section, root))
    out += [f"## {manifest['reruns']['title']}", "", manifest["reruns"]["description"].strip(), ""]
    for item in manifest["reruns"]["items"]:
        out += [f"- {item['what']}:", "  ```", *(f"  {line}" for line in item["command"].strip().splitlines()),
                "  ```"]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed page, write nothing")
    parser.add_argument("--quick", action="store_true", help="the same as --check")
    args = parser.parse_args(argv)
    page = render()
    if args.check or args.quick:
        if PAGE.read_text() != page:
            print(f"{PAGE} differs from what the manifest and CSVs give: run python benchmarks/make_page.py",
                  file=sys.stderr)
            return 1
        print(f"{PAGE}: up to date ({len(page)} characters)")
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE} ({len(page)} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
