"""Optional TensorBoard event files for a finished run (``tensorboard: true`` in the config).

The seed browsed its curves in TensorBoard; this writes the same view from a run's
``metrics.csv`` after the fact (one scalar per metric per epoch) plus ``add_hparams`` with the
run's settings and final numbers, so training itself never depends on TensorBoard. Needs the
optional extra: ``pip install hpstudy[tensorboard]``.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

from hpstudy.core.atomic import clean_stale_temps, temp_name
from hpstudy.core.errors import HpstudyError
from hpstudy.report.aggregate import load_run, run_cells

# metrics.csv column -> TensorBoard tag
SCALAR_TAGS = {
    "train_loss": "loss/train",
    "test_loss": "loss/test",
    "train_acc": "accuracy/train",
    "test_acc": "accuracy/test",
    "lr": "optim/lr",
    "epoch_time_s": "time/epoch_s",
    "train_images_per_s": "time/train_images_per_s",
    "peak_memory_mb": "memory/peak_mb",
}
HPARAM_METRICS = ["final_test_acc", "best_test_acc", "final_test_loss", "mean_epoch_time_s"]


def summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or a clear error when tensorboard is absent."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise HpstudyError(
            "TensorBoard logging is on (`tensorboard: true` in the config) but the tensorboard "
            "package is not installed. Install the extra with `pip install hpstudy[tensorboard]` "
            "(or `pip install tensorboard`), or set `tensorboard: false`."
        ) from err
    return SummaryWriter


def hparam_dict(summary: dict) -> dict:
    """The run's settings as TensorBoard hparams (numbers, strings and bools only)."""
    cells = run_cells(summary)
    return {k: ("none" if v is None else v) for k, v in cells.items()}


def write_tensorboard(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write event files for the finished run in ``run_dir`` to ``out_dir`` (replaced whole, so
    a rerun never mixes old and new events); returns ``out_dir``."""
    writer_class = summary_writer_class()
    summary, epochs = load_run(run_dir)
    out_dir = Path(out_dir)
    clean_stale_temps(out_dir.parent)
    staging = temp_name(out_dir)
    writer = writer_class(log_dir=str(staging))
    try:
        for _, row in epochs.iterrows():
            step = int(row["epoch"])
            for column, tag in SCALAR_TAGS.items():
                if column in row and math.isfinite(float(row[column])):
                    writer.add_scalar(tag, float(row[column]), global_step=step)
        metrics = {
            f"hparam/{name}": float(summary[name])
            for name in HPARAM_METRICS
            if summary.get(name) is not None and math.isfinite(float(summary[name]))
        }
        writer.add_hparams(hparam_dict(summary), metrics, run_name=".")
    finally:
        writer.close()
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """``hpstudy tensorboard``: event files for one finished run."""
    parser = argparse.ArgumentParser(prog="hpstudy tensorboard", description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True, help="results/runs/<run_id>")
    parser.add_argument("--out-dir", required=True, help="results/tensorboard/<run_id>")
    args = parser.parse_args(argv)
    out = write_tensorboard(args.run_dir, args.out_dir)
    print(f"wrote TensorBoard events to {out} (view: tensorboard --logdir {out.parent})")
    return 0
