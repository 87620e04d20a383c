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
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hpstudy.core.errors import HpstudyError

LOG = logging.getLogger("hpstudy.training.devices")


@dataclass
class GpuClaim:
    """A (GPU, slot) won by this process; the open lock file keeps it ours until the process
    ends."""

    index: int
    lock_path: Path
    fd: int
    slot: int = 0


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


def claim_gpu(wait_s: float | None = None, poll_s: float = 0.5, slots: int = 1) -> GpuClaim | None:
    """Take a free (GPU, slot) for this process and set ``CUDA_VISIBLE_DEVICES`` to the GPU.

    Each GPU has ``slots`` places (``gpu_slots``: runs sharing one GPU), one lock file each;
    places are tried slot by slot across the GPUs (slot 0 of every GPU, then slot 1, ...), so
    concurrent jobs spread evenly over the GPUs. Returns None (and changes nothing) when
    ``CUDA_VISIBLE_DEVICES`` is already set, e.g. by SLURM, or when the machine has no GPU.
    When every place is taken it waits, polling, up to ``wait_s`` seconds (default
    ``HPSTUDY_GPU_WAIT_S`` or forever), then raises HpstudyError.
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
        for slot in range(max(1, int(slots))):
            for index in range(count):
                path = lock_dir / f"gpu{index}-slot{slot}.lock"
                fd = _try_lock(path)
                if fd is not None:
                    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
                    claim = GpuClaim(index, path, fd, slot)
                    _HELD.append(claim)
                    LOG.info("took GPU %d, slot %d of %d (lock %s)", index, slot, slots, path)
                    return claim
        waited = time.monotonic() - start
        if wait_s is not None and waited >= wait_s:
            raise HpstudyError(
                f"All {count} GPUs x {slots} slot(s) are taken by other hpstudy jobs (lock files "
                f"in {lock_dir}) after waiting {waited:.0f} s. Run fewer jobs at once "
                "(--resources gpu=N with N at most GPUs x train.gpu_slots) or set "
                "HPSTUDY_GPU_WAIT_S to wait longer."
            )
        if waited - last_note >= 60:
            LOG.warning("all %d GPUs x %d slot(s) are taken; waiting for one", count, slots)
            last_note = waited
        time.sleep(poll_s)


def process_age_s() -> float:
    """Seconds since this process started (from /proc; 0 where there is none), so start-up
    timings include the interpreter and the imports."""
    try:
        stat = Path("/proc/self/stat").read_text()
        started = int(stat.rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - started)
    except (OSError, ValueError, IndexError):
        return 0.0


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX on x86, the bf16 extension
    on Arm), not merely emulating it as oneDNN's own check accepts. ``HPSTUDY_CPU_BF16=0|1``
    overrides (tests)."""
    override = os.environ.get("HPSTUDY_CPU_BF16")
    if override in ("0", "1"):
        return override == "1"
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686"):
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if machine in ("aarch64", "arm64"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.lower().startswith("features"):
                    return "bf16" in line.split(":", 1)[1].split()
        except OSError:
            return False
    return False


def planned_device_type(preference: str) -> str:
    """The device type a run will use, found without initialising CUDA (where the sweep is
    planned): ``auto`` is CUDA when a GPU is visible, then MPS, then the CPU."""
    if preference != "auto":
        return preference
    if count_gpus_without_cuda() > 0:
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def cuda_has_bf16() -> bool:
    """Whether the first visible GPU computes bf16 (compute capability 8.0 or later), asked of
    nvidia-smi so that planning creates no CUDA context; torch's own check otherwise."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.split()
            return bool(out) and float(out[0]) >= 8.0
        except (subprocess.SubprocessError, OSError, ValueError):
            pass
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def planned_precision(preference: str, device_preference: str) -> str:
    """What ``precision`` a run will train in, decided where the sweep is planned (it is part
    of the run's identity): ``auto`` is bf16 on a CUDA GPU that has it, else fp16 there, bf16 on
    a CPU with native bf16, fp32 elsewhere; an explicit precision stays as it is."""
    if preference != "auto":
        return preference
    device = planned_device_type(device_preference)
    if device == "cuda":
        return "bf16" if cuda_has_bf16() else "fp16"
    if device == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


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
