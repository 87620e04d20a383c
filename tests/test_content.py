"""Content digests of a dataset's source: each file hashed once and remembered by its size and
time, and the decision that a fetch rerun cannot change the bytes the arrays were made from."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from support.zipfactory import layout_dataset, write_folder

from hpstudy.data import content
from hpstudy.data.content import DigestCache
from hpstudy.data.fetch import folder_digest, pack_folder, sha256_file
from hpstudy.data.refetch import same_zip_after_fetch

OLD = 1_600_000_000_000_000_000  # a modification time long past (not "racily clean")


def old_folder(root: Path) -> Path:
    folder = write_folder(root, layout_dataset("train-test", {"train": 2, "test": 1}))
    for path in folder.rglob("*"):
        os.utime(path, ns=(OLD, OLD))
    return folder


@pytest.fixture
def hashes(monkeypatch):
    """The files the digest cache reads, in order."""
    read = []
    real = content._hash_file

    def counting(path):
        read.append(Path(path))
        return real(path)

    monkeypatch.setattr(content, "_hash_file", counting)
    return read


def test_a_file_is_hashed_once_then_again_only_when_touched(tmp_path, hashes):
    folder = old_folder(tmp_path / "images")
    cache_file = tmp_path / ".snakemake" / "hpstudy" / "digests.json"
    cache = DigestCache(cache_file)
    first = folder_digest(folder, cache=cache)
    assert len(hashes) == 9
    cache.save()
    hashes.clear()
    again = DigestCache(cache_file)  # another invocation: read from the file
    assert folder_digest(folder, cache=again) == first and hashes == []
    image = folder / "train" / "forest" / "train-00.jpg"
    os.utime(image, ns=(OLD + 10, OLD + 10))  # touched: read once more, same digest
    assert folder_digest(folder, cache=again) == first and hashes == [image]
    assert folder_digest(folder, cache=again) == first and hashes == [image]


def test_a_file_changed_just_now_is_not_remembered(tmp_path, hashes):
    folder = old_folder(tmp_path / "images")
    image = folder / "test" / "forest" / "test-00.jpg"
    os.utime(image, ns=(time.time_ns(), time.time_ns()))  # may change again in the same tick
    cache = DigestCache()
    folder_digest(folder, cache=cache)
    hashes.clear()
    folder_digest(folder, cache=cache)
    assert hashes == [image]


@pytest.mark.parametrize("damage", [b"{not json", b"[1, 2]", b'{"file:/x": "junk"}'])
def test_a_damaged_cache_is_rebuilt(tmp_path, damage):
    folder = old_folder(tmp_path / "images")
    cache_file = tmp_path / "digests.json"
    expected = folder_digest(folder)
    cache_file.write_bytes(damage)
    cache = DigestCache(cache_file)
    assert folder_digest(folder, cache=cache) == expected
    cache.save()
    assert len(json.loads(cache_file.read_text())) == 9


def manifest_of(tmp_path: Path, zip_path: Path) -> Path:
    """A manifest saying its arrays were made from ``zip_path``'s bytes."""
    manifest = tmp_path / "processed" / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"source": {"sha256": sha256_file(zip_path)}}))
    return manifest


def test_a_folder_refetch_is_settled_exactly_when_its_content_is_the_packed_one(tmp_path):
    folder = old_folder(tmp_path / "images")
    raw = tmp_path / "raw" / "x.zip"
    pack_folder(folder, raw)
    manifest = manifest_of(tmp_path, raw)
    dataset = {"source": "folder", "path": str(folder)}

    def settled(source_folder=folder):
        args = (dataset, raw, tmp_path / "raw" / "x.json", manifest, DigestCache())
        return same_zip_after_fetch(*args, folder=str(source_folder))

    assert settled()
    copy = shutil.copytree(folder, tmp_path / "copy", copy_function=shutil.copy)
    assert settled(copy)  # another place, new times, the same bytes
    (copy / "test" / "forest" / "test-00.jpg").write_bytes(b"other bytes")
    assert not settled(copy)
    assert not same_zip_after_fetch(
        dataset, raw, tmp_path / "x.json", tmp_path / "none.json", DigestCache(), str(folder)
    ), "no arrays yet: nothing to keep"
    raw.write_bytes(raw.read_bytes() + b"\0")  # the raw zip is no longer what was preprocessed
    assert not settled()


def test_archive_digits_and_kaggle_refetches(tmp_path):
    archive = tmp_path / "download.zip"
    pack_folder(old_folder(tmp_path / "images"), archive)
    raw, meta = tmp_path / "raw" / "x.zip", tmp_path / "raw" / "x.json"
    manifest = manifest_of(tmp_path, archive)

    def settled(dataset):
        return same_zip_after_fetch(dataset, raw, meta, manifest, DigestCache())

    local = {"source": "archive", "archive": str(archive)}
    assert settled(local)  # no raw zip yet: the copy will be the archive
    shutil.copy(archive, tmp_path / "anew.zip")
    assert settled({**local, "archive": str(tmp_path / "anew.zip")})
    (tmp_path / "anew.zip").write_bytes(archive.read_bytes() + b"\0")
    assert not settled({**local, "archive": str(tmp_path / "anew.zip")})
    kaggle = {"source": "kaggle", "kaggle_dataset": "owner/slug"}
    assert not settled(kaggle) and not settled({"source": "digits"})  # never fetched
    meta.parent.mkdir(parents=True, exist_ok=True)
    record = {"source": "kaggle", "kaggle_dataset": "owner/slug", "sha256": sha256_file(archive)}
    meta.write_text(json.dumps(record))
    assert settled(kaggle)  # the zip deleted: the same slug downloads the same bytes
    assert not settled({**kaggle, "kaggle_dataset": "owner/other"})
    assert not settled({"source": "digits"}), "other data under the same name"
    meta.write_text(json.dumps({**record, "source": "digits"}))
    assert settled({"source": "digits"})  # generated again: the same bytes
