"""``hpstudy looks``: one look of a sequential sweep, for the findings' claims and, with
``selection.sequential``, for each selection whose winner does not yet separate from its
runner-up (on the validation metric). The look itself is :mod:`hpstudy.report.looks`; this
module adds the selection's claims (selection imports the report, not the other way round)
and writes the look's file, an added-runs file (:mod:`hpstudy.sweep.added_runs`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hpstudy.core.formatting import points_size
from hpstudy.core.stats import HOLDS, INCONCLUSIVE
from hpstudy.report import looks
from hpstudy.report.claims import BEYOND, Context, Finding
from hpstudy.sweep import added_runs
from hpstudy.tuning import selection


def selection_claims(config: dict):
    """The claims a look settles for ``selection.sequential``: per study, that its winner
    separates from its runner-up at the look's level."""

    def claims(ctx: Context) -> list[Finding]:
        best, _ = selection.select(ctx.summary, ctx.metrics, config, ctx.level)
        found = []
        for study, chosen in best["studies"].items():
            if chosen["separable"] is None:
                continue  # one seed or no runner-up: nothing to settle
            win, runner = chosen["winner"], chosen["runner_up"]
            diff = chosen["difference"]
            f = Finding(
                "Selection", f"the winner of `{study}` separates from its runner-up",
                HOLDS if chosen["separable"] else INCONCLUSIVE, study=study, key=looks.SEPARABLE,
                table=BEYOND, interval=True, settings=[win["run_name"], runner["run_name"]],
                effect=f"{diff['effect']:+.4f} [{diff['low']:+.4f}, "
                f"{diff['high']:+.4f}]", seeds=str(win["seeds"]),
                margin=points_size(chosen["separable_margin"]),
            )  # fmt: skip
            found.append(f)
        return found

    return claims


def main(argv: list[str] | None = None) -> int:
    """``hpstudy looks``: one look of a sequential sweep."""
    parser = argparse.ArgumentParser(prog="hpstudy looks", description=main.__doc__)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--membership", required=True, help="the config's study membership")
    parser.add_argument("--look", type=int, required=True, help="this look (0-based)")
    parser.add_argument("--looks", required=True, help="the looks' seed counts: 3,5,7,9,10")
    parser.add_argument("--previous", nargs="*", default=[], help="the earlier looks' files")
    parser.add_argument("--margin", type=float, required=True)
    parser.add_argument("--selection", help="the selection block (JSON), to settle it too")
    parser.add_argument("--findings", action="store_true", help="settle the findings' claims")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.looks.split(",")]
    previous = [json.loads(Path(p).read_text()) for p in args.previous]
    membership = json.loads(Path(args.membership).read_text())
    extra = selection_claims(json.loads(args.selection)) if args.selection else None
    result = looks.look(args.runs_dir, membership, previous, args.look, counts, args.margin,
                        extra, findings=args.findings)  # fmt: skip
    facts = {k: v for k, v in result.items() if k != "runs"}
    added_runs.write(args.out, looks.SOURCE, result["runs"], **facts)
    settled = sum(c["status"] != looks.OPEN for c in result["claims"].values())
    print(f"look {args.look + 1} of {len(counts)} ({counts[args.look]} seeds): {settled} of "
          f"{len(result['claims'])} claims settled, {len(result['runs'])} runs added")  # fmt: skip
    return 0
