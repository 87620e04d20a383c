"""The tidy results tables of one config: their columns, how they are read and written.

- ``metrics.csv``: one row per run x epoch (each run once, whatever studies share it);
- ``summary.csv`` / ``summary.json``: one row per study x run: the study, the settings it
  sweeps (``study_params``), the run's settings and every per-run number of its summary.json;
- ``seed_summary.csv``: one row per study x setting, statistics across seeds;
- ``comparison.csv``: our runs beside the post's own runs.

The modules that read them (findings, compare, figures) stand side by side and import only
this ground floor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.core import schema
from hpstudy.core.atomic import atomic_path, atomic_write_json
from hpstudy.core.errors import HpstudyError
from hpstudy.core.formatting import format_value
from hpstudy.core.run_record import at_chance

RUN_COLUMNS = ["run_id", "variant", "name", "seed"]
DATA_COLUMNS = ["dataset", "image_size", "num_classes"]
# cells that hold text even when they look like numbers (kernel widths "5-5-7", key lists)
TEXT_COLUMNS = {
    "kernel_width": str, "study_params": str, "name": str, "weights": str, "unstable": str,
}  # fmt: skip


def setting_columns() -> list[str]:
    """Every training setting, in schema order (the settings columns of every table)."""
    return schema.setting_names()


def settings_cells(settings: dict) -> dict:
    """A run's settings as table cells: kernel widths as ``5-5-7``, the rest as they are."""
    return {
        key: format_value(value) if isinstance(value, list) else value
        for key, value in settings.items()
    }


def settings_of(row) -> dict:
    """The canonical settings of a table row (the inverse of :func:`settings_cells`)."""
    settings = {key: row[key] for key in setting_columns() if key in row}
    if isinstance(settings.get("kernel_width"), str):
        settings["kernel_width"] = [int(w) for w in settings["kernel_width"].split("-")]
    for key, value in list(settings.items()):
        if hasattr(value, "item"):  # numpy scalar -> Python
            settings[key] = value.item()
        if isinstance(settings[key], float) and settings[key] != settings[key]:
            settings[key] = None  # an empty cell (NaN) stands for null
    return settings


def final_accuracies(rows: pd.DataFrame, column: str = "final_test_acc") -> np.ndarray:
    """Final test accuracy (or another accuracy ``column``) per summary row, a diverged run
    counted at chance: how every verdict and figure reads a run's result."""
    return at_chance(
        rows[column].astype(float).to_numpy(),
        rows["diverged"].astype(bool).to_numpy(),
        rows["num_classes"].astype(float).to_numpy(),
    )


def study_params(row) -> list[str]:
    """The settings a summary row's study sweeps."""
    return str(row["study_params"]).split(",")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a results table; a missing file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise HpstudyError(
            f"{path} does not exist. Run `snakemake` (or `hpstudy aggregate`) first; it writes "
            "the results tables from the finished runs."
        )
    return pd.read_csv(path, dtype=TEXT_COLUMNS)


def read_tables(folder: str | Path, *names: str) -> list[pd.DataFrame]:
    """Several tables of one results folder, e.g. ``read_tables(d, "summary.csv")``."""
    return [read_table(Path(folder) / name) for name in names]


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table as CSV atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_records(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table as a JSON list of records atomically (NaN becomes null)."""
    atomic_write_json(path, json.loads(table.to_json(orient="records")))
