"""How a run computes: device, precision, memory layout and the numeric settings of the
backends. Part of the code digest of every run (:mod:`hpstudy.identity`): a change here can
change every run's numbers."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch

from hpstudy import devices

LOG = logging.getLogger("hpstudy.runtime")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(preference: str, device: torch.device) -> torch.dtype:
    """Compute dtype of the run: ``auto`` is bf16 on a CUDA GPU that has it, else fp16 on CUDA,
    fp32 on the CPU and MPS. Mixed precision is only used on CUDA."""
    if device.type != "cuda":
        if preference in ("bf16", "fp16"):
            LOG.warning(
                "precision %s is only used on CUDA; training in fp32 on %s", preference, device.type
            )
        return torch.float32
    if preference == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return _DTYPES[preference]


def configure_backends(device: torch.device, deterministic: bool, threads: int) -> None:
    """CPU threads, cuDNN autotuning and deterministic algorithms for the run."""
    torch.set_num_threads(max(1, int(threads)))
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; must be set before its first use
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: a few CUDA backward kernels (e.g. ResNet18's adaptive average pool) are
        # flagged as having no deterministic version; a warning in the log beats a crash
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        # TF32 would change fp32 numerics; fp32 runs stay true fp32 unless mixed precision is on
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


@dataclass
class Runtime:
    """Where and how the run computes: device, autocast dtype, grad scaler, memory layout."""

    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    scaler: torch.amp.GradScaler

    @classmethod
    def for_settings(cls, settings: dict, threads: int) -> Runtime:
        """The runtime of a run's settings on this machine (configures the backends)."""
        device = devices.select_device(settings["device"])
        dtype = resolve_precision(settings["precision"], device)
        configure_backends(device, bool(settings["deterministic"]), threads)
        # channels_last suits cuDNN and oneDNN alike: 1.5x (custom CNN) to 4x (ResNet18 at
        # 150 px) faster training steps on a 2-core CPU, measured with benchmarks/train_speed.py
        channels_last = device.type in ("cuda", "cpu")
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        return cls(device, dtype, channels_last, scaler)

    def autocast(self):
        """Mixed-precision context; a no-op for fp32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format models and batches use."""
        return torch.channels_last if self.channels_last else torch.preserve_format
