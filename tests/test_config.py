"""The config schema: defaults filled, bad values named with their key path and rule."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO

from hpstudy.core.config import load_config, validate_config
from hpstudy.core.errors import HpstudyError


@pytest.fixture
def demo():
    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(REPO / "config" / name)
    assert set(config["studies"]) == {"learning_rate", "batch_size", "kernel_width", "weight_decay"}
    assert config["train"]["optimizer"] == "adam"


def test_defaults_are_filled_but_study_overrides_stay_sparse():
    config = validate_config(
        {
            "dataset": {"source": "digits"},
            "studies": {"s": {"param": "lr", "values": [0.1], "set": {"batch_size": 8}}},
        }
    )
    assert config["train"]["epochs"] == 10
    assert config["paths"]["results"] == "results"
    assert config["dataset"]["image_size"] == 150
    assert config["seeds"] == [0, 1, 2]  # every verdict gets an interval across seeds
    assert config["studies"]["s"]["set"] == {"batch_size": 8}


def mutate(config, dotted, value):
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("train.lr", -0.001, ["train.lr", "exclusiveMinimum"]),
        ("dataset.source", "ftp", ["dataset.source", "enum", "'ftp'"]),
        ("train.batch_size", 0, ["train.batch_size", "minimum"]),
        ("train.epoch", 3, ["train", "'epoch'", "did you mean 'epochs'"]),
        ("train.lr", "fast", ["train.lr", "type", "write a number"]),
        ("studies.batch_size.values", [], ["studies.batch_size.values", "minItems"]),
        ("seeds", [0, 0], ["seeds", "uniqueItems"]),
        ("train.kernel_width", [3, 5], ["train.kernel_width", "oneOf"]),
    ],
)
def test_bad_values_are_named_with_key_path_and_rule(demo, key, value, expected):
    with pytest.raises(HpstudyError) as err:
        validate_config(mutate(copy.deepcopy(demo), key, value), source="demo.yaml")
    message = str(err.value)
    assert "demo.yaml" in message and "config/README.md" in message
    for fragment in expected:
        assert fragment in message


def test_every_violation_is_reported_at_once(demo):
    bad = mutate(mutate(copy.deepcopy(demo), "train.lr", -1.0), "train.epochs", 0)
    message = str(pytest.raises(HpstudyError, validate_config, bad).value)
    assert "train.lr" in message and "train.epochs" in message


def test_text_that_means_a_number_or_boolean_is_read_as_one(demo):
    # YAML 1.1 reads 1e-4 as text; `snakemake --config train='{epochs: 2}'` passes text too.
    demo["train"].update(lr="1e-4", epochs="2", flip="true", kernel_width="3")
    demo["dataset"]["name"] = "2024"
    config = validate_config(demo)
    assert config["train"]["lr"] == 1e-4 and config["train"]["epochs"] == 2
    assert config["train"]["flip"] is True and config["train"]["kernel_width"] == 3
    assert config["dataset"]["name"] == "2024", "text stays text where the schema wants text"


def test_archive_source_needs_an_archive_path(demo):
    demo["dataset"] = {"source": "archive", "name": "intel"}
    with pytest.raises(HpstudyError, match="dataset.archive"):
        validate_config(demo)


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(HpstudyError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [unclosed\n")
    with pytest.raises(HpstudyError, match="not valid YAML"):
        load_config(broken)


@pytest.mark.parametrize(
    ("key", "value"),
    [("train.lr", float("nan")), ("train.weight_decay", float("inf")),
     ("dataset.test_fraction", float("nan"))],
)  # fmt: skip
def test_nan_and_inf_are_refused_for_any_number(demo, key, value):
    with pytest.raises(HpstudyError) as err:
        validate_config(mutate(copy.deepcopy(demo), key, value), source="demo.yaml")
    assert f"{key}: {value} is not a finite number" in str(err.value)


def test_a_study_takes_one_key_or_several_but_not_both(demo):
    demo["studies"]["batch_size"]["params"] = {"lr": [0.1]}
    with pytest.raises(HpstudyError, match="studies.batch_size"):
        validate_config(demo)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("paths.results", "results/a b $(touch x)", "$ ( )"),
        ("paths.runs", "runs`id`", "`"),
        ("paths.data", "data; rm -rf ~", "; ~"),
        ("paths.checkpoints", "ck\nx", r"'\n'"),
        ("paths.resources", "res|x&y>z<w'q\"", "| & > < ' \""),
        ("paths.results", "results/{study}", "{ }"),
        ("dataset.path", "images\n", r"'\n'"),
        ("dataset.archive", "data/{name}.zip", "{ }"),
        ("dataset.name", "digits\n", r"'\n'"),
    ],
)
def test_paths_with_shell_metacharacters_are_refused_by_name(demo, key, value, named):
    with pytest.raises(HpstudyError) as err:
        validate_config(mutate(demo, key, value))
    message = str(err.value)
    assert f"{key}: {value!r} holds {named};" in message
    assert "may not hold" in message or "may not end in a newline" in message


@pytest.mark.parametrize("value", ["results/a b", "/scratch/user/hp study/results", "../r-1_x.y"])
def test_paths_with_spaces_or_outside_the_project_stay_allowed(demo, value):
    config = validate_config(mutate(demo, "paths.results", value))
    assert config["paths"]["results"] == value


def test_new_dataset_settings_are_checked_before_anything_runs(demo, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cases = [
        ({"source": "parquet", "path": str(tmp_path / "none")}, "does not exist"),
        ({"source": "digits", "labels": str(tmp_path / "l.csv")}, "does not apply"),
        ({"source": "folder", "path": str(folder), "labels": "absent.csv"}, "not an existing"),
        ({"source": "folder", "path": str(folder), "test_from": "val", "pred": True}, "pred"),
        ({"source": "folder", "path": str(folder), "resize": "zoom"}, "dataset.resize"),
        ({"source": "folder", "path": str(folder), "channels": 2}, "dataset.channels"),
    ]
    for dataset, expected in cases:
        config = copy.deepcopy(demo)
        config["dataset"] = {"name": "mine", **dataset}
        with pytest.raises(HpstudyError, match=expected):
            validate_config(config)
    config = copy.deepcopy(demo)
    config["dataset"] = {"name": "mine", "source": "folder", "path": str(folder),
                         "test_from": "val", "resize": "pad", "channels": 1}  # fmt: skip
    filled = validate_config(config)["dataset"]
    assert (filled["test_from"], filled["resize"], filled["channels"]) == ("val", "pad", 1)
    config["selection"] = {"metric": "val_acc"}
    with pytest.raises(HpstudyError, match="val_fraction"):  # its val/ became the test split
        validate_config(config)
