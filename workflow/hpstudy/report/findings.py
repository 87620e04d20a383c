"""``hpstudy findings``: a verdict on each of the post's rules, with its statistics.

The claim engine is :mod:`hpstudy.report.claims`, the post's rules
:mod:`hpstudy.report.post_claims`, the markdown report :mod:`hpstudy.report.findings_report`;
this module computes the verdicts of a sweep (:func:`compute_findings`) and writes them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from hpstudy.report.claims import MARGIN, Context, Finding
from hpstudy.report.findings_report import audit_section, selection_section, write_report
from hpstudy.report.post_claims import post_findings
from hpstudy.report.tables import read_table, read_tables

__all__ = ["Context", "Finding", "compute_findings", "main", "write_findings"]


def compute_findings(ctx: Context) -> list[Finding]:
    """Every verdict for the studies that sweep one of the post's settings alone: the post's
    claims, the post's rules applied to a user's study, and our own checks beyond the post."""
    return post_findings(ctx)


def write_findings(
    tables: str | Path,
    out: str | Path,
    runs_dir=None,
    margin: float = MARGIN,
    best: str | Path | None = None,
    final: str | Path | None = None,
    audit: str | Path | None = None,
    manifest: str | Path | None = None,
    looks: str | Path | None = None,
) -> list[Finding]:
    """Compute the verdicts from the tables in ``tables``; write ``findings.md`` and the
    verdict counts (``findings.json``) beside it. ``best`` (best.yaml) and ``final``
    (final.csv) add the selection section, ``audit`` (audit.json, with the data's
    ``manifest``) the data audit; ``looks`` (a sequential sweep's last look) replaces each
    sequential claim's verdict by the one its looks reached."""
    summary, metrics, comparison = read_tables(
        tables, "summary.csv", "metrics.csv", "comparison.csv"
    )
    ctx = Context(summary, metrics, Path(runs_dir) if runs_dir else None, margin)
    found = compute_findings(ctx)
    if looks:
        settle(found, json.loads(Path(looks).read_text())["claims"])
    sections = []
    if best:
        final_rows = read_table(final) if final else None
        sections += selection_section(yaml.safe_load(Path(best).read_text()), final_rows)
    if audit:
        facts = json.loads(Path(manifest).read_text()) if manifest else None
        sections += audit_section(json.loads(Path(audit).read_text()), facts)
    write_report(out, found, summary, comparison, sections)
    return found


def settle(found: list[Finding], claims: dict) -> None:
    """Give each claim a sequential sweep settled the verdict, effect and evidence of the look
    where it stopped, and say which look that was and why it stopped."""
    for f in found:
        state = claims.get(f"{f.study}/{f.key}")
        if state is None:
            continue
        for name in ("verdict", "effect", "seeds", "margin", "resolve", "looks", "settings"):
            setattr(f, name, state[name])
        f.evidence = [f"sequential: {state['looks']}", *state["evidence"]]


def main(argv: list[str] | None = None) -> int:
    """``hpstudy findings``: write ``findings.md`` from the results tables."""
    parser = argparse.ArgumentParser(prog="hpstudy findings", description=__doc__.split("\n")[0])
    parser.add_argument("--tables", required=True, help="the config's results folder")
    parser.add_argument("--runs-dir", help="the run folders (for single-seed paired tests)")
    parser.add_argument("--margin", type=float, default=MARGIN, help="practical margin (fraction)")
    parser.add_argument("--best", help="best.yaml, for the selection section")
    parser.add_argument("--final", help="final.csv, for the final runs' test accuracy")
    parser.add_argument("--audit", help="the data's audit.json, for the audit section")
    parser.add_argument("--manifest", help="the data's manifest (what drop_leaks removed)")
    parser.add_argument("--looks", help="a sequential sweep's last look (look-<k>.json)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    found = write_findings(
        args.tables,
        args.out,
        args.runs_dir,
        args.margin,
        args.best,
        args.final,
        args.audit,
        args.manifest,
        args.looks,
    )
    for f in found:
        print(f"{f.verdict:>24}: {f.rule}: {f.claim}")
    return 0
