"""Fetch the raw dataset archive into ``data/raw/<name>.zip`` with a JSON sidecar.

Four sources, each giving a zip in one of the layouts :mod:`hpstudy.data.archive_layouts` accepts:

* ``kaggle``: the official ``kaggle`` package downloads the dataset zip;
* ``archive``: a local copy of that zip (downloaded by hand or pulled from a DVC remote), or
  a local folder, packed like ``folder``;
* ``folder``: a local folder of images, packed into a deterministic zip (sorted names, fixed
  timestamps and modes, stored uncompressed), so packing the same folder twice gives the same
  bytes and the same sha256;
* ``digits``: scikit-learn's bundled handwritten digits written as a Kaggle-layout zip,
  offline.

Whatever the source, the zip is CRC-checked before it is renamed into place, and the sidecar
``data/raw/<name>.json`` records its size and sha256. A half-written file never sits under the
final name, so a rerun never mistakes a partial download for a finished one.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import sys
import zipfile
from pathlib import Path

from hpstudy.core import schema
from hpstudy.core.atomic import atomic_path, atomic_write_json
from hpstudy.core.errors import HpstudyError
from hpstudy.data.content import DigestCache, content_digest, unreadable
from hpstudy.data.zip_checks import verify_zip

KAGGLE_DATASET = schema.default("dataset", "kaggle_dataset")
# Fixed timestamp and mode for every generated zip entry, so the digits zip is byte-identical
# on every run (and its sha256 stable).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644 << 16
CREDENTIAL_FORMS = (
    "the KAGGLE_API_TOKEN environment variable (a token, or the path of a file holding one), "
    "~/.kaggle/access_token, KAGGLE_USERNAME plus KAGGLE_KEY, a kaggle.json with username and "
    "key in ~/.kaggle/ (or in the folder named by KAGGLE_CONFIG_DIR), or an OAuth login saved "
    "by `kaggle auth login`"
)
ARCHIVE_ALTERNATIVE = (
    "Alternatively download the dataset zip by hand and set `dataset.source: archive` and "
    "`dataset.archive: <path to the zip>` in the config."
)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- digits (offline)


def digits_split(test_fraction: float = 0.2, seed: int = 0) -> dict[str, list[int]]:
    """Indices of scikit-learn's digits in a stratified, seeded train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise HpstudyError(
            f"The digits test fraction must lie strictly between 0 and 1, got {test_fraction}."
        )
    labels = load_digits().target
    train, test = train_test_split(
        list(range(len(labels))), test_size=test_fraction, random_state=seed, stratify=labels
    )
    return {"train": sorted(train), "test": sorted(test)}


