"""The audit of a processed dataset: planted identical images, copies across splits, label
conflicts and near duplicates are found in exact numbers; drop_leaks removes the copies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from support.zipfactory import image_bytes, photo_like, solid, write_zip

import hpstudy.data.audit as audit_module
from hpstudy.cli import main as cli_main
from hpstudy.core.errors import HpstudyError
from hpstudy.data.audit import audit, near_pairs, summary_text
from hpstudy.data.preprocess import preprocess_archive

CLASSES = ["buildings", "forest", "glacier"]
SIZE = 32  # images are made at this size: stored rows are their exact pixels


def png(pixels: np.ndarray) -> bytes:
    return image_bytes(Image.fromarray(pixels), "PNG")


def planted_members() -> list[tuple[str, bytes]]:
    """A train/test/val dataset of distinct photo-like PNGs plus planted cases:

    * d1: twice in train/buildings (identical, same split and class);
    * d2: train/forest and test/forest (leak); d3: train, val and test of glacier (leak);
    * d4: train/buildings and train/forest (conflicting labels);
    * n0 (train) and n1 (test), n1 = n0 six levels brighter; p0 and p1 = p0 plus a little
      noise, both in train (two near-duplicate pairs);
    * blank0 (train) and blank1 (test): two plain, slightly different sky colours (their
      dHashes are equal, but they are low-variance and left out).
    """
    rng = np.random.default_rng(7)

    def photo() -> np.ndarray:
        return np.asarray(photo_like(rng, (SIZE, SIZE)))

    members = []
    for split, count in (("train", 4), ("test", 2), ("val", 1)):
        for name in CLASSES:
            members += [(f"{split}/{name}/u{i}.png", png(photo())) for i in range(count)]
    d1, d2, d3, d4, n0, p0 = (photo() for _ in range(6))
    n1 = np.clip(n0.astype(int) + 6, 0, 255).astype(np.uint8)
    p1 = np.clip(p0 + rng.normal(0, 3, p0.shape), 0, 255).astype(np.uint8)
    blank0 = np.asarray(solid((180, 200, 230), (SIZE, SIZE)))
    blank1 = np.asarray(solid((181, 201, 231), (SIZE, SIZE)))
    planted = {
        "train/buildings/d1a.png": d1, "train/buildings/d1b.png": d1,
        "train/forest/d2.png": d2, "test/forest/d2.png": d2,
        "train/glacier/d3.png": d3, "val/glacier/d3.png": d3, "test/glacier/d3.png": d3,
        "train/buildings/d4.png": d4, "train/forest/d4.png": d4,
        "train/glacier/n0.png": n0, "test/glacier/n1.png": n1,
        "train/forest/p0.png": p0, "train/buildings/p1.png": p1,
        "train/buildings/blank0.png": blank0, "test/buildings/blank1.png": blank1,
    }  # fmt: skip
    return members + [(name, png(pixels)) for name, pixels in planted.items()]


@pytest.fixture(scope="module")
def planted_zip(tmp_path_factory):
    return write_zip(tmp_path_factory.mktemp("audit") / "planted.zip", planted_members())


def test_audit_counts_planted_cases_exactly(tmp_path, planted_zip):
    out = tmp_path / "out"
    preprocess_archive(planted_zip, out, SIZE)
    result = audit(out, near_bits=4)
    assert result["counts"] == {
        "duplicate_groups": 4,
        "images_in_duplicate_groups": 9,
        "cross_split_groups": 2,
        "label_conflict_groups": 1,
        "near_duplicate_pairs": 2,
    }
    assert result["images"] == 12 + 6 + 3 + 15
    groups = result["duplicate_groups"]
    assert groups[0] == {
        "count": 3,
        "splits": ["train", "test", "val"],
        "classes": ["glacier"],
        "examples": ["train/glacier/d3.png", "test/glacier/d3.png", "val/glacier/d3.png"],
    }
    # then by first member name: test/forest/d2.png, train/buildings/d1a.png, .../d4.png
    assert [g["examples"][0] for g in groups[1:]] == [
        "train/forest/d2.png", "train/buildings/d1a.png", "train/buildings/d4.png"
    ]  # fmt: skip
    assert [g["count"] for g in result["cross_split_groups"]] == [3, 2]
    assert result["label_conflict_groups"] == [
        {"count": 2, "splits": ["train"], "classes": ["buildings", "forest"],
         "examples": ["train/buildings/d4.png", "train/forest/d4.png"]}
    ]  # fmt: skip
    near = result["near_duplicates"]
    assert near["pairs"] == 2 and near["cross_split_pairs"] == 1 and near["bits"] == 4
    assert near["low_variance_skipped"] == 2  # the two skies would be 0 bits apart
    first = near["examples"][0]  # pairs across splits come first
    assert first["across_splits"] and {i["member"] for i in first["images"]} == {
        "train/glacier/n0.png", "test/glacier/n1.png"
    }  # fmt: skip
    assert {i["member"] for i in near["examples"][1]["images"]} == {
        "train/forest/p0.png", "train/buildings/p1.png"
    }  # fmt: skip
    assert result["summary"] == (
        "4 groups of identical images (9 images); 2 span train and test/val (leakage); 1 has "
        "conflicting labels; 2 near-duplicate pairs (perceptual hashes at most 4 bits apart)"
    )
    assert json.loads((out / "audit.json").read_text()) == result


def test_audit_is_deterministic_and_the_threshold_matters(tmp_path, planted_zip):
    out = tmp_path / "out"
    preprocess_archive(planted_zip, out, SIZE, threads=2)
    audit(out)
    first = (out / "audit.json").read_bytes()
    audit(out)
    assert (out / "audit.json").read_bytes() == first
    exact_only = audit(out, near_bits=0, out=tmp_path / "strict.json")
    assert exact_only["counts"]["near_duplicate_pairs"] <= 2
    assert json.loads((tmp_path / "strict.json").read_text())["near_duplicate_bits"] == 0


def test_drop_leaks_removes_exactly_the_planted_copies(tmp_path, planted_zip):
    kept = preprocess_archive(planted_zip, tmp_path / "kept", SIZE)
    out = tmp_path / "dropped"
    manifest = preprocess_archive(planted_zip, out, SIZE, drop_leaks=True)
    assert manifest["leaks_dropped"] == {"test": 2, "val": 1}  # d2, d3 | d3
    assert "leaks_dropped" not in kept
    assert manifest["splits"]["test"]["count"] == kept["splits"]["test"]["count"] - 2
    assert manifest["splits"]["val"]["count"] == kept["splits"]["val"]["count"] - 1
    assert manifest["splits"]["train"] == kept["splits"]["train"]
    assert manifest["splits"]["test"]["per_class"] == {"buildings": 3, "forest": 2, "glacier": 3}
    assert np.load(out / "test_y.npy").tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    result = audit(out)
    assert result["counts"]["cross_split_groups"] == 0
    assert result["counts"]["duplicate_groups"] == 2  # d1 and d4 stay within train
    assert result["near_duplicates"]["cross_split_pairs"] == 1  # n1 is no exact copy: kept


def test_cli_prints_the_summary_and_warns_about_leaks(tmp_path, planted_zip, capsys):
    out = tmp_path / "out"
    preprocess_archive(planted_zip, out, SIZE)
    capsys.readouterr()  # the preprocess progress bars
    argv = ["audit", "--data-dir", str(out), "--near-duplicate-bits", "4"]
    assert cli_main([*argv, "--out", str(out / "audit.json")]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith(f"hpstudy audit: {out / 'audit.json'}: 4 groups of identical")
    assert lines[1].startswith("hpstudy audit: warning: 2 group(s)") and "drop_leaks" in lines[1]
    assert json.loads((out / "audit.json").read_text())["counts"]["duplicate_groups"] == 4


def test_cli_without_index_or_with_a_bad_threshold_fails_cleanly(tmp_path, capsys):
    assert cli_main(["audit", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "No image index" in err and "preprocess" in err and "Traceback" not in err
    with pytest.raises(HpstudyError, match="near_duplicate_bits"):
        audit(tmp_path, near_bits=17)


def brute_force(hashes: np.ndarray, near_bits: int) -> list[tuple[int, int, int]]:
    found = []
    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            distance = bin(int(hashes[i]) ^ int(hashes[j])).count("1")
            if distance <= near_bits:
                found.append((i, j, distance))
    return found


def clustered_hashes(seed: int = 0) -> np.ndarray:
    """200 random 64-bit hashes plus 20 clusters of 6 variants, 0 to 8 bits from their base."""
    rng = np.random.default_rng(seed)
    hashes = [int(h) * 2 + 1 for h in rng.integers(0, 2**63, size=200, dtype=np.int64)]
    for _ in range(20):
        base = int(rng.integers(0, 2**63)) * 2
        for flips in rng.integers(0, 9, size=6):
            bits = rng.choice(64, size=int(flips), replace=False)
            hashes.append(base ^ sum(1 << int(b) for b in bits))
    return np.array(hashes, dtype=np.uint64)


@pytest.mark.parametrize("near_bits", [0, 1, 3, 4, 6, 8])
def test_bucketing_finds_the_pairs_brute_force_finds(near_bits):
    hashes = clustered_hashes()
    found = near_pairs(hashes, near_bits)
    assert found == brute_force(hashes, near_bits)
    if near_bits >= 4:
        assert len(found) > 30  # the clusters give plenty of pairs to find


def test_bucketing_compares_far_fewer_than_all_pairs(monkeypatch):
    compared = []
    popcount = audit_module._popcount

    def counting(values):
        compared.append(len(values))
        return popcount(values)

    monkeypatch.setattr(audit_module, "_popcount", counting)
    hashes = np.random.default_rng(1).integers(0, 2**63, size=5000, dtype=np.int64)
    near_pairs(hashes.astype(np.uint64), 4)
    assert sum(compared) < 5000 * 4999 // 2 // 100


def test_summary_without_duplicates():
    counts = dict.fromkeys(
        ["duplicate_groups", "images_in_duplicate_groups", "cross_split_groups"], 0
    )
    counts |= {"label_conflict_groups": 0, "near_duplicate_pairs": 1}
    assert summary_text(counts, 3) == (
        "No identical images; 1 near-duplicate pair (perceptual hashes at most 3 bits apart)"
    )


def test_a_split_whose_largest_class_is_over_five_times_its_smallest_is_flagged(tmp_path):
    members = [
        (f"train/{cls}/{i}.png", png(np.full((8, 8, 3), 9 * i + k, np.uint8)))
        for k, (cls, n) in enumerate((("many", 11), ("few", 2)))
        for i in range(n)
    ]
    members += [(f"test/{cls}/{i}.png", png(np.full((8, 8, 3), 200 + 9 * i + k, np.uint8)))
                for k, cls in enumerate(("many", "few")) for i in range(2)]  # fmt: skip
    zip_path = write_zip(tmp_path / "d.zip", members)
    preprocess_archive(zip_path, tmp_path / "out", 8)
    result = audit(tmp_path / "out")
    block = result["imbalance"]
    assert block["flagged"] == ["train"] and block["threshold"] == 5
    assert block["splits"]["train"] == {
        "largest": {"class": "many", "count": 11},
        "smallest": {"class": "few", "count": 2},
        "ratio": 5.5,
    }
    assert block["splits"]["test"]["ratio"] == 1.0
    assert "imbalanced classes (largest over 5x the smallest): train 5.5x (many 11, few 2)" in (
        result["summary"])  # fmt: skip
    assert audit(tmp_path / "out", imbalance_ratio=6)["imbalance"]["flagged"] == []
