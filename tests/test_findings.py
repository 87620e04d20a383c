"""Verdicts on the post's rules: each one flips with the curves fed to it."""

from __future__ import annotations

import pytest
from runfactory import Sweep, approach

from hpstudy import findings
from hpstudy.cli import main as cli_main
from hpstudy.findings import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN

LRS = (1e-7, 1e-4, 1e-2)
HEALTHY = {"test_acc": approach(0.3, 0.8, 6), "test_loss": approach(1.5, 0.6, 6),
           "train_loss": approach(1.6, 0.5, 6)}  # fmt: skip


def study(root, name, param, values, curves, seeds=(0,), **settings):
    """(summary, metrics) of one synthetic study; ``curves(value, seed)`` gives its curves."""
    sweep = Sweep(root)
    sweep.study(name, param, values, seeds=seeds, curves=curves, **settings)
    return sweep.tables()


def lr_study(root, per_value, seeds=(0,), experiment="learning_rate"):
    """A learning-rate study; ``per_value[lr]`` overrides the healthy curves of that rate
    (a callable gets the seed)."""

    def curves(lr, seed):
        extra = per_value.get(lr, {})
        return {**HEALTHY, **(extra(seed) if callable(extra) else extra)}

    return study(root, experiment, "lr", LRS, curves, seeds=seeds, epochs=6)


def ends_at(final, epochs=6, start=0.3):
    return approach(start, final, epochs)[:-1] + [final]


def verdict(found, rule, word=""):
    """The verdict of the one finding of ``rule`` whose claim mentions ``word``."""
    matches = [f for f in found if f.rule == rule and word in f.claim]
    assert len(matches) == 1, [f.claim for f in found]
    return matches[0]


@pytest.mark.parametrize(
    ("finals", "expected"),
    [((0.6, 0.9, 0.65), HOLDS), ((0.6, 0.7, 0.9), FAILS), ((0.7, 0.703, 0.7), INCONCLUSIVE)],
)
def test_middle_learning_rate_beats_both_ends(tmp_path, finals, expected):
    per_value = {lr: {"test_acc": ends_at(f)} for lr, f in zip(LRS, finals, strict=True)}
    summary, metrics = lr_study(tmp_path, per_value)
    found = verdict(findings.compute_findings(summary, metrics), "Learning rate", "middle")
    assert found.verdict == expected
    assert "points" in found.threshold


@pytest.mark.parametrize(
    ("last_losses", "expected"),
    [((1.3, 1.2), HOLDS), ((1.0, 1.1), FAILS), ((1.0, 1.0), FAILS)],
)
def test_lowest_learning_rate_underfits_when_test_loss_still_falls(tmp_path, last_losses, expected):
    loss = [1.8, 1.7, 1.6, 1.5, *last_losses]
    summary, metrics = lr_study(tmp_path, {1e-7: {"test_loss": loss}})
    found = verdict(findings.compute_findings(summary, metrics), "Learning rate", "underfits")
    assert found.verdict == expected
    assert "1e-07" in found.claim


def test_seeds_that_disagree_make_a_check_inconclusive(tmp_path):
    falling, rising = [1.8, 1.7, 1.6, 1.5, 1.3, 1.2], [1.8, 1.7, 1.6, 1.5, 1.0, 1.1]
    per_value = {1e-7: lambda seed: {"test_loss": falling if seed == 0 else rising}}
    summary, metrics = lr_study(tmp_path, per_value, seeds=(0, 1))
    found = verdict(findings.compute_findings(summary, metrics), "Learning rate", "underfits")
    assert found.verdict == INCONCLUSIVE
    assert len([e for e in found.evidence if "seed-" in e]) == 2


@pytest.mark.parametrize(
    ("acc", "diverged", "expected"),
    [([0.3, 0.6, 0.7, 0.4, 0.6, 0.65], False, HOLDS),
     ([0.3, 0.5, 0.6, 0.62, 0.64, 0.66], False, FAILS),
     ([0.3, 0.5, 0.6, 0.62, 0.64, 0.66], True, HOLDS)],
)  # fmt: skip
def test_highest_learning_rate_is_unstable(tmp_path, acc, diverged, expected):
    summary, metrics = lr_study(tmp_path, {1e-2: {"test_acc": acc, "diverged": diverged}})
    found = verdict(findings.compute_findings(summary, metrics), "Learning rate", "unstable")
    assert found.verdict == expected


def test_overfitting_at_the_best_learning_rate_names_the_epoch(tmp_path):
    best = {"test_acc": ends_at(0.95), "test_loss": [1.0, 0.5, 0.4, 0.5, 0.6, 0.7],
            "train_loss": [1.0, 0.6, 0.4, 0.2, 0.1, 0.05]}  # fmt: skip
    summary, metrics = lr_study(tmp_path / "a", {1e-4: best})
    found = verdict(findings.compute_findings(summary, metrics), "Overfitting")
    assert found.verdict == HOLDS
    assert "1e-04" in found.claim
    assert any("lowest at epoch 3" in e and "overfitting from epoch 4" in e for e in found.evidence)
    # the same run whose test loss keeps falling does not overfit
    best["test_loss"] = [1.0, 0.5, 0.4, 0.35, 0.33, 0.32]
    summary, metrics = lr_study(tmp_path / "b", {1e-4: best})
    assert verdict(findings.compute_findings(summary, metrics), "Overfitting").verdict == FAILS