def _jpeg_bytes(pixels) -> bytes:
    """One 8-bit grayscale image encoded as a JPEG (quality 95, no optional metadata)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_digits_zip(
    out_zip: str | os.PathLike, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, int]:
    """Write scikit-learn's 1,797 digits as a Kaggle-layout zip of 8x8 JPEGs at ``out_zip``.

    Classes are folders ``digit_0`` ... ``digit_9``; the split is stratified and seeded; the zip
    bytes are deterministic. Returns the number of images per split.
    """
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    # The digits are 0..16 intensities; stretch them to the full 8-bit range.
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    split = digits_split(test_fraction, seed)
    entries = []
    for split_name, indices in split.items():
        folder = f"seg_{split_name}/seg_{split_name}"
        for i in indices:
            entries.append((f"{folder}/digit_{digits.target[i]}/{i:04d}.jpg", images[i]))
    entries.sort(key=lambda entry: entry[0])
    with atomic_path(out_zip) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, pixels in entries:
            data = _jpeg_bytes(pixels)
            zf.writestr(_fixed_info(name, len(data)), data)
    return {name: len(indices) for name, indices in split.items()}


# --------------------------------------------------------------------------- folder (local)


def _folder_error(folder: Path, setting: str, problem: str) -> HpstudyError:
    return HpstudyError(
        f"The dataset folder {folder} (from `{setting}`) {problem}. Set `{setting}` to a folder "
        "of images in one of the accepted layouts: seg_train/ and seg_test/ (Kaggle), train/ "
        "and test/ (optionally val/), or one folder per class, and rerun."
    )


def _unpackable(path: Path) -> str | None:
    """Why a folder entry cannot be packed, or None."""
    if path.is_symlink():
        return (
            "a symbolic link, which is not packed (it could point anywhere): replace it with "
            "the file or folder it points to"
        )
    if not (path.is_dir() or path.is_file()):
        return "neither a file nor a folder: remove it"
    return None


def folder_files(folder: str | os.PathLike, setting: str = "dataset.path") -> list[str]:
    """The files of ``folder`` as sorted relative POSIX paths, hidden files and folders and
    ``__MACOSX`` left out. Raises :class:`HpstudyError` (naming ``setting``) when the folder is
    missing, not a folder, holds a symbolic link, or has no files."""
    folder = Path(folder)
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise _folder_error(folder, setting, problem)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__MACOSX"]
        for name in [*dirs, *(f for f in files if not f.startswith("."))]:
            rel = (Path(root) / name).relative_to(folder)
            why = _unpackable(folder / rel)
            if why:
                raise _folder_error(folder, setting, f"holds {rel.as_posix()}, {why}")
            if name not in dirs:
                found.append(rel.as_posix())
    if not found:
        raise _folder_error(folder, setting, "holds no files")
    return sorted(found)


def folder_digest(
    folder: str | os.PathLike, setting: str = "dataset.path", cache: DigestCache | None = None
) -> str:
    """The content digest of ``folder``: a sha256 over every packed file's relative path and
    the sha256 of its bytes (:func:`hpstudy.data.content.content_digest`), equal to that of
    the zip packed from it. Touching, copying or checking out the folder again changes
    nothing; ``cache`` remembers each file's sha256 by its size and modification time, so a
    file is read again only when those change. An unreadable file is an HpstudyError."""
    folder, cache = Path(folder), cache or DigestCache()
    entries = []
    for rel in folder_files(folder, setting):
        try:
            entries.append((rel, cache.sha256(folder / rel)))
        except OSError as err:
            raise unreadable(folder / rel, setting, err) from None
    return content_digest(entries)


def pack_folder(
    folder: str | os.PathLike, out_zip: str | os.PathLike, setting: str = "dataset.path"
) -> int:
    """Pack the files of ``folder`` (:func:`folder_files`) into a deterministic zip at
    ``out_zip``: sorted names, fixed timestamps and modes, stored uncompressed (images do not
    deflate). The zip is CRC-checked before it takes its name. Returns the number of files."""
    folder = Path(folder)
    names = folder_files(folder, setting)
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in names:
                source = folder / name
                info = _fixed_info(name, source.stat().st_size)
                try:
                    src = open(source, "rb")  # noqa: SIM115 - closed by the with below
                except OSError as err:
                    raise unreadable(source, setting, err) from None
                with src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        verify_zip(tmp)
    return len(names)


def _fixed_info(name: str, size: int) -> zipfile.ZipInfo:
    """A zip entry whose metadata depends on its name alone (and its size, for zip64)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = 3  # Unix, whatever platform writes it
    info.external_attr = ZIP_FILE_MODE
    # Image data does not deflate; storing keeps the bytes independent of zlib's version.
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    return info


# --------------------------------------------------------------------------- archive (local)


def fetch_archive(src: str | os.PathLike, out_zip: str | os.PathLike) -> int | None:
    """Copy the local dataset zip ``src`` to ``out_zip`` after checking it is intact; a folder
    ``src`` is packed instead (:func:`pack_folder`; returns its number of files)."""
    src = Path(src)
    if src.is_dir():
        return pack_folder(src, out_zip, setting="dataset.archive")
    if not src.is_file():
        raise HpstudyError(
            f"The dataset archive {src} (from `dataset.archive`) does not exist. Set "
            "`dataset.archive` to the path of the downloaded intel-image-classification zip "
            "(or of a folder holding the dataset), or use `dataset.source: kaggle` to "
            "download it."
        )
    verify_zip(src)
    if src.resolve() == Path(out_zip).resolve():
        return None  # already in place; the sidecar is still (re)written by the caller
    with atomic_path(out_zip) as tmp:
        shutil.copyfile(src, tmp)
    return None


