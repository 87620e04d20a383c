"""How long Snakemake takes to plan a large grid: ``snakemake -n`` on sweeps of N runs.

Writes configs whose grid (learning rate x batch size x weight decay on the digits data, one
seed) has N distinct runs, then times a dry run of each in a copy of this checkout (the first
call also writes the runs' settings files; later calls find them written), printing every job
and, as the issue measures it, with ``-q``. Nothing is
asserted: the figures are for the notes. With ``--profile`` one dry run of the largest grid
runs under cProfile and the script prints where its time goes: the workflow's parse (the
package's imports, planning, the settings files) and Snakemake's own DAG building. Usage::

    python benchmarks/plan_speed.py [--runs 1000 5000] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def grid_config(runs: int) -> dict:
    """A digits config whose one study is a grid of ``runs`` distinct settings."""
    batch_sizes = list(range(8, 8 + 20))
    decays = [round(0.001 * (i + 1), 6) for i in range(10)]
    rates = [round(1e-4 * (i + 1), 8) for i in range(runs // (len(batch_sizes) * len(decays)))]
    return {
        "dataset": {"source": "digits", "name": "digits", "image_size": 48},
        "paths": {"results": f"results/grid-{runs}"},
        "seeds": [0],
        "studies": {
            "grid": {"params": {"lr": rates, "batch_size": batch_sizes, "weight_decay": decays}}
        },
    }


def copy_checkout(dest: Path) -> Path:
    """The tracked and untracked-but-not-ignored files of this checkout."""
    command = ["git", "ls-files", "-co", "--exclude-standard", "-z"]
    listed = subprocess.run(command, cwd=REPO, capture_output=True, check=True)
    listed = listed.stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def dry_run(workdir: Path, configfile: Path, quiet: bool = False) -> tuple[float, str]:
    """One ``snakemake -n`` (``-n -q`` when ``quiet``: the plan without printing each job)."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "snakemake", "-n", *(["-q"] if quiet else []), "--cores",
               "1", "--configfile"]  # fmt: skip
    done = subprocess.run([*command, str(configfile)], cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout + done.stderr


# where a dry run's time goes: (label, the profiled function's "file:line(name)" ending)
PROFILE_PARTS = [
    ("the whole dry run", "snakemake/cli.py", "main"),
    ("parse: Snakefile and rules", "Snakefile", "<module>"),
    (
        "  import hpstudy.tuning.search (pulls torch, scipy, pandas)",
        "hpstudy/tuning/search.py",
        "<module>",
    ),
    ("  validate the config", "hpstudy/core/config.py", "validate_config"),
    ("  build_plan", "hpstudy/sweep/plan.py", "build_plan"),
    ("    identity.canonical_settings", "hpstudy/training/identity.py", "canonical_settings"),
    ("    plan.run_problems", "hpstudy/sweep/plan.py", "run_problems"),
    ("  write_run_specs", "hpstudy/sweep/plan.py", "write_run_specs"),
    ("  write_membership", "hpstudy/sweep/plan.py", "write_membership"),
    ("  figure_targets", "hpstudy/rule_targets.py", "figure_targets"),
    ("Snakemake: build the DAG", "snakemake/workflow.py", "_build_dag"),
    ("  jobs from the target files (dag.init)", "snakemake/dag.py", "init"),
    ("  check_directory_outputs", "snakemake/dag.py", "check_directory_outputs"),
    ("  update_conda_envs", "snakemake/dag.py", "update_conda_envs"),
    ("  update_needrun (file times)", "snakemake/dag.py", "update_needrun"),
]


def profile(workdir: Path, configfile: Path) -> None:
    """One dry run under cProfile; print the cumulative seconds of each part."""
    out = workdir / "plan.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "snakemake", "-n",
               "-q", "--cores", "1", "--configfile", str(configfile)]  # fmt: skip
    subprocess.run(command, cwd=workdir, capture_output=True, check=True)
    print_parts(out)


def print_parts(profile_file: Path) -> None:
    """The cumulative seconds of each of PROFILE_PARTS in a cProfile file."""
    stats = pstats.Stats(str(profile_file)).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    for label, file, name in PROFILE_PARTS:
        found = [v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n == name]
        # a recursive function's outermost call holds its cumulative time
        print(f"{label:<55} {max(found, default=0.0):7.2f} s")
    print("(profiled: cProfile slows Python code, so the parts run slower than without it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="where the largest one's time goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = copy_checkout(Path(tmp))
        for runs in args.runs:
            configfile = workdir / "config" / f"grid-{runs}.yaml"
            configfile.write_text(yaml.safe_dump(grid_config(runs)))
            first, output = dry_run(workdir, configfile)
            planned = next(
                line.split()[1] for line in output.splitlines() if line.startswith("train ")
            )
            times = [dry_run(workdir, configfile)[0] for _ in range(args.repeat)]
            quiet = [dry_run(workdir, configfile, quiet=True)[0] for _ in range(args.repeat)]
            print(f"{runs} runs ({planned} train jobs planned): first dry run {first:.1f} s, "
                  f"then median {statistics.median(times):.1f} s (min {min(times):.1f}, "
                  f"max {max(times):.1f}) over {args.repeat}; with -q median "
                  f"{statistics.median(quiet):.1f} s (min {min(quiet):.1f}, "
                  f"max {max(quiet):.1f})")  # fmt: skip
        if args.profile:
            print(f"\nwhere a dry run of {max(args.runs)} runs spends its time:")
            profile(workdir, workdir / "config" / f"grid-{max(args.runs)}.yaml")


if __name__ == "__main__":
    main()
