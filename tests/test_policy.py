"""save_policy / load_policy: the loaded policy acts as the trained actor, mapped onto its action box, on
any device, and refuses spaces, shapes and files it was not made for."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gymnasium.spaces import Box

from ipl_core.agents import make_agent
from ipl_core.data import DataFormatError
from ipl_core.policy import load_policy, save_policy

LOW, HIGH = np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)


@pytest.fixture()
def agent():
    return make_agent("ipl", 3, 2, (16, 16), generator=torch.Generator().manual_seed(3))


def test_loaded_policy_acts_as_the_actor_mapped_onto_the_box(agent, tmp_path: Path) -> None:
    path = save_policy(agent, tmp_path / "p.pt", action_space=(LOW, HIGH))
    policy = load_policy(path)
    obs = np.random.default_rng(0).normal(size=(7, 3))
    unit = agent.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].double().numpy()
    # by hand: [-1, 1] onto [-2, 2] is 2u; onto [0, 1] is (u + 1) / 2
    expected = np.stack([2.0 * unit[:, 0], (unit[:, 1] + 1.0) / 2.0], axis=1)
    np.testing.assert_allclose(policy.act(obs), expected, atol=1e-6)
    np.testing.assert_allclose(policy.act(obs[0]), expected[0], atol=1e-6)
    assert policy.act(obs[0]).shape == (2,)
    assert (policy.act(100 * obs) >= LOW).all() and (policy.act(100 * obs) <= HIGH).all()


def test_default_box_is_the_unit_box_and_a_folder_finds_policy_pt(agent, tmp_path: Path) -> None:
    save_policy(agent, tmp_path)
    policy = load_policy(tmp_path, observation_space=Box(-np.inf, np.inf, (3,)),
                         action_space=Box(-1.0, 1.0, (2,)))
    obs = np.ones((1, 3), dtype=np.float32)
    np.testing.assert_allclose(policy.act(obs), agent.act(torch.as_tensor(obs)[None])[0].numpy(), atol=1e-6)


@pytest.mark.parametrize("spaces, message", [
    ({"observation_space": Box(-1.0, 1.0, (4,))}, "observations of shape (3,); the observation space has "
                                                  "shape (4,)"),
    ({"action_space": Box(-1.0, 1.0, (3,))}, "actions of shape (2,); the action space has shape (3,)"),
    ({"action_space": Box(-1.0, 1.0, (2,))}, "acts in the box low=[-2.0, 0.0], high=[2.0, 1.0]; the action "
                                             "space has low=[-1.0, -1.0]"),
    ({"action_space": SimpleNamespace(shape=(2,), low=LOW, high=HIGH + 1)}, "high=[3.0, 2.0]"),
])
def test_spaces_that_differ_at_load_time_name_the_file_and_the_mismatch(agent, tmp_path: Path, spaces,
                                                                         message) -> None:
    path = save_policy(agent, tmp_path / "p.pt", action_space=Box(LOW, HIGH))
    load_policy(path, observation_space=Box(-1.0, 1.0, (3,)), action_space=Box(LOW, HIGH))  # the right ones
    with pytest.raises(ValueError) as error:
        load_policy(path, **spaces)
    assert str(path) in str(error.value) and message in str(error.value)


def test_wrong_observations_are_refused(agent, tmp_path: Path) -> None:
    policy = load_policy(save_policy(agent, tmp_path / "p.pt"))
    with pytest.raises(ValueError, match=r"observations of shape \(3,\) or \(N, 3\); got shape \(5, 4\)"):
        policy.act(np.zeros((5, 4)))


def test_bad_files_and_agents_are_refused(agent, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        load_policy(tmp_path / "missing.pt")
    foreign = tmp_path / "checkpoint.pt"
    torch.save({"agent": agent.state_dict(), "step": 3}, foreign)
    with pytest.raises(DataFormatError, match=r"checkpoint.pt: format None; expected 'ipl_core.policy/1'"):
        load_policy(foreign)
    good = save_policy(agent, tmp_path / "p.pt").read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFormatError, match=r"broken\.pt: cannot be read"):
        load_policy(broken)
    two = make_agent("ipl", 3, 2, (16, 16), generator=[torch.Generator().manual_seed(s) for s in (0, 1)])
    with pytest.raises(ValueError, match="one-member agent"):
        save_policy(two, tmp_path / "two.pt")
    with pytest.raises(ValueError, match="low < high"):
        save_policy(agent, tmp_path / "q.pt", action_space=(HIGH, LOW))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_policy_saved_on_a_gpu_loads_on_the_cpu_and_back(agent, tmp_path: Path) -> None:
    path = save_policy(agent.to("cuda"), tmp_path / "p.pt")
    obs = np.random.default_rng(1).normal(size=(4, 3))
    on_cpu, on_gpu = load_policy(path), load_policy(path, device="cuda")
    assert on_gpu.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.act(obs), on_cpu.act(obs), atol=1e-5)
