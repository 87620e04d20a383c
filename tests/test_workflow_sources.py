"""The workflow end to end on each new kind of user data, small and generated: train/ and
val/ folders only (the PyTorch tutorial's ants and bees) with `test_from: val`, a Kaggle-style
train.csv with missing and extra images, Hugging Face imagefolder metadata in one channel, and
Parquet shards. One repository copy; each dataset its own config, name and results folder."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import copy_repo, snakemake
from PIL import Image
from support.zipfactory import image_bytes, photo_like, write_folder

from hpstudy.data.variant import data_variant

pytestmark = pytest.mark.slow

SIZE = 16
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "kernel_width": 3}
UNTIL = ("--until", "train", "audit")  # fetch, preprocess, the audit and the training run


def photo(rng, index: int, size=(24, 18), fmt="JPEG") -> bytes:
    """A photo-like image tinted by its class, so classes differ."""
    pixels = np.asarray(photo_like(rng, size)).astype(np.int16)
    pixels[..., index % 3] = np.clip(pixels[..., index % 3] + 90, 0, 255)
    return image_bytes(Image.fromarray(pixels.astype(np.uint8)), fmt)


def ants_and_bees(root, rng):
    """train/<class>/ and val/<class>/ only, images of every shape, one palette PNG."""
    members = []
    for k, cls in enumerate(("ants", "bees")):
        for split, count in (("train", 8), ("val", 3)):
            for i in range(count):
                shape = [(24, 18), (18, 30), (40, 21)][i % 3]
                members.append((f"{split}/{cls}/{i}.jpg", photo(rng, k, shape)))
    palette = Image.open(io.BytesIO(photo(rng, 0))).convert("P", palette=Image.ADAPTIVE)
    members.append(("train/ants/palette.png", image_bytes(palette, "PNG")))
    return write_folder(root, members)


def kaggle_competition(root, rng):
    """train.csv (id,label) beside train/, two ids without images, an unlabelled test/."""
    members, rows = [], [("id", "label")]
    for i in range(16):
        members.append((f"train/{i:03d}.png", photo(rng, i % 2, fmt="PNG")))
        rows.append((f"{i:03d}", ("cat", "dog")[i % 2]))
    rows += [("missing-1", "cat"), ("missing-2", "dog")]
    members += [(f"test/{i}.png", photo(rng, 0, fmt="PNG")) for i in range(3)]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return write_folder(root, [*members, ("train.csv", text.getvalue().encode())])


def imagefolder_metadata(root, rng):
    """Hugging Face imagefolder: metadata.jsonl (file_name, label, split) at the top."""
    members, lines = [], []
    for i in range(18):
        split = "test" if i % 3 == 0 else "train"
        members.append((f"{split}/{i}.png", photo(rng, i % 2, fmt="PNG")))
        lines.append(json.dumps({"file_name": f"{split}/{i}.png", "label": i % 2}))
    return write_folder(root, [*members, ("metadata.jsonl", "\n".join(lines).encode())])


def parquet_shards(root, rng):
    """data/train-0000{0,1}-of-00002.parquet and data/test-00000-of-00001.parquet as
    Hugging Face datasets writes them (image {bytes, path}, ClassLabel names in metadata)."""
    kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    features = {"image": {"_type": "Image"},
                "label": {"_type": "ClassLabel", "names": ["owl", "fox"]}}  # fmt: skip
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    (root / "data").mkdir(parents=True)
    for name, count in (("train-00000-of-00002", 8), ("train-00001-of-00002", 8),
                        ("test-00000-of-00001", 6)):  # fmt: skip
        images = [{"bytes": photo(rng, i % 2, fmt="PNG"), "path": None} for i in range(count)]
        table = pa.table({"image": pa.array(images, kind), "label": [i % 2 for i in range(count)]})
        pq.write_table(table.replace_schema_metadata(meta), root / "data" / f"{name}.parquet")
    return root


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One repository copy with the four datasets and a config for each."""
    tmp = tmp_path_factory.mktemp("sources")
    workdir = copy_repo(tmp / "repo")
    rng = np.random.default_rng(0)
    kaggle = kaggle_competition(tmp / "comp", rng)
    hf = imagefolder_metadata(tmp / "hf", rng)
    datasets = {
        "ants": {"source": "folder", "path": str(ants_and_bees(tmp / "hymenoptera", rng)),
                 "test_from": "val", "val_fraction": 0.25, "resize": "crop"},
        "kaggle": {"source": "folder", "path": str(kaggle), "labels": str(kaggle / "train.csv"),
                   "test_from": "train", "resize": "pad"},
        "hf": {"source": "folder", "path": str(hf), "labels": str(hf / "metadata.jsonl"),
               "channels": 1},
        "shards": {"source": "parquet", "path": str(parquet_shards(tmp / "hub", rng))},
    }  # fmt: skip
    configs = {}
    for name, dataset in datasets.items():
        config = {"dataset": {"name": name, "image_size": SIZE, **dataset},
                  "paths": {"results": f"results/{name}"}, "train": TRAIN, "seeds": [0],
                  "studies": {"lr": {"param": "lr", "values": [1e-3, 1e-2]}}}  # fmt: skip
        if name == "ants":  # selection on the carved validation split, the final test number
            config |= {"selection": {"metric": "val_acc"}, "final": {"seeds": [0]}}
        else:  # the others: the data stage and one run (UNTIL), kept short
            config["studies"]["lr"]["values"] = [1e-3]
        configs[name] = workdir / "config" / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir, configs


