"""Device choice, precision, and the per-GPU lock allocator (tested on a CPU with fake counts)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time

import pytest
import torch

from hpstudy import devices, runtime
from hpstudy.errors import HpstudyError

# holds its claim until stdin closes; prints the GPU it got (or "none")
CLAIMER = (
    "import os, sys\n"
    "from hpstudy.devices import claim_gpu\n"
    "claim = claim_gpu(poll_s=0.05)\n"
    "print(os.environ.get('CUDA_VISIBLE_DEVICES', 'none'), flush=True)\n"
    "sys.stdin.read()\n"
)


def claimer(tmp_path, fake_count, **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(HPSTUDY_FAKE_GPU_COUNT=str(fake_count), HPSTUDY_GPU_LOCK_DIR=str(tmp_path))
    env.update(env_extra)
    return subprocess.Popen(
        [sys.executable, "-c", CLAIMER], env=env, text=True, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_auto_prefers_cuda_and_asking_for_a_missing_cuda_is_a_clear_error():
    assert devices.select_device("cpu").type == "cpu"
    if torch.cuda.is_available():
        assert devices.select_device("auto").type == "cuda"
    else:
        assert devices.select_device("auto").type in ("cpu", "mps")
        with pytest.raises(HpstudyError, match="device: auto"):
            devices.select_device("cuda")


def test_precision_is_fp32_off_cuda():
    cpu = torch.device("cpu")
    for choice in ("auto", "fp32", "bf16", "fp16"):
        assert runtime.resolve_precision(choice, cpu) == torch.float32


def test_two_of_three_concurrent_jobs_get_distinct_gpus_the_third_waits(tmp_path):
    jobs = [claimer(tmp_path, 2) for _ in range(3)]
    try:
        got = {}
        deadline = time.monotonic() + 60
        # the first two lines that arrive come from the two winners
        sel = selectors.DefaultSelector()
        for job in jobs:
            sel.register(job.stdout, selectors.EVENT_READ, job)
        while len(got) < 2 and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                got[key.data] = key.data.stdout.readline().strip()
                sel.unregister(key.fileobj)
        assert sorted(got.values()) == ["0", "1"]
        (waiting,) = [job for job in jobs if job not in got]
        time.sleep(0.5)
        assert waiting.poll() is None and not sel.select(timeout=0)  # still waiting
        # a holder killed outright frees its GPU (the kernel drops the flock)
        victim = next(job for job, gpu in got.items() if gpu == "1")
        victim.kill()
        victim.wait()
        assert waiting.stdout.readline().strip() == "1"
    finally:
        for job in jobs:
            job.kill()
            job.wait()


def test_a_preset_cuda_visible_devices_is_respected(tmp_path):
    job = claimer(tmp_path, 2, CUDA_VISIBLE_DEVICES="5")
    out, _ = job.communicate("", timeout=60)
    assert out.strip() == "5"
    assert not list(tmp_path.iterdir())  # no lock taken


def test_no_gpu_means_no_claim(tmp_path):
    job = claimer(tmp_path, 0)
    out, _ = job.communicate("", timeout=60)
    assert out.strip() == "none"


def test_waiting_gives_up_with_a_clear_error_when_asked(tmp_path):
    holder = claimer(tmp_path, 1)
    try:
        assert holder.stdout.readline().strip() == "0"
        late = claimer(tmp_path, 1, HPSTUDY_GPU_WAIT_S="0.3")
        _, err = late.communicate("", timeout=60)
        assert late.returncode != 0
        assert "All 1 GPUs are taken" in err and "HPSTUDY_GPU_WAIT_S" in err
    finally:
        holder.kill()
        holder.wait()
