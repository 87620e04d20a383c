"""Make pulled outputs count as finished for Snakemake, without hiding a needed retrain.

``dvc pull`` (or ``dvc checkout``) writes every file anew, so modification times no longer
follow the pipeline's order, and Snakemake has no provenance records (``.snakemake/metadata``)
for files it did not write. Left alone, Snakemake would retrain runs whose inputs now look
newer, and could not notice a changed setting. ``hpstudy restore`` fixes both:

1. it checks every pulled output against the current config — the raw data's source and
   split, each run's ``params.json`` against its settings in the sweep or in the added-runs
   files of steps that added runs (:mod:`hpstudy.sweep.added_runs`) — and removes the
   outputs that belong to other settings (still in DVC's cache), so Snakemake recomputes them;
2. it runs ``snakemake --touch`` on what matches, in the DAG's order, which also records
   Snakemake's provenance for it, so later config changes retrain exactly the runs they touch.

With ``--if-no-provenance`` (how ``dvc.yaml`` calls it) it does nothing once Snakemake has
recorded provenance in this checkout: from then on Snakemake's own triggers decide.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hpstudy.core.config import load_config
from hpstudy.core.errors import HpstudyError
from hpstudy.core.paths import RUN_OUTPUTS, Layout
from hpstudy.data.variant import data_variant, labels_digest
from hpstudy.sweep import added_runs
from hpstudy.sweep.plan import Run, build_plan
from hpstudy.training.identity import canonical_json

# raw-data facts `hpstudy fetch` records that also decide the processed arrays
RAW_FACTS = ("source", "path", "test_fraction", "split_seed")
METADATA_DIR = Path(".snakemake") / "metadata"


@dataclass
class RestorePlan:
    """What restore found: runs that match the config, runs to recompute, and why."""

    matching: list[str] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)  # run id -> reason
    missing: list[str] = field(default_factory=list)
    stale_data: str | None = None


def has_provenance(workdir: Path) -> bool:
    """True when Snakemake has recorded provenance for some output in this checkout."""
    folder = workdir / METADATA_DIR
    return folder.is_dir() and any(folder.iterdir())


def identity_difference(run: Run, recorded: dict) -> str | None:
    """Why a run's recorded identity (its ``params.json``) is not its identity now (None: it is)."""
    before = recorded.get("identity") or {}
    if canonical_json(before) == run.identity_json:
        return None
    keys = sorted(set(before) | set(run.identity))
    changed = [
        key
        for key in keys
        if canonical_json(before.get(key)) != canonical_json(run.identity.get(key))
    ]
    return ", ".join(f"{key} {before.get(key)!r} -> {run.identity.get(key)!r}" for key in changed)


def check_runs(runs: dict[str, Run], layout: Layout, workdir: Path, plan: RestorePlan) -> None:
    """Sort the sweep's runs into matching, stale (other identity or partial) and missing."""
    for run_id, run in runs.items():
        run_dir = workdir / layout.run_dir(run_id)
        present = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
        if not present:
            plan.missing.append(run_id)
        elif len(present) < len(RUN_OUTPUTS):
            plan.stale[run_id] = f"only {', '.join(present)} present"
        else:
            try:
                recorded = json.loads((run_dir / "params.json").read_text())
            except (OSError, ValueError) as err:
                plan.stale[run_id] = f"unreadable params.json ({err})"
                continue
            reason = identity_difference(run, recorded)
            if reason:
                plan.stale[run_id] = f"identity differs: {reason}"
            else:
                plan.matching.append(run_id)


def check_raw_data(raw_meta: Path, dataset: dict) -> str | None:
    """Why the raw data on disk was fetched with other settings (None: it matches or is absent)."""
    if not raw_meta.exists():
        return None
    try:
        recorded = json.loads(raw_meta.read_text())
    except (OSError, ValueError) as err:
        return f"unreadable {raw_meta} ({err})"
    changed = [
        f"{key} {recorded[key]!r} -> {dataset[key]!r}"
        for key in RAW_FACTS
        if key in recorded and key in dataset and recorded[key] != dataset[key]
    ]
    # the label file is stored in the raw zip: another file, or the same file changed
    if recorded.get("labels") != dataset.get("labels"):
        changed.append(f"labels {recorded.get('labels')!r} -> {dataset.get('labels')!r}")
    elif dataset.get("labels") and recorded.get("labels_sha256") != labels_digest(
        dataset["labels"]
    ):
        changed.append(f"labels {dataset['labels']!r} changed (sha256)")
    return ", ".join(changed) or None


