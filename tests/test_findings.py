"""Verdicts on the post's rules: every outcome reached by the seeds fed to it, with the
effect, its interval, the seeds and the margin said each time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.runfactory import Sweep, approach

from hpstudy.cli import main as cli_main
from hpstudy.core import run_record
from hpstudy.core.stats import CONTRADICTED, HOLDS, INCONCLUSIVE, NO_DIFFERENCE
from hpstudy.report import claims, findings
from hpstudy.report.claims import NO_VERDICT
from hpstudy.report.tables import final_accuracies

LRS = (1e-7, 1e-4, 1e-2)
HEALTHY = {
    "test_acc": approach(0.3, 0.8, 6),
    "test_loss": approach(1.5, 0.6, 6),
    "train_loss": approach(1.6, 0.5, 6),
}


def ends_at(final, epochs=6, start=0.3):
    return approach(start, final, epochs)[:-1] + [final]


def judge(sweep: Sweep, margin: float = claims.MARGIN) -> list[claims.Finding]:
    summary, metrics = sweep.tables()
    return findings.compute_findings(findings.Context(summary, metrics, sweep.runs_dir, margin))


def verdict(found, key, study=None):
    """The one finding named ``key`` (of ``study``)."""
    matches = [f for f in found if f.key == key and study in (None, f.study)]
    assert len(matches) == 1, [(f.key, f.claim) for f in found]
    return matches[0]


def batch_study(root, finals: dict, seeds=(0, 1, 2), **data) -> Sweep:
    """A batch-size study whose runs end at ``finals[batch][seed]``."""
    sweep = Sweep(root, data=data or None)
    sweep.study(
        "bs",
        "batch_size",
        list(finals),
        seeds=seeds,
        epochs=4,
        curves=lambda bs, seed: {"test_acc": ends_at(finals[bs][seed], 4)},
    )
    return sweep


@pytest.mark.parametrize(
    ("finals", "expected"),
    [
        ({10: (0.85, 0.87, 0.84), 256: (0.80, 0.81, 0.80), 450: (0.75, 0.76, 0.74)}, HOLDS),
        ({10: (0.70, 0.72, 0.69), 256: (0.75, 0.76, 0.75), 450: (0.80, 0.81, 0.79)}, CONTRADICTED),
        (
            {10: (0.800, 0.801, 0.799), 256: (0.800, 0.802, 0.799), 450: (0.801, 0.800, 0.799)},
            NO_DIFFERENCE,
        ),
        ({10: (0.90, 0.70, 0.85), 256: (0.72, 0.88, 0.80), 450: (0.75, 0.86, 0.70)}, INCONCLUSIVE),
    ],
)
def test_seeds_move_a_trend_verdict_to_each_of_the_four_outcomes(tmp_path, finals, expected):
    found = verdict(judge(batch_study(tmp_path, finals)), "smaller-higher")
    assert found.verdict == expected
    assert found.seeds == "3" and found.margin == "2.0 points"
    assert "points [" in found.effect  # the effect with its 95% interval
    if expected == INCONCLUSIVE:
        assert found.resolve and found.resolve > 3


def test_a_trend_uses_every_seed_not_only_the_means(tmp_path):
    # the means fall by 2.5 points, but one seed of three rises: the line is not sure
    finals = {10: (0.84, 0.84, 0.78), 256: (0.82, 0.82, 0.80), 450: (0.80, 0.80, 0.83)}
    found = verdict(judge(batch_study(tmp_path, finals)), "smaller-higher")
    assert found.verdict == INCONCLUSIVE


def test_a_group_stuck_at_chance_has_no_spread_and_still_gets_an_interval(tmp_path):
    sweep = Sweep(tmp_path)
    chance = {0.01: lambda s: ends_at((0.78, 0.80, 0.79)[s], 4), 1.0: lambda s: [1 / 6] * 4}
    sweep.post_weight_decay_study(lambda wd, seed: {"test_acc": chance[wd](seed)})
    found = verdict(judge(sweep), "extreme-underfits")
    assert found.verdict == HOLDS
    assert "[" in found.effect and "paired by seed, 3 pairs" in found.evidence[-1]


def test_one_seed_uses_the_paired_test_on_the_test_images(tmp_path):
    n = 3000
    better = np.arange(n) < 2550  # 85% right
    worse = np.arange(n) < 2400  # 80% right, a subset of the same images
    sweep = Sweep(tmp_path)
    sweep.study(
        "bs",
        "batch_size",
        [10, 450],
        epochs=4,
        curves=lambda bs, seed: {
            "test_acc": ends_at(0.85 if bs == 10 else 0.80, 4),
            "correct": better if bs == 10 else worse,
        },
    )
    found = verdict(judge(sweep), "smaller-higher")
    assert found.verdict == HOLDS and found.seeds == "1 (single-seed)"
    d = better.astype(float) - worse
    half = 1.959964 * d.std(ddof=1) / np.sqrt(n) * 100
    assert found.effect == f"{-5.0:+.1f} points [{-5 - half:+.1f}, {-5 + half:+.1f}]"
    assert "(paired on test images)" in found.evidence[1]


def test_one_seed_never_finds_no_practical_difference(tmp_path):
    same = np.arange(3000) < 2400
    sweep = Sweep(tmp_path)
    sweep.study(
        "bs",
        "batch_size",
        [10, 450],
        epochs=4,
        curves=lambda bs, seed: {"test_acc": ends_at(0.8, 4), "correct": same},
    )
    assert verdict(judge(sweep), "smaller-higher").verdict == INCONCLUSIVE


def test_the_margin_is_configurable_and_never_below_twice_the_test_sets_error(tmp_path):
    finals = {10: (0.83, 0.83, 0.83), 450: (0.80, 0.80, 0.80)}  # 3 points, no spread
    assert verdict(judge(batch_study(tmp_path / "a", finals)), "smaller-higher").verdict == HOLDS
    found = verdict(judge(batch_study(tmp_path / "b", finals), margin=0.05), "smaller-higher")
    assert found.verdict == CONTRADICTED or found.verdict == NO_DIFFERENCE
    assert found.margin == "5.0 points"
    # 360 test images (the digits): twice the binomial error is about 4 points
    small = batch_study(tmp_path / "c", finals, num_classes=10, test_count=360, name="digits")
    found = verdict(judge(small), "smaller-higher")
    assert float(found.margin.split()[0]) == pytest.approx(
        2 * np.sqrt(0.815 * 0.185 / 360) * 100, abs=0.1
    )
    assert found.verdict == NO_DIFFERENCE


def lr_study(root, per_value, seeds=(0,)) -> Sweep:
    """A learning-rate study; ``per_value[lr]`` (a callable gets the seed) overrides the
    healthy curves of that rate."""

    def curves(lr, seed):
        extra = per_value.get(lr, {})
        return {**HEALTHY, **(extra(seed) if callable(extra) else extra)}

    sweep = Sweep(root)
    sweep.study("learning_rate", "lr", LRS, seeds=seeds, epochs=6, curves=curves)
    return sweep


def test_checks_on_each_run_report_k_of_n_seeds(tmp_path):
    falling, rising = [1.8, 1.7, 1.6, 1.5, 1.3, 1.2], [1.8, 1.7, 1.6, 1.5, 1.0, 1.1]
    per_value = {1e-7: lambda seed: {"test_loss": rising if seed == 2 else falling}}
    found = verdict(judge(lr_study(tmp_path / "a", per_value, (0, 1, 2))), "lowest-still-improving")
    assert (
        found.verdict == INCONCLUSIVE
        and found.effect == "2 of 3 seeds"
        and found.margin == "per run"
    )
    per_value = {1e-7: {"test_loss": falling}}
    found = verdict(judge(lr_study(tmp_path / "b", per_value, (0, 1, 2))), "lowest-still-improving")
    assert found.verdict == HOLDS and found.effect == "3 of 3 seeds"


def test_the_middle_learning_rate_against_the_better_end(tmp_path):
    per_value = {
        1e-7: lambda s: {"test_acc": ends_at((0.60, 0.62, 0.61)[s])},
        1e-4: lambda s: {"test_acc": ends_at((0.90, 0.91, 0.92)[s])},
        1e-2: lambda s: {"test_acc": ends_at((0.70, 0.65, 0.68)[s])},
    }
    found = verdict(judge(lr_study(tmp_path, per_value, (0, 1, 2))), "middle-beats-ends")
    assert found.verdict == HOLDS
    assert "1e-04 minus 1e-07" in found.evidence[0] and "1e-04 minus 0.01" in found.evidence[1]


def test_an_exploding_run_is_diverged_counted_at_chance_and_unstable(tmp_path):
    rows = [
        {"epoch": e, "train_loss": loss, "test_acc": acc}
        for e, loss, acc in ((1, 4.1e6, 0.17), (2, 2e13, 0.166))
    ]
    assert run_record.divergence(rows, 6).startswith("exploded")
    assert run_record.divergence([{**rows[0], "train_loss": 1.2, "test_acc": 0.7}], 6) is None
    assert "non-finite" in run_record.divergence([{**rows[0], "train_loss": float("nan")}], 6)
    per_value = {1e-2: {"diverged": True, "test_acc": [0.5, 0.6, 0.61, 0.62, 0.63, 0.64]}}
    sweep = lr_study(tmp_path, per_value)
    summary, _ = sweep.tables()
    run = summary[summary["lr"] == 1e-2].iloc[0]
    assert final_accuracies(summary[summary["lr"] == 1e-2])[0] == pytest.approx(1 / 6)
    assert run["diverged"]
    assert verdict(judge(sweep), "highest-erratic").verdict == HOLDS


def test_wider_kernels_are_judged_on_their_convolution_parameters(tmp_path):
    conv = {3: 3_000, 5: 8_000, 7: 16_000}
    total = {3: 3_000_000, 5: 2_600_000, 7: 2_200_000}  # the flatten size shrinks
    sweep = Sweep(tmp_path)
    sweep.study(
        "kw",
        "kernel_width",
        [[k] * 3 for k in conv],
        epochs=3,
        curves=lambda kw, s: {
            "param_count": total[kw[0]],
            "conv_param_count": conv[kw[0]],
            "peak_memory_mb": 100.0 * kw[0],
            "epoch_time_s": float(kw[0]),
        },
    )
    found = judge(sweep)
    params = verdict(found, "conv-params")
    assert params.verdict == HOLDS and params.effect == "+433% (no spread)"
    assert "total falls as kernels widen" in " ".join(params.evidence)
    memory = verdict(found, "memory")
    assert memory.verdict == NO_VERDICT and memory.effect.startswith("+133%")
    assert "the post takes no side" in memory.evidence[-1]


def test_findings_md_opens_with_the_verdict_table_and_other_studies_get_theirs(tmp_path):
    finals = {10: (0.85, 0.86, 0.84), 256: (0.80, 0.81, 0.80), 450: (0.75, 0.76, 0.74)}
    sweep = batch_study(tmp_path, finals)
    sweep.study("grid", ("lr", "optimizer"), [(1e-3, "sgd"), (1e-3, "adamw")], epochs=3)
    sweep.aggregate()
    out = sweep.out
    assert cli_main(["compare", "--tables", str(out)]) == 0
    argv = [
        "findings",
        "--tables",
        str(out),
        "--runs-dir",
        str(sweep.runs_dir),
        "--out",
        str(out / "findings.md"),
    ]
    assert cli_main(argv) == 0
    text = (out / "findings.md").read_text()
    lines = text.splitlines()
    assert lines[2] == "## The post's claims, as the post makes them"
    assert lines[4].startswith("| rule | the post says | claim tested | verdict | effect (CI) |")
    assert (
        "| Batch size | Smaller batches reach a higher test accuracy. | smaller batches reach a "
        "higher final test accuracy (`bs`) | **holds** |" in text
    )
    assert "## Beyond the post: checks of our own" in text
    assert "Each row's interval is a 95% interval for that claim alone" in text
    assert "not testable here: the sweep has no a learning-rate study" not in text
    assert "not testable here: the sweep has no learning-rate study of ResNet18" in text
    assert (
        "Not judged here, as no study sweeps that setting alone: Learning rate, Kernel width"
        in text
    )
    assert "### Study `grid` (learning rate x optimizer)" in text
    assert "No rule of the post is about this study" in text
    assert "| 0.001 | adamw |" in text
    assert "No setting of this sweep is one of the post's runs" in text
    counts = json.loads((out / "findings.json").read_text())["verdicts"]
    assert counts == {
        "holds": 2,
        "contradicted": 0,
        "no_practical_difference": 1,
        "inconclusive": 0,
        "not_testable_here": 1,
    }
