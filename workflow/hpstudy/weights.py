"""``hpstudy fetch-weights``: put torchvision's ImageNet ResNet18 weights into a local file.

Compute nodes often have no internet, so pretrained weights are fetched once by a local rule (or
copied from a file the user already has) and training only ever reads the local file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from hpstudy.atomic import atomic_path
from hpstudy.errors import HpstudyError
from hpstudy.models import PRETRAINED_MODELS
from hpstudy.models.zoo import load_imagenet_state_dict

LOCAL_FILE_HINT = (
    "download {url} on a machine with internet and either name it in the config "
    "(`train.weights: /path/to/resnet18-f37072fd.pth`) or copy it into place with "
    "`hpstudy fetch-weights --model resnet18 --from /path/to/resnet18-f37072fd.pth --out {out}`"
)


def weights_url(model: str) -> str:
    """The download address of torchvision's ImageNet weights for ``model``."""
    if model != "resnet18":
        raise HpstudyError(f"No pretrained weights are known for model {model!r}; use resnet18.")
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1.url


def fetch_weights(model: str, out: str | os.PathLike, source: str | None = None) -> Path:
    """Download (or copy from ``source``) the weights to ``out``; validated before the rename."""
    out = Path(out)
    url = weights_url(model)
    with atomic_path(out) as tmp:
        if source is not None:
            try:
                shutil.copyfile(source, tmp)
            except OSError as err:
                raise HpstudyError(
                    f"Cannot copy the weights file {source} ({err}); check the --from path."
                ) from err
        else:
            download(url, tmp, out)
        load_imagenet_state_dict(tmp)  # raises HpstudyError naming the local-file option
    return out


def download(url: str, tmp: Path, out: Path) -> None:
    """Download ``url`` to ``tmp`` with torch.hub; a clear error when it cannot."""
    import torch.hub

    try:
        torch.hub.download_url_to_file(url, str(tmp), progress=sys.stderr.isatty())
    except Exception as err:  # no internet, proxy, DNS, HTTP error, disk full, ...
        raise HpstudyError(
            f"Cannot download the ResNet18 ImageNet weights from {url} "
            f"({type(err).__name__}: {err}); {LOCAL_FILE_HINT.format(url=url, out=out)}."
        ) from err


def main(argv: list[str] | None = None) -> int:
    """``hpstudy fetch-weights``: fetch pretrained weights into a local file."""
    parser = argparse.ArgumentParser(prog="hpstudy fetch-weights", description=main.__doc__)
    parser.add_argument("--model", default="resnet18", choices=PRETRAINED_MODELS)
    parser.add_argument(
        "--out", required=True, help="e.g. resources/weights/resnet18-imagenet1k-v1.pth"
    )
    parser.add_argument(
        "--from",
        dest="source",
        default=None,
        help="copy and validate this local file instead of downloading",
    )
    args = parser.parse_args(argv)
    path = fetch_weights(args.model, args.out, args.source)
    print(f"weights ready: {path}")
    return 0
