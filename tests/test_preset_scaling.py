"""Presets scale their batch on a GPU (issue 12): ``fast`` on CUDA trains at the GPU's width, on a
CPU exactly as written. No GPU is needed: the device is monkeypatched (``GENLIB_DEVICE``)."""

from __future__ import annotations

import pytest
import torch

from genlib import models
from genlib.device import GPU_BATCH, gpu_batch, scaled_batch
from genlib.runs import RunSpec
from genlib.training import TrainConfig


@pytest.fixture(autouse=True)
def _no_gpu_batch_env(monkeypatch):
    monkeypatch.delenv("GENLIB_GPU_BATCH", raising=False)


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "mps", "meta"])
@pytest.mark.parametrize("batch", [1, 32, 512, 4096, 20_000])
def test_scaled_batch_is_the_identity_off_cuda(device, batch):
    assert scaled_batch(batch, device) == batch


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda", 0)])
def test_scaled_batch_widens_to_the_gpu_batch_on_cuda(device):
    assert scaled_batch(32, device) == GPU_BATCH
    assert scaled_batch(512, device) == GPU_BATCH
    assert scaled_batch(GPU_BATCH + 1, device) == GPU_BATCH + 1  # never narrower than written


def test_gpu_batch_environment(monkeypatch):
    assert gpu_batch() == GPU_BATCH
    monkeypatch.setenv("GENLIB_GPU_BATCH", "8192")
    assert scaled_batch(512, "cuda") == 8192
    monkeypatch.setenv("GENLIB_GPU_BATCH", "0")  # off: the CPU preset everywhere
    assert scaled_batch(512, "cuda") == 512
    monkeypatch.setenv("GENLIB_GPU_BATCH", "lots")  # unreadable: the default, no crash
    assert gpu_batch() == GPU_BATCH
    monkeypatch.setenv("GENLIB_GPU_BATCH", "-5")
    assert scaled_batch(512, "cuda") == 512
    monkeypatch.setenv("GENLIB_GPU_BATCH", str(10**9))  # capped at the trainer's maximum
    assert scaled_batch(512, "cuda") == 65_536


def test_scaled_batch_follows_the_compute_device(monkeypatch):
    monkeypatch.setenv("GENLIB_DEVICE", "cuda")  # what get_device() returns on a GPU machine
    assert scaled_batch(256) == GPU_BATCH
    monkeypatch.setenv("GENLIB_DEVICE", "cpu")
    assert scaled_batch(256) == 256


@pytest.mark.parametrize("name", models.names())
def test_the_fast_preset_widens_only_its_batch_on_cuda(name):
    written = models.MODELS.get(name).presets["fast"]
    cpu = models.preset(name, "fast", device="cpu")
    gpu = models.preset(name, "fast", device="cuda")
    assert cpu == written  # a CPU sees the preset as written
    base = written.train.get("batch_size", TrainConfig().batch_size)
    assert gpu.train["batch_size"] == max(base, GPU_BATCH)
    assert {k: v for k, v in gpu.train.items() if k != "batch_size"} == {
        k: v for k, v in written.train.items() if k != "batch_size"
    }
    assert gpu.model == written.model and gpu.description == written.description
    # the class's dict is never modified in place
    assert models.MODELS.get(name).presets["fast"] == written


@pytest.mark.parametrize("name", models.names())
def test_other_presets_are_as_written_on_cuda(name):
    """``quality`` already trains wide; widened it would exceed a shared server's job budget."""
    for preset_name, written in models.MODELS.get(name).presets.items():
        if preset_name not in models.GPU_SCALED_PRESETS:
            assert models.preset(name, preset_name, device="cuda") == written


def test_widened_fast_presets_stay_within_the_default_job_budget(monkeypatch):
    from genlib.jobs import job_cost

    monkeypatch.setenv("GENLIB_DEVICE", "cuda")
    for name in models.names():
        spec = RunSpec.from_preset(name, "moons", preset="fast")
        assert spec.train.batch_size >= GPU_BATCH
        assert job_cost(spec) <= 1e8, name  # GENLIB_JOB_BUDGET's default


def test_run_spec_from_preset_on_cuda(monkeypatch):
    monkeypatch.setenv("GENLIB_DEVICE", "cpu")
    cpu_spec = RunSpec.from_preset("ddpm", "moons", preset="fast")
    written = models.MODELS.get("ddpm").presets["fast"].train["batch_size"]
    assert cpu_spec.train.batch_size == written
    monkeypatch.setenv("GENLIB_DEVICE", "cuda")
    gpu_spec = RunSpec.from_preset("ddpm", "moons", preset="fast")
    assert gpu_spec.train.batch_size == max(written, GPU_BATCH)
    assert gpu_spec.key() != cpu_spec.key()  # a different run, so a different checkpoint
    # an explicit batch (a page's form, the CLI) always wins over the scaling
    assert RunSpec.from_preset("ddpm", "moons", batch_size=64).train.batch_size == 64
    monkeypatch.setenv("GENLIB_GPU_BATCH", "0")
    assert RunSpec.from_preset("ddpm", "moons").key() == cpu_spec.key()
