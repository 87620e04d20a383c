"""Audit a processed dataset from its ``index.csv``: identical images, identical images across
splits (leakage) or under different classes (label conflicts), and near duplicates.

Identical means the same exact hash of the stored pixels. Near duplicates are pairs of
distinct images whose 64-bit dHashes differ in at most ``near_bits`` bits; each group of
identical images takes part once, and low-variance images (plain sky, blank frames) are left
out. Candidates are found by bucketing, never by comparing all pairs: the 64 bits are cut into
``near_bits + 1`` bands, and two hashes within ``near_bits`` bits agree exactly on at least one
band (pigeonhole), so only hashes sharing a band value are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from hpstudy.core import manifest as manifest_file
from hpstudy.core import paths, schema
from hpstudy.core.atomic import atomic_write_json
from hpstudy.core.errors import HpstudyError
from hpstudy.data.fingerprint import read_index

AUDIT_FILE = paths.AUDIT
IMBALANCE_RATIO = 5.0  # a split whose largest class is more than this times its smallest
EXAMPLES = 3  # member paths per group
NEAR_EXAMPLES = 5  # near-duplicate pairs shown
MAX_NEAR_BITS = 16
HELD_OUT = ("test", "val")
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(values: np.ndarray) -> np.ndarray:
    """The number of set bits of each uint64, as int64."""
    octets = np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8)
    return _POP8[octets].reshape(-1, 8).sum(axis=1, dtype=np.int64)


def _band_masks(near_bits: int) -> list[np.uint64]:
    """The masks of ``near_bits + 1`` bands of near-equal width covering the 64 bits."""
    bands = np.array_split(np.arange(64), near_bits + 1)
    return [np.uint64(((1 << len(bits)) - 1) << int(bits[0])) for bits in bands]


def near_pairs(hashes: np.ndarray, near_bits: int) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` for every pair ``i < j`` of the uint64 ``hashes`` at most
    ``near_bits`` bits apart, sorted; only hashes sharing one of ``near_bits + 1`` bands are
    compared, and a pair is taken in the first band they share."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    n, masks, found = len(hashes), _band_masks(near_bits), []
    for k, mask in enumerate(masks):
        key = hashes & mask
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        # pairs d apart in key order with equal keys: every pair within a bucket, once
        for d in range(1, n):
            same = ordered[d:] == ordered[:-d]
            if not same.any():
                break  # no bucket holds more than d hashes
            a, b = order[:-d][same], order[d:][same]
            differ = hashes[a] ^ hashes[b]
            keep = _popcount(differ) <= near_bits
            for earlier in masks[:k]:  # found in an earlier band already
                keep &= (differ & earlier) != 0
            found.append(np.stack([np.minimum(a, b), np.maximum(a, b)])[:, keep])
    if not found:
        return []
    i, j = np.concatenate(found, axis=1)
    order = np.lexsort((j, i))
    distance = _popcount(hashes[i] ^ hashes[j])
    return [(int(i[o]), int(j[o]), int(distance[o])) for o in order]


def _groups(rows: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """Rows grouped by exact hash, each group sorted by member, in first-member order."""
    by_hash: dict[str, list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda row: (row["member"], row["split"])):
        by_hash.setdefault(row["exact"], []).append(row)
    return list(by_hash.values())


def _splits(group) -> list[str]:
    order = {"train": 0, "test": 1, "val": 2}
    return sorted({row["split"] for row in group}, key=lambda split: (order.get(split, 3), split))


def _examples(group) -> list[str]:
    """Up to :data:`EXAMPLES` members: the first of each split, then the next by name."""
    firsts = [next(r["member"] for r in group if r["split"] == s) for s in _splits(group)]
    rest = [row["member"] for row in group if row["member"] not in firsts]
    return (firsts + rest)[:EXAMPLES]


def _entry(group) -> dict:
    classes = sorted({row["class"] for row in group})
    return {"count": len(group), "splits": _splits(group), "classes": classes,
            "examples": _examples(group)}  # fmt: skip


def _leaks(splits: list[str] | set[str]) -> bool:
    return "train" in splits and any(split in splits for split in HELD_OUT)


def _near(groups, near_bits: int) -> dict:
    """The near-duplicate block: pair count, pairs across train and test/val, examples."""
    reps = [g for g in groups if g[0]["dhash"] and g[0]["low_variance"] != "1"]
    hashes = np.array([int(g[0]["dhash"], 16) for g in reps], dtype=np.uint64)
    pairs = near_pairs(hashes, near_bits)

    def across(i: int, j: int) -> bool:
        a, b = set(_splits(reps[i])), set(_splits(reps[j]))
        return ("train" in a and _leaks(b | {"train"})) or ("train" in b and _leaks(a | {"train"}))

    def image(row) -> dict:
        return {"split": row["split"], "member": row["member"], "class": row["class"]}

    shown = sorted(pairs, key=lambda p: (not across(p[0], p[1]), p[2], p[0], p[1]))
    examples = [
        {"distance": d, "across_splits": across(i, j),
         "images": [image(reps[i][0]), image(reps[j][0])]}
        for i, j, d in shown[:NEAR_EXAMPLES]
    ]  # fmt: skip
    return {
        "bits": near_bits,
        "pairs": len(pairs),
        "cross_split_pairs": sum(across(i, j) for i, j, _ in pairs),
        "low_variance_skipped": sum(len(g) for g in groups if g[0]["low_variance"] == "1"),
        "examples": examples,
    }


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary_text(counts: dict[str, int], near_bits: int) -> str:
    """The one-paragraph human summary of an audit's counts."""
    groups = counts["duplicate_groups"]
    if groups:
        images = counts["images_in_duplicate_groups"]
        parts = [f"{_plural(groups, 'group', 'groups')} of identical images ({images} images)"]
        leaks, conflicts = counts["cross_split_groups"], counts["label_conflict_groups"]
        parts.append(f"{leaks} {'spans' if leaks == 1 else 'span'} train and test/val (leakage)")
        parts.append(f"{conflicts} {'has' if conflicts == 1 else 'have'} conflicting labels")
    else:
        parts = ["no identical images"]
    pairs = _plural(counts["near_duplicate_pairs"], "near-duplicate pair", "near-duplicate pairs")
    parts.append(f"{pairs} (perceptual hashes at most {near_bits} bits apart)")
    text = "; ".join(parts)
    return text[0].upper() + text[1:]


