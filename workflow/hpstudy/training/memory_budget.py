"""``train.in_memory``: which splits a job holds whole on its device and which it streams.

``auto`` holds a split when it fits the job's memory budget, smallest split first, and streams
the rest; ``true`` holds every split, ``false`` streams every one. The budget is half of what
the job may use: on a CPU the memory available to it (its cgroup's limit less its use, as SLURM
sets with ``--mem``, or the machine's available memory), on a GPU the device's free memory as
well (a split on the GPU passes through host memory once). ``HPSTUDY_MEMORY_BUDGET_MB`` sets the
budget outright (benchmarks, a machine shared with other work).
"""

from __future__ import annotations

import os
from pathlib import Path

BUDGET_SHARE = 0.5  # the rest is for the model, its activations and the framework
V1_FILES = (
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/fs/cgroup/memory/memory.usage_in_bytes",
)


def cgroup_files() -> list[tuple[str, str]]:
    """(limit, usage) files to try: the process's own cgroup v2 folder (SLURM puts each job in
    one), the cgroup v2 root as a container sees it, then cgroup v1."""
    found = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                own = "/sys/fs/cgroup" + line[3:].rstrip("/")
                found.append((f"{own}/memory.max", f"{own}/memory.current"))
    except OSError:
        pass
    return [*found, ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"), V1_FILES]


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def host_available_bytes() -> int:
    """Memory this process may still take: MemAvailable, capped by its cgroup's free share."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file, usage_file in cgroup_files():
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < (1 << 60):
            free = limit - (usage or 0)
            available = free if available is None else min(available, free)
            break
    return max(0, available if available is not None else 1 << 62)


def memory_budget(device) -> int:
    """Bytes of split arrays a job on ``device`` (a torch.device) may hold in memory."""
    explicit = os.environ.get("HPSTUDY_MEMORY_BUDGET_MB")
    if explicit:
        return int(float(explicit) * 2**20)
    budget = host_available_bytes()
    if device.type == "cuda":
        import torch

        budget = min(budget, torch.cuda.mem_get_info(device)[0])
    return int(budget * BUDGET_SHARE)


def streamed_units(setting, sizes: dict[str, int], budget: int) -> set[str]:
    """The units (a split, or splits joined for training) to stream: ``sizes`` gives each
    unit's bytes; ``setting`` is ``in_memory`` (auto, true or false)."""
    if setting is True or setting == "true":
        return set()
    if setting is False or setting == "false":
        return set(sizes)
    streamed, left = set(), budget
    for unit, size in sorted(sizes.items(), key=lambda item: (item[1], item[0])):
        if size <= left:
            left -= size
        else:
            streamed.add(unit)
    return streamed
