"""The facts issue 18 gave one home: the data rules' params as Snakemake recorded them, the
metric table, diverged-at-chance, the manifest and the schema's command-line defaults."""

from __future__ import annotations

import numpy as np
import pytest
from support.trainfactory import write_dataset

from hpstudy.core import manifest, metrics, schema
from hpstudy.core.run_record import at_chance
from hpstudy.data import command_options
from hpstudy.data.preprocess import build_parser

DEFAULT = {"source": "kaggle", "archive": None, "path": None, "labels": None, "test_from": None,
           "resize": "stretch", "channels": 3, "test_fraction": 0.2, "val_fraction": 0,
           "split_seed": 0}  # fmt: skip


def test_the_data_params_of_a_default_config_are_the_ones_recorded_before():
    """Snakemake reruns a job whose params change: these strings are what it recorded."""
    assert command_options.fetch_split_args(DEFAULT) == "--test-fraction 0.2 --split-seed 0"
    assert (
        command_options.preprocess_split_args(DEFAULT)
        == "--test-fraction 0.2 --val-fraction 0 --split-seed 0"
    )
    assert command_options.folder_option({**DEFAULT, "source": "folder", "path": "my data"}) == (
        "--path 'my data'"
    )


def test_metric_table():
    assert metrics.column("val_acc") == "final_val_acc"
    assert metrics.column("val_loss", "best") == "min_val_loss"
    assert metrics.column("test_macro_f1", "best") == "best_test_macro_f1"
    assert metrics.on_test("val_balanced_acc") == "test_balanced_acc"
    assert metrics.maximise("val_macro_f1") and not metrics.maximise("test_loss")
    assert metrics.describe("val_acc") == "final validation accuracy"
    with pytest.raises(KeyError):
        metrics.column("val_accuracy")


def test_a_diverged_run_counts_at_chance():
    assert at_chance(0.8, False, 4) == 0.8
    assert at_chance(0.8, True, 4) == 0.25
    assert at_chance(None, False, 5) == 0.2
    counted = at_chance(np.array([0.9, np.nan, 0.7]), np.array([False, False, True]), 2)
    assert counted.tolist() == [0.9, 0.5, 0.5]


def test_the_manifest_is_written_and_read_in_one_place(tmp_path):
    folder = write_dataset(tmp_path, size=8, train=12, test=6)
    written = manifest.read(folder)
    assert written["splits"]["train"]["x"] == manifest.split_files("train")["x"]
    assert written["sha256"]["test_y.npy"] == manifest.sha256_file(folder / "test_y.npy")
    assert sum(written["splits"]["train"]["per_class"].values()) == 12


def test_command_line_defaults_are_the_schemas():
    args = build_parser().parse_args(["--archive", "a.zip", "--out-dir", "out", "--size", "8"])
    assert args.test_fraction == schema.default("dataset", "test_fraction")
    assert args.split_seed == schema.default("dataset", "split_seed")
    assert args.resize == schema.default("dataset", "resize")
