"""The post's own runs (``post_logs/post_*.csv``) and the rule that pairs them with ours.

Plain dicts and the csv module only, so the rule can be applied where the sweep is planned
(which studies get a comparison figure) as well as to the results tables.

The matching rule: one of our runs matches a post run when the data is the Intel images as the
post used them (the ``intel-image-classification`` dataset at 150 px, 6 classes) and every
setting that shapes a run's numbers is the post's: ``model``, ``pretrained``, ``lr``,
``batch_size`` and ``epochs`` as the post recorded them, ``weight_decay`` as recorded or, where
the post did not record it, the value the config declares as its assumed one, and every other
setting at the post code's own value (hpstudy's schema defaults: Adam, kernel widths 5-5-7, no
augmentation, fp32, ...). ``deterministic`` plays no part: it only repeats GPU runs exactly.
The two unlabelled runs are matched with the kernel widths left open.
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

from hpstudy.core import schema
from hpstudy.training.identity import canonical_settings, identity_settings

POST_DATASET = "intel-image-classification"
POST_IMAGE_SIZE = 150
POST_NUM_CLASSES = 6
# the example in the post's README (most runs recorded none): the schema's default
ASSUMED_WEIGHT_DECAY = schema.default("comparison", "assumed_weight_decay")
UNLABELLED = "unlabelled"  # the post's runs 7 and 9: kernel widths unknown
RECORDED = ("model", "pretrained", "lr", "batch_size", "epochs")
IGNORED = ("deterministic",)
MATCH_RULE = (
    "every setting that shapes the numbers is the post's: model, pretrained, lr, batch_size "
    "and epochs as recorded, weight_decay as recorded or the declared assumed value where the "
    "post recorded none, everything else at the post code's values (Adam, kernel widths 5-5-7, "
    f"no augmentation, fp32); the {POST_DATASET} data at {POST_IMAGE_SIZE} px"
)


def _read(name: str) -> list[dict]:
    with (
        resources.files("hpstudy.report").joinpath(f"post_logs/{name}").open(encoding="utf-8") as fh
    ):
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _number(text: str):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


@functools.cache
def post_runs() -> tuple[dict, ...]:
    """The post's runs, one dict each (``post_runs.csv``)."""
    return tuple(_read("post_runs.csv"))


@functools.cache
def post_epochs() -> tuple[dict, ...]:
    """The post's per-epoch curves (``post_epochs.csv``)."""
    return tuple(_read("post_epochs.csv"))


def is_post_data(dataset_name: str, image_size: int, num_classes: int | None = None) -> bool:
    """Whether runs on this data can be compared with the post's."""
    classes_ok = num_classes is None or int(num_classes) == POST_NUM_CLASSES
    return dataset_name == POST_DATASET and int(image_size) == POST_IMAGE_SIZE and classes_ok


def post_settings(post: dict, assumed_weight_decay: float = ASSUMED_WEIGHT_DECAY) -> dict:
    """A post run's settings in hpstudy's terms (canonical, every setting)."""
    recorded = {key: post[key] for key in RECORDED}
    wd = post["weight_decay"] if post["weight_decay"] is not None else assumed_weight_decay
    return canonical_settings(
        {**recorded, "pretrained": bool(post["pretrained"]), "weight_decay": wd}
    )


def matches(
    settings: dict,
    post: dict,
    assumed_weight_decay: float = ASSUMED_WEIGHT_DECAY,
    ignore_kernel_width: bool = False,
) -> bool:
    """Whether our run's settings (every setting, canonical) are one post run's."""
    left_out = (*IGNORED, "kernel_width") if ignore_kernel_width else IGNORED
    ours = identity_settings(settings, without=left_out)
    theirs = identity_settings(post_settings(post, assumed_weight_decay), without=left_out)
    return ours == theirs


def matching_post_runs(
    settings: dict, assumed_weight_decay: float = ASSUMED_WEIGHT_DECAY
) -> list[dict]:
    """The labelled post runs our run's settings match (data checked separately)."""
    return [
        post
        for post in post_runs()
        if post["experiment"] != UNLABELLED and matches(settings, post, assumed_weight_decay)
    ]
