"""The plan: studies of any shape expand to distinct runs named and keyed by their identity,
validated before any job runs."""

from __future__ import annotations

import copy

import pytest
from conftest import REPO

from hpstudy.core.config import load_config, validate_config
from hpstudy.core.errors import HpstudyError
from hpstudy.sweep.plan import build_plan
from hpstudy.training import identity


@pytest.fixture
def seed_config():
    return load_config(REPO / "config" / "config.yaml")


def names(plan, study=None):
    studies = [plan.studies[study]] if study else plan.studies.values()
    return [plan.runs[rid].name for s in studies for rid in s.run_ids()]


def test_the_posts_studies_expand_to_named_runs(seed_config):
    seed_config["seeds"] = [0]
    plan = build_plan(seed_config)
    assert names(plan, "learning_rate") == [
        "model-resnet18_pretrained-true_lr-1e-07_bs-32",
        "model-resnet18_pretrained-true_bs-32",
        "model-resnet18_pretrained-true_lr-0.01_bs-32",
    ]
    assert names(plan, "batch_size") == ["bs-10", "default", "bs-450"]
    assert names(plan, "kernel_width") == ["kw-3-3-3", "kw-5-5-5", "kw-7-7-7", "default"]
    assert names(plan, "weight_decay") == ["bs-450", "wd-1_bs-450"]
    # batch 256 is the default run, and batch 450 at the default weight decay is one run:
    # shared settings are trained once
    assert len(plan.runs) == 3 + 3 + 3 + 1
    run = plan.runs[
        "intel-image-classification-150/model-resnet18_pretrained-true_lr-0.01_bs-32/seed-0"
    ]
    assert run.settings["model"] == "resnet18" and run.settings["lr"] == 0.01
    assert run.identity["weights"].startswith("torchvision:")
    assert plan.runs["intel-image-classification-150/kw-3-3-3/seed-0"].settings["kernel_width"] == [
        3,
        3,
        3,
    ]


def test_seeds_repeat_every_run(seed_config):
    seed_config["seeds"] = [0, 1, 2]
    plan = build_plan(seed_config)
    assert len(plan.runs) == 30
    assert {run.seed for run in plan.runs.values()} == {0, 1, 2}


def test_a_grid_takes_every_combination_and_zip_pairs_the_lists():
    def study(**spec):
        config = validate_config({"dataset": {"source": "digits", "name": "d", "image_size": 48},
                                  "seeds": [0], "studies": {"s": spec}})  # fmt: skip
        return build_plan(config).studies["s"]

    grid = study(params={"lr": [1.0e-4, 1.0e-3], "batch_size": [32, 128]}, set={"model": "custom"})
    assert [values for _, values in grid.points] == [
        {"lr": 1e-4, "batch_size": 32}, {"lr": 1e-4, "batch_size": 128},
        {"lr": 1e-3, "batch_size": 32}, {"lr": 1e-3, "batch_size": 128},
    ]  # fmt: skip
    zipped = study(params={"lr": [1.0e-4, 1.0e-3], "batch_size": [32, 128]}, mode="zip")
    assert [values for _, values in zipped.points] == [
        {"lr": 1e-4, "batch_size": 32}, {"lr": 1e-3, "batch_size": 128}]  # fmt: skip
    with pytest.raises(HpstudyError, match="lengths differ"):
        study(params={"lr": [1.0e-4, 1.0e-3], "batch_size": [32]}, mode="zip")


def test_equal_values_written_differently_are_one_run():
    config = validate_config({
        "dataset": {"source": "digits", "name": "d", "image_size": 48}, "seeds": [0],
        "studies": {
            "a": {"param": "kernel_width", "values": [3, [5, 5, 5]]},
            "b": {"param": "kernel_width", "values": [[3, 3, 3], 5]},
            "c": {"param": "lr", "values": [1.0e-4, 0.0001, "1e-4", 0.001]},
        },
    })  # fmt: skip
    plan = build_plan(config)
    assert plan.studies["a"].run_ids() == plan.studies["b"].run_ids()
    assert len(plan.studies["c"].run_ids()) == 2
    assert len(plan.runs) == 4  # kw 3, kw 5; lr 1e-4 (the default run) and 1e-3


def test_expansion_is_stable_and_one_change_touches_one_run(seed_config):
    before = {rid: run.identity_json for rid, run in build_plan(seed_config).runs.items()}
    assert before == {
        r: x.identity_json for r, x in build_plan(copy.deepcopy(seed_config)).runs.items()
    }
    seed_config["studies"]["weight_decay"]["values"] = [0.01, 0.5]
    after = {rid: run.identity_json for rid, run in build_plan(seed_config).runs.items()}
    assert {rid.split("/")[1] for rid in set(before) ^ set(after)} == {
        "wd-1_bs-450",
        "wd-0.5_bs-450",
    }


