"""How a run computes: device, precision, memory layout and the numeric settings of the
backends. Part of the code digest of every run (:mod:`hpstudy.identity`): a change here can
change every run's numbers."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch

from hpstudy.core.errors import HpstudyError
from hpstudy.training import devices

LOG = logging.getLogger("hpstudy.runtime")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(preference: str, device: torch.device) -> torch.dtype:
    """The compute dtype of a run on ``device``: fp32; bf16 on a CUDA GPU that has it or on a
    CPU with native bf16 (AVX512-BF16, AMX, Arm bf16); fp16 on CUDA. ``auto`` picks the first
    of bf16 and fp16 the device has, else fp32. A precision the device cannot honour is
    refused: it is part of the run's identity, so falling back would mislabel the run."""
    if preference == "fp32":
        return torch.float32
    kind = device.type
    if preference == "auto":
        if kind == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if kind == "cpu" and devices.cpu_has_native_bf16() else torch.float32
    if kind == "cuda" and (preference == "fp16" or torch.cuda.is_bf16_supported()):
        return _DTYPES[preference]
    if kind == "cpu" and preference == "bf16" and devices.cpu_has_native_bf16():
        return torch.bfloat16
    where = {"cuda": "this GPU", "cpu": "this CPU", "mps": "Apple MPS"}.get(kind, kind)
    raise HpstudyError(
        f"precision: {preference} cannot run on {where}: bf16 needs a CUDA GPU of compute "
        "capability 8.0 or later or a CPU with native bf16 (AVX512-BF16, AMX or Arm's bf16), "
        "fp16 a CUDA GPU. Set precision: fp32, or auto (the fastest the device has, decided "
        "where the sweep is planned)."
    )


def precision_name(dtype: torch.dtype) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what summary.json records."""
    return {v: k for k, v in _DTYPES.items()}[dtype]


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
