"""Expand a validated config into its plan: the distinct runs and the studies that use them.

A study takes the shared ``train`` settings, applies its ``set:`` overrides and sweeps one key
(``param`` + ``values``) or several (``params``: key -> values, combined by ``mode``:
``product`` = every combination, ``zip`` = position by position). Every point is repeated per
seed. Equal settings written differently (``3`` / ``[3, 3, 3]``, ``1e-4`` / ``0.0001``) are one
run, and a run that two studies (or two points of one grid) share is one run too: it is trained
once and appears in each study. Runs are named by their identity (:mod:`hpstudy.training.identity`).

This is where the sweep is validated: each swept value against its setting's schema, and each
run against the data (image size against the model, pretrained weights that exist). Training
jobs then trust the settings file they are given.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hpstudy.core import schema
from hpstudy.core.atomic import json_text, write_if_changed
from hpstudy.core.config import (
    coerce_scalars,
    did_you_mean,
    has_no_validation,
    invalid,
    load_config,
    violations,
)
from hpstudy.core.formatting import format_value
from hpstudy.core.paths import PLANS_ROOT, Layout, run_id, settings_file
from hpstudy.data.variant import data_variant
from hpstudy.training import identity, models
from hpstudy.training.models import catalog


@dataclass(frozen=True)
class Run:
    """One distinct run: its settings (every setting, canonical) and its identity."""

    run_id: str
    variant: str
    name: str
    seed: int
    settings: dict
    identity: dict
    trajectory: str

    @property
    def identity_json(self) -> str:
        """The identity as canonical JSON: what the train rule's params hold."""
        return identity.canonical_json(self.identity)


@dataclass
class Study:
    """One study: the keys it sweeps and, per point and seed, the run and the point's values."""

    name: str
    params: list[str]
    mode: str
    points: list[tuple[str, dict]] = field(default_factory=list)  # (run_id, {key: value})

    def run_ids(self) -> list[str]:
        """The study's runs, in config order."""
        return list(dict.fromkeys(rid for rid, _ in self.points))


@dataclass
class Plan:
    """Every distinct run of a config and its studies."""

    runs: dict[str, Run]
    studies: dict[str, Study]
    variant: str

    def membership(self) -> dict:
        """Which runs each study holds, at which values: what ``aggregate`` reads."""
        return {
            name: {
                "params": study.params,
                "mode": study.mode,
                "points": [{"run_id": rid, "values": values} for rid, values in study.points],
            }
            for name, study in self.studies.items()
        }


def data_channels(dataset: dict) -> int:
    """The channels of the processed images (``dataset.channels``; 3 when unset)."""
    return int(dataset.get("channels", 3))


def study_axes(spec: dict) -> dict[str, list]:
    """A study's swept keys and their values (the one-key form is a one-axis grid)."""
    return dict(spec["params"]) if "params" in spec else {spec["param"]: spec["values"]}


