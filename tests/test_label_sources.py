"""Label files (Kaggle's train.csv, Hugging Face imagefolder metadata), Parquet shards and
`dataset.test_from`: readers and preprocess on small generated data."""

from __future__ import annotations

import argparse
import csv
import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.zipfactory import class_colour, image_bytes, layout_dataset, solid, write_folder

from hpstudy.core.errors import HpstudyError
from hpstudy.data import fetch_sources
from hpstudy.data.command_options import fetch_options, preprocess_options
from hpstudy.data.fetch import pack_folder
from hpstudy.data.label_files import LABELS_PREFIX, MemberIndex, read_label_rows
from hpstudy.data.preprocess import preprocess_archive
from hpstudy.data.sources import SourceOptions
from hpstudy.data.variant import data_variant, labels_digest
from hpstudy.sweep.restore import check_raw_data

CLASSES = ("ants", "bees")


def png(index: int, size=(20, 12)) -> bytes:
    return image_bytes(solid(class_colour(index), size), "PNG")


def fetched(tmp_path, folder, source="folder", **options) -> str:
    """Run `hpstudy fetch` (the CLI's function) into tmp_path/raw/<name>.zip."""
    out = tmp_path / "raw" / "data.zip"
    out.parent.mkdir(exist_ok=True)
    args = fetch_sources.build_parser().parse_args(
        ["--source", source, "--out", str(out), "--path", str(folder)]
        + [item for key, value in options.items() for item in (f"--{key}", str(value))]
    )
    fetch_sources.fetch(args)
    return str(out)


# --------------------------------------------------------------------------- test_from


def test_train_and_val_only_needs_test_from_and_the_refusal_names_both(tmp_path):
    folder = write_folder(tmp_path / "ants", layout_dataset("train-test", {"train": 4, "val": 2}))
    raw = fetched(tmp_path, folder)
    with pytest.raises(HpstudyError) as err:
        preprocess_archive(raw, tmp_path / "out", 16)
    assert "has no test images" in str(err.value)
    assert "`dataset.test_from: train`" in str(err.value)
    assert "`dataset.test_from: val`" in str(err.value)


def test_test_from_val_makes_val_the_test_split_and_val_fraction_carves_a_new_one(tmp_path):
    folder = write_folder(tmp_path / "ants", layout_dataset("train-test", {"train": 8, "val": 2}))
    raw = fetched(tmp_path, folder)
    manifest = preprocess_archive(
        raw, tmp_path / "out", 16, val_fraction=0.25, source=SourceOptions(test_from="val")
    )
    counts = {split: manifest["splits"][split]["count"] for split in manifest["splits"]}
    assert counts == {"train": 18, "test": 6, "val": 6}  # 3 classes: 8 -> 6 + 2; val -> test
    assert manifest["split"] == {"test_from": "val", "val_fraction": 0.25, "split_seed": 0}
    index = (tmp_path / "out" / "index.csv").read_text()
    assert ",test,".join(["", ""]) not in index and "\ntest,0,val/" in index


def test_test_from_train_carves_per_class_and_keeps_the_datas_val(tmp_path):
    folder = write_folder(tmp_path / "ants", layout_dataset("train-test", {"train": 10, "val": 2}))
    manifest = preprocess_archive(
        fetched(tmp_path, folder), tmp_path / "out", 16, source=SourceOptions(test_from="train")
    )
    assert {s: e["per_class"]["forest"] for s, e in manifest["splits"].items()} == {
        "train": 8, "test": 2, "val": 2}  # fmt: skip
    assert manifest["split"] == {"test_from": "train", "test_fraction": 0.2, "split_seed": 0}


def test_test_from_is_refused_when_the_data_brings_a_test_split(tmp_path):
    folder = write_folder(tmp_path / "d", layout_dataset("train-test", {"train": 2, "test": 1}))
    with pytest.raises(HpstudyError, match="brings its own test split"):
        preprocess_archive(
            fetched(tmp_path, folder), tmp_path / "o", 16, source=SourceOptions(test_from="val")
        )


# --------------------------------------------------------------------------- label files


