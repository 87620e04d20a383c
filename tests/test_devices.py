"""Device choice, precision, and the per-GPU lock allocator (tested on a CPU with fake counts)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time

import pytest
import torch

from hpstudy.core.errors import HpstudyError
from hpstudy.training import devices, runtime

# holds its claim until stdin closes; prints the GPU it got (or "none")
CLAIMER = (
    "import os, sys\n"
    "from hpstudy.training.devices import claim_gpu\n"
    "claim = claim_gpu(poll_s=0.05, slots=int(sys.argv[1]))\n"
    "print(os.environ.get('CUDA_VISIBLE_DEVICES', 'none'), claim.slot if claim else '-',"
    " flush=True)\n"
    "sys.stdin.read()\n"
)


def claimer(tmp_path, fake_count, slots=1, **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(HPSTUDY_FAKE_GPU_COUNT=str(fake_count), HPSTUDY_GPU_LOCK_DIR=str(tmp_path))
    env.update(env_extra)
    return subprocess.Popen(
        [sys.executable, "-c", CLAIMER, str(slots)], env=env, text=True, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def gpu_of(line: str) -> str:
    return line.split()[0]


def test_auto_prefers_cuda_and_asking_for_a_missing_cuda_is_a_clear_error():
    assert devices.select_device("cpu").type == "cpu"
    if torch.cuda.is_available():
        assert devices.select_device("auto").type == "cuda"
    else:
        assert devices.select_device("auto").type in ("cpu", "mps")
        with pytest.raises(HpstudyError, match="device: auto"):
            devices.select_device("cuda")


def test_bf16_on_a_cpu_with_native_bf16_and_refused_on_one_without(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("HPSTUDY_CPU_BF16", "1")
    assert runtime.resolve_precision("bf16", cpu) == torch.bfloat16
    assert runtime.resolve_precision("auto", cpu) == torch.bfloat16
    assert runtime.resolve_precision("fp32", cpu) == torch.float32
    assert devices.planned_precision("auto", "cpu") == "bf16"
    monkeypatch.setenv("HPSTUDY_CPU_BF16", "0")
    assert runtime.resolve_precision("auto", cpu) == torch.float32
    assert devices.planned_precision("auto", "cpu") == "fp32"
    with pytest.raises(HpstudyError, match="precision: bf16 cannot run on this CPU"):
        runtime.resolve_precision("bf16", cpu)
    with pytest.raises(HpstudyError, match="fp16 a CUDA GPU"):
        runtime.resolve_precision("fp16", cpu)
    # bf16 computes in bf16, with no gradient scaler
    monkeypatch.setenv("HPSTUDY_CPU_BF16", "1")
    rt = runtime.Runtime.for_settings({"device": "cpu", "precision": "bf16",
                                       "deterministic": False}, threads=1)  # fmt: skip
    assert not rt.scaler.is_enabled()
    with rt.autocast():
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16


def test_native_bf16_is_the_cpus_own_flag_not_onednns_emulation(monkeypatch):
    monkeypatch.delenv("HPSTUDY_CPU_BF16", raising=False)
    monkeypatch.setattr(devices.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not devices.cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert devices.cpu_has_native_bf16()


@pytest.mark.slow  # spawns processes and waits on them: seconds each
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
        assert sorted(map(gpu_of, got.values())) == ["0", "1"]
        (waiting,) = [job for job in jobs if job not in got]
        time.sleep(0.5)
        assert waiting.poll() is None and not sel.select(timeout=0)  # still waiting
        # a holder killed outright frees its GPU (the kernel drops the flock)
        victim = next(job for job, line in got.items() if gpu_of(line) == "1")
        victim.kill()
        victim.wait()
        assert gpu_of(waiting.stdout.readline()) == "1"
    finally:
        for job in jobs:
            job.kill()
            job.wait()


def test_a_preset_cuda_visible_devices_is_respected(tmp_path):
    job = claimer(tmp_path, 2, CUDA_VISIBLE_DEVICES="5")
    out, _ = job.communicate("", timeout=60)
    assert gpu_of(out) == "5"
    assert not list(tmp_path.iterdir())  # no lock taken


@pytest.mark.slow  # spawns processes and waits on them: seconds each
def test_no_gpu_means_no_claim(tmp_path):
    job = claimer(tmp_path, 0)
    out, _ = job.communicate("", timeout=60)
    assert gpu_of(out) == "none"


@pytest.mark.slow  # spawns processes and waits on them: seconds each
def test_waiting_gives_up_with_a_clear_error_when_asked(tmp_path):
    holder = claimer(tmp_path, 1)
    try:
        assert gpu_of(holder.stdout.readline()) == "0"
        late = claimer(tmp_path, 1, HPSTUDY_GPU_WAIT_S="0.3")
        _, err = late.communicate("", timeout=60)
        assert late.returncode != 0
        assert "All 1 GPUs x 1 slot(s) are taken" in err and "HPSTUDY_GPU_WAIT_S" in err
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # spawns processes and waits on them: seconds each
def test_four_jobs_on_two_gpus_with_two_slots_get_distinct_places_two_per_gpu(tmp_path):
    jobs = [claimer(tmp_path, 2, slots=2) for _ in range(4)]
    try:
        places = [tuple(job.stdout.readline().split()) for job in jobs]
        assert len(set(places)) == 4  # distinct (GPU, slot) pairs
        assert sorted(gpu for gpu, _ in places) == ["0", "0", "1", "1"]  # spread evenly
        fifth = claimer(tmp_path, 2, slots=2, HPSTUDY_GPU_WAIT_S="0.3")
        _, err = fifth.communicate("", timeout=60)
        assert fifth.returncode != 0 and "All 2 GPUs x 2 slot(s) are taken" in err
    finally:
        for job in jobs:
            job.kill()
            job.wait()


@pytest.mark.slow  # spawns processes and waits on them: seconds each
def test_the_first_jobs_take_slot_zero_of_each_gpu_before_sharing_one(tmp_path):
    first = [claimer(tmp_path, 2, slots=4) for _ in range(2)]
    try:
        places = sorted(tuple(job.stdout.readline().split()) for job in first)
        assert places == [("0", "0"), ("1", "0")]
    finally:
        for job in first:
            job.kill()
            job.wait()