# --------------------------------------------------------------------------- kaggle (network)


def _no_credentials_error(dataset: str) -> HpstudyError:
    return HpstudyError(
        f"Cannot download the Kaggle dataset {dataset}: the kaggle client found no credentials "
        "it could use (none are set, or a token it found was not accepted as active). Provide "
        f"one of: {CREDENTIAL_FORMS}. Create a token at https://www.kaggle.com/settings/api. "
        f"{ARCHIVE_ALTERNATIVE}"
    )


@contextlib.contextmanager
def _kaggle_output_to(stream):
    """Send whatever the kaggle package prints to ``stream``, keeping our stdout clean.

    kaggle prints help text, warnings and progress on stdout; some of it (the auth help) must
    not reach the user at all, and none of it belongs on stdout of a pipeline step.
    """
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield


def _authenticated_kaggle_api(dataset: str):
    """Import kaggle lazily and let it find and check its own credentials, turning its
    exit and printed help into one HpstudyError."""
    captured = io.StringIO()
    try:
        with _kaggle_output_to(captured):
            # Importing kaggle authenticates as a side effect (and prints help on failure).
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            # Verbose mode echoes request headers, credentials included: never allow it.
            api.args = [arg for arg in api.args if arg not in ("--verbose", "-v")]
            api.authenticate()
    except SystemExit:
        # kaggle exits when it finds no credential it can use (none, or an inactive token).
        raise _no_credentials_error(dataset) from None
    except Exception as err:  # noqa: BLE001 - any failure here is an authentication failure
        raise _kaggle_http_error(err, dataset) from None
    return api


def _kaggle_http_error(err: Exception, dataset: str) -> HpstudyError:
    """A clear error for a failed Kaggle request (never echoing request headers)."""
    import requests

    status = getattr(getattr(err, "response", None), "status_code", None)
    if status == 401:
        return HpstudyError(
            f"Kaggle rejected the credentials while downloading {dataset} (HTTP 401). The token "
            "or key is wrong, expired or revoked: create a new one at "
            f"https://www.kaggle.com/settings/api and provide it as {CREDENTIAL_FORMS}. "
            f"{ARCHIVE_ALTERNATIVE}"
        )
    if status == 403:
        return HpstudyError(
            f"Kaggle refused access to {dataset} (HTTP 403). Open the dataset page on kaggle.com "
            f"while signed in and accept its terms, then rerun. {ARCHIVE_ALTERNATIVE}"
        )
    if status == 404:
        return HpstudyError(
            f"Kaggle has no dataset {dataset} (HTTP 404). Check `dataset.kaggle_dataset` "
            "(format owner/slug)."
        )
    cut_short = isinstance(err, requests.exceptions.ChunkedEncodingError) or any(
        sign in str(err) for sign in ("IncompleteRead", "does not match expected size")
    )
    if cut_short:
        return HpstudyError(
            f"The download of {dataset} from Kaggle was cut short (fewer bytes arrived than the "
            "server announced), even after retrying. Nothing was written to data/raw; rerun to "
            f"resume the download. {ARCHIVE_ALTERNATIVE}"
        )
    kind = f"HTTP {status}" if status else type(err).__name__
    return HpstudyError(
        f"Downloading {dataset} from Kaggle failed ({kind}). Check the network connection and "
        f"rerun; on a cluster node without internet run the download on the login node. "
        f"{ARCHIVE_ALTERNATIVE}"
    )


def download_dir_for(out_zip: Path) -> Path:
    """Where a Kaggle download is assembled: beside data/raw, never inside it.

    The folder name is stable so that a rerun resumes an interrupted download (kaggle keeps
    a marker proving the partial file belongs to the same remote object).
    """
    return out_zip.parent.parent / f".download-{out_zip.stem}"