def kaggle_competition(root, missing=("ghost",), extra=2):
    """train.csv (id,label; ids without extension) beside train/ and an unlabelled test/."""
    members, rows = [], [("id", "label")]
    for i in range(12):
        cls = i % 2
        members.append((f"train/img{i:02d}.png", png(cls)))
        rows.append((f"img{i:02d}", CLASSES[cls]))
    rows += [(name, "ants") for name in missing]
    members += [(f"test/t{i}.png", png(0)) for i in range(extra)]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    members.append(("train.csv", text.getvalue().encode()))
    return write_folder(root, members)


def test_kaggle_train_csv_with_missing_and_extra_images(tmp_path):
    folder = kaggle_competition(tmp_path / "comp")
    raw = fetched(tmp_path, folder, labels=folder / "train.csv")
    with zipfile.ZipFile(raw) as zf:
        assert LABELS_PREFIX + "train.csv" in zf.namelist()
    sidecar = json.loads((tmp_path / "raw" / "data.json").read_text())
    assert sidecar["labels_sha256"] == labels_digest(folder / "train.csv")
    source = SourceOptions(test_from="train", labels=True)
    manifest = preprocess_archive(raw, tmp_path / "out", 16, source=source)
    assert manifest["layout"] == "label-file" and manifest["classes"] == ["ants", "bees"]
    assert manifest["labels"]["named"] == 13 and manifest["labels"]["missing"] == 1
    assert manifest["labels"]["unnamed"] == 2
    assert manifest["splits"]["train"]["count"] + manifest["splits"]["test"]["count"] == 12
    skipped = {entry["member"]: entry["reason"] for entry in manifest["skipped"]}
    assert skipped["ghost"].startswith("named in the label file")
    assert skipped["test/t0.png"] == "not named in the label file"


def test_hugging_face_metadata_jsonl_with_a_split_column_and_numeric_classes(tmp_path):
    members, lines = [], []
    for i in range(12):
        split = "test" if i % 4 == 0 else "train"
        members.append((f"images/{i}.jpg", image_bytes(solid(class_colour(i % 3)), "JPEG")))
        lines.append(json.dumps({"file_name": f"images/{i}.jpg", "label": [2, 10, 1][i % 3],
                                 "split": split}))  # fmt: skip
    members.append(("metadata.jsonl", "\n".join(lines).encode()))
    folder = write_folder(tmp_path / "hf", members)
    raw = fetched(tmp_path, folder, labels=folder / "metadata.jsonl")
    manifest = preprocess_archive(raw, tmp_path / "out", 16, source=SourceOptions(labels=True))
    assert manifest["classes"] == ["1", "2", "10"]  # numeric classes in numeric order
    assert manifest["splits"]["test"]["count"] == 3 and manifest["labels"]["unnamed"] == 0


def test_a_label_file_beside_a_split_folder_and_one_outside_the_image_folder(tmp_path):
    members = [(f"train/{c}{i}.png", png(k)) for k, c in enumerate(CLASSES) for i in range(3)]
    members += [(f"val/{c}{i}.png", png(k)) for k, c in enumerate(CLASSES) for i in range(2)]
    rows = "file_name,label\n" + "".join(f"{c}{i}.png,{c}\n" for c in CLASSES for i in range(3))
    folder = write_folder(tmp_path / "imgs", members + [("train/metadata.csv", rows.encode())])
    raw = fetched(tmp_path, folder, labels=folder / "train" / "metadata.csv")
    with zipfile.ZipFile(raw) as zf:
        assert LABELS_PREFIX + "train/metadata.csv" in zf.namelist()  # names resolve beside it
    manifest = preprocess_archive(
        raw, tmp_path / "o1", 16, source=SourceOptions("train", labels=True)
    )
    assert manifest["labels"]["missing"] == 0 and manifest["labels"]["unnamed"] == 4
    # outside the folder: it is read, but `../` names are never looked up outside
    outside = tmp_path / "labels.csv"
    named = ("train/ants0.png", "train/bees0.png", "../secret.png", "train/ants1.png",
             "train/bees1.png")  # fmt: skip
    outside.write_text("file,class\n" + "".join(f"{n},{n.split('/')[-1][:4]}\n" for n in named))
    (tmp_path / "secret.png").write_bytes(png(0))
    raw = fetched(tmp_path, folder, labels=outside)
    manifest = preprocess_archive(
        raw, tmp_path / "o2", 16, source=SourceOptions("train", labels=True)
    )
    assert manifest["labels"]["missing"] == 1 and "../secret.png" in str(manifest["skipped"])


