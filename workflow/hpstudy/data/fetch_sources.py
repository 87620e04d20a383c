"""``hpstudy fetch`` with the sources that came after :mod:`hpstudy.data.fetch`: Parquet shards
(``--source parquet --path``), and a label file stored in the raw zip beside the images
(``--labels``, with the sha256 the workflow planned with). Every other source is
:func:`hpstudy.data.fetch.fetch` unchanged, so its zip and sidecar stay byte for byte the same."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpstudy.data import fetch as base
from hpstudy.data.label_files import add_label_file
from hpstudy.data.parquet_source import pack_parquet
from hpstudy.core.errors import HpstudyError

SIDECAR_BASICS = ("name", "source", "size_bytes", "sha256", "members")


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``hpstudy fetch``: :func:`hpstudy.data.fetch.build_parser`'s, with
    ``parquet`` among the sources, and the label file."""
    parser = base.build_parser()
    for action in parser._actions:
        if action.dest == "source":
            action.choices = (*action.choices, "parquet")
        if action.dest == "path":
            action.help = "local folder of images to pack (source: folder), or Parquet shards"
    parser.add_argument(
        "--labels", help="a CSV or JSON-lines file naming each image's file and class"
    )
    parser.add_argument(
        "--labels-sha256", help="the label file's sha256 when the run was planned (checked)"
    )
    return parser


def fetch(args: argparse.Namespace) -> dict:
    """Fetch from the source chosen in ``args``, store the label file when one is given, and
    write the sidecar; returns the sidecar."""
    out_zip = Path(args.out)
    if args.labels and args.source in ("digits", "parquet"):
        raise HpstudyError(
            f"`dataset.labels` does not apply to `dataset.source: {args.source}`, whose "
            "classes the data itself gives: remove `dataset.labels`."
        )
    if args.source == "parquet":
        if not args.path:
            raise HpstudyError(
                "`dataset.source: parquet` needs `dataset.path: <.parquet file or folder of "
                "shards>` (the --path option of `hpstudy fetch`)."
            )
        if out_zip.suffix != ".zip":
            raise HpstudyError(f"The output {out_zip} must end in .zip.")
        pack_parquet(args.path, out_zip)
        return base.write_sidecar(out_zip, "parquet", path=str(args.path))
    record = base.fetch(args)
    if not args.labels:
        return record
    folder = args.path if args.source == "folder" else args.archive
    facts = add_label_file(out_zip, args.labels, folder, args.labels_sha256)
    details = {key: value for key, value in record.items() if key not in SIDECAR_BASICS}
    return base.write_sidecar(out_zip, record["source"], **details, **facts)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hpstudy fetch``."""
    args = build_parser().parse_args(argv)
    record = fetch(args)
    print(
        f"hpstudy fetch: {args.out} ({record['size_bytes']} bytes, sha256 {record['sha256']})",
        file=sys.stderr,
    )
    return 0
