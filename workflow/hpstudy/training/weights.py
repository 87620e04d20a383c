"""``hpstudy fetch-weights``: put a torchvision model's ImageNet weights into a local file.

Compute nodes often have no internet, so pretrained weights are fetched once by a local rule (or
copied from a file the user already has) and training only ever reads the local file. The file
is checked before it takes its name: its sha256 against the prefix torchvision puts in the file
name, and its tensors against the model.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from hpstudy.core.atomic import atomic_path
from hpstudy.core.errors import HpstudyError
from hpstudy.training.models import catalog

LOCAL_FILE_HINT = (
    "download {url} on a machine with internet and either name it in the config "
    "(`train.weights: /path/to/{file}`) or copy it into place with "
    "`hpstudy fetch-weights --model {model} --from /path/to/{file} --out {out}`"
)


def weights_of(model: str) -> dict:
    """torchvision's default ImageNet weights of ``model`` (name, address, file)."""
    info = catalog.weights_info(model) if catalog.is_known(model) else None
    if info is None:
        raise HpstudyError(
            f"No ImageNet weights are known for model {model!r}: it is not a torchvision "
            "classification model with pretrained weights. Set `pretrained: false` for it."
        )
    return info


def fetch_weights(model: str, out: str | os.PathLike, source: str | None = None) -> Path:
    """Download (or copy from ``source``) the weights to ``out``; checked before the rename."""
    from hpstudy.training.models.zoo import check_weights, load_state_dict_file

    out, info = Path(out), weights_of(model)
    with atomic_path(out) as tmp:
        if source is not None:
            try:
                shutil.copyfile(source, tmp)
            except OSError as err:
                raise HpstudyError(
                    f"Cannot copy the weights file {source} ({err}); check the --from path."
                ) from err
        else:
            download(info, model, tmp, out)
        check_weights(model, load_state_dict_file(tmp), source or info["url"])
    return out


def download(info: dict, model: str, tmp: Path, out: Path) -> None:
    """Download the weights to ``tmp`` with torch.hub, checking the sha256 prefix torchvision
    puts in the file name; a clear error when it cannot."""
    import torch.hub

    prefix = re.search(r"-([0-9a-f]{8,})\.", info["file"])
    try:
        torch.hub.download_url_to_file(
            info["url"], str(tmp), hash_prefix=prefix[1] if prefix else None,
            progress=sys.stderr.isatty(),
        )  # fmt: skip
    except Exception as err:  # no internet, proxy, DNS, HTTP error, a damaged download, ...
        hint = LOCAL_FILE_HINT.format(url=info["url"], file=info["file"], model=model, out=out)
        raise HpstudyError(
            f"Cannot download the ImageNet weights of {model} from {info['url']} "
            f"({type(err).__name__}: {err}); {hint}."
        ) from err


def main(argv: list[str] | None = None) -> int:
    """``hpstudy fetch-weights``: fetch a model's ImageNet weights into a local file."""
    parser = argparse.ArgumentParser(prog="hpstudy fetch-weights", description=main.__doc__)
    parser.add_argument("--model", default="resnet18", help="a torchvision model name")
    parser.add_argument("--out", required=True, help="e.g. resources/weights/resnet18/<file>")
    parser.add_argument(
        "--from",
        dest="source",
        default=None,
        help="copy and check this local file instead of downloading",
    )
    args = parser.parse_args(argv)
    path = fetch_weights(args.model, args.out, args.source)
    print(f"weights ready: {path}")
    return 0