def test_a_label_file_naming_nothing_or_nothing_present_is_refused(tmp_path):
    folder = write_folder(tmp_path / "f", [("a.png", png(0)), ("b.png", png(1))])
    empty = tmp_path / "empty.csv"
    empty.write_text("file,label\n")
    raw = fetched(tmp_path, folder, labels=empty)
    with pytest.raises(HpstudyError, match="names no images"):
        preprocess_archive(raw, tmp_path / "o", 16, source=SourceOptions("train", labels=True))
    absent = tmp_path / "absent.csv"
    absent.write_text("file,label\nx.png,a\ny.png,b\n")
    raw = fetched(tmp_path, folder, labels=absent)
    with pytest.raises(HpstudyError, match="None of the 2 images"):
        preprocess_archive(raw, tmp_path / "o", 16, source=SourceOptions("train", labels=True))


def test_label_rows_columns_and_name_lookup():
    rows = read_label_rows(b"image,level\na.jpg,3\n", "trainLabels.csv", "x")  # two columns
    assert rows == [{"file": "a.jpg", "label": "3", "split": ""}]
    with pytest.raises(HpstudyError, match="no class column"):
        read_label_rows(b"file_name,width,height\na.jpg,1,2\n", "m.csv", "m.csv")
    infos = [zipfile.ZipInfo(n) for n in ("train/a.png", "test/a.png", "train/b.png", ".x/c.png")]
    index = MemberIndex(infos)
    assert index.find("a.png", "train") == "train/a.png" and index.find("b", "") == "train/b.png"
    assert index.find("a", "") is None  # two members named a.png: ambiguous, not guessed
    assert index.find("../train/b.png", "") is None and index.find("c.png", "") is None


# --------------------------------------------------------------------------- parquet


def hf_shard(path, rows, names=None, split_column=None, row_group_size=None):
    """A Parquet file as Hugging Face datasets writes one: image {bytes, path}, label."""
    image = pa.array([{"bytes": data, "path": f"{i}.png"} for i, (data, _) in enumerate(rows)],
                     pa.struct([("bytes", pa.binary()), ("path", pa.string())]))  # fmt: skip
    columns = {"image": image, "label": pa.array([label for _, label in rows], pa.int64())}
    if split_column:
        columns["split"] = pa.array(split_column)
    table = pa.table(columns)
    if names:
        features = {"image": {"_type": "Image"},
                    "label": {"_type": "ClassLabel", "names": list(names)}}  # fmt: skip
        meta = json.dumps({"info": {"features": features}}).encode()
        table = table.replace_schema_metadata({b"huggingface": meta})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)


def test_parquet_shards_split_by_name_with_class_names_from_the_features(tmp_path):
    shards = tmp_path / "hub" / "data"
    rows = [(png(i % 3, (24, 16)), i % 3) for i in range(12)]
    hf_shard(shards / "train-00000-of-00002.parquet", rows[:6], ("cat", "dog", "owl"), None, 4)
    hf_shard(shards / "train-00001-of-00002.parquet", rows[6:] + [(None, 1)], ("cat", "dog", "owl"))
    hf_shard(
        shards / "test-00000-of-00001.parquet", rows[:6] + [(png(0), -1)], ("cat", "dog", "owl")
    )
    (tmp_path / "hub" / "README.md").write_text("# a dataset card\n")
    raw = fetched(tmp_path, tmp_path / "hub", source="parquet")
    manifest = preprocess_archive(raw, tmp_path / "out", 16, source=SourceOptions(parquet=True))
    assert manifest["layout"] == "parquet" and manifest["classes"] == ["cat", "dog", "owl"]
    assert manifest["splits"]["train"]["per_class"] == {"cat": 4, "dog": 4, "owl": 4}
    assert manifest["splits"]["test"]["count"] == 6
    skipped = {e["member"]: e["reason"] for e in manifest["skipped"]}
    assert skipped["data/test-00000-of-00001.parquet#6"] == "no label"
    assert "not a decodable image" in skipped["data/train-00001-of-00002.parquet#6"]
    x = np.load(tmp_path / "out" / "train_x.npy")
    first = np.zeros((16, 16, 3), np.uint8)
    from hpstudy.data.decode import decode_image_into

    decode_image_into(rows[0][0], first, 16)
    assert x.shape == (12, 16, 16, 3) and np.array_equal(x[0], first)