def study_points(axes: dict[str, list], mode: str) -> list[dict]:
    """Every point of a study: each combination (product) or the lists side by side (zip)."""
    keys = list(axes)
    rows = (
        itertools.product(*axes.values()) if mode == "product" else zip(*axes.values(), strict=True)
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def checked_axes(study: str, spec: dict) -> dict[str, list]:
    """The study's axes with each value read (text that means a number becomes one) and
    checked against its setting's schema; one error lists every bad value by its place."""
    axes, problems = {}, []
    for key, values in study_axes(spec).items():
        node = schema.setting_spec(key)
        place = f"studies.{study}.{'params.' + key if 'params' in spec else 'values'}"
        read = []
        for i, value in enumerate(values):
            value = coerce_scalars(node, value)
            bad = violations(node, value, prefix=f"{place}[{i}]")
            if isinstance(value, float) and not math.isfinite(value):
                bad.append(f"{place}[{i}]: {value} is not a finite number")
            problems += bad
            read.append(value if bad else identity.canonical_value(key, value))
        axes[key] = read
    if problems:
        raise invalid("the sweep", problems)
    return axes


def run_problems(settings: dict, dataset: dict, where: str) -> list[str]:
    """What makes these settings untrainable on this data, found before any job runs."""
    name = settings["model"]
    if not catalog.is_known(name):
        return [
            f"{where}: model {name!r} is neither `custom` (the post's CNN) nor a torchvision "
            f"classification model; {did_you_mean(name, ['custom', *catalog.model_names()])}"
        ]
    problems = []
    size = dataset["image_size"]
    why = _size_problem(name, identity.canonical_json(settings["kernel_width"]), size)
    if why:
        problems.append(
            f"{where}: dataset.image_size {size} does not suit the model: {why}; change "
            "dataset.image_size, or the model or its kernel widths"
        )
    if settings["pretrained"] and catalog.weights_info(name) is None:
        problems.append(
            f"{where}: pretrained: true, but model {name!r} has no ImageNet weights; "
            "set pretrained: false"
        )
    needs = "early_stopping" if settings["early_stopping"] else None
    needs = needs or ("train_on: train+val" if settings["train_on"] == "train+val" else None)
    if needs and has_no_validation(dataset):
        problems.append(
            f"{where}: {needs} needs a validation split, and dataset.val_fraction is 0 for "
            f"data that brings none; set dataset.val_fraction (e.g. 0.2) or drop {needs}"
        )
    local = settings["weights"]
    if settings["pretrained"] and local and not Path(local).expanduser().is_file():
        problems.append(
            f"{where}: train.weights names {local}, which does not exist; point it at the "
            "model's ImageNet weights file, or leave it null to fetch them"
        )
    return problems


@functools.lru_cache(maxsize=1024)
def _size_problem(model: str, kernel_width_json: str, size: int) -> str | None:
    """:func:`models.size_problem`, once per model, kernel widths and size (a large grid asks
    it for thousands of runs that share a handful of shapes)."""
    kernel_width = json.loads(kernel_width_json)
    return models.size_problem({"model": model, "kernel_width": kernel_width}, size)


def make_run(settings: dict, seed: int, variant: str, channels: int = 3) -> Run:
    """The run of these (canonical) settings and this seed on this data variant (of images with
    ``channels`` channels). ``precision: auto`` is resolved here, where the sweep is planned,
    since it is part of the identity."""
    if settings["precision"] == "auto":
        from hpstudy.training import devices  # imports torch: only when a run asks for it

        planned = devices.planned_precision("auto", settings["device"])
        settings = {**settings, "precision": planned}
    ident = identity.run_identity(settings, seed, channels)
    name = identity.run_name(ident)
    trajectory = identity.run_name(identity.trajectory_identity(ident))
    return Run(run_id(variant, name, seed), variant, name, int(seed), settings, ident, trajectory)


def search_corners(train: dict, spec: dict) -> Iterable[dict]:
    """Settings a search can propose, enough to find one it could not train before any job
    runs: its fixed settings with each choice, and each bound, of one dimension at a time."""
    base = {**train, **spec.get("set", {})}
    yield identity.canonical_settings(base)
    for key, dimension in spec["space"].items():
        for value in dimension.get("choices", [dimension.get("low"), dimension.get("high")]):
            yield identity.canonical_settings({**base, key: value})


def build_plan(config: dict) -> Plan:
    """The plan of a validated config: distinct runs (first study's settings win for the
    execution-only ones) and every study's points, in config order."""
    variant = data_variant(config["dataset"])
    runs: dict[str, Run] = {}
    studies: dict[str, Study] = {}
    problems: list[str] = []
    checked: set[str] = set()
    for name, spec in config["studies"].items():
        axes = checked_axes(name, spec)
        study = Study(name, list(axes), spec.get("mode", "product"))
        base = {**config["train"], **spec.get("set", {})}
        for point in study_points(axes, study.mode):
            settings = identity.canonical_settings({**base, **point})
            for seed in config["seeds"]:
                run = make_run(settings, seed, variant, data_channels(config["dataset"]))
                if run.name not in checked:
                    checked.add(run.name)
                    problems += run_problems(settings, config["dataset"], f"studies.{name}")
                runs.setdefault(run.run_id, run)
                study.points.append((run.run_id, point))
        studies[name] = study
    for name, spec in config.get("search", {}).items():
        for settings in search_corners(config["train"], spec):
            problems += run_problems(settings, config["dataset"], f"search.{name}")
    if problems:
        raise invalid("the sweep", list(dict.fromkeys(problems)))
    return Plan(runs, studies, variant)


def run_spec(run: Run, layout: Layout) -> dict:
    """What the train job of ``run`` reads: its settings, identity and where it keeps its
    checkpoints, lock and (for a pretrained run) weights."""
    weights, model = None, run.settings["model"]
    if run.settings["pretrained"]:
        local = run.settings["weights"]
        fetched = catalog.weights_info(model)
        weights = (
            str(Path(local).expanduser()) if local else layout.weights_file(model, fetched["file"])
        )
    return {
        "run_id": run.run_id,
        "variant": run.variant,
        "name": run.name,
        "seed": run.seed,
        "settings": run.settings,
        "identity": run.identity,
        "trajectory": run.trajectory,
        "checkpoint_dir": layout.checkpoint_dir(run.variant, run.trajectory, run.seed),
        "checkpoint_root": layout.checkpoints,
        "lock_file": layout.lock_file(run.variant, run.trajectory, run.seed),
        "weights_path": weights,
    }


def write_run_specs(runs: Iterable[Run], layout: Layout, root: str | Path = ".") -> None:
    """Write each run's settings file (only where its content changed)."""
    root = Path(root)
    for run in runs:  # rewritten from the config at every parse: no fsync
        spec = json_text(run_spec(run, layout))
        write_if_changed(root / settings_file(run.run_id), spec, durable=False)


def write_membership(plan: Plan, root: str | Path = ".") -> str:
    """Write the studies' membership to a content-addressed file; returns its path (which
    changes exactly when a study gains, loses or relabels a run)."""
    text = json_text(plan.membership())
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = f"{PLANS_ROOT}/{digest}.json"
    write_if_changed(Path(root) / path, text)
    return path


def plan_rows(plan: Plan) -> list[dict]:
    """One row per study point and seed: what `hpstudy sweep` prints."""
    rows = []
    for study in plan.studies.values():
        for rid, values in study.points:
            run = plan.runs[rid]
            rows.append(
                {
                    "study": study.name,
                    **{key: format_value(value) for key, value in values.items()},
                    "seed": run.seed,
                    "run_id": rid,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """``hpstudy sweep --configfile F``: print the runs a config expands to."""
    parser = argparse.ArgumentParser(prog="hpstudy sweep", description=main.__doc__)
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args(argv)
    plan = build_plan(load_config(args.configfile))
    rows = plan_rows(plan)
    axes = dict.fromkeys(key for study in plan.studies.values() for key in study.params)
    columns = ["study", *axes, "seed", "run_id"]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.write(
        f"{len(rows)} study points, {len(plan.runs)} distinct runs on {plan.variant}\n"
    )
    return 0
