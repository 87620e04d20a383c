"""``findings.md``: the verdict table first, then the evidence per rule, the other studies, the
selection, the data audit and the post's own runs beside ours; and ``findings.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.core import stats
from hpstudy.core.atomic import atomic_write_json, atomic_write_text
from hpstudy.core.formatting import (
    format_value,
    pct,
    pct_interval,
    points,
    points_size,
    setting_label,
    sort_key,
)
from hpstudy.core.stats import CONTRADICTED, HOLDS, INCONCLUSIVE, NO_DIFFERENCE, Interval
from hpstudy.report import post_runs
from hpstudy.report.claims import APPLIED, BEYOND, NOT_TESTABLE, POST, Finding, points_text
from hpstudy.report.post_claims import RULES
from hpstudy.report.tables import final_accuracies


def verdict_cell(f: Finding) -> str:
    text = f"**{f.verdict}**"
    if f.verdict == INCONCLUSIVE and f.resolve:
        more = (
            f"> {stats.MAX_SEEDS_ADVICE}" if f.resolve > stats.MAX_SEEDS_ADVICE else f"~{f.resolve}"
        )
        text += f" ({more} seeds per value would resolve it)"
    return text


TABLES = (
    (POST, "The post's claims, as the post makes them"),
    (APPLIED, "The post's rules, applied to your study"),
    (BEYOND, "Beyond the post: checks of our own"),
)


def verdict_table(found: list[Finding], table: str) -> list[str]:
    """One of the three verdict tables (the post's claims beside its sentence)."""
    rows = [f for f in found if f.table == table]
    if not rows:
        return []
    says = table != BEYOND
    looks = any(f.looks for f in rows)
    head = ["rule", *(["the post says"] * says), "claim tested", "verdict", "effect (CI)",
            "seeds", "margin", *(["looks"] * looks)]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for f in rows:
        cells = [f.rule, *([f.says] * says), f"{f.claim} (`{f.study}`)", verdict_cell(f),
                 f.effect, f.seeds, f.margin, *([f.looks] * looks)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def method_text(n_runs: int, seeds: int, level_note: str) -> str:
    """How the verdicts are reached, in one paragraph under the tables."""
    return (
        f"Computed by `hpstudy findings` from {n_runs} runs (up to {seeds} seeds per setting). "
        f"Each row's interval is {level_note} for that claim alone. A verdict compares it with "
        "a practical margin in the claimed direction: **holds** (beyond it), **contradicted** "
        "(beyond it the other way), **no practical difference** (inside it, never on one seed "
        "for a measured quantity), **inconclusive** otherwise; **not testable here** says why. "
        "Groups run on the same seeds from the same initial weights in the same image order "
        "(same model, kernel widths, image size, training split) are compared seed by seed "
        "(paired); others by Welch's interval. Accuracy effects are differences of mean final "
        "test accuracy, diverged runs counted at chance; a claim made of several comparisons "
        "gets the weakest of their verdicts; a monotone claim holds when its extremes differ in "
        "its direction and no adjacent step is contradicted (each step at alpha / steps). Loss "
        "claims use a relative margin of 10%. Checks on each run's curves count the seeds in "
        "which they hold."
    )


def other_studies(summary: pd.DataFrame) -> list[str]:
    """Studies that sweep none of the post's settings alone: no rule to judge, their table."""
    lines = []
    studies = summary.drop_duplicates("study")
    for _, row in studies[~studies["study_params"].isin(RULES)].iterrows():
        rows = summary[summary["study"] == row["study"]]
        keys = str(row["study_params"]).split(",")
        lines += [
            f"### Study `{row['study']}` ({' x '.join(setting_label(k) for k in keys)})",
            "",
            "No rule of the post is about this study, so there is no verdict to give; its "
            "mean final test accuracy (95% interval over seeds):",
            "",
            f"| {' | '.join(keys)} | final test accuracy | seeds |",
            "| " + " | ".join("---" for _ in keys) + " | --- | --- |",
        ]
        groups = sorted(
            rows.groupby(keys, sort=False), key=lambda g: tuple(sort_key(v) for v in g[0])
        )
        for point, group in groups:
            accs = final_accuracies(group)
            cell = pct(float(np.mean(accs)))
            if len(accs) >= 2:
                interval = stats.one_sample(accs, 0.0)  # shown within the possible 0-100%
                cell += f" [{pct(max(interval.low, 0.0))}, {pct(min(interval.high, 1.0))}]"
            lines.append(f"| {' | '.join(format_value(v) for v in point)} | {cell} | {len(accs)} |")
        lines.append("")
    return lines


def comparison_section(comparison: pd.DataFrame) -> list[str]:
    """The post's own runs beside ours, the headline first."""
    lines = ["## The post's own runs beside ours", ""]
    labelled = comparison[comparison["kind"] == "labelled"]
    if labelled.empty:
        return lines + [
            "No setting of this sweep is one of the post's runs, so nothing is compared (rule: "
            f"{post_runs.MATCH_RULE}). This is expected on any data other than the Intel images "
            f"at {post_runs.POST_IMAGE_SIZE} px.",
            "",
        ]
    reproduced = labelled.loc[labelled["reproduced"].astype(bool), "post_run"].nunique()
    lines += [
        f"**{reproduced} of {labelled['post_run'].nunique()} post runs reproduced**: the post's "
        "final test accuracy lies within 3 points of our mean over seeds (the interval is shown "
        f"as context). Rule: {post_runs.MATCH_RULE}.",
        "",
        "| post run | our run | weight decay | seeds | ours (95% CI) | post | ours - post | "
        "reproduced | per-epoch mean abs. difference (accuracy, loss) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, row in labelled.iterrows():
        ours = pct(row["final_test_acc_mean"])
        if row["seeds"] >= 2:
            low, high = max(row["final_test_acc_low"], 0.0), min(row["final_test_acc_high"], 1.0)
            ours += f" [{pct(low)}, {pct(high)}]"
        cells = [
            f"{row['post_run']} ({row['post_experiment']})",
            f"`{row['run_name']}`",
            f"{format_value(row['weight_decay'])} ({row['weight_decay_source']})",
            str(row["seeds"]),
            ours,
            pct(row["post_final_test_acc"]),
            points(row["final_test_acc_diff"]),
            "yes" if row["reproduced"] else "no",
            f"{points_size(row['epoch_test_acc_mad'])}, {row['epoch_test_loss_mad']:.3f}",
        ]
        lines.append(f"| {' | '.join(cells)} |")
    unlabelled = comparison[comparison["kind"] == "unlabelled"]
    if not unlabelled.empty:
        lines += [
            "",
            "The post's unlabelled runs (kernel widths unknown; never counted above), "
            "beside each of our runs that matches them but for the kernel widths: "
            + "; ".join(
                f"{r.post_run} ({pct(r.post_final_test_acc)}) vs `{r.run_name}` "
                f"({pct(r.final_test_acc_mean)})"
                for r in unlabelled.itertuples()
            )
            + ".",
        ]
    return [*lines, ""]


# with selection.on_test the test split chose the winner: its test number is no clean estimate
ON_TEST_FINAL = (
    "not a number to report as it stands: the winners were selected on the test set, so their "
    "test accuracy is optimistic, and a final run with the settings and seed of a run of the "
    "sweep is that run itself (the very number that won). Say that it was selected on the test "
    "set, or hold out a validation split (`dataset.val_fraction`) for an unbiased number."
)


def selection_section(best: dict, final: pd.DataFrame | None) -> list[str]:
    """The winners (best.yaml) and, when retrained, their test accuracy (final.csv)."""
    lines = [
        "## Selected and final",
        "",
        f"Each study's winner, {best['note']}: the best mean {best['metric']} "
        f"({best['epoch']} epoch) over seeds, with its 95% interval; separable means the "
        "interval of its lead over the runner-up lies above twice the evaluation split's binomial "
        "error (above zero for a loss).",
        "",
        "| study | winner | " + best["metric"] + " | runner-up | lead | separable |",
        "|---|---|---|---|---|---|",
    ]
    is_acc = best["metric"].endswith("_acc")
    for study, chosen in best["studies"].items():
        win, runner = chosen["winner"], chosen["runner_up"]
        score = (
            pct_interval(win["mean"], win["low"], win["high"], win["seeds"])
            if is_acc
            else f"{win['mean']:.4f} [{win['low']:.4f}, {win['high']:.4f}] ({win['seeds']} seeds)"
        )
        diff = chosen.get("difference")
        lead = "" if diff is None else points_text(Interval(**diff, seeds=0, method=""))
        if diff is not None and not is_acc:
            lead = f"{diff['effect']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"
        if chosen.get("at_or_below_chance"):
            score += f" **at or below chance ({pct(chosen['chance'])})**"
        if chosen.get("collapsed_runs"):
            score += f" ({chosen['collapsed_runs']} run(s) collapsed to one class)"
        cells = [
            f"`{study}`",
            _values_text(win["values"]),
            score,
            _values_text(runner["values"]) if runner else "none",
            lead,
            {True: "yes", False: "no", None: "n/a (fewer than 2 seeds)"}[chosen["separable"]],
        ]
        lines.append(f"| {' | '.join(cells)} |")
    if final is not None and not final.empty:
        lines += [
            "",
            "The winners retrained (on the split named below, for the selected number of "
            "epochs) and evaluated on the test split once: "
            + (ON_TEST_FINAL if best.get("selected_on") == "test" else "the number to report."),
            "",
            "| study | winner | trained on | epochs | test accuracy |",
            "|---|---|---|---|---|",
        ]
        for row in final.itertuples():
            accuracy = pct_interval(
                row.test_acc_mean, row.test_acc_low, row.test_acc_high, row.seeds
            )
            if getattr(row, "at_or_below_chance", False):
                accuracy += f" **at or below chance ({pct(row.chance)}): learned nothing**"
            if getattr(row, "collapsed", 0):
                accuracy += f" ({row.collapsed} run(s) collapsed: one class predicted)"
            lines.append(
                f"| `{row.study}` | {row.winner} | {row.train_on} | {row.epochs} | {accuracy} |"
            )
    return [*lines, ""]


def audit_section(audit: dict, manifest: dict | None) -> list[str]:
    """The data audit (audit.json): identical images, leakage, label conflicts, near
    duplicates, with a few example paths; and what `drop_leaks` removed."""
    counts, near = audit["counts"], audit["near_duplicates"]
    lines = [
        "## Data audit",
        "",
        f"{audit['summary']}, over {audit['images']} images (from `hpstudy audit`).",
        "",
        f"- identical-image groups: {counts['duplicate_groups']} "
        f"({counts['images_in_duplicate_groups']} images)",
        f"- groups spanning train and test/validation (leakage): {counts['cross_split_groups']}",
        f"- groups under more than one class (label conflicts): {counts['label_conflict_groups']}",
        f"- near-duplicate pairs (perceptual hashes at most {near['bits']} bits apart): "
        f"{near['pairs']}, {near['cross_split_pairs']} of them across train and test/validation "
        f"({near['low_variance_skipped']} low-variance images left out)",
    ]
    for key, title in (("cross_split_groups", "Leakage"), ("label_conflict_groups", "Conflicts")):
        for group in audit[key][:3]:
            lines.append(
                f"- {title}: {group['count']} copies in {', '.join(group['splits'])} "
                f"({', '.join(group['classes'])}), e.g. "
                + ", ".join(f"`{m}`" for m in group["examples"])
            )
    phantom = (manifest or {}).get("classes_dropped")
    if phantom:
        lines.append(
            f"- class folders dropped, holding no decodable image: {', '.join(phantom)} (not "
            f"classes: the model has {len(manifest['classes'])} outputs, chance is "
            f"{pct(1 / len(manifest['classes']))})"
        )
    dropped = (manifest or {}).get("leaks_dropped")
    if dropped:
        removed = ", ".join(f"{n} from {split}" for split, n in dropped.items())
        lines.append(f"- `dataset.drop_leaks` removed exact copies of training images: {removed}")
    elif counts["cross_split_groups"]:
        lines.append(
            "- Test accuracy counts images the model also trained on; `dataset.drop_leaks: "
            "true` removes those copies from test and validation."
        )
    return [*lines, ""]


def _values_text(values: dict) -> str:
    return ", ".join(f"{setting_label(k)} {format_value(v)}" for k, v in values.items())


def render_markdown(
    found: list[Finding],
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    sections: list[str] = (),
) -> str:
    """``findings.md``: the verdict table first, then the evidence per rule, other studies,
    the extra ``sections`` (selection, audit) and the comparison with the post."""
    n_runs, seeds = (
        summary["run_id"].nunique(),
        int(summary.groupby(["study", "name"])["run_id"].nunique().max()),
    )
    level_note = "a 95% interval"
    if any(f.looks for f in found):
        level_note = "a 95% interval (in a sequential sweep, each look's 1 - 0.05/K interval)"
    lines = ["# Findings: do the post's rules hold in this sweep?", ""]
    for table, title in TABLES:
        rows = verdict_table(found, table)
        lines += [f"## {title}", "", *rows] if rows else []
    lines.append(method_text(n_runs, seeds, level_note))
    if any(f.verdict == INCONCLUSIVE for f in found):
        lines += [
            "",
            "Inconclusive is an honest answer here: with few seeds the interval is "
            "wider than the margin; the table says roughly how many seeds would decide.",
        ]
    if not found:
        lines += [
            "",
            "No study here sweeps one of the post's settings (learning rate, batch "
            "size, kernel width, weight decay) alone, so no rule of the post is judged.",
        ]
    lines += ["", "## The evidence, claim by claim"]
    for rule in dict.fromkeys(f.rule for f in found):
        lines += ["", f"### {rule}", ""]
        for f in (f for f in found if f.rule == rule):
            lines.append(f"- **{f.verdict.upper()}**: {f.claim} (study `{f.study}`).")
            lines += [f"  - {e}" for e in f.evidence]
    covered = {RULES[p][0] for p in RULES if (summary["study_params"] == p).any()}
    missing = [rule[0] for rule in RULES.values() if rule[0] not in covered]
    if missing and found:
        lines += [
            "",
            f"Not judged here, as no study sweeps that setting alone: {', '.join(missing)}.",
        ]
    others = other_studies(summary)
    if others:
        lines += ["", "## Other studies", "", *others]
    if sections:
        lines += ["", *sections]
    lines += ["", *comparison_section(comparison)]
    return "\n".join(lines).rstrip() + "\n"


def counts(found: list[Finding]) -> dict:
    """Verdict counts, for the DVC metrics."""
    return {
        v.replace(" ", "_"): sum(f.verdict == v for f in found)
        for v in (HOLDS, CONTRADICTED, NO_DIFFERENCE, INCONCLUSIVE, NOT_TESTABLE)
    }


def write_report(
    out: str | Path,
    found: list[Finding],
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    sections: list[str] = (),
) -> None:
    """Write ``findings.md`` and the verdict counts (``findings.json``) beside it."""
    atomic_write_text(out, render_markdown(found, summary, comparison, sections))
    atomic_write_json(Path(out).with_name("findings.json"), {"verdicts": counts(found)})
