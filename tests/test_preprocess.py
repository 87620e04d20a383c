"""Preprocessing of Kaggle-layout zips with the real dataset's quirks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from torchvision.transforms import Resize
from zipfactory import (
    add_symlink,
    class_colour,
    jpeg_bytes,
    kaggle_names,
    photo_like,
    png_bytes,
    solid,
    solid_dataset,
    write_zip,
)

from hpstudy.cli import main as cli_main
from hpstudy.errors import HpstudyError
from hpstudy.preprocess import preprocess_archive

CLASSES = ["buildings", "forest", "glacier"]
JPEG_TOLERANCE = 3  # solid colours survive JPEG almost exactly


def seed_pixels(data: bytes, size: int) -> np.ndarray:
    """What the seed's loader produced: PIL open, convert RGB, torchvision Resize((s, s))."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(Resize((size, size))(img.convert("RGB")))


@pytest.fixture(scope="module")
def quirks():
    """Members with every quirk, plus the raw bytes of the images checked pixel by pixel."""
    rng = np.random.default_rng(1)
    odd = jpeg_bytes(photo_like(rng, (150, 72)), quality=75)
    big = jpeg_bytes(photo_like(rng, (500, 374)), quality=75)
    full = jpeg_bytes(photo_like(rng, (150, 150)), quality=75)
    palette = solid((200, 30, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    rgba = Image.new("RGBA", (150, 150), (10, 200, 40, 128))
    members = solid_dataset(CLASSES, train_per_class=3, test_per_class=2, pred=4)
    extra = {
        ("train", "buildings", "odd_150x72.jpg"): odd,
        ("train", "forest", "big_500x374.jpg"): big,
        ("train", "forest", "photo.jpg"): full,
        ("train", "glacier", "gray.jpg"): jpeg_bytes(Image.new("L", (150, 150), 100)),
        ("train", "buildings", "png_as.jpg"): png_bytes(solid((1, 2, 250))),
        ("train", "glacier", "palette.jpg"): png_bytes(palette),
        ("test", "glacier", "rgba.jpg"): png_bytes(rgba),
        ("train", "forest", "truncated.jpg"): full[: len(full) // 2],
        ("train", "glacier", "notes.txt"): b"these are not pixels\n",
    }
    members += [(kaggle_names(*key), data) for key, data in extra.items()]
    members += [
        ("seg_train/seg_train/forest/", b""),  # a directory entry
        ("__MACOSX/seg_train/seg_train/forest/._0.jpg", b"\x00\x05\x16\x07"),
        ("seg_train/seg_train/forest/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("README.txt", b"Intel image classification\n"),
    ]
    return members, {"odd": odd, "big": big, "full": full}


def test_quirks_counts_skips_and_pixels(tmp_path, quirks):
    members, raw = quirks
    zip_path = write_zip(tmp_path / "intel.zip", members)
    out = tmp_path / "processed" / "intel-150"
    manifest = preprocess_archive(zip_path, out, size=150, threads=2)

    assert manifest["classes"] == CLASSES
    train = manifest["splits"]["train"]
    assert train["per_class"] == {"buildings": 5, "forest": 5, "glacier": 5}
    assert train["count"] == 15
    assert manifest["splits"]["test"]["per_class"] == {"buildings": 2, "forest": 2, "glacier": 3}
    assert set(manifest["splits"]) == {"train", "test"}  # seg_pred is opt-in
    assert manifest["resized"] == 2
    skipped = {entry["member"]: entry["reason"] for entry in manifest["skipped"]}
    assert set(skipped) == {
        "README.txt",
        "seg_train/seg_train/forest/truncated.jpg",
        "seg_train/seg_train/glacier/notes.txt",
    }
    assert "truncated" in skipped["seg_train/seg_train/forest/truncated.jpg"]
    assert "not a decodable image" in skipped["seg_train/seg_train/glacier/notes.txt"]

    x = np.load(out / "train_x.npy", mmap_mode="r")
    y = np.load(out / "train_y.npy")
    assert x.shape == (15, 150, 150, 3) and x.dtype == np.uint8
    assert y.shape == (15,) and y.dtype == np.int64
    # Rows follow sorted member names: buildings/{0,1,2,odd,png_as}, forest/{0,1,2,big,photo},
    # glacier/{0,1,2,gray,palette}.
    assert y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    for row, label in zip((0, 1, 2, 5, 6, 7, 10, 11, 12), [0] * 3 + [1] * 3 + [2] * 3, strict=True):
        assert np.abs(x[row].astype(int) - class_colour(label)).max() <= JPEG_TOLERANCE
    assert np.array_equal(x[3], seed_pixels(raw["odd"], 150))
    assert np.array_equal(x[4], np.full((150, 150, 3), (1, 2, 250)))  # PNG: lossless
    assert np.array_equal(x[8], seed_pixels(raw["big"], 150))
    assert np.array_equal(x[9], seed_pixels(raw["full"], 150))
    assert np.abs(x[13].astype(int) - 100).max() <= JPEG_TOLERANCE  # grayscale -> RGB
    assert np.abs(x[14].astype(int) - (200, 30, 30)).max() <= JPEG_TOLERANCE  # palette
    test_x = np.load(out / "test_x.npy")
    assert np.array_equal(test_x[-1], np.full((150, 150, 3), (10, 200, 40)))  # RGBA drops alpha
    assert not (out / "pred_x.npy").exists()
    # opted in, the unlabelled images get arrays and an index of their own, beside the manifest
    pred = preprocess_archive(zip_path, out, size=150, threads=2, pred=True)
    assert pred["splits"] == {
        "pred": {"count": 4, "per_class": {}, "x": "pred_x.npy", "y": "pred_y.npy"}
    }
    assert np.load(out / "pred_y.npy").tolist() == [-1] * 4
    assert json.loads((out / "manifest.json").read_text()) == manifest  # untouched


def test_manifest_records_hashes_and_is_written_last(tmp_path, quirks):
    zip_path = write_zip(tmp_path / "intel.zip", quirks[0])
    out = tmp_path / "out"
    preprocess_archive(zip_path, out, size=32, threads=1, name="intel")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "intel" and manifest["image_size"] == 32
    assert sorted(manifest["sha256"]) == sorted(
        f"{s}_{k}.npy" for s in manifest["splits"] for k in "xy"
    )
    for file_name, digest in manifest["sha256"].items():
        assert hashlib.sha256((out / file_name).read_bytes()).hexdigest() == digest
    assert manifest["source"]["sha256"] == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert manifest["source"]["size_bytes"] == zip_path.stat().st_size
    assert manifest["bytes"] == {name: (out / name).stat().st_size for name in manifest["sha256"]}
    # Everything was resized to 32 the way the post did, and no temporary file is left.
    assert manifest["resized"] == manifest["splits"]["train"]["count"] + 7
    assert sorted(p.name for p in out.iterdir()) == sorted([*manifest["sha256"], "manifest.json"])
    photo = np.load(out / "train_x.npy")[9]
    assert np.array_equal(photo, seed_pixels(quirks[1]["full"], 32))


def test_single_and_double_nesting_agree_and_threads_do_not_change_output(tmp_path):
    double = write_zip(tmp_path / "double.zip", solid_dataset(CLASSES, pred=2, nested=True))
    single = write_zip(tmp_path / "single.zip", solid_dataset(CLASSES, pred=2, nested=False))
    runs = [
        (double, tmp_path / "d1", 1),
        (double, tmp_path / "d2", 3),
        (single, tmp_path / "s1", 2),
    ]
    manifests = [preprocess_archive(zip_path, out, 24, threads) for zip_path, out, threads in runs]
    assert manifests[0]["splits"] == manifests[1]["splits"] == manifests[2]["splits"]
    assert manifests[0]["sha256"] == manifests[1]["sha256"] == manifests[2]["sha256"]
    assert manifests[0]["splits"]["train"]["count"] == 9


def test_pred_members_are_passed_over_silently_unless_asked_for(tmp_path):
    zip_path = write_zip(tmp_path / "d.zip", solid_dataset(CLASSES, pred=3))
    manifest = preprocess_archive(zip_path, tmp_path / "out", 16)
    assert set(manifest["splits"]) == {"train", "test"} and manifest["skipped"] == []
    assert not (tmp_path / "out" / "pred_x.npy").exists()


def test_an_unchanged_manifest_is_not_rewritten_and_stale_temps_are_removed(tmp_path):
    zip_path = write_zip(tmp_path / "d.zip", solid_dataset(CLASSES))
    out = tmp_path / "out"
    preprocess_archive(zip_path, out, 16)
    manifest = out / "manifest.json"
    os.utime(manifest, ns=(1_000_000_000, 1_000_000_000))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = out / f".train_x.partial.npy.tmp-{dead}@{socket.gethostname()}"
    stale.write_bytes(b"\0" * 4096)  # what a killed preprocess leaves
    preprocess_archive(zip_path, out, 16)
    assert manifest.stat().st_mtime_ns == 1_000_000_000, "same content: the file stays as it was"
    assert not stale.exists()
    preprocess_archive(zip_path, out, 24)  # other content: rewritten
    assert manifest.stat().st_mtime_ns != 1_000_000_000


@pytest.mark.parametrize(
    "evil",
    [
        "seg_train/seg_train/forest/../../../../evil.jpg",
        "/etc/evil.jpg",
        "seg_train\\..\\..\\evil.jpg",
        "C:/evil.jpg",
        "symlink",
    ],
)
def test_zip_slip_member_is_refused_and_nothing_written(tmp_path, evil):
    zip_path = tmp_path / "slip.zip"
    members = solid_dataset(CLASSES)
    if evil == "symlink":
        write_zip(zip_path, members)
        add_symlink(zip_path, "seg_train/seg_train/forest/link.jpg", "/etc/passwd")
    else:
        write_zip(zip_path, [*members, (evil, jpeg_bytes(solid((0, 0, 0))))])
    out = tmp_path / "processed" / "slip-32"
    with pytest.raises(HpstudyError, match="zip-slip") as err:
        preprocess_archive(zip_path, out, 32)
    assert str(zip_path) in str(err.value)
    assert not (tmp_path / "processed").exists()


def test_zip_without_train_images_is_an_error(tmp_path):
    members = [(kaggle_names("test", "forest", "0.jpg"), jpeg_bytes(solid((0, 0, 0))))]
    zip_path = write_zip(tmp_path / "notrain.zip", members)
    with pytest.raises(HpstudyError, match="no training images"):
        preprocess_archive(zip_path, tmp_path / "out", 32)
    assert not (tmp_path / "out").exists()


def test_test_classes_must_match_train_classes(tmp_path):
    members = solid_dataset(CLASSES)
    members.append((kaggle_names("test", "sea", "0.jpg"), jpeg_bytes(solid((0, 0, 255)))))
    zip_path = write_zip(tmp_path / "mismatch.zip", members)
    with pytest.raises(HpstudyError, match=r"only in test: \['sea'\]"):
        preprocess_archive(zip_path, tmp_path / "out", 32)


def test_truncated_zip_gives_clear_error(tmp_path):
    good = write_zip(tmp_path / "good.zip", solid_dataset(CLASSES))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(HpstudyError, match="delete it and rerun") as err:
        preprocess_archive(cut, tmp_path / "out", 32)
    assert str(cut) in str(err.value)


def test_cli_success_and_error(tmp_path, capsys):
    zip_path = write_zip(tmp_path / "d.zip", solid_dataset(CLASSES))
    out = tmp_path / "processed" / "d-16"
    argv = ["preprocess", "--archive", str(zip_path), "--out-dir", str(out), "--size", "16"]
    assert cli_main([*argv, "--threads", "2"]) == 0
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["count"] == 9
    missing = ["preprocess", "--archive", str(tmp_path / "nope.zip"), "--out-dir", str(out)]
    assert cli_main([*missing, "--size", "16"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "hpstudy: error:" in captured.err and "nope.zip" in captured.err
    assert "Traceback" not in captured.err
