"""The README's first command, timed: ``snakemake --cores 2 --configfile config/demo.yaml`` in a
fresh copy of the repository (tracked and untracked-but-not-ignored files, no results, no data,
as a fresh clone has).

Prints the wall time, the CPU seconds (user + system) of every job summed by rule, what
Snakemake itself used, the CPU's flags that decide the demo's speed (native bf16 through
AVX512-BF16 or AMX, or AVX2 only) and its core count. Each job's CPU time is taken at its exit by a
``sitecustomize`` module put on the jobs' ``PYTHONPATH`` (rusage of the process and its children,
threads included), so no rule changes for it. Wall time only means something on a machine with
nothing else running; CPU seconds hold up on a busy one. With ``--keep DIR`` the finished copy
stays in DIR. Nothing is asserted. Usage::

    python benchmarks/demo_time.py [--cores 2] [--keep /tmp/demo] [--config config/demo.yaml]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Loaded by every `python` a job starts (its folder is put on PYTHONPATH): at exit, one JSON
# line with the command and its CPU seconds, children included (a job's own subprocesses).
SITECUSTOMIZE = """
import atexit, json, os, resource, sys, time
_START = time.time()
def _hpstudy_demo_time():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = json.dumps({"argv": sys.argv, "own_s": own.ru_utime + own.ru_stime,
                       "children_s": kids.ru_utime + kids.ru_stime,
                       "start": _START, "end": time.time()})
    with open(os.environ["HPSTUDY_DEMO_TIME_LOG"], "a") as log:
        log.write(line + "\\n")
if os.environ.get("HPSTUDY_DEMO_TIME_LOG"):
    atexit.register(_hpstudy_demo_time)
"""


def fresh_copy(dest: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, copied into ``dest``."""
    command = ["git", "ls-files", "-co", "--exclude-standard", "-z"]
    listed = subprocess.run(command, cwd=REPO, check=True, capture_output=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def cpu_flags() -> str:
    """What this CPU offers the demo: native bf16 or not, AVX-512, AVX2."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    wanted = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2", "fma")
    have = [flag for flag in wanted if flag in flags]
    if {"avx512_bf16", "amx_bf16"} & flags:
        kind = "native bf16"
    elif "avx512f" in flags:
        kind = "AVX-512 without bf16"
    else:
        kind = "AVX2 only" if "avx2" in flags else "no AVX2"
    return f"{kind} ({', '.join(have) or 'none of ' + ', '.join(wanted)}); {os.cpu_count()} cores"


def rule_of(argv: list[str]) -> str:
    """The rule a job's command belongs to: ``python -m hpstudy <command> ...``'s command."""
    return argv[1] if len(argv) > 1 else "python (other)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--config", default="config/demo.yaml")
    parser.add_argument("--keep", type=Path, help="copy the repository here and keep it")
    args = parser.parse_args()
    tmp = None
    if args.keep:
        workdir = args.keep
        workdir.mkdir(parents=True, exist_ok=False)
    else:
        tmp = tempfile.TemporaryDirectory()
        workdir = Path(tmp.name) / "hpstudy"
    fresh_copy(workdir)
    hook = workdir.parent / f"{workdir.name}-timing"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = hook / "jobs.jsonl"
    env = {**os.environ, "HPSTUDY_DEMO_TIME_LOG": str(log), "PYTHONPATH": str(hook)}
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--configfile",
               args.config]  # fmt: skip
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    if proc.returncode != 0:
        sys.exit(f"the demo failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    total = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    jobs = [json.loads(line) for line in log.read_text().splitlines()]
    by_rule: dict[str, list[float]] = collections.defaultdict(list)
    snakemake_s = 0.0
    for job in jobs:
        if job["argv"] and job["argv"][0].endswith(os.path.join("hpstudy", "__main__.py")):
            by_rule[rule_of(job["argv"])].append(job["own_s"] + job["children_s"])
        elif job["argv"] and job["argv"][0].endswith(os.path.join("snakemake", "__main__.py")):
            snakemake_s += job["own_s"]
    in_jobs = sum(sum(v) for v in by_rule.values())
    print(f"demo: {' '.join(command[1:])} in a fresh copy")
    print(f"CPU: {cpu_flags()}")
    print(f"wall time: {wall:.1f} s")
    print(f"CPU seconds (user + sys): {total:.1f} in all, {total / args.cores:.1f} per core")
    print(f"  {'rule':<14} {'jobs':>4} {'CPU s':>8} {'per job':>8}")
    for rule, times in sorted(by_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {rule:<14} {len(times):>4} {sum(times):>8.1f} {sum(times) / len(times):>8.2f}")
    print(f"  {'snakemake':<14} {'':>4} {snakemake_s:>8.1f}   (itself: planning, scheduling)")
    rest = total - in_jobs - snakemake_s
    print(f"  {'other':<14} {'':>4} {rest:>8.1f}   (job shells, other processes)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
