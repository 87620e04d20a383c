"""Expand the config's studies into the sweep: one explicit settings dict per run.

A study takes the shared ``train`` defaults, applies its ``set:`` overrides and sweeps one key
over ``values``; every run is repeated per seed. Run ids are readable, stable and path-safe,
e.g. ``learning_rate/lr-1e-04/seed-0``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

from hpstudy.config import check_against, coerce_scalars, load_config, train_settings_schema
from hpstudy.errors import HpstudyError

# short names for the swept key in run ids
PARAM_ABBREV = {
    "lr": "lr",
    "batch_size": "bs",
    "kernel_width": "kw",
    "weight_decay": "wd",
    "optimizer": "opt",
    "momentum": "mom",
    "epochs": "ep",
    "model": "model",
    "pretrained": "pretrained",
    "normalization": "norm",
    "flip": "flip",
    "precision": "prec",
}

# The modules whose source decides what a training run computes: a change to any of them
# changes every run's params, so Snakemake's params trigger retrains exactly those runs.
TRAINING_SOURCES = (
    "train.py",
    "models.py",
    "batches.py",
    "optim.py",
    "checkpoint.py",
    "devices.py",
)


def format_value(value) -> str:
    """A value as it appears in run ids: the same text for the same value, every time.

    Floats use the shortest exact scientific form (``1e-04``, ``2.5e-03``, ``1e+00``); lists
    join with ``-`` (``3-5-7``); booleans are ``true``/``false``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        for digits in range(17):
            text = f"{value:.{digits}e}"
            if float(text) == value:
                return text
        return repr(value)
    if isinstance(value, list | tuple):
        return "-".join(format_value(v) for v in value)
    return str(value)


def normalise_settings(settings: dict) -> dict:
    """Make every setting explicit and canonical (kernel width as a list of three)."""
    out = dict(settings)
    width = out["kernel_width"]
    out["kernel_width"] = [int(width)] * 3 if isinstance(width, int) else [int(w) for w in width]
    for key in ("lr", "momentum", "weight_decay"):
        out[key] = float(out[key])
    return out


def expand_sweep(config: dict) -> list[dict]:
    """One settings dict per run (config already validated), in config order.

    Each value is checked against the training-settings schema, so a bad value names its
    place (``studies.<study>.values[i]``).
    """
    schema = train_settings_schema()
    runs: list[dict] = []
    for study, spec in config["studies"].items():
        param = spec["param"]
        base = {**config["train"], **spec.get("set", {})}
        for i, value in enumerate(spec["values"]):
            merged = coerce_scalars(schema, {**base, param: value})
            value = merged[param]
            check_against(schema, merged, "the sweep", prefix=f"studies.{study}.values[{i}]")
            settings = normalise_settings(merged)
            for seed in config["seeds"]:
                run_id = f"{study}/{PARAM_ABBREV[param]}-{format_value(value)}/seed-{seed}"
                runs.append(
                    {
                        "run_id": run_id,
                        "experiment": study,
                        "param": param,
                        "value": format_value(value),
                        "seed": int(seed),
                        **settings,
                    }
                )
    ids = [r["run_id"] for r in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise HpstudyError(
            f"The sweep has duplicate runs {duplicates}: a study lists the same value twice. "
            "Remove the repeated value from that study's `values`."
        )
    return runs


def sweep_table(runs: list[dict]) -> pd.DataFrame:
    """The sweep as a table (one row per run; kernel width written as ``5-5-7``)."""
    rows = [{**r, "kernel_width": format_value(r["kernel_width"])} for r in runs]
    return pd.DataFrame(rows)


def code_digest(package_dir: Path | None = None) -> str:
    """A short sha256 over the training-relevant source files (see TRAINING_SOURCES)."""
    package_dir = package_dir or Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in TRAINING_SOURCES:
        path = package_dir / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()[:16]


def run_params(run: dict) -> str:
    """The run's settings as canonical JSON (what the train rule passes and Snakemake compares)."""
    return json.dumps(run, sort_keys=True, separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    """``hpstudy sweep --configfile F [--out CSV]``: print or write the sweep table."""
    parser = argparse.ArgumentParser(prog="hpstudy sweep", description=main.__doc__)
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--out", help="write the table as CSV here instead of printing it")
    args = parser.parse_args(argv)
    table = sweep_table(expand_sweep(load_config(args.configfile)))
    if args.out:
        table.to_csv(args.out, index=False)
    else:
        with pd.option_context("display.max_columns", None, "display.width", 200):
            sys.stdout.write(table.to_string(index=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