def test_one_parquet_file_with_a_split_column_and_string_labels_in_one_channel(tmp_path):
    table = pa.table({
        "img": pa.array([png(i % 2) for i in range(10)], pa.binary()),
        "category": pa.array([CLASSES[i % 2] for i in range(10)]),
        "split": pa.array(["validation" if i < 2 else "test" if i < 4 else "train"
                           for i in range(10)]),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "all.parquet")
    raw = fetched(tmp_path, tmp_path / "all.parquet", source="parquet")
    source = SourceOptions(parquet=True, channels=1, resize="pad")
    manifest = preprocess_archive(raw, tmp_path / "out", 16, source=source)
    assert manifest["classes"] == list(CLASSES) and manifest["channels"] == 1
    assert manifest["resize"] == "pad"
    assert {s: e["count"] for s, e in manifest["splits"].items()} == {
        "train": 6,
        "test": 2,
        "val": 2,
    }
    assert np.load(tmp_path / "out" / "val_x.npy").shape == (2, 16, 16, 1)


# --------------------------------------------------------------------------- names, options


def test_defaults_change_no_variant_name_no_command_and_no_manifest(tmp_path):
    dataset = {"name": "digits", "image_size": 48, "source": "digits", "test_from": None,
               "labels": None, "resize": "stretch", "channels": 3}  # fmt: skip
    assert data_variant(dataset) == "digits-48"
    assert fetch_options(dataset) == "" and preprocess_options(dataset) == ""
    folder = write_folder(tmp_path / "d", layout_dataset("class-folders", {"train": 5}))
    manifest = preprocess_archive(fetched(tmp_path, folder), tmp_path / "o", 16)
    assert not {"channels", "resize", "labels"} & set(manifest) and "test_from" not in str(manifest)


def test_every_setting_that_changes_the_arrays_names_the_variant_and_reaches_the_commands(
    tmp_path,
):
    labels = tmp_path / "train.csv"
    labels.write_text("id,label\na,x\n")
    dataset = {"name": "mine", "image_size": 32, "source": "parquet", "test_from": "val",
               "labels": str(labels), "resize": "crop", "channels": 1}  # fmt: skip
    digest = labels_digest(labels)
    assert data_variant(dataset) == f"mine-32-testfromval-labels{digest[:8]}-crop-gray"
    assert preprocess_options(dataset) == (
        " --test-from val --resize crop --channels 1 --labels --parquet"
    )
    assert fetch_options(dataset) == f" --labels {labels} --labels-sha256 {digest}"
    sidecar = tmp_path / "raw.json"
    sidecar.write_text(json.dumps({"source": "folder", "labels": str(labels),
                                   "labels_sha256": digest}))  # fmt: skip
    assert check_raw_data(sidecar, {**dataset, "source": "folder"}) is None
    labels.write_text("id,label\na,y\n")
    assert "changed" in check_raw_data(sidecar, {**dataset, "source": "folder"})


def test_a_label_file_changed_after_planning_is_not_fetched(tmp_path):
    folder = write_folder(tmp_path / "f", [("a.png", png(0))])
    labels = tmp_path / "l.csv"
    labels.write_text("file,label\na.png,x\n")
    with pytest.raises(HpstudyError, match="changed after the workflow was planned"):
        fetched(tmp_path, folder, labels=labels, **{"labels-sha256": "0" * 64})


def test_fetch_parser_keeps_the_old_sources_and_adds_parquet():
    parser = fetch_sources.build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    args = parser.parse_args(["--source", "parquet", "--out", "x.zip", "--path", "p"])
    assert args.source == "parquet" and args.labels is None
    assert pack_folder  # the folder sources still pack through hpstudy.data.fetch