def test_execution_settings_and_unused_settings_are_not_part_of_the_identity(seed_config):
    base = build_plan(seed_config).runs
    seed_config["train"].update(
        eval_batch_size=64, device="cpu", keep_checkpoint=True, momentum=0.5
    )
    changed = build_plan(seed_config).runs
    assert {rid: r.identity_json for rid, r in base.items()} == {
        rid: r.identity_json for rid, r in changed.items()
    }  # momentum only shapes SGD runs, and none of these is one
    assert next(iter(changed.values())).settings["eval_batch_size"] == 64


def test_a_bad_swept_value_names_its_place(seed_config):
    seed_config["studies"]["batch_size"]["values"] = [10, 0]
    with pytest.raises(HpstudyError, match=r"studies\.batch_size\.values\[1\]"):
        build_plan(seed_config)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values_are_refused_wherever_they_are(seed_config, bad):
    seed_config["studies"]["learning_rate"]["values"] = [1e-4, bad]
    with pytest.raises(
        HpstudyError, match=r"learning_rate\.values\[1\]: .* is not a finite number"
    ):
        build_plan(seed_config)


def test_image_size_is_checked_against_every_kernel_width_before_any_job(seed_config):
    seed_config["dataset"]["image_size"] = 40
    seed_config["studies"]["kernel_width"]["values"] = [3, 5, 7]
    with pytest.raises(HpstudyError) as err:
        build_plan(seed_config)
    message = str(err.value)
    assert "studies.kernel_width" in message and "kernel widths 7-7-7" in message
    assert "at least 44 px" in message and "5-5-5" not in message


def test_pretrained_without_weights_for_the_model_is_refused(seed_config):
    seed_config["studies"]["batch_size"]["set"] = {"pretrained": True}
    with pytest.raises(HpstudyError, match="model 'custom' has no ImageNet weights"):
        build_plan(seed_config)


def test_a_study_must_sweep_a_setting_that_changes_numbers(seed_config):
    seed_config["studies"]["batch_size"]["param"] = "eval_batch_size"
    with pytest.raises(HpstudyError, match="'eval_batch_size' changes no number"):
        validate_config(seed_config)
    seed_config["studies"]["batch_size"]["param"] = "batchsize"
    with pytest.raises(HpstudyError, match="did you mean 'batch_size'"):
        validate_config(seed_config)


def test_run_names_are_readable_and_long_ones_stay_unique():
    short = identity.run_name({"settings": {"weight_decay": 1.0, "batch_size": 450}})
    assert short == "wd-1_bs-450"
    assert identity.run_name({"settings": {}}) == "default"
    many = {f"k{i}": i for i in range(60)}
    long_a = identity.run_name({"settings": many})
    long_b = identity.run_name({"settings": {**many, "k59": 60}})
    assert len(long_a) <= identity.MAX_NAME_LENGTH and long_a != long_b


def test_the_code_digest_ignores_comments_and_docstrings_and_is_scoped_per_model(tmp_path):
    package = tmp_path / "pkg"
    for key in identity.DIGESTED_AT.values():
        (package / key).parent.mkdir(parents=True, exist_ok=True)
        (package / key).write_text('"""Doc."""\nx = 1  # note\n')

    def digests():
        identity.module_digest.cache_clear()
        return identity.code_digest("custom", package), identity.code_digest("resnet18", package)

    custom, resnet = digests()
    (package / identity.DIGESTED_AT["loop.py"]).write_text(
        '"""Other words."""\n\n# a new comment\nx = 1\n'
    )
    assert digests() == (custom, resnet)
    (package / identity.DIGESTED_AT["models/custom.py"]).write_text("x = 2\n")
    assert digests()[0] != custom and digests()[1] == resnet
    (package / identity.DIGESTED_AT["loop.py"]).write_text("x = 3\n")
    assert digests()[1] != resnet
    identity.module_digest.cache_clear()


def test_a_whole_run_is_one_target_and_a_lost_output_is_asked_for(tmp_path):
    """rule all and aggregate ask for each run's summary.json (written last); a run that has
    its summary but lost another output also gets that output asked for, so it trains again."""
    from hpstudy.core.paths import RUN_OUTPUTS, Layout
    from hpstudy.rule_targets import whole_run_targets

    layout = Layout(runs=str(tmp_path / "runs"))
    ids = ["digits-48/a/seed-0", "digits-48/b/seed-0", "digits-48/c/seed-0"]
    for rid in ids[:2]:  # a and b finished; c never ran
        run_dir = tmp_path / "runs" / rid
        run_dir.mkdir(parents=True)
        for name in RUN_OUTPUTS:
            (run_dir / name).write_text("x")
    (tmp_path / "runs" / ids[1] / "model.pt").unlink()  # b lost its weights
    summaries = [layout.run_file(rid, "summary.json") for rid in ids]
    assert whole_run_targets(layout, ids) == [
        summaries[0],
        summaries[1],
        layout.run_file(ids[1], "model.pt"),
        summaries[2],
    ]
    assert whole_run_targets(layout, ids, scan=False) == summaries
