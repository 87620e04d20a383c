"""The post's own runs (``hpstudy/reference/post_*.csv``) and the rule that pairs them with ours.

Plain dicts and the csv module only, so the rule can be applied where the sweep is planned
(which studies get a comparison figure) as well as to the results tables.

The matching rule: a run of ours matches a post run when

- the data is the Intel images as the post used them (the ``intel-image-classification``
  dataset at 150 px, 6 classes);
- ``model``, ``pretrained``, ``batch_size`` and ``epochs`` are equal and ``lr`` equal up to
  floating-point noise (relative 1e-6);
- ``weight_decay`` is equal where the post recorded it; where it did not, any value matches;
- ``optimizer`` is ``adam`` (the post trained with ``torch.optim.Adam``);
- for the custom network, the kernel widths are 5-5-7, the network the post's code defines.
"""

from __future__ import annotations

import csv
import functools
import math
from importlib import resources

POST_DATASET = "intel-image-classification"
POST_IMAGE_SIZE = 150
POST_NUM_CLASSES = 6
POST_OPTIMIZER = "adam"
POST_KERNEL_WIDTH = [5, 5, 7]
LR_REL_TOL = 1e-6
MATCH_RULE = (
    "same model, pretrained, batch_size, epochs and lr; weight_decay where the post recorded "
    f"it; optimizer {POST_OPTIMIZER}; kernel widths 5-5-7 for the custom network; the "
    f"{POST_DATASET} data at {POST_IMAGE_SIZE} px"
)


def _read(name: str) -> list[dict]:
    with resources.files("hpstudy").joinpath(f"reference/{name}").open(encoding="utf-8") as fh:
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


def matches(settings: dict, post: dict) -> bool:
    """Whether our run's settings (every setting, canonical) match one post run's."""
    if settings["optimizer"] != POST_OPTIMIZER or settings["model"] != post["model"]:
        return False
    if bool(settings["pretrained"]) != bool(post["pretrained"]):
        return False
    if settings["model"] == "custom" and list(settings["kernel_width"]) != POST_KERNEL_WIDTH:
        return False
    if int(settings["batch_size"]) != int(post["batch_size"]):
        return False
    if int(settings["epochs"]) != int(post["epochs"]):
        return False
    if not math.isclose(float(settings["lr"]), float(post["lr"]), rel_tol=LR_REL_TOL):
        return False
    if post["weight_decay"] is not None:
        return math.isclose(float(settings["weight_decay"]), float(post["weight_decay"]))
    return True


def matching_post_runs(settings: dict) -> list[dict]:
    """The post runs our run's settings match (data checked separately)."""
    return [post for post in post_runs() if matches(settings, post)]
