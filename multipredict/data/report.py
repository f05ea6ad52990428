"""What benchmark data is present, and what each table holds (sizes, missing values, sentinels)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd

from .fetch import cached_path, is_present
from .sources import GROUP_DESCRIPTIONS, files_in


ACCURACY_SOURCE_NOTE = ("The accuracy used everywhere is the zc json's (zc_<space>.json, NAS-Bench-Suite-Zero): "
                        "it is the paper's source. The zen zips carry accuracies from another NASLib commit and "
                        "are shown here for comparison only (max_abs_diff in the task's unit, see "
                        "`multipredict tasks`).")


def files_report() -> pd.DataFrame:
    """One row per source group: files present / pinned and bytes."""
    rows = []
    for group, description in GROUP_DESCRIPTIONS.items():
        files = files_in(group)
        present = [f for f in files if is_present(f)]
        rows.append({"source": group, "files": len(files), "present": len(present),
                     "bytes": sum(f.bytes for f in files), "licence": ",".join(sorted({f.licence for f in files})),
                     "description": description})
    return pd.DataFrame(rows)


def missing_files() -> list[str]:
    return [str(cached_path(f)) for g in GROUP_DESCRIPTIONS for f in files_in(g) if not is_present(f)]


def table_builders() -> list[tuple[str, Callable[[], pd.DataFrame]]]:
    """Every tidy table the data layer serves, by name (built lazily)."""
    from . import accuracy, nats, naslib, tables

    builders: list[tuple[str, Callable[[], pd.DataFrame]]] = [
        ("latency/nb201", lambda: tables.latencies("nb201")),
        ("latency/fbnet", lambda: tables.latencies("fbnet")),
        ("zcp/fbnet", lambda: tables.zcp("fbnet")),
    ]
    builders += list(nats.tables())
    builders += list(naslib.tables())
    builders += [(f"accuracy/{t.key}", partial(accuracy.task_table, t.space, t.name)) for t in accuracy.TASKS]
    return builders


def tables_report(progress: bool = True) -> pd.DataFrame:
    """One row per table column: rows, missing values, sentinels replaced by missing."""
    from tqdm.auto import tqdm

    rows = []
    for name, build in tqdm(table_builders(), desc="tables", disable=not progress):
        table = build()
        sentinels = table.attrs.get("sentinels", {})
        for column in table.columns:
            rows.append({"table": name, "column": str(column), "rows": len(table),
                         "missing": int(table[column].isna().sum()), "sentinels": int(sentinels.get(column, 0))})
    return pd.DataFrame(rows)


def accuracy_disagreement() -> pd.DataFrame:
    """TNB-101's accuracy in the zc jsons (used) against the zen zips, per task (14 rows): ``task,
    n_archs, spearman, max_abs_diff``; see `multipredict.data.accuracy.accuracy_disagreement`."""
    from . import accuracy

    return accuracy.accuracy_disagreement()
