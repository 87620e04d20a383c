"""One look of a sequential sweep (:mod:`hpstudy.report.sequential`; the command is
``hpstudy looks``, :mod:`hpstudy.tuning.settle`).

Look k reads every run so far (the config's, and those earlier looks added), judges each claim
still open on exactly the first n_k seeds of its settings with a (1 - 0.05/K) interval, and
writes ``<results>/findings/looks/look-<k>.json``: per claim its verdict, the looks and seeds it
took and why it stopped, and, as an added-runs file (:mod:`hpstudy.sweep.added_runs`), the next
seeds of exactly the settings the open claims compare. The train rule trains them as ordinary
runs (cached, resumable, on SLURM too); a run shared by two studies serves both. A look whose
claims are all settled adds nothing, so a rerun of a settled sweep does nothing.

With ``selection.sequential`` the same looks settle a selection whose winner does not separate
from its runner-up (on the validation metric), adding seeds to the two.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from hpstudy.core.stats import INCONCLUSIVE
from hpstudy.report import aggregate
from hpstudy.report.claims import NO_VERDICT, NOT_TESTABLE, Context, Finding
from hpstudy.report.post_claims import post_findings
from hpstudy.report.sequential import DECIDED, LIMIT, look_level
from hpstudy.sweep.plan import make_run
from hpstudy.training import identity

SOURCE = "findings look"
SEPARABLE = "selection-separable"  # the claim a look settles for selection.sequential
OPEN = "open"


def extended_membership(membership: dict, previous: list[dict]) -> dict:
    """The config's membership plus every run the earlier looks added, each in its studies."""
    studies = json.loads(json.dumps(membership))
    for look in previous:
        for entry in look["runs"]:
            point = {"run_id": entry["run_id"], "values": entry["values"]}
            studies[entry["study"]]["points"].append(point)
    return studies


def tables(runs_dir: Path, membership: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary and metrics tables of every run in ``membership`` (as ``aggregate``)."""
    ids = list(dict.fromkeys(p["run_id"] for s in membership.values() for p in s["points"]))
    runs = {rid: aggregate.load_run(runs_dir / rid) for rid in ids}
    checks = {rid: aggregate.run_checks(runs_dir / rid, *runs[rid]) for rid in ids}
    summary = aggregate.build_summary_table(runs, membership, checks)
    return summary, aggregate.build_metrics_table(runs)


def first_seeds(summary: pd.DataFrame, n: int) -> pd.DataFrame:
    """Each setting of each study on exactly its first ``n`` seeds."""
    ordered = summary.sort_values(["study", "name", "seed"])
    return ordered.groupby(["study", "name"], sort=False).head(n)


def claim_id(f: Finding) -> str:
    """A claim's name across looks."""
    return f"{f.study}/{f.key}"


def judge_look(
    ctx: Context, k: int, looks: list[int], state: dict, extra=None, findings: bool = True
) -> dict:
    """The claims' state after look ``k`` (0-based): those settled earlier keep their verdict;
    the others get this look's: the findings' claims (with ``findings``) and those
    ``extra(ctx)`` gives (a selection's)."""
    new = {}
    for f in (post_findings(ctx) if findings else []) + (extra(ctx) if extra else []):
        if not f.interval or f.verdict in (NOT_TESTABLE, NO_VERDICT):
            continue  # only interval claims are sequential
        cid = claim_id(f)
        if state.get(cid, {}).get("status", OPEN) != OPEN:
            new[cid] = state[cid]
            continue
        status = DECIDED if f.verdict != INCONCLUSIVE else (LIMIT if k == len(looks) - 1 else OPEN)
        level = f"{ctx.level * 100:.4g}% intervals"
        f.looks = f"look {k + 1} of {len(looks)}, {looks[k]} seeds, {level}: {status}"
        new[cid] = {**asdict(f), "status": status, "look": k + 1, "n": looks[k]}
    return new


def next_runs(summary: pd.DataFrame, runs_dir: Path, names: set[str], n: int) -> list[dict]:
    """The runs that bring each setting in ``names`` to ``n`` seeds, in each study holding it."""
    runs = []
    for name in sorted(names):
        rows = summary[summary["name"] == name]
        seeds = sorted(set(rows["seed"].astype(int)))
        params = json.loads((runs_dir / rows["run_id"].iloc[0] / "params.json").read_text())
        settings = identity.canonical_settings(params["settings"])
        fresh = [s for s in range(max(seeds) + 1, max(seeds) + 1 + n) if s not in seeds]
        for seed in fresh[: max(0, n - len(seeds))]:
            run = make_run(settings, seed, params["variant"])
            for study, group in rows.groupby("study", sort=False):
                values = {key: _plain(group[key].iloc[0]) for key in _keys(group)}
                runs.append({"study": study, "settings": params["settings"], "seed": seed,
                             "run_id": run.run_id, "values": values})  # fmt: skip
    return runs


def _keys(group: pd.DataFrame) -> list[str]:
    return str(group["study_params"].iloc[0]).split(",")


def _plain(value):
    if isinstance(value, str) and value.replace("-", "").isdigit() and "-" in value:
        return [int(v) for v in value.split("-")]  # kernel widths as the config writes them
    return value.item() if hasattr(value, "item") else value


def look(runs_dir, membership, previous, k, looks, margin, extra=None, findings=True) -> dict:
    """Look ``k``: the claims' state and the runs to add for the next look (``extra(ctx)``:
    more claims to settle, e.g. a selection's)."""
    runs_dir = Path(runs_dir)
    summary, metrics = tables(runs_dir, extended_membership(membership, previous))
    ctx = Context(first_seeds(summary, looks[k]), metrics, runs_dir, margin, look_level(len(looks)))
    state = judge_look(ctx, k, looks, previous[-1]["claims"] if previous else {}, extra, findings)
    open_names = {n for c in state.values() if c["status"] == OPEN for n in c["settings"]}
    runs = next_runs(summary, runs_dir, open_names, looks[k + 1]) if open_names else []
    return {"look": k + 1, "looks": looks, "seeds": looks[k], "claims": state, "runs": runs}


def settled_tables(runs_dir, membership, look_files) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The summary and metrics a sequential selection selects on (each study on the seeds its
    looks stopped at), and the last look's claims."""
    previous = [json.loads(Path(p).read_text()) for p in look_files]
    members = extended_membership(json.loads(Path(membership).read_text()), previous)
    summary, metrics = tables(Path(runs_dir), members)
    claims = previous[-1]["claims"]
    return settled_selection(summary, claims, previous[0]["seeds"]), metrics, claims


def settled_selection(summary: pd.DataFrame, claims: dict, n0: int) -> pd.DataFrame:
    """Each study's rows on the seeds its selection claim stopped at (n0 where it had none)."""
    parts = []
    for study, rows in summary.groupby("study", sort=False):
        n = claims.get(f"{study}/{SEPARABLE}", {}).get("n", n0)
        parts.append(first_seeds(rows, n))
    return pd.concat(parts, ignore_index=True)
