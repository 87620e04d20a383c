"""Which device a run uses and which GPU of several it takes.

``claim_gpu`` must run before anything initialises CUDA: it picks a free GPU by taking a
non-blocking ``flock`` on one lock file per device and sets ``CUDA_VISIBLE_DEVICES`` to it. The
lock's file descriptor stays open for the life of the process, so the kernel frees the GPU when
the process ends, however it ends (SIGKILL included).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hpstudy.errors import HpstudyError

LOG = logging.getLogger("hpstudy.devices")


@dataclass
class GpuClaim:
    """A GPU won by this process; the open lock file keeps it ours until the process ends."""

    index: int
    lock_path: Path
    fd: int


_HELD: list[GpuClaim] = []  # keeps the lock fds referenced for the life of the process


def count_gpus_without_cuda() -> int:
    """Number of NVIDIA GPUs, found without initialising CUDA in this process.

    ``HPSTUDY_FAKE_GPU_COUNT`` overrides it (tests of the allocator on a CPU).
    """
    fake = os.environ.get("HPSTUDY_FAKE_GPU_COUNT")
    if fake is not None:
        return int(fake)
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
            ).stdout
            return sum(line.startswith("GPU ") for line in out.splitlines())
        except (subprocess.SubprocessError, OSError):
            pass
    try:  # NVML reports the count without creating a CUDA context
        return max(0, int(torch.cuda._device_count_nvml()))
    except Exception:
        return 0


def gpu_lock_dir() -> Path:
    """Folder of the per-GPU lock files (``HPSTUDY_GPU_LOCK_DIR`` or $TMPDIR/hpstudy-gpu-locks)."""
    explicit = os.environ.get("HPSTUDY_GPU_LOCK_DIR")
    return Path(explicit) if explicit else Path(tempfile.gettempdir()) / "hpstudy-gpu-locks"


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def claim_gpu(wait_s: float | None = None, poll_s: float = 0.5) -> GpuClaim | None:
    """Take a free GPU for this process and set ``CUDA_VISIBLE_DEVICES`` to it.

    Returns None (and changes nothing) when ``CUDA_VISIBLE_DEVICES`` is already set, e.g. by
    SLURM, or when the machine has no GPU. When every GPU is taken it waits, polling, up to
    ``wait_s`` seconds (default ``HPSTUDY_GPU_WAIT_S`` or forever), then raises HpstudyError.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return None
    count = count_gpus_without_cuda()
    if count <= 0:
        return None
    if wait_s is None and os.environ.get("HPSTUDY_GPU_WAIT_S"):
        wait_s = float(os.environ["HPSTUDY_GPU_WAIT_S"])
    lock_dir = gpu_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    start, last_note = time.monotonic(), 0.0
    while True:
        for index in range(count):
            path = lock_dir / f"gpu{index}.lock"
            fd = _try_lock(path)
            if fd is not None:
                os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
                claim = GpuClaim(index, path, fd)
                _HELD.append(claim)
                LOG.info("took GPU %d (lock %s)", index, path)
                return claim
        waited = time.monotonic() - start
        if wait_s is not None and waited >= wait_s:
            raise HpstudyError(
                f"All {count} GPUs are taken by other hpstudy jobs (lock files in {lock_dir}) "
                f"after waiting {waited:.0f} s. Run fewer jobs at once (--resources gpu=N with N "
                "at most the number of GPUs) or set HPSTUDY_GPU_WAIT_S to wait longer."
            )
        if waited - last_note >= 60:
            LOG.warning("all %d GPUs are taken; waiting for one to be free", count)
            last_note = waited
        time.sleep(poll_s)


def select_device(preference: str = "auto") -> torch.device:
    """The device to train on: ``auto`` picks CUDA, then MPS, then the CPU."""
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if preference == "cuda" and not torch.cuda.is_available():
        raise HpstudyError(
            "device: cuda was asked for but PyTorch sees no CUDA GPU here; use `device: auto` "
            "(falls back to MPS or the CPU) or install a CUDA build of PyTorch."
        )
    if preference == "mps" and not mps_ok:
        raise HpstudyError(
            "device: mps was asked for but MPS is not available; use `device: auto`."
        )
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    return torch.device(preference)


def device_name(device: torch.device) -> str:
    """Human-readable name of the device (GPU model, or the CPU's)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: allocated CUDA memory on a GPU, the process's max RSS otherwise."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type == "mps":
        return torch.mps.driver_allocated_memory() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
