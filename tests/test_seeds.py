"""The seed axis: E seeds trained in one process equal E separate runs of ``train``, for every offline method;
a batch of seeds resumes from its checkpoints exactly, and a checkpoint does not depend on the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ipl_core.config import OfflineConfig
from ipl_core.toy import pendulum_datasets
from ipl_core.trainer import member_optimizer_state, stack_optimizer_states, train, train_seeds

SEEDS = (0, 1, 2)
METHODS = ("ipl", "ipl-xql", "ipl-awac", "iql", "mr", "brex", "cpl", "bc")


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return pendulum_datasets(episodes=6, episode_length=100, num_pairs=100, segment_length=25, seed=0)


def tiny(method: str, **changes: object) -> OfflineConfig:
    settings = {"method": method, "hidden_dim": 64, "num_layers": 2, "discount": 0.95, "pref_batch_size": 16,
                "offline_batch_size": 64, "subsample_length": 16, "steps": 25, "log_every": 5,
                "eval_every": 10, "checkpoint_every": 0, "reward_steps": 15}
    return OfflineConfig(**(settings | changes))


def assert_same_run(a, b) -> None:
    """Same rows (steps, kinds, metrics, seed column) and values, and the same final weights, to float
    rounding: batched matrix products round differently, nothing else differs."""
    pd.testing.assert_frame_equal(a.metrics.drop(columns="value"), b.metrics.drop(columns="value"))
    # measured largest gaps over these methods: 7.7e-7 absolute
    np.testing.assert_allclose(b.metrics.value.to_numpy(), a.metrics.value.to_numpy(), rtol=1e-5, atol=1e-6)
    state_a, state_b = a.agent.state_dict(), b.agent.state_dict()
    assert state_a.keys() == state_b.keys()
    # Adam divides by sqrt(v): a rounding difference in a gradient element near zero can move that weight by
    # a fraction of lr = 3e-4 per step.
    for name, x in state_a.items():
        torch.testing.assert_close(state_b[name], x, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("method", METHODS)
def test_batched_seeds_equal_separate_runs(data, method: str) -> None:
    offline, preferences = data
    cfg = tiny(method)
    batched = train_seeds(cfg, SEEDS, offline, preferences, progress=False)
    assert len(batched) == len(SEEDS)
    for seed, result in zip(SEEDS, batched, strict=True):
        single = train(cfg.replace(seed=seed), offline, preferences, progress=False)
        assert result.steps_done == single.steps_done == 25
        assert set(single.metrics[single.metrics.kind == "eval"].step) == {0, 10, 20, 25}
        assert list(result.metrics.seed.unique()) == [seed]
        assert_same_run(single, result)


def test_each_seed_can_have_its_own_offline_dataset(data) -> None:
    """A list of datasets (e.g. each relabelled by its own reward model): seed e trains on dataset e."""
    offline, preferences = data
    other = pendulum_datasets(episodes=6, episode_length=100, num_pairs=100, segment_length=25, seed=5)[0]
    cfg = tiny("iql")
    batched = train_seeds(cfg, [0, 1], [offline, other], preferences, progress=False)
    assert_same_run(train(cfg.replace(seed=1), other, preferences, progress=False), batched[1])
    with pytest.raises(ValueError, match="one per seed"):
        train_seeds(cfg, [0, 1], [offline], preferences, progress=False)


def test_other_seeds_give_other_results(data) -> None:
    offline, preferences = data
    cfg = tiny("ipl", steps=5, eval_every=0)
    a = train_seeds(cfg, [0, 1], offline, preferences, progress=False)
    b = train_seeds(cfg, [0, 3], offline, preferences, progress=False)
    pd.testing.assert_frame_equal(a[0].metrics, b[0].metrics, check_exact=False, rtol=1e-6, atol=1e-7)
    assert not np.allclose(a[1].metrics.value, b[1].metrics.value)
    assert list(b[1].metrics.seed.unique()) == [3]


@pytest.mark.parametrize("method", ["ipl", "mr"])
def test_batched_run_resumes_exactly_from_per_seed_checkpoints(data, tmp_path: Path, method: str) -> None:
    offline, preferences = data
    cfg = tiny(method, steps=30, log_every=3, eval_every=10, checkpoint_every=10)
    whole = train_seeds(cfg, [0, 1], offline, preferences, out_dirs=[tmp_path / "w0", tmp_path / "w1"],
                        progress=False)
    cut_dirs = [tmp_path / "c0", tmp_path / "c1"]
    train_seeds(cfg, [0, 1], offline, preferences, out_dirs=cut_dirs, progress=False, stop_at=25)
    assert all((d / "checkpoint.pt").is_file() for d in cut_dirs)
    resumed = train_seeds(cfg, [0, 1], offline, preferences, out_dirs=cut_dirs, progress=False)
    for a, b in zip(whole, resumed, strict=True):
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
        for name, x in a.agent.state_dict().items():
            assert torch.equal(x, b.agent.state_dict()[name]), name
    # Each seed's checkpoint is that of a one-seed run: seed 1 alone resumes from its folder.
    alone = train(cfg.replace(seed=1), offline, preferences, out_dir=cut_dirs[1], progress=False)
    pd.testing.assert_frame_equal(alone.metrics, whole[1].metrics)


@pytest.mark.parametrize("renamed", [True, False])
def test_a_round_of_checkpoints_cut_by_a_crash_is_finished_or_undone(data, tmp_path: Path,
                                                                    renamed: bool) -> None:
    """A crash between writing the seeds' checkpoints aside and moving them in: when every seed's new
    checkpoint exists the round is finished (renamed=True: seed 0's was already moved in), else it is undone
    and both seeds resume from the round before; either way the run ends as one never interrupted."""
    offline, preferences = data
    cfg = tiny("ipl", steps=20, log_every=5, eval_every=10, checkpoint_every=10)
    whole = train_seeds(cfg, [0, 1], offline, preferences, out_dirs=[tmp_path / "w0", tmp_path / "w1"],
                        progress=False)
    cut = [tmp_path / "c0", tmp_path / "c1"]
    train_seeds(cfg, [0, 1], offline, preferences, out_dirs=cut, progress=False, stop_at=15)  # round at 10
    (cut[1] / "checkpoint.next.pt").write_bytes((tmp_path / "w1" / "checkpoint.pt").read_bytes())  # step 20
    if renamed:
        (cut[0] / "checkpoint.pt").write_bytes((tmp_path / "w0" / "checkpoint.pt").read_bytes())
    resumed = train_seeds(cfg, [0, 1], offline, preferences, out_dirs=cut, progress=False)
    assert not any((d / "checkpoint.next.pt").exists() for d in cut)
    for a, b in zip(whole, resumed, strict=True):
        pd.testing.assert_frame_equal(a.metrics, b.metrics)


def test_mixed_checkpoints_are_refused(data, tmp_path: Path) -> None:
    offline, preferences = data
    cfg = tiny("ipl", steps=10, checkpoint_every=5)
    train(cfg, offline, preferences, out_dir=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="some seeds of this run have checkpoints"):
        train_seeds(cfg, [0, 1], offline, preferences, out_dirs=[tmp_path / "a", tmp_path / "b"],
                    progress=False)


def test_optimizer_state_splits_and_stacks_back() -> None:
    params = [torch.nn.Parameter(torch.randn(3, 4, 2))]
    optimizer = torch.optim.Adam(params, fused=True)
    params[0].grad = torch.randn(3, 4, 2)
    optimizer.step()
    state = optimizer.state_dict()
    members = [member_optimizer_state(state, e, grouped=False) for e in range(3)]
    assert members[1]["state"][0]["exp_avg"].shape == (1, 4, 2)
    stacked = stack_optimizer_states(members, grouped=False)
    torch.testing.assert_close(stacked["state"][0]["exp_avg"], state["state"][0]["exp_avg"])


def test_checkpoints_hold_cpu_tensors_only(data, tmp_path: Path) -> None:
    """Device independence: nothing in a checkpoint is bound to the device it was written on (the random
    states included), so a checkpoint written on a GPU loads on a CPU."""
    offline, preferences = data
    train(tiny("ipl", steps=5), offline, preferences, out_dir=tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", map_location=None, weights_only=True)

    def devices(x) -> set[str]:
        if torch.is_tensor(x):
            return {x.device.type}
        if isinstance(x, dict):
            return set().union(*(devices(v) for v in x.values())) if x else set()
        if isinstance(x, list | tuple):
            return set().union(*(devices(v) for v in x)) if x else set()
        return set()

    assert devices(state) == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_checkpoint_written_on_cuda_resumes_on_cpu(data, tmp_path: Path) -> None:
    offline, preferences = data
    cfg = tiny("ipl", steps=20, checkpoint_every=10, device="cuda")
    train(cfg, offline, preferences, out_dir=tmp_path, progress=False, stop_at=15)
    resumed = train(cfg.replace(device="cpu"), offline, preferences, out_dir=tmp_path, progress=False)
    assert resumed.steps_done == 20


@pytest.mark.parametrize("seeds", [[], [1, 1], [-1, 2]])
def test_bad_seeds_are_named(data, seeds: list[int]) -> None:
    offline, preferences = data
    with pytest.raises(ValueError, match="seeds must be distinct non-negative"):
        train_seeds(tiny("ipl"), seeds, offline, preferences, progress=False)


def test_missing_cuda_is_one_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match=r"OfflineConfig\.device='cuda' but CUDA is not available"):
        OfflineConfig(device="cuda")
    with pytest.raises(ValueError, match=r"OfflineConfig\.device='tpu'"):
        OfflineConfig(device="tpu")