def manifest_of(workdir, variant: str) -> dict:
    return json.loads((workdir / "data/processed" / variant / "manifest.json").read_text())


VARIANT = "ants-16-val0.25-testfromval-crop"


def test_train_and_val_folders_with_test_from_val_run_to_a_final_test_number(sources):
    workdir, configs = sources
    targets = ("results/ants/selection/final.csv", f"data/processed/{VARIANT}/audit.json")
    snakemake(workdir, *targets, "--cores", "2", "--configfile", str(configs["ants"]))
    manifest = manifest_of(workdir, VARIANT)
    assert manifest["layout"] == "train-test" and manifest["resize"] == "crop"
    counts = {split: entry["count"] for split, entry in manifest["splits"].items()}
    assert counts == {"train": 13, "test": 6, "val": 4}  # val/ became test; 25% of train carved
    assert manifest["split"]["test_from"] == "val"
    best = yaml.safe_load((workdir / "results/ants/selection/best.yaml").read_text())
    assert best["selected_on"] == "validation"
    final = (workdir / "results/ants/selection/final.csv").read_text()
    assert "test_acc_mean" in final


def test_a_kaggle_train_csv_with_missing_and_extra_images(sources):
    workdir, configs = sources
    snakemake(workdir, "--cores", "2", "--configfile", str(configs["kaggle"]), *UNTIL)
    variant = next(p.name for p in (workdir / "data/processed").glob("kaggle-16-*"))
    assert variant.startswith("kaggle-16-testfromtrain-labels") and variant.endswith("-pad")
    manifest = manifest_of(workdir, variant)
    assert manifest["classes"] == ["cat", "dog"] and manifest["labels"]["missing"] == 2
    assert manifest["labels"]["unnamed"] == 3
    log = (workdir / "data/logs" / f"preprocess-{variant}.log").read_text()
    assert (
        "names 18 images: 2 named but not in the folder (missing-1, missing-2); 3 in the "
        "folder but not named (test/0.png, test/1.png, test/2.png)" in log
    )
    assert len(list((workdir / "results/runs" / variant).glob("*/seed-0/summary.json"))) == 1
    # a changed label file is fetched and preprocessed again
    labels = configs["kaggle"].parents[2] / "comp" / "train.csv"
    labels.write_text(labels.read_text().replace("missing-2,dog\n", ""))
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(configs["kaggle"]))
    assert "rule fetch_data" in proc.stdout and "rule preprocess" in proc.stdout


def test_imagefolder_metadata_in_one_channel(sources):
    workdir, configs = sources
    # the arrays and their audit (training on one channel is the trainer's part)
    dataset = yaml.safe_load(configs["hf"].read_text())["dataset"]
    variant = data_variant(dataset)
    assert variant.startswith("hf-16-labels") and variant.endswith("-gray")
    target = f"data/processed/{variant}/audit.json"
    snakemake(workdir, target, "--cores", "2", "--configfile", str(configs["hf"]))
    manifest = json.loads((workdir / target).with_name("manifest.json").read_text())
    assert manifest["channels"] == 1 and manifest["classes"] == ["0", "1"]
    assert {s: e["count"] for s, e in manifest["splits"].items()} == {"train": 12, "test": 6}
    x = np.load((workdir / target).with_name("train_x.npy"))
    assert x.shape == (12, SIZE, SIZE, 1)


def test_parquet_shards_run_through(sources):
    workdir, configs = sources
    snakemake(workdir, "--cores", "2", "--configfile", str(configs["shards"]), *UNTIL)
    manifest = manifest_of(workdir, "shards-16")
    assert manifest["layout"] == "parquet" and manifest["classes"] == ["owl", "fox"]
    assert {s: e["count"] for s, e in manifest["splits"].items()} == {"train": 16, "test": 6}
    audit = json.loads((workdir / "data/processed/shards-16/audit.json").read_text())
    assert audit["images"] == 22 and audit["imbalance"]["flagged"] == []
    assert len(list((workdir / "results/runs/shards-16").glob("*/seed-0/summary.json"))) == 1
