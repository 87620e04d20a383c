"""The accepted dataset layouts, from zips and from folders packed by fetch, and the splits
carved where the data brings none (test from class folders, validation from train)."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest
from support.zipfactory import (
    CLASSES,
    image_bytes,
    jpeg_bytes,
    layout_dataset,
    layout_name,
    solid,
    solid_dataset,
    write_folder,
    write_zip,
)

from hpstudy.core.errors import HpstudyError
from hpstudy.data.archive_layouts import assign_splits, carve, carve_count, find_members
from hpstudy.data.audit import main as audit_main
from hpstudy.data.fetch import pack_folder
from hpstudy.data.preprocess import preprocess_archive
from hpstudy.report.findings import audit_section

THREE = list(CLASSES[:3])


def dataset_zip(tmp_path, members, packed: bool):
    """The members as a zip: written directly, or written as a folder and packed by fetch."""
    if not packed:
        return write_zip(tmp_path / "data.zip", members)
    folder = write_folder(tmp_path / "folder", members)
    pack_folder(folder, tmp_path / "packed.zip")
    return tmp_path / "packed.zip"


def split_members(out) -> dict[str, list[str]]:
    """The members of each split, read from index.csv."""
    with open(out / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["split"], []).append(row["member"])
    return found


CASES = {
    # name: (layout, counts per class, keyword arguments, expected per-class counts)
    "kaggle": ("kaggle", {"train": 3, "test": 2}, {}, {"train": 3, "test": 2}),
    "train-test": ("train-test", {"train": 4, "test": 2}, {}, {"train": 4, "test": 2}),
    "train-test-val": ("train-test", {"train": 4, "test": 2, "val": 1}, {},
                       {"train": 4, "test": 2, "val": 1}),
    "class-folders": ("class-folders", {"train": 10}, {"test_fraction": 0.3},
                      {"train": 7, "test": 3}),
}  # fmt: skip


@pytest.mark.parametrize("packed", [False, True], ids=["zip", "folder"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_layout_from_zip_and_folder(tmp_path, case, packed):
    layout, counts, kwargs, expected = CASES[case]
    members = layout_dataset(layout, counts, THREE, formats=("JPEG", "PNG", "BMP"))
    zip_path = dataset_zip(tmp_path, members, packed)
    manifest = preprocess_archive(zip_path, tmp_path / "out", 16, **kwargs)
    assert manifest["layout"] == layout
    assert manifest["classes"] == sorted(THREE)
    assert set(manifest["splits"]) == set(expected)
    for split, per_class in expected.items():
        assert manifest["splits"][split]["per_class"] == dict.fromkeys(THREE, per_class)
        y = np.load(tmp_path / "out" / f"{split}_y.npy")
        assert np.bincount(y).tolist() == [per_class] * 3
    assert manifest["skipped"] == [] and manifest["resized"] == sum(expected.values()) * 3
    assert ("split" in manifest) == (layout == "class-folders")


@pytest.mark.parametrize("layout", ["kaggle", "train-test", "class-folders"])
def test_one_wrapping_folder_is_accepted(tmp_path, layout):
    counts = {"train": 3} if layout == "class-folders" else {"train": 3, "test": 1}
    plain = layout_dataset(layout, counts, THREE)
    wrapped = layout_dataset(layout, counts, THREE, wrapper="my-dataset")
    wrapped.append(("README.md", b"about the data\n"))  # a stray file beside the wrapper
    a = preprocess_archive(write_zip(tmp_path / "a.zip", plain), tmp_path / "a", 16)
    b = preprocess_archive(write_zip(tmp_path / "b.zip", wrapped), tmp_path / "b", 16)
    assert a["layout"] == b["layout"] == layout
    assert a["splits"] == b["splits"] and a["sha256"] == b["sha256"]
    assert b["skipped"] == [
        {"member": "README.md", "reason": "not in the layout: outside my-dataset/"}
    ]


def test_two_wrapping_folders_are_not_looked_into(tmp_path):
    members = [(f"outer/inner/{name}", data) for name, data in solid_dataset(THREE)]
    zip_path = write_zip(tmp_path / "deep.zip", members)
    with pytest.raises(HpstudyError, match="none of the accepted layouts") as err:
        preprocess_archive(zip_path, tmp_path / "out", 16)
    assert "found: outer/; inside outer/: inner/" in str(err.value)


def test_any_image_format_whatever_its_name(tmp_path):
    members = layout_dataset("train-test", {"train": 2, "test": 1}, THREE)
    png = image_bytes(solid((1, 2, 250), (20, 20)), "PNG")
    bmp = image_bytes(solid((250, 2, 1), (20, 20)), "BMP")
    members += [("train/forest/no-extension", png), ("train/glacier/scan.DAT", bmp)]
    members += [("train/glacier/notes.txt", b"not pixels\n"), ("train/.hidden.png", png)]
    manifest = preprocess_archive(write_zip(tmp_path / "d.zip", members), tmp_path / "out", 20)
    assert manifest["splits"]["train"]["per_class"] == {"buildings": 2, "forest": 3, "glacier": 3}
    assert [entry["member"] for entry in manifest["skipped"]] == ["train/glacier/notes.txt"]
    x = np.load(tmp_path / "out" / "train_x.npy")
    assert np.array_equal(x[2], np.full((20, 20, 3), (1, 2, 250)))  # forest/no-extension


@pytest.mark.parametrize(
    "members, found",
    [
        ([("notes.txt", b"x"), ("pictures/a.jpg", b"x"), ("pictures/b.jpg", b"x")],
         "found: notes.txt, pictures/; inside pictures/: a.jpg, b.jpg"),
        ([("a.jpg", b"x"), ("b.jpg", b"x")], "found: a.jpg, b.jpg"),
        ([("__MACOSX/._a.jpg", b"x")], "found: no files"),
    ],
)  # fmt: skip
def test_unknown_layout_is_one_paragraph_with_accepted_layouts_and_entries(
    tmp_path, members, found
):
    zip_path = write_zip(tmp_path / "odd.zip", members)
    with pytest.raises(HpstudyError) as err:
        preprocess_archive(zip_path, tmp_path / "out", 16)
    message = str(err.value)
    assert "\n" not in message and str(zip_path) in message and found in message
    for accepted in ("seg_train/<class>/<image>", "train/<class>/<image>", "<class>/<image>"):
        assert accepted in message
    assert "dataset.path" in message and "dataset.archive" in message
    assert not (tmp_path / "out").exists()


def test_val_folder_must_name_the_train_classes(tmp_path):
    members = layout_dataset("train-test", {"train": 2, "test": 1}, THREE)
    members.append(("validation/sea/0.jpg", jpeg_bytes(solid((0, 0, 255)))))
    with pytest.raises(HpstudyError, match=r"train and val .*only in val: \['sea'\]"):
        preprocess_archive(write_zip(tmp_path / "d.zip", members), tmp_path / "out", 16)


def test_two_val_folders_are_refused(tmp_path):
    members = layout_dataset("train-test", {"train": 2, "test": 1, "val": 1}, THREE)
    members += layout_dataset("train-test", {"val": 1}, THREE, val="valid")
    with pytest.raises(HpstudyError, match="more than one validation folder"):
        preprocess_archive(write_zip(tmp_path / "d.zip", members), tmp_path / "out", 16)


def test_train_test_layout_without_test_names_the_missing_folder(tmp_path):
    members = layout_dataset("train-test", {"train": 2}, THREE)
    with pytest.raises(HpstudyError, match=r"no test images: expected test/<class>/<image>"):
        preprocess_archive(write_zip(tmp_path / "d.zip", members), tmp_path / "out", 16)


@pytest.mark.parametrize("name", ["val", "valid", "validation"])
def test_a_brought_val_folder_is_used_as_is(tmp_path, name):
    members = layout_dataset("train-test", {"train": 4, "test": 2, "val": 2}, THREE, val=name)
    zip_path = write_zip(tmp_path / "d.zip", members)
    manifest = preprocess_archive(zip_path, tmp_path / "out", 16, val_fraction=0.5)
    assert manifest["splits"]["val"]["per_class"] == dict.fromkeys(THREE, 2)
    assert manifest["splits"]["train"]["count"] == 12  # nothing carved out of train
    assert "split" not in manifest  # val_fraction was not used
    assert all(m.startswith(f"{name}/") for m in split_members(tmp_path / "out")["val"])


def test_carved_val_split_is_stratified_seeded_and_disjoint(tmp_path):
    members = layout_dataset("kaggle", {"train": 10, "test": 2}, THREE)
    zip_path = write_zip(tmp_path / "d.zip", members)
    runs = {}
    for label, seed in (("a", 3), ("b", 3), ("c", 4)):
        out = tmp_path / label
        manifest = preprocess_archive(zip_path, out, 16, val_fraction=0.25, split_seed=seed)
        runs[label] = (manifest, split_members(out))
    manifest, found = runs["a"]
    assert manifest["splits"]["val"]["per_class"] == dict.fromkeys(THREE, 2)  # round(2.5)
    assert manifest["splits"]["train"]["per_class"] == dict.fromkeys(THREE, 8)
    assert manifest["split"] == {"val_fraction": 0.25, "split_seed": 3}
    assert not set(found["val"]) & set(found["train"])
    assert len(found["val"]) + len(found["train"]) == 30
    assert runs["b"][1] == found and runs["b"][0]["sha256"] == manifest["sha256"]
    assert runs["c"][1]["val"] != found["val"]  # another seed, another split
    assert sorted(manifest["sha256"]) == sorted(f"{s}_{k}.npy" for s in found for k in "xy")


def test_class_folders_are_split_by_test_fraction_stratified_and_seeded(tmp_path):
    counts = {"buildings": 10, "forest": 7, "glacier": 3}
    members = []
    for name, count in counts.items():
        members += layout_dataset("class-folders", {"train": count}, [name])
    zip_path = write_zip(tmp_path / "d.zip", members)
    first = preprocess_archive(zip_path, tmp_path / "a", 16, test_fraction=0.3, split_seed=1)
    assert first["splits"]["test"]["per_class"] == {"buildings": 3, "forest": 2, "glacier": 1}
    assert first["splits"]["train"]["per_class"] == {"buildings": 7, "forest": 5, "glacier": 2}
    assert first["split"] == {"test_fraction": 0.3, "split_seed": 1}
    again = preprocess_archive(zip_path, tmp_path / "b", 16, test_fraction=0.3, split_seed=1)
    other = preprocess_archive(zip_path, tmp_path / "c", 16, test_fraction=0.3, split_seed=2)
    assert split_members(tmp_path / "a") == split_members(tmp_path / "b")
    assert split_members(tmp_path / "a")["test"] != split_members(tmp_path / "c")["test"]
    assert again["split"] == first["split"] and other["split"]["split_seed"] == 2
    # with a validation split too: three disjoint parts, each class in each
    both = preprocess_archive(zip_path, tmp_path / "d", 16, val_fraction=0.2, split_seed=1)
    assert both["split"] == {"test_fraction": 0.2, "val_fraction": 0.2, "split_seed": 1}
    parts = split_members(tmp_path / "d")
    assert sum(len(v) for v in parts.values()) == len({m for v in parts.values() for m in v})


def test_a_class_with_one_image_cannot_be_split(tmp_path):
    members = layout_dataset("class-folders", {"train": 3}, ["a", "b"])
    members.append(("c/only.jpg", jpeg_bytes(solid((9, 9, 9)))))
    with pytest.raises(HpstudyError, match=r"single training image \(\['c'\]\).*test_fraction"):
        preprocess_archive(write_zip(tmp_path / "d.zip", members), tmp_path / "out", 16)


def test_carve_count_rule():
    assert [carve_count(n, 0.1) for n in (0, 1, 2, 5, 10, 26)] == [0, 0, 1, 1, 1, 3]
    assert carve_count(2, 0.9) == 1  # never the whole class
    assert carve_count(100, 0.25) == 25


def test_carve_keeps_member_order_and_uses_separate_streams():
    infos = [zipfile.ZipInfo(f"{c}/{i:02d}.jpg") for c in "ab" for i in range(20)]
    members = find_members("x.zip", infos).splits["train"]
    kept, test = carve(members, ["a", "b"], 0.25, seed=0, stream=0)
    _, val = carve(members, ["a", "b"], 0.25, seed=0, stream=1)
    names = [info.filename for info in test.infos]
    assert names == sorted(names) and len(names) == 10 and test.class_names.count("a") == 5
    assert [i.filename for i in kept.infos] == sorted(i.filename for i in kept.infos)
    assert names != [info.filename for info in val.infos]


def test_fractions_out_of_range_are_refused():
    with pytest.raises(HpstudyError, match="dataset.val_fraction"):
        assign_splits("x.zip", [], val_fraction=1.0)


@pytest.mark.parametrize("layout", ["class-folders", "train-test"])
def test_a_class_folder_without_a_decodable_image_is_dropped_and_named(tmp_path, layout, capsys):
    counts = {"train": 3} if layout == "class-folders" else {"train": 3, "test": 1}
    members = layout_dataset(layout, counts, THREE)
    splits = ["train"] if layout == "class-folders" else ["train", "test"]
    # one folder holding only a readme, one holding a single stray file that is no image
    for split in splits:
        members.append((layout_name(layout, split, "notes", "readme.md"), b"# about the data\n"))
        members.append((layout_name(layout, split, "zz", "stray.txt"), b"not an image"))
    zip_path = write_zip(tmp_path / "d.zip", members)
    manifest = preprocess_archive(zip_path, tmp_path / "out", 16)
    assert manifest["classes"] == THREE and manifest["classes_dropped"] == ["notes", "zz"]
    assert set(manifest["splits"]["train"]["per_class"]) == set(THREE)
    reasons = {e["member"]: e["reason"] for e in manifest["skipped"]}
    assert "class folder 'notes' holds no decodable image" in reasons[members[-2][0]]
    assert np.load(tmp_path / "out" / "train_y.npy").max() == 2  # three outputs, chance 1/3
    audit_file = tmp_path / "audit.json"
    assert audit_main(["--data-dir", str(tmp_path / "out"), "--out", str(audit_file)]) == 0
    assert json.loads(audit_file.read_text())["classes_dropped"] == ["notes", "zz"]
    assert "dropped, holding no decodable image: notes, zz" in capsys.readouterr().err
    section = "\n".join(audit_section(json.loads(audit_file.read_text()), manifest))
    assert "notes, zz" in section and "chance is 33.3%" in section


def test_data_without_such_folders_keeps_its_manifest_and_audit_keys(tmp_path):
    zip_path = write_zip(tmp_path / "d.zip", layout_dataset("class-folders", {"train": 3}, THREE))
    manifest = preprocess_archive(zip_path, tmp_path / "out", 16)
    assert "classes_dropped" not in manifest
    assert "classes_dropped" not in (tmp_path / "out" / "manifest.json").read_text()
    assert audit_main(["--data-dir", str(tmp_path / "out")]) == 0
    assert "classes_dropped" not in (tmp_path / "out" / "audit.json").read_text()


def test_a_class_of_one_image_is_still_refused_by_name_beside_a_dropped_folder(tmp_path):
    members = layout_dataset("class-folders", {"train": 3}, ["a", "b"])
    members += [("c/only.jpg", jpeg_bytes(solid((9, 9, 9)))), ("d/readme.md", b"text")]
    with pytest.raises(HpstudyError, match=r"single training image \(\['c'\]\)"):
        preprocess_archive(write_zip(tmp_path / "d.zip", members), tmp_path / "out", 16)
