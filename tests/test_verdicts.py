"""Issue 19's findings, one test each: synthetic runs with a known truth on which the verdicts
used to say what the data do not (items 1-7), and the real-image cases rebuilt from synthetic
curves (items 8-10)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from support.runfactory import Sweep, approach, write_run

from hpstudy.cli import main as cli_main
from hpstudy.core.stats import CONTRADICTED, HOLDS, INCONCLUSIVE
from hpstudy.report import findings
from hpstudy.report.claims import APPLIED, BEYOND, NOT_TESTABLE, POST
from hpstudy.report.findings_report import render_markdown, selection_section
from hpstudy.report.tables import read_table
from hpstudy.tuning import selection

LRS = (1e-7, 1e-4, 1e-2)
RESNET = {"model": "resnet18", "batch_size": 32}


def ends_at(final, epochs=6, start=0.3):
    return approach(start, final, epochs)[:-1] + [final]


def judge(sweep: Sweep) -> list[findings.Finding]:
    summary, metrics = sweep.tables()
    return findings.compute_findings(findings.Context(summary, metrics, sweep.runs_dir))


def verdict(found, key):
    matches = [f for f in found if f.key == key]
    assert len(matches) == 1, [(f.key, f.claim) for f in found]
    return matches[0]


def lr_study(root, finals=None, seeds=(0, 1, 2), data=None, extra=None, **settings) -> Sweep:
    """A ResNet18 learning-rate study ending at ``finals[lr][seed]``; ``extra(lr, seed)``
    adds write_run arguments."""
    sweep = Sweep(root, data=data)
    epochs = settings.pop("epochs", 6)

    def curves(lr, seed):
        out = {"test_acc": ends_at(finals[lr][seed], epochs)} if finals else {}
        return {**out, **(extra(lr, seed) if extra else {})}

    sweep.study(
        "lr", "lr", LRS, seeds=seeds, epochs=epochs, curves=curves, **{**RESNET, **settings}
    )
    return sweep


def test_1_an_extreme_weight_decay_that_still_learns_does_not_stop_learning(tmp_path):
    # 75 % where chance is 16.7 %: ten points below the normal value, far from "almost zero"
    for name, extreme, expected in (
        ("learns", (0.75, 0.77, 0.74), CONTRADICTED),
        ("stops", (0.20, 0.22, 0.19), HOLDS),
    ):
        finals = {0.01: (0.85, 0.86, 0.84), 1.0: extreme}
        sweep = Sweep(tmp_path / name)
        sweep.post_weight_decay_study(
            lambda wd, s, finals=finals: {"test_acc": ends_at(finals[wd][s], 4)}
        )
        found = verdict(judge(sweep), "extreme-underfits")
        assert found.verdict == expected, found.evidence
        assert "midpoint of chance (16.7%" in " ".join(found.evidence)


def test_2_a_middle_rate_must_beat_each_end_not_only_the_better_mean_one(tmp_path):
    # the low end is erratic: one of its seeds beats every middle seed
    finals = {1e-7: (0.40, 0.95, 0.45), 1e-4: (0.90, 0.91, 0.92), 1e-2: (0.70, 0.71, 0.69)}
    found = verdict(judge(lr_study(tmp_path, finals)), "middle-beats-ends")
    assert found.verdict == INCONCLUSIVE
    assert "1e-04 minus 1e-07" in found.evidence[0] and "1e-04 minus 0.01" in found.evidence[1]


def test_3_a_non_monotone_batch_size_effect_is_no_monotone_trend_however_many_seeds(tmp_path):
    rng = np.random.default_rng(3)
    means = {10: 0.85, 256: 0.90, 450: 0.76}  # the middle batch size is best
    seeds = tuple(range(20))
    noise = {s: rng.normal(0, 0.005) for s in seeds}
    sweep = Sweep(tmp_path)
    sweep.study(
        "bs",
        "batch_size",
        list(means),
        seeds=seeds,
        epochs=3,
        curves=lambda bs, s: {"test_acc": ends_at(means[bs] + noise[s], 3)},
    )
    found = verdict(judge(sweep), "smaller-higher")
    assert found.verdict == CONTRADICTED
    assert any("step 10 -> 256" in e and e.endswith(CONTRADICTED) for e in found.evidence)


def test_4_instability_reads_the_loss_and_the_predictions(tmp_path):
    exploding = [1.6, 1.2, 1e9, 0.9, 0.8, 0.7]  # finite, and the accuracy keeps rising
    sweep = lr_study(
        tmp_path / "explodes", extra=lambda lr, s: {"train_loss": exploding} if lr == 1e-2 else {}
    )
    found = verdict(judge(sweep), "highest-erratic")
    assert found.verdict == HOLDS and "train loss exploded to 1e+09" in found.evidence[0]
    one_class = np.zeros(3000, int)  # every test image called class 0: accuracy 1/6, steady
    sweep = lr_study(
        tmp_path / "collapses",
        extra=lambda lr, s: {"pred": one_class, "test_acc": [1 / 6] * 6} if lr == 1e-2 else {},
    )
    summary, _ = sweep.tables()
    assert summary.loc[summary["lr"] == 1e-2, "collapsed"].astype(bool).all()
    assert not summary.loc[summary["lr"] == 1e-2, "diverged"].astype(bool).any()  # rule unchanged
    found = verdict(judge(sweep), "highest-erratic")
    assert found.verdict == HOLDS and "collapsed" in found.evidence[0]


def test_5_one_seed_never_gives_no_practical_difference_for_time_or_memory(tmp_path):
    sweep = Sweep(tmp_path)
    times = {10: 2.0, 256: 2.02, 450: 1.99}
    sweep.study(
        "bs", "batch_size", list(times), epochs=3, curves=lambda bs, s: {"epoch_time_s": times[bs]}
    )
    found = verdict(judge(sweep), "epoch-time")
    assert found.verdict == INCONCLUSIVE and found.seeds == "1 (single-seed)"


def test_6_claims_the_post_did_not_make_stand_beyond_the_post(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study(
        "kw",
        "kernel_width",
        [[k] * 3 for k in (3, 5, 7)],
        epochs=3,
        curves=lambda kw, s: {"conv_param_count": 1000 * kw[0] ** 2},
    )
    summary, metrics = sweep.tables()
    found = findings.compute_findings(findings.Context(summary, metrics, sweep.runs_dir))
    assert [f.key for f in found if f.table == POST and f.study == "kw"] == [
        "conv-params",
        "memory",
    ]
    assert {f.key for f in found if f.table == BEYOND} == {"wider-higher", "epoch-time"}
    text = render_markdown(found, summary, summary.iloc[0:0].assign(kind=[]))
    first = text.split("## Beyond the post")[0]
    assert "Wider kernels mean more parameters in the convolutions." in first
    assert "wider kernels reach" not in first and "need more memory" not in text
    assert "no verdict" in first


def test_7_two_epochs_cannot_show_overfitting(tmp_path):
    found = verdict(judge(lr_study(tmp_path, epochs=2)), "overfits-at-best")
    assert found.verdict == NOT_TESTABLE and "2 epochs cannot show overfitting" in found.effect


# the ants/bees case: two classes, a 49-image validation split, 153 test images
ANTS = {"name": "ants", "image_size": 48, "num_classes": 2, "val_count": 49, "test_count": 153}


def ants_lr_study(root, val: dict, curves, **settings) -> Sweep:
    """Two learning rates on the ants data, three seeds of 3 epochs; ``curves(lr, seed)``."""
    sweep = Sweep(root, data=ANTS)
    sweep.study("lr", "lr", list(val), seeds=(0, 1, 2), epochs=3, curves=curves, **settings)
    return sweep


def test_8_a_lead_of_two_validation_images_is_not_separable(tmp_path):
    # a 3.4-point lead, seeds close together
    val = {1e-3: 0.755, 1e-2: 0.721}
    sweep = ants_lr_study(tmp_path, val, lambda lr, s: {"val_acc": ends_at(val[lr] + 0.002 * s, 3)})
    summary, metrics = sweep.tables()
    chosen = selection.select(summary, metrics, {})[0]["studies"]["lr"]
    assert chosen["difference"]["low"] > 0  # the spread over seeds alone would separate them
    assert chosen["separable"] is False
    assert chosen["separable_margin"] == pytest.approx(2 * np.sqrt(0.757 * 0.243 / 49), abs=1e-3)


def test_9_a_winner_at_chance_and_a_collapsed_run_are_flagged(tmp_path):
    labels = (np.arange(153) < 83).astype(int)  # 83 bees of 153: chance is 54.2 %
    val = {1e-3: 0.50, 1e-2: 0.46}
    sweep = ants_lr_study(
        tmp_path,
        val,
        lambda lr, s: {
            "val_acc": ends_at(val[lr] + 0.001 * s, 3),
            "labels": labels,
            "pred": np.zeros(153, int),
            "test_acc": ends_at(70 / 153, 3),
        },
        model="custom",
    )
    sweep.aggregate()
    best_path, added = tmp_path / "best.yaml", tmp_path / "final-runs.json"
    assert (
        cli_main(
            [
                "select",
                "--tables",
                str(sweep.out),
                "--runs-dir",
                str(sweep.runs_dir),
                "--final",
                '{"seeds": [0, 1, 2]}',
                "--added-out",
                str(added),
                "--out",
                str(best_path),
            ]
        )
        == 0
    )
    text = best_path.read_text()
    assert "WARNING: the winner of lr is at or below chance (54.2%" in text
    best = yaml.safe_load(text)["studies"]["lr"]
    assert best["at_or_below_chance"] is True and best["collapsed_runs"] == 3
    entries = json.loads(added.read_text())["runs"]
    summaries = []
    for entry in entries:  # the final runs: every one predicts ants only, 45.8 %
        rid = write_run(
            sweep.runs_dir,
            seed=entry["seed"],
            data=ANTS,
            labels=labels,
            pred=np.zeros(153, int),
            test_acc=ends_at(70 / 153, 3),
            **entry["settings"],
        )
        summaries.append(str(sweep.runs_dir / rid / "summary.json"))
    final = tmp_path / "final.csv"
    assert (
        cli_main(
            [
                "final",
                "--best",
                str(best_path),
                "--added",
                str(added),
                "--summaries",
                *summaries,
                "--out",
                str(final),
            ]
        )
        == 0
    )
    row = read_table(final).iloc[0]
    assert row["at_or_below_chance"] and row["collapsed"] == 3
    assert row["chance"] == pytest.approx(83 / 153)
    section = "\n".join(selection_section(yaml.safe_load(text), read_table(final)))
    assert (
        "45.8% [45.8%, 45.8%] (3 seeds) **at or below chance (54.2%): learned nothing**" in section
    )
    assert "(3 run(s) collapsed: one class predicted)" in section


def test_10_per_run_checks_scale_with_the_test_split_and_a_users_lr_study_is_applied(tmp_path):
    data = {"name": "ants", "image_size": 48, "num_classes": 2, "test_count": 153}
    wobble = [0.50, 0.55, 0.60, 0.548, 0.62, 0.65]  # one drop of 8 images of 153 (5.2 points)
    sweep = lr_study(
        tmp_path / "small",
        data=data,
        extra=lambda lr, s: {"test_acc": wobble} if lr == 1e-2 else {},
    )
    found = verdict(judge(sweep), "highest-erratic")
    assert found.verdict == CONTRADICTED  # a drop of 8 images is within the split's noise
    mine = Sweep(tmp_path / "mine")
    mine.study("mine", "lr", [1e-3, 1e-2], seeds=(0, 1), epochs=3, model="custom")
    summary, metrics = mine.tables()
    found = findings.compute_findings(findings.Context(summary, metrics, mine.runs_dir))
    assert found and {f.table for f in found} == {APPLIED, BEYOND}
    text = render_markdown(found, summary, summary.iloc[0:0].assign(kind=[]))
    assert "## The post's rules, applied to your study" in text
    assert "## The post's claims" not in text


def test_pairing_is_by_design_and_the_evidence_names_it(tmp_path):
    finals = {10: (0.85, 0.80, 0.90), 450: (0.80, 0.76, 0.84)}  # seeds move both alike
    sweep = Sweep(tmp_path)
    sweep.study(
        "bs",
        "batch_size",
        list(finals),
        seeds=(0, 1, 2),
        epochs=3,
        curves=lambda bs, s: {"test_acc": ends_at(finals[bs][s], 3)},
    )
    sweep.study(
        "kw",
        "kernel_width",
        [[3] * 3, [7] * 3],
        seeds=(0, 1, 2),
        epochs=3,
        curves=lambda kw, s: {"test_acc": ends_at((0.85, 0.80, 0.90)[s], 3)},
    )
    found = judge(sweep)
    paired = verdict(found, "smaller-higher")
    assert "paired by seed, 3 pairs, correlation 1.00" in paired.evidence[-1]
    assert paired.verdict == HOLDS  # Welch over these spreads would stay inconclusive
    welch = verdict(found, "wider-higher")
    assert "Welch (not paired by design)" in welch.evidence[-1]


def test_tables_built_before_the_new_columns_are_judged_alike(tmp_path):
    exploding = [1.6, 1.2, 1e9, 0.9, 0.8, 0.7]
    sweep = lr_study(tmp_path, extra=lambda lr, s: {"train_loss": exploding} if lr == 1e-2 else {})
    summary, metrics = sweep.tables()
    old = summary.drop(columns=["unstable", "collapsed", "chance", "predicted_classes"])
    ctx = findings.Context(old, metrics, sweep.runs_dir)
    found = verdict(findings.compute_findings(ctx), "highest-erratic")
    assert found.verdict == HOLDS and "train loss exploded" in found.evidence[0]
    # chance from the saved labels: 70 % of the test images are class 0
    labels = (np.arange(3000) >= 2100).astype(int)
    sweep = Sweep(tmp_path / "wd", data={"num_classes": 2})
    sweep.post_weight_decay_study(
        lambda wd, s: {"labels": labels, "test_acc": ends_at(0.9 if wd == 0.01 else 0.72, 4)}
    )
    summary, metrics = sweep.tables()
    old = summary.drop(columns=["chance"])
    found = verdict(
        findings.compute_findings(findings.Context(old, metrics, sweep.runs_dir)),
        "extreme-underfits",
    )
    assert "midpoint of chance (70.0%" in " ".join(found.evidence)
