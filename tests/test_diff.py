"""`hpstudy diff`: two results folders joined on settings, paired by seed where they can be."""

from __future__ import annotations

import shutil

import pytest
from support.runfactory import Sweep, approach

from hpstudy import cli
from hpstudy.report import results_diff
from hpstudy.report.tables import read_table

SEEDS = (0, 1, 2)


def sweep(root, shift: float = 0.0, values=(0.01, 0.001)) -> Sweep:
    """A study of ``lr`` over three seeds whose final accuracy differs by seed (so an interval
    over seeds is wide), ``shift`` added to lr 0.01's."""

    def curves(lr, seed):
        end = 0.80 + 0.03 * seed + (shift if lr == 0.01 else 0.0)
        return {"test_acc": approach(0.3, end, 10)}

    runs = Sweep(root)
    runs.study("lr", "lr", list(values), seeds=SEEDS, curves=curves, epochs=10)
    runs.aggregate()
    return runs


def run_diff(a, b, tmp_path, capsys):
    out = tmp_path / "results_diff.csv"
    assert cli.main(["diff", str(a), str(b), "--out", str(out)]) == 0
    return read_table(out), capsys.readouterr().out


def test_a_folder_against_itself_differs_by_zero_with_zero_width(tmp_path, capsys):
    results = sweep(tmp_path / "a").out
    joined, text = run_diff(results, results, tmp_path, capsys)
    assert len(joined) == 2 and (joined["method"] == "paired by seed").all()
    assert (joined[["diff", "diff_low", "diff_high"]] == 0).all().all()
    assert not joined["excludes_zero"].any()
    assert text.count("+0.0 points [+0.0, +0.0]") == 2


def test_a_shifted_setting_is_found_paired_by_seed_and_one_side_only_listed(tmp_path, capsys):
    a = sweep(tmp_path / "a").out
    b = sweep(tmp_path / "b", shift=0.05, values=(0.01, 0.001, 0.1)).out
    joined, text = run_diff(a, b, tmp_path, capsys)
    by_name = joined.set_index("name")
    shifted, same = by_name.loc["lr-0.01"], by_name.loc["lr-0.001"]
    # every seed gains the same (the curves end short of their asymptote: 0.05 x 0.93)
    assert 0.04 < shifted["diff"] < 0.05 and shifted["excludes_zero"]
    assert shifted["diff_low"] == pytest.approx(shifted["diff_high"])
    assert same["diff"] == pytest.approx(0.0) and not same["excludes_zero"]
    assert "Only in B" in text and "lr-0.1" in text


def test_a_search_only_results_folder_is_compared_by_its_search_tables(tmp_path, capsys):
    grid = sweep(tmp_path / "a").out
    searched = tmp_path / "searched"
    (searched / "search" / "s").mkdir(parents=True)
    shutil.copy(grid / "summary.csv", searched / "search" / "s" / "summary.csv")
    assert not (searched / "summary.csv").exists()
    joined, _ = run_diff(grid, searched, tmp_path, capsys)
    assert len(joined) == 2 and (joined["diff"] == 0).all()
    assert len(results_diff.runs_of(searched)) == len(SEEDS) * 2


def test_a_folder_without_any_summary_is_one_paragraph(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["diff", str(tmp_path / "empty"), str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hpstudy: error: ") and "search/<name>/" in err