def fetch_kaggle(dataset: str, out_zip: str | os.PathLike) -> None:
    """Download the Kaggle dataset ``dataset`` (owner/slug) as one zip to ``out_zip``.

    The zip is assembled outside ``out_zip``'s folder, CRC-checked and only then renamed into
    place. Raises :class:`HpstudyError` without credentials, on HTTP errors (401 names the
    credentials), or when the body is cut short; no secret is ever printed.
    """
    out_zip = Path(out_zip)
    if dataset.count("/") not in (1, 3) or not all(dataset.split("/")):
        raise HpstudyError(
            f"The Kaggle dataset {dataset!r} is not of the form owner/slug "
            "(e.g. puneet6060/intel-image-classification)."
        )
    api = _authenticated_kaggle_api(dataset)
    workdir = download_dir_for(out_zip)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        # kaggle's messages and progress go to the log (stderr), never to stdout.
        with _kaggle_output_to(sys.stderr):
            api.dataset_download_files(dataset, path=str(workdir), unzip=False, quiet=False)
    except SystemExit:
        raise _no_credentials_error(dataset) from None
    except Exception as err:  # noqa: BLE001 - kaggle raises many types; all mean "failed"
        raise _kaggle_http_error(err, dataset) from None
    downloaded = workdir / f"{dataset.split('/')[1]}.zip"
    try:
        verify_zip(downloaded)
    except HpstudyError:
        shutil.rmtree(workdir, ignore_errors=True)  # never resume onto corrupt bytes
        raise
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    os.replace(downloaded, out_zip)
    shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- sidecar + CLI


def write_sidecar(out_zip: Path, source: str, **details) -> dict:
    """Write ``<name>.json`` beside ``out_zip`` with its name, source, size and sha256."""
    record = {
        "name": out_zip.stem,
        "source": source,
        "size_bytes": out_zip.stat().st_size,
        "sha256": sha256_file(out_zip),
        "members": verify_zip(out_zip),
        **details,
    }
    atomic_write_json(out_zip.with_suffix(".json"), record)
    return record


def fetch(args: argparse.Namespace) -> dict:
    """Fetch from the source chosen in ``args`` and write the sidecar; returns the sidecar."""
    out_zip = Path(args.out)
    if out_zip.suffix != ".zip":
        raise HpstudyError(f"The output {out_zip} must end in .zip.")
    if args.source == "digits":
        counts = write_digits_zip(out_zip, args.test_fraction, args.split_seed)
        details = {"test_fraction": args.test_fraction, "split_seed": args.split_seed}
        return write_sidecar(out_zip, "digits", images=counts, **details)
    if args.source == "archive":
        if not args.archive:
            raise HpstudyError(
                "`dataset.source: archive` needs `dataset.archive: <path to the zip>` "
                "(the --archive option of `hpstudy fetch`)."
            )
        fetch_archive(args.archive, out_zip)
        return write_sidecar(out_zip, "archive", archive=str(args.archive))
    if args.source == "folder":
        if not args.path:
            raise HpstudyError(
                "`dataset.source: folder` needs `dataset.path: <folder of images>` (the --path "
                "option of `hpstudy fetch`)."
            )
        pack_folder(args.path, out_zip, setting="dataset.path")
        return write_sidecar(out_zip, "folder", path=str(args.path))
    fetch_kaggle(args.kaggle_dataset, out_zip)
    return write_sidecar(out_zip, "kaggle", kaggle_dataset=args.kaggle_dataset)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``hpstudy fetch``."""
    parser = argparse.ArgumentParser(
        prog="hpstudy fetch", description="Fetch the raw dataset zip into data/raw/."
    )
    sources = ("kaggle", "archive", "folder", "digits")
    parser.add_argument("--source", required=True, choices=sources)
    parser.add_argument("--out", required=True, help="data/raw/<name>.zip; sidecar: <name>.json")
    parser.add_argument("--archive", help="local zip to copy, or folder to pack (source: archive)")
    parser.add_argument("--path", help="local folder of images to pack (source: folder)")
    parser.add_argument("--kaggle-dataset", default=KAGGLE_DATASET, help="owner/slug")
    parser.add_argument("--test-fraction", type=float, help="digits only",
                        default=schema.default("dataset", "test_fraction"))  # fmt: skip
    parser.add_argument("--split-seed", type=int, help="digits only",
                        default=schema.default("dataset", "split_seed"))  # fmt: skip
    return parser
