"""The code paths a GPU run takes that a CPU can check: checkpoints whose tensors were saved on CUDA resume on
the CPU (every reader maps them there), ``cuda:N`` strings are parsed and range-checked, and gpu_check's
CUDA-only helpers and its ``--device`` errors.

A checkpoint "saved on CUDA" is simulated exactly: ``torch.save`` records each storage's device through
``torch.serialization.location_tag``, which is patched to answer ``cuda:0`` while the file is rewritten; a
``torch.load`` without ``map_location`` then fails as it would on a CPU-only machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ipl_core.agents import make_agent
from ipl_core.config import OfflineConfig, check_device
from ipl_core.experiments.studies import ONLINE_SMOKE_SETTINGS
from ipl_core.io import device_description
from ipl_core.online.config import OnlineConfig
from ipl_core.online.train import train_online
from ipl_core.policy import load_policy, save_policy
from ipl_core.toy import pendulum_datasets
from ipl_core.trainer import CHECKPOINT, NEXT_CHECKPOINT, train

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_check  # noqa: E402


def as_if_saved_on_cuda(path: Path, monkeypatch: pytest.MonkeyPatch, weights_only: bool = True) -> None:
    """Rewrite the torch file ``path`` so that its tensors say they were saved on ``cuda:0``."""
    state = torch.load(path, map_location="cpu", weights_only=weights_only)
    with monkeypatch.context() as patched:
        patched.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, path)
    if not torch.cuda.is_available():  # the simulation is faithful: a plain load fails as on a CPU machine
        with pytest.raises(RuntimeError, match="deserialize object on a CUDA device"):
            torch.load(path, weights_only=weights_only)


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return pendulum_datasets(episodes=6, episode_length=100, num_pairs=100, segment_length=25, seed=0)


def _offline(**changes: object) -> OfflineConfig:
    settings = {"method": "ipl", "hidden_dim": 32, "num_layers": 2, "discount": 0.95, "pref_batch_size": 16,
                "offline_batch_size": 32, "subsample_length": 16, "steps": 20, "log_every": 5,
                "eval_every": 0, "checkpoint_every": 10, "reward_steps": 0}
    return OfflineConfig(**(settings | changes))


@pytest.mark.parametrize("round_cut_short", [False, True])
def test_an_offline_checkpoint_saved_on_cuda_resumes_on_the_cpu(data, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 round_cut_short: bool) -> None:
    """Also when the checkpoint is still aside (``checkpoint.next.pt``: a crash before it was moved in)."""
    offline, preferences = data
    straight = train(_offline(), offline, preferences, progress=False)
    train(_offline(), offline, preferences, out_dir=tmp_path, progress=False, stop_at=15)
    path = tmp_path / CHECKPOINT
    as_if_saved_on_cuda(path, monkeypatch)
    if round_cut_short:
        path.rename(tmp_path / NEXT_CHECKPOINT)
    resumed = train(_offline(), offline, preferences, out_dir=tmp_path, progress=False)
    assert resumed.steps_done == 20
    pd.testing.assert_frame_equal(straight.metrics, resumed.metrics)


def test_an_online_checkpoint_saved_on_cuda_resumes_on_the_cpu(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {**ONLINE_SMOKE_SETTINGS, "total_steps": 400, "eval_interval": 200, "feedback_budget": 30,
                "replay_capacity": 400, "checkpoint_interval": 300}
    cfg = OnlineConfig(algorithm="sac", task="gym:Pendulum-v1", **settings)  # type: ignore[arg-type]
    whole = train_online(cfg, progress=False)
    train_online(cfg, out_dir=tmp_path, progress=False, stop_at=300)
    as_if_saved_on_cuda(tmp_path / "checkpoints" / "checkpoint.pt", monkeypatch, weights_only=False)
    resumed = train_online(cfg, out_dir=tmp_path, progress=False)
    for name in ("episodes", "evaluations", "updates"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(resumed, name))


def test_a_policy_saved_on_cuda_loads_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = make_agent("ipl", 3, 2, (16, 16), generator=[torch.Generator().manual_seed(0)])
    path = save_policy(agent, tmp_path / "p.pt")
    obs = np.random.default_rng(1).normal(size=(4, 3))
    expected = load_policy(path).act(obs)
    as_if_saved_on_cuda(path, monkeypatch)
    policy = load_policy(path)
    assert next(policy.actor.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(policy.act(obs), expected)


def _member_checkpoints(folder: Path, steps: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> Path:
    for member, step in zip(("0", "1"), steps, strict=False):
        (folder / member).mkdir(parents=True)
        torch.save({"step": step, "agent": {"w": torch.ones(3)}}, folder / member / "checkpoint.pt")
        as_if_saved_on_cuda(folder / member / "checkpoint.pt", monkeypatch, weights_only=False)
    return folder


@pytest.mark.parametrize(("steps", "expected"), [((7, 7), 7), ((7, 8), None), ((7,), None)])
def test_gpu_check_reads_the_step_of_checkpoints_saved_on_cuda(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               steps: tuple[int, ...],
                                                               expected: int | None) -> None:
    """Its kill-and-resume waits for this step: a load that failed would wait until its deadline."""
    assert gpu_check.checkpoint_step(_member_checkpoints(tmp_path, steps, monkeypatch)) == expected


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """CUDA reported present with two devices; the devices whose names were asked for."""
    asked: list[object] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name",
                        lambda device=None: asked.append(device) or "NVIDIA H100")
    return asked


@pytest.mark.parametrize(("device", "index"), [("cuda", None), ("cuda:0", 0), ("cuda:1", 1), ("cpu", None)])
def test_a_cuda_index_in_range_is_accepted(two_gpus: list[object], device: str, index: int | None) -> None:
    parsed = check_device(device)
    assert parsed.type == device.split(":")[0] and parsed.index == index


@pytest.mark.parametrize(("device", "message"), [
    ("cuda:2", r"device='cuda:2' but only 2 CUDA device\(s\) exist"),
    ("cuda:x", r"device='cuda:x' is not a device; expected 'cpu', 'cuda' or 'cuda:N'"),
    ("mps", r"device='mps': expected 'cpu', 'cuda' or 'cuda:N'"),
    ("", r"device='' is not a device"),
])
def test_a_bad_cuda_string_is_one_clear_error(two_gpus: list[object], device: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_device(device)


def test_without_cuda_every_cuda_string_names_the_torch_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0", "cuda:1"):
        with pytest.raises(ValueError,
                           match=rf"'{device}' but CUDA is not available \(torch .*built with CUDA"):
            check_device(device)


def test_the_run_record_names_the_gpu_a_cuda_string_points_at(two_gpus: list[object]) -> None:
    assert device_description("cuda:1") == "NVIDIA H100" and two_gpus == [torch.device("cuda", 1)]
    assert device_description("cpu").startswith(f"cpu ({os.cpu_count()} cores")


def test_gpu_check_synchronises_only_a_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    synchronised: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", synchronised.append)
    gpu_check.synchronize("cpu")
    gpu_check.synchronize("cuda:1")
    assert synchronised == ["cuda:1"]


@pytest.mark.parametrize("device", ["cuda:7", "tpu"])
def test_gpu_check_refuses_a_device_it_cannot_use_in_one_line(device: str) -> None:
    """``cuda:7``: no CUDA here, or fewer than 8 GPUs on a GPU machine; either way an argument error."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", device, "--quick"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 2 and f"--device={device!r}" in done.stderr and "Traceback" not in done.stderr