def batch_study(root, accs, times):
    by_size = dict(zip((10, 256, 450), zip(accs, times, strict=True), strict=True))
    return study(root, "bs", "batch_size", list(by_size), epochs=4, curves=lambda bs, seed: {
        "test_acc": ends_at(by_size[bs][0], 4), "epoch_time_s": by_size[bs][1]})  # fmt: skip


def test_batch_size_accuracy_and_time_flip_with_the_numbers(tmp_path):
    summary, metrics = batch_study(tmp_path / "a", (0.82, 0.81, 0.77), (80.0, 40.0, 43.0))
    found = findings.compute_findings(summary, metrics)
    assert verdict(found, "Batch size", "accuracy").verdict == HOLDS
    assert verdict(found, "Batch size", "time").verdict == HOLDS
    summary, metrics = batch_study(tmp_path / "b", (0.70, 0.75, 0.80), (40.0, 60.0, 80.0))
    found = findings.compute_findings(summary, metrics)
    assert verdict(found, "Batch size", "accuracy").verdict == FAILS
    assert verdict(found, "Batch size", "time").verdict == FAILS
    summary, metrics = batch_study(tmp_path / "c", (0.80, 0.80, 0.80), (40.0, 41.0, 42.0))
    found = findings.compute_findings(summary, metrics)
    assert verdict(found, "Batch size", "accuracy").verdict == INCONCLUSIVE
    assert verdict(found, "Batch size", "time").verdict == INCONCLUSIVE


def test_kernel_width_costs_flip_with_the_numbers(tmp_path):
    def kw_study(root, params):
        counts = dict(zip((3, 5, 7), params, strict=True))

        def curves(kw, seed):
            return {"param_count": counts[kw[0]], "peak_memory_mb": 100.0 * kw[0],
                    "epoch_time_s": float(kw[0])}  # fmt: skip

        tables = study(root, "kw", "kernel_width", [[k] * 3 for k in counts], curves, epochs=3)
        return findings.compute_findings(*tables)

    found = kw_study(tmp_path / "a", (1_000_000, 1_500_000, 2_000_000))
    assert verdict(found, "Kernel width", "parameters").verdict == HOLDS
    assert verdict(found, "Kernel width", "memory").verdict == HOLDS
    assert verdict(found, "Kernel width", "time").verdict == HOLDS
    # the seed's network loses parameters with wider kernels (smaller feature maps)
    found = kw_study(tmp_path / "b", (3_000_000, 2_800_000, 2_000_000))
    assert verdict(found, "Kernel width", "parameters").verdict == FAILS


@pytest.mark.parametrize(
    ("smallest", "largest", "expected"),
    [(0.78, 0.245, HOLDS), (0.78, 0.70, FAILS), (0.20, 0.20, INCONCLUSIVE)],
)
def test_extreme_weight_decay_stops_learning(tmp_path, smallest, largest, expected):
    finals = {0.01: smallest, 1.0: largest}

    def curves(wd, seed):
        return {"test_acc": ends_at(finals[wd], 4, start=0.2)}

    tables = study(tmp_path, "wd", "weight_decay", list(finals), epochs=4, curves=curves)
    found = verdict(findings.compute_findings(*tables), "Weight decay")
    assert found.verdict == expected
    assert any("chance 16.7%" in e for e in found.evidence)


def test_studies_are_found_by_param_and_missing_ones_are_not_run(tmp_path):
    summary, metrics = lr_study(tmp_path, {}, experiment="rates_renamed")
    found = findings.compute_findings(summary, metrics)
    assert verdict(found, "Learning rate", "middle").study == "rates_renamed"
    for rule in ("Batch size", "Kernel width", "Weight decay"):
        assert verdict(found, rule).verdict == NOT_RUN


def test_thresholds_are_arguments(tmp_path):
    acc = [0.3, 0.6, 0.7, 0.62, 0.66, 0.68]  # drops 8 points once
    summary, metrics = lr_study(tmp_path, {1e-2: {"test_acc": acc}})
    strict = findings.Thresholds(instability_drop=0.05)
    loose = findings.Thresholds(instability_drop=0.10)
    assert verdict(findings.compute_findings(summary, metrics, strict), "Learning rate",
                   "unstable").verdict == HOLDS  # fmt: skip
    assert verdict(findings.compute_findings(summary, metrics, loose), "Learning rate",
                   "unstable").verdict == FAILS  # fmt: skip


def test_findings_markdown_via_cli(tmp_path, capsys):
    sweep = Sweep(tmp_path, data={"num_classes": 10})
    sweep.study("wd", "weight_decay", [0.01])
    sweep.aggregate()
    out = sweep.out
    assert cli_main(["compare", "--summary", str(out / "summary.csv"),
                     "--out", str(out / "comparison.csv")]) == 0  # fmt: skip
    assert cli_main(["findings", "--tables", str(out), "--out", str(out / "findings.md")]) == 0
    text = (out / "findings.md").read_text()
    assert "## Thresholds" in text and "| chance_margin | 0.1 |" in text
    assert "**NOT RUN**: no study sweeps the learning rate" in text
    assert "**INCONCLUSIVE**: an extreme weight decay (0.01)" in text  # one value only
    assert "No run matches one of the post's runs" in text
