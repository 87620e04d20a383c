"""What torchvision offers, found once and cached: its classification models, each one's
default ImageNet weights, and which image sizes each accepts.

Found when a sweep is planned (before any job runs), so a wrong model name, a model without
pretrained weights or an image size a model cannot take is refused up front. Image sizes are
tried with a dummy forward pass on the meta device (no memory, no compute). The answers are
cached per torchvision version in ``$HPSTUDY_CACHE`` (default ``~/.cache/hpstudy``), so torch
is imported only the first time a model or size is asked about.
"""

from __future__ import annotations

import contextlib
import functools
import json
from importlib import metadata
from pathlib import Path

from hpstudy.core.atomic import atomic_write_json
from hpstudy.core.paths import cache_root

CUSTOM = "custom"
# models built without their auxiliary classifiers (used only to train GoogLeNet/Inception)
AUXILIARY_HEADS = {"googlenet": "aux", "inception_v3": "AuxLogits"}
PROBE_CLASSES = (1000, 7)  # a head's tensors are those whose shape follows the class count


def cache_file() -> Path:
    """The cache of this torchvision version's answers."""
    root = cache_root()
    return root / f"torchvision-{torchvision_version()}.json"


@functools.cache
def torchvision_version() -> str:
    """The installed torchvision's version (read without importing it)."""
    try:
        return metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        return "absent"


def _load() -> dict:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(cache_file().read_text())
    return {}


def _save(cache: dict) -> None:
    with contextlib.suppress(OSError):  # a read-only home: answers are found again next time
        atomic_write_json(cache_file(), cache)


@functools.cache
def _cached() -> dict:
    return _load()


def _remember(section: str, entries: dict) -> None:
    """Add answers to the cache, in memory and on disk (merged with what another process may
    have added meanwhile)."""
    _cached().setdefault(section, {}).update(entries)
    latest = _load()
    for name, known in _cached().items():
        latest.setdefault(name, {}).update(known)
    _save(latest)


def model_names() -> list[str]:
    """Every torchvision classification model (``list_models(module=torchvision.models)``)."""
    if "models" not in _cached():
        import torchvision.models as tv

        _remember("models", {name: weights_entry(name) for name in tv.list_models(module=tv)})
    return sorted(_cached()["models"])


def weights_entry(name: str) -> dict | None:
    """A model's default ImageNet weights: their name, address and file name."""
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return None
    url = weights.url
    return {
        "weights": f"{type(weights).__name__}.{weights.name}",
        "url": url,
        "file": url.rsplit("/", 1)[-1],
    }


def is_known(name: str) -> bool:
    """Whether ``name`` is the custom CNN or a torchvision classification model."""
    return name == CUSTOM or name in model_names()


def weights_info(name: str) -> dict | None:
    """The default ImageNet weights of a torchvision model (None for the custom CNN)."""
    if name == CUSTOM:
        return None
    model_names()
    return _cached()["models"].get(name)


def build_kwargs(name: str) -> dict:
    """Keyword arguments torchvision needs to build ``name`` for hpstudy: no auxiliary heads."""
    return {"aux_logits": False, "init_weights": True} if name in AUXILIARY_HEADS else {}


def meta_model(name: str, num_classes: int):
    """The model built on the meta device: its shapes without its memory."""
    import torch
    from torchvision.models import get_model

    with torch.device("meta"):
        return get_model(name, weights=None, num_classes=num_classes, **build_kwargs(name))


def _forward_works(name: str, size: int) -> bool:
    import torch

    model = meta_model(name, 10).train()
    try:
        model(torch.empty(2, 3, size, size, device="meta"))
    except Exception:  # noqa: BLE001 - any failure of the forward pass means "not this size"
        return False
    return True


def accepts(name: str, size: int) -> bool:
    """Whether torchvision's ``name`` trains on ``size`` x ``size`` images."""
    key = f"{name}@{size}"
    known = _cached().get("sizes", {}).get(key)
    if known is None:
        known = _forward_works(name, size)
        _remember("sizes", {key: known})
    return known


def minimum_size(name: str, largest: int = 1024) -> int | None:
    """The smallest square image size ``name`` accepts (None if none up to ``largest``)."""
    known = _cached().get("minimum", {}).get(name)
    if known is not None:
        return known or None
    low, high = 1, largest
    if not accepts(name, high):
        _remember("minimum", {name: 0})
        return None
    while low < high:
        middle = (low + high) // 2
        if accepts(name, middle):
            high = middle
        else:
            low = middle + 1
    _remember("minimum", {name: low})
    return low


def head_keys(name: str) -> set[str]:
    """The tensors of the classification head: those whose shape follows the class count."""
    big, small = (meta_model(name, n).state_dict() for n in PROBE_CLASSES)
    return {key for key, tensor in big.items() if tensor.shape != small[key].shape}