def plan_restore(config: dict, workdir: Path) -> RestorePlan:
    """Compare what is on disk under ``workdir`` with the config; changes nothing."""
    dataset, layout = config["dataset"], Layout.from_config(config)
    plan = RestorePlan()
    plan.stale_data = check_raw_data(workdir / layout.raw_meta(dataset["name"]), dataset)
    sweep = build_plan(config)
    # and the runs that steps added (final runs, search trials), as their files say
    runs = {**added_runs.known(layout, sweep.variant, dataset, workdir), **sweep.runs}
    check_runs(runs, layout, workdir, plan)
    return plan


def remove_stale(config: dict, workdir: Path, plan: RestorePlan) -> None:
    """Delete outputs made with other settings, so Snakemake sees them missing and redoes them."""
    layout, name = Layout.from_config(config), config["dataset"]["name"]
    if plan.stale_data:
        for path in (layout.raw_zip(name), layout.raw_meta(name)):
            (workdir / path).unlink(missing_ok=True)
    for run_id in plan.stale:
        for output in RUN_OUTPUTS:
            (workdir / layout.run_file(run_id, output)).unlink(missing_ok=True)


def touch_targets(config: dict, workdir: Path, plan: RestorePlan) -> list[str] | None:
    """What ``snakemake --touch`` should mark as finished; [] for nothing, None for everything."""
    layout = Layout.from_config(config)
    manifest = layout.manifest(data_variant(config["dataset"]))
    if plan.stale_data or not (workdir / manifest).exists():
        return []  # the data will be remade, and every run retrained after it
    if not plan.stale and not plan.missing:
        return None  # everything matches: the whole workflow, tables and figures too
    return [manifest, *(layout.run_file(rid, "summary.json") for rid in plan.matching)]


def touch(configfile: str, workdir: Path, targets: list[str] | None) -> None:
    """Run ``snakemake --touch`` (this interpreter's) on ``targets`` in ``workdir``."""
    # targets first: --configfile and --quiet take several values. --forceall: touch (and
    # record provenance for) every job up to the targets, not only those mtimes flag.
    command = [sys.executable, "-m", "snakemake", *(targets or []), "--touch", "--forceall"]
    command += ["--cores", "1", "--configfile", configfile, "--quiet", "all"]
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HpstudyError(
            f"`{' '.join(command[2:])}` failed in {workdir} (exit {proc.returncode}), so the "
            f"pulled outputs were not marked as finished: {proc.stderr.strip()[-1500:]} "
            "Fix the problem Snakemake names, then run `hpstudy restore` again."
        )


def report(plan: RestorePlan) -> str:
    """A short account of what restore found, for people."""
    lines = [f"restore: {len(plan.matching)} run(s) match the config and count as finished"]
    if plan.stale_data:
        lines.append(
            f"restore: raw data was fetched with other settings ({plan.stale_data}); "
            "removed, so it is fetched again and every run retrains"
        )
    for run_id, reason in plan.stale.items():
        lines.append(f"restore: {run_id}: {reason}; outputs removed, Snakemake retrains it")
    if plan.missing:
        lines.append(f"restore: {len(plan.missing)} run(s) not present, Snakemake trains them")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``hpstudy restore --configfile F``: after ``dvc pull``, mark matching outputs finished."""
    parser = argparse.ArgumentParser(
        prog="hpstudy restore",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--directory", default=".", help="the checkout (default: here)")
    parser.add_argument(
        "--if-no-provenance",
        action="store_true",
        help="do nothing when Snakemake has recorded provenance here",
    )
    parser.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    args = parser.parse_args(argv)
    workdir = Path(args.directory)
    if args.if_no_provenance and has_provenance(workdir):
        print("restore: Snakemake has its own provenance in this checkout; nothing to do")
        return 0
    config = load_config(workdir / args.configfile)
    plan = plan_restore(config, workdir)
    print(report(plan))
    if args.dry_run:
        print("restore: dry run, nothing removed or touched")
        return 0
    remove_stale(config, workdir, plan)
    targets = touch_targets(config, workdir, plan)
    if targets != []:
        touch(args.configfile, workdir, targets)
    return 0
