"""Preprocessing of Kaggle-layout zips with the real dataset's quirks, the carved validation
split, the image index and leak dropping (other layouts: test_layouts.py)."""

from __future__ import annotations

import csv
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
from support.zipfactory import (
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
from torchvision.transforms import Resize

from hpstudy.cli import main as cli_main
from hpstudy.core.errors import HpstudyError
from hpstudy.data.fingerprint import INDEX_COLUMNS, fingerprint
from hpstudy.data.preprocess import preprocess_archive

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
    listed = [*manifest["sha256"], "manifest.json", "index.csv"]  # the index is not in it
    assert sorted(p.name for p in out.iterdir()) == sorted(listed)
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


# --------------------------------------------------------------------------- splits and index

MANIFEST_KEYS = ["name", "image_size", "layout", "classes", "splits", "resized", "skipped",
                 "sha256", "bytes", "source"]  # fmt: skip


def test_kaggle_manifest_keeps_its_keys_plus_the_layout(tmp_path):
    zip_path = write_zip(tmp_path / "d.zip", solid_dataset(CLASSES))
    manifest = preprocess_archive(zip_path, tmp_path / "out", 16, test_fraction=0.5)
    assert list(manifest) == MANIFEST_KEYS  # no split record: nothing was carved
    assert manifest["layout"] == "kaggle"
    pred = preprocess_archive(zip_path, tmp_path / "out", 16, pred=True)
    assert pred["layout"] == "kaggle" and "split" not in pred


def test_index_lists_every_stored_row_with_its_fingerprints(tmp_path, quirks):
    zip_path = write_zip(tmp_path / "intel.zip", quirks[0])
    out = tmp_path / "out"
    preprocess_archive(zip_path, out, 24, threads=2)
    with open(out / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(INDEX_COLUMNS)
    for split in ("train", "test"):
        x, y = np.load(out / f"{split}_x.npy"), np.load(out / f"{split}_y.npy")
        mine = [row for row in rows if row["split"] == split]
        assert [int(row["row"]) for row in mine] == list(range(len(x)))
        assert [int(row["label"]) for row in mine] == y.tolist()
        assert [row["class"] for row in mine] == [CLASSES[label] for label in y]
        for row, pixels in zip(mine, x, strict=True):  # as computed from the stored pixels
            exact, dhash, low = fingerprint(np.ascontiguousarray(pixels))
            assert (row["exact"], row["dhash"], row["low_variance"]) == (
                exact,
                dhash,
                str(int(low)),
            )
    train = [row for row in rows if row["split"] == "train"]
    assert train[0]["member"] == "seg_train/seg_train/buildings/0.jpg"
    assert train[0]["low_variance"] == "1" and train[9]["low_variance"] == "0"  # solid, photo
    assert len({row["exact"] for row in train[:3]}) == 1  # the same solid colour thrice
    # an unchanged index keeps its modification time, and pred mode leaves it alone
    os.utime(out / "index.csv", ns=(1_000_000_000, 1_000_000_000))
    preprocess_archive(zip_path, out, 24)
    preprocess_archive(zip_path, out, 24, pred=True)
    assert (out / "index.csv").stat().st_mtime_ns == 1_000_000_000


def test_carved_val_split_in_the_manifest_and_gone_when_turned_off(tmp_path):
    zip_path = write_zip(tmp_path / "d.zip", solid_dataset(CLASSES, train_per_class=5))
    out = tmp_path / "out"
    manifest = preprocess_archive(zip_path, out, 16, val_fraction=0.2, split_seed=7)
    assert list(manifest["splits"]) == ["train", "test", "val"]
    assert manifest["splits"]["val"] == {
        "count": 3, "per_class": dict.fromkeys(CLASSES, 1), "x": "val_x.npy", "y": "val_y.npy"
    }  # fmt: skip
    assert manifest["split"] == {"val_fraction": 0.2, "split_seed": 7}
    assert list(manifest)[:4] == ["name", "image_size", "layout", "split"]
    for name in ("val_x.npy", "val_y.npy"):
        assert manifest["sha256"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert manifest["bytes"][name] == (out / name).stat().st_size
    assert np.load(out / "val_y.npy").tolist() == [0, 1, 2]
    plain = preprocess_archive(zip_path, out, 16)
    assert "val" not in plain["splits"] and "split" not in plain
    assert not (out / "val_x.npy").exists() and not (out / "val_y.npy").exists()


def test_cli_split_flags_and_log_lines(tmp_path, capsys):
    rng = np.random.default_rng(5)
    photos = {name: [jpeg_bytes(photo_like(rng, (32, 32))) for _ in range(5)] for name in CLASSES}
    members = [(kaggle_names("train", name, f"{i}.jpg"), photos[name][i])
               for name in CLASSES for i in range(4)]  # fmt: skip
    members += [(kaggle_names("test", name, "new.jpg"), photos[name][4]) for name in CLASSES]
    # every buildings training image copied into test: whichever goes to val, 3 stay in train
    members += [(kaggle_names("test", "buildings", f"copy{i}.jpg"), photos["buildings"][i])
                for i in range(4)]  # fmt: skip
    zip_path = write_zip(tmp_path / "d.zip", members)
    out = tmp_path / "out"
    argv = ["preprocess", "--archive", str(zip_path), "--out-dir", str(out), "--size", "16"]
    flags = [
        "--val-fraction",
        "0.25",
        "--split-seed",
        "3",
        "--drop-leaks",
        "--test-fraction",
        "0.3",
    ]
    assert cli_main([*argv, *flags]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"] == {"val_fraction": 0.25, "split_seed": 3}
    assert manifest["leaks_dropped"] == {"test": 3, "val": 0}
    assert manifest["splits"]["test"]["per_class"] == {"buildings": 2, "forest": 1, "glacier": 1}
    assert manifest["splits"]["val"]["count"] == 3
    err = capsys.readouterr().err
    assert "  layout: Kaggle seg_train/seg_test folders (kaggle)" in err
    assert "  splits carved here: val_fraction 0.25, split_seed 3" in err
    assert "  exact copies of training images dropped: 3 from test, 0 from val" in err


def test_drop_leaks_refuses_to_empty_the_test_split(tmp_path):
    zip_path = write_zip(tmp_path / "d.zip", solid_dataset(CLASSES))
    with pytest.raises(HpstudyError, match=r"Every test image .*drop_leaks") as err:
        preprocess_archive(zip_path, tmp_path / "out", 16, drop_leaks=True)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out" / "manifest.json").exists()