def _classes_dropped(data_dir) -> list[str]:
    """The class folders preprocessing dropped for holding no decodable image (manifest)."""
    try:
        return list(_manifest_of(Path(data_dir)).get("classes_dropped", []))
    except AttributeError:  # not a JSON object
        return []


def imbalance(manifest: dict, ratio: float = IMBALANCE_RATIO) -> dict:
    """Each split's largest and smallest class (the manifest's per-class counts) and their
    ratio (None when a class has no image there); ``flagged`` lists the splits whose ratio
    exceeds ``ratio`` (or that lack a class)."""
    splits = {}
    for split, entry in manifest.get("splits", {}).items():
        counts = entry.get("per_class") or {}
        if not counts:
            continue
        largest = max(counts, key=lambda name: (counts[name], name))
        smallest = min(counts, key=lambda name: (counts[name], name))
        low, high = counts[smallest], counts[largest]
        splits[split] = {
            "largest": {"class": largest, "count": high},
            "smallest": {"class": smallest, "count": low},
            "ratio": round(high / low, 2) if low else None,
        }
    flagged = [s for s, e in splits.items() if e["ratio"] is None or e["ratio"] > ratio]
    return {"threshold": ratio, "splits": splits, "flagged": flagged}


def imbalance_text(block: dict) -> str:
    """The audit summary's clause on flagged splits ("" when none)."""
    parts = []
    for split in block["flagged"]:
        entry = block["splits"][split]
        big, small = entry["largest"], entry["smallest"]
        times = f"{entry['ratio']:g}x" if entry["ratio"] is not None else "a class missing"
        parts.append(
            f"{split} {times} ({big['class']} {big['count']}, {small['class']} {small['count']})"
        )
    if not parts:
        return ""
    threshold = f"{block['threshold']:g}x"
    return f"; imbalanced classes (largest over {threshold} the smallest): {', '.join(parts)}"


def _manifest_of(data_dir: Path) -> dict:
    """The manifest beside the index (written by the same step), or {} when absent."""
    try:
        return manifest_file.read(data_dir)
    except (OSError, ValueError):
        return {}


