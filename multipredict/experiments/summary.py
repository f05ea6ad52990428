"""One summary of a results table, for every front end.

``summarise(results)`` turns the runner's tidy rows (one per trial x test device) into Spearman rho's
mean and standard deviation over repeats per method x sample budget x device, plus one ``mean``
device per method and budget: each repeat's mean over the test devices first, then mean and std
over the repeats. The CLI's ``run`` and ``reproduce``, the notebooks and the dashboard's CSV download
all write this table (``reproduce`` adds the paper's numbers beside it).

Failed trials (rows with an ``error``) are counted in ``failed``, named in ``errors`` and left out
of the means; one method failing leaves every other method's cells as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

KEYS = ["space", "method", "samples", "protocol"]
STATISTICS = ["spearman_mean", "spearman_std", "kendall_mean", "n", "failed", "errors"]
SUMMARY_COLUMNS = [*KEYS, "device", *STATISTICS]
MEAN_DEVICE = "mean"


def summarise(results: pd.DataFrame | None, by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean / std of Spearman rho over repeats per ``by`` x method x samples x device, and a ``mean``
    device per group (mean over repeats of each repeat's mean over devices).

    Columns: ``by`` + ``SUMMARY_COLUMNS``. ``n`` counts the repeats with a value, ``failed`` the rows
    (for ``mean``: the repeats) that failed, ``errors`` the first error of those as
    ``"<k> failed: <error>"``. ``spearman_std`` is NaN for a single repeat. Groups keep the order in
    which ``results`` lists them, devices too, ``mean`` last.
    """
    by = list(by)
    columns = by + SUMMARY_COLUMNS
    if results is None or results.empty:
        return pd.DataFrame(columns=columns)
    frame = results.copy()
    for column in by + KEYS + ["device", "spearman", "kendall", "error"]:
        if column not in frame:
            frame[column] = np.nan if column in ("spearman", "kendall") else None
    repeat = "seed" if "seed" in frame else "repeat" if "repeat" in frame else None
    frame["_failed"] = [isinstance(e, str) and e != "" for e in frame["error"]]
    frame["_repeat"] = frame[repeat] if repeat else 0
    keys = by + KEYS
    rows = []
    # groups one at a time, never a join on keys that may be missing (NA levels lose rows in joins)
    for key, group in frame.groupby(keys, dropna=False, sort=False):
        identity = dict(zip(keys, key, strict=True))
        for device, part in group.groupby("device", dropna=False, sort=False):
            rows.append({**identity, "device": device, **_statistics(part)})
        per_repeat = group.groupby("_repeat", dropna=False, sort=False).apply(_repeat_means, include_groups=False)
        rows.append({**identity, "device": MEAN_DEVICE, **_mean_statistics(per_repeat)})
    summary = pd.DataFrame(rows, columns=columns)
    for column in keys:  # rows of dicts lose the key columns' dtypes (e.g. Int64 with NA)
        summary[column] = summary[column].astype(frame[column].dtype)
    summary["n"] = summary["n"].astype(int)
    summary["failed"] = summary["failed"].astype(int)
    return summary


def _statistics(part: pd.DataFrame) -> dict:
    ok = part[~part["_failed"]]
    spearman = ok["spearman"].dropna()
    failed = part[part["_failed"]]
    return {"spearman_mean": spearman.mean() if len(spearman) else math.nan,
            "spearman_std": spearman.std() if len(spearman) else math.nan,
            "kendall_mean": ok["kendall"].mean() if ok["kendall"].notna().any() else math.nan,
            "n": len(spearman), "failed": len(failed), "errors": _errors(failed["error"])}


def _repeat_means(repeat: pd.DataFrame) -> pd.Series:
    """One repeat of a method: its mean rho over the devices that ran, and the error if any failed."""
    ok = repeat[~repeat["_failed"]]
    errors = repeat.loc[repeat["_failed"], "error"]
    return pd.Series({"spearman": ok["spearman"].mean(), "kendall": ok["kendall"].mean(),
                      "error": errors.iloc[0] if len(errors) else None})


def _mean_statistics(per_repeat: pd.DataFrame) -> dict:
    spearman = per_repeat["spearman"].dropna()
    kendall = per_repeat["kendall"].dropna()
    failed = per_repeat["error"].dropna()
    return {"spearman_mean": spearman.mean() if len(spearman) else math.nan,
            "spearman_std": spearman.std() if len(spearman) else math.nan,
            "kendall_mean": kendall.mean() if len(kendall) else math.nan,
            "n": len(spearman), "failed": len(failed), "errors": _errors(failed)}


def _errors(errors: pd.Series) -> str | None:
    return f"{len(errors)} failed: {errors.iloc[0]}" if len(errors) else None


__all__ = ["summarise", "SUMMARY_COLUMNS", "KEYS", "MEAN_DEVICE"]
