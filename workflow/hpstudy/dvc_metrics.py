"""The sweep's results as a DVC metrics file: one object of numbers per run.

``results/summary.json`` is a list of rows (one per run), which ``dvc metrics show`` and
``dvc exp show`` cannot read: DVC wants a JSON object whose leaves are numbers. This writes
``{run_id: {final_test_acc: ..., best_test_acc: ..., ...}}`` from it, atomically.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from hpstudy.atomic import atomic_write_json
from hpstudy.errors import HpstudyError

# the per-run results worth comparing across commits and experiments
METRIC_FIELDS = (
    "final_test_acc",
    "best_test_acc",
    "best_epoch",
    "final_train_loss",
    "final_test_loss",
    "epochs_completed",
    "diverged",
    "total_time_s",
    "mean_epoch_time_s",
)


def metrics_by_run(rows: list[dict]) -> dict[str, dict]:
    """``{run_id: {field: number}}`` from summary rows; missing or non-finite values dropped."""
    out: dict[str, dict] = {}
    for row in rows:
        values = {}
        for name in METRIC_FIELDS:
            value = row.get(name)
            if isinstance(value, bool):
                value = int(value)  # DVC compares numbers; a flag as 0/1
            if isinstance(value, int | float) and math.isfinite(value):
                values[name] = value
        out[row["run_id"]] = values
    return out


def main(argv: list[str] | None = None) -> int:
    """``hpstudy dvc-metrics --summary S --out M``: write the DVC metrics file."""
    parser = argparse.ArgumentParser(prog="hpstudy dvc-metrics", description=__doc__)
    parser.add_argument("--summary", default="results/summary.json")
    parser.add_argument("--out", default="results/dvc_metrics.json")
    args = parser.parse_args(argv)
    try:
        rows = json.loads(Path(args.summary).read_text())
    except (OSError, ValueError) as err:
        raise HpstudyError(
            f"Cannot read the sweep summary {args.summary} ({err}). Run the workflow first "
            "(`dvc repro` or `snakemake ...`), or pass its path with --summary."
        ) from err
    atomic_write_json(args.out, metrics_by_run(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