def audit(
    data_dir: str | os.PathLike,
    near_bits: int = 4,
    out: str | os.PathLike | None = None,
    imbalance_ratio: float = IMBALANCE_RATIO,
) -> dict:
    """Audit the processed data in ``data_dir`` from its ``index.csv`` and write the result,
    atomically, to ``out`` (default ``<data_dir>/audit.json``); returns it.

    Groups are sorted by size (largest first), then by first member; ``counts`` holds their
    numbers and ``summary`` says it in one sentence.
    """
    if not 0 <= near_bits <= MAX_NEAR_BITS:
        raise HpstudyError(
            f"The near-duplicate threshold `audit.near_duplicate_bits` must lie between 0 and "
            f"{MAX_NEAR_BITS} bits (of 64), got {near_bits}."
        )
    rows = read_index(data_dir)
    groups = _groups(rows)
    dupes = sorted((g for g in groups if len(g) > 1), key=lambda g: (-len(g), g[0]["member"]))
    entries = [_entry(group) for group in dupes]
    near = _near(groups, near_bits)
    result = {"images": len(rows), "near_duplicate_bits": near_bits, "summary": ""}
    result["counts"] = {
        "duplicate_groups": len(entries),
        "images_in_duplicate_groups": sum(entry["count"] for entry in entries),
        "cross_split_groups": sum(_leaks(entry["splits"]) for entry in entries),
        "label_conflict_groups": sum(len(entry["classes"]) > 1 for entry in entries),
        "near_duplicate_pairs": near["pairs"],
    }
    result["imbalance"] = imbalance(_manifest_of(Path(data_dir)), imbalance_ratio)
    result["summary"] = summary_text(result["counts"], near_bits)
    result["summary"] += imbalance_text(result["imbalance"])
    result["duplicate_groups"] = entries
    result["cross_split_groups"] = [entry for entry in entries if _leaks(entry["splits"])]
    result["label_conflict_groups"] = [entry for entry in entries if len(entry["classes"]) > 1]
    result["near_duplicates"] = near
    dropped = _classes_dropped(data_dir)
    if dropped:  # named beside the audit too (only then: the file is otherwise unchanged)
        result["classes_dropped"] = dropped
    atomic_write_json(Path(out) if out else Path(data_dir) / AUDIT_FILE, result)
    return result


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``hpstudy audit``."""
    parser = argparse.ArgumentParser(
        prog="hpstudy audit",
        description="Find identical images, leakage across splits, label conflicts and near "
        "duplicates in a processed dataset (from its index.csv).",
    )
    parser.add_argument("--data-dir", required=True, help="data/processed/<variant>")
    parser.add_argument(
        "--near-duplicate-bits", type=int, default=schema.default("audit", "near_duplicate_bits"),
        help="dHash bits apart",
    )  # fmt: skip
    parser.add_argument("--out", help="the audit file (default: <data-dir>/audit.json)")
    parser.add_argument(
        "--imbalance-ratio", type=float, default=IMBALANCE_RATIO,
        help="flag a split whose largest class has more than this times its smallest's images",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hpstudy audit``: prints the summary, and a warning line on leakage or
    label conflicts."""
    args = build_parser().parse_args(argv)
    result = audit(args.data_dir, args.near_duplicate_bits, args.out, args.imbalance_ratio)
    out = args.out or str(Path(args.data_dir) / AUDIT_FILE)
    print(f"hpstudy audit: {out}: {result['summary']}", file=sys.stderr)
    counts = result["counts"]
    if result.get("classes_dropped"):
        print(f"hpstudy audit: class folders dropped, holding no decodable image: "
              f"{', '.join(result['classes_dropped'])}", file=sys.stderr)  # fmt: skip
    if counts["cross_split_groups"] or counts["label_conflict_groups"]:
        print(
            f"hpstudy audit: warning: {counts['cross_split_groups']} group(s) of identical "
            f"images span train and test/val, {counts['label_conflict_groups']} carry "
            "conflicting labels; see the lists in the audit file (`dataset.drop_leaks: true` "
            "removes the copies from test and val)",
            file=sys.stderr,
        )
    if result["imbalance"]["flagged"]:
        print(f"hpstudy audit: warning{imbalance_text(result['imbalance'])}", file=sys.stderr)
    return 0
