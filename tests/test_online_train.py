"""The training loop end to end at smoke scale: every algorithm runs and logs; a resumed run is identical."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tolerance import run_tolerance, scaled_gap

from ipl_core.experiments.studies import ONLINE_SMOKE_SETTINGS
from ipl_core.online.config import OnlineConfig
from ipl_core.online.train import OnlineRun, train_online, train_online_seeds

torch.set_num_threads(1)


def _cfg(algorithm: str, **extra: object) -> OnlineConfig:
    # rounds at steps 200 and 300: a round at the last step (400) would train a reward that nothing reads
    settings = {**ONLINE_SMOKE_SETTINGS, "total_steps": 400, "eval_interval": 200, "feedback_budget": 20,
                "replay_capacity": 400}
    return OnlineConfig(algorithm=algorithm, task="gym:Pendulum-v1", **{**settings, **extra})  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["sac", "pebble", "surf", "mrn", "ipl", "ppo"])
def test_every_algorithm_runs_and_logs(algorithm: str, tmp_path: Path) -> None:
    run = train_online(_cfg(algorithm, mrn_interval=50), out_dir=tmp_path, progress=False)
    assert list(run.episodes["step"]) == [100, 200, 300, 400] and run.episodes["length"].eq(100).all()
    assert list(run.evaluations["step"]) == [200, 400]
    assert np.isfinite(run.evaluations[["return", "q_mc_mse"]].to_numpy()).all()
    for name in ("episodes", "evaluations", "rounds", "updates"):
        assert (tmp_path / f"{name}.parquet").is_file()
    assert (tmp_path / "config.json").is_file()
    if algorithm == "sac":
        assert run.rounds.empty
        return
    feedback = run.rounds[run.rounds["kind"] == "feedback"]
    assert list(feedback["step"]) == [200, 300] and feedback["feedback"].iloc[-1] == 20
    assert feedback["label_accuracy"].eq(1.0).all()  # the oracle teacher is always right
    phases = set(run.updates["phase"])
    assert "unsupervised" in phases
    if algorithm == "mrn":
        meta = run.rounds[run.rounds["kind"] == "meta"]
        assert list(meta["step"]) == [250]  # every mrn_interval steps after pre-training, while labels remain
        assert np.isfinite(meta["meta_grad_norm"]).all()


def test_extra_updates_after_the_critic_reset() -> None:
    """At the end of pre-training the reset critic takes ``reset_update`` SAC updates in place of one."""
    counts: dict[int, list[int]] = {0: [], 7: []}
    for extra, seen in counts.items():
        cfg = _cfg("pebble", reset_update=extra, total_steps=300, eval_interval=150, feedback_budget=10)
        run = train_online(cfg, progress=False, on_evaluation=lambda step, res, agent, buf, seen=seen:
                           seen.append(int(agent.updates[0])))
        assert "reset" in set(run.updates["phase"])
    assert counts[0][0] == counts[7][0]  # step 150: before the end of pre-training (step 200)
    assert counts[7][1] - counts[0][1] == 7


def test_pretraining_rewards_the_state_of_each_transition(monkeypatch: pytest.MonkeyPatch) -> None:
    """PEBBLE's intrinsic reward of (s, a, s') is the k-NN distance of s (B-Pref), not of s'."""
    import ipl_core.online.train as train_module

    batches, scored = [], []
    sample, reward = train_module.sample_members, train_module.state_entropy_reward

    def recording_sample(*args, **kwargs):  # type: ignore[no-untyped-def]
        batches.append(sample(*args, **kwargs))
        return batches[-1]

    def recording_reward(points, *args, **kwargs):  # type: ignore[no-untyped-def]
        scored.append(points)
        return reward(points, *args, **kwargs)

    monkeypatch.setattr(train_module, "sample_members", recording_sample)
    monkeypatch.setattr(train_module, "state_entropy_reward", recording_reward)
    train_online(_cfg("pebble", eval_interval=150), progress=False, stop_at=150)
    assert len(scored) == 50  # steps 101..150: after the random steps, in pre-training
    observations = {id(b.obs) for b in batches}
    assert all(id(points) in observations for points in scored)


def test_query_candidates_come_from_the_last_finished_episodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipl_core.online.replay import ReplayBuffer

    asked: list[range | None] = []
    sample = ReplayBuffer.sample_segments

    def recording(self, n, length, rng, episodes=None):  # type: ignore[no-untyped-def]
        asked.append(episodes)
        return sample(self, n, length, rng, episodes)

    monkeypatch.setattr(ReplayBuffer, "sample_segments", recording)
    train_online(_cfg("pebble", query_episodes=2), progress=False)
    # rounds at steps 200 and 300 of 100-step episodes: episodes 2 and 3 have just begun
    assert asked == [range(0, 2)] * 2 + [range(1, 3)] * 2


def test_surf_stores_longer_segments_the_teacher_judges_the_centre(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipl_core.online.train as train_module

    judged, stored = [], []
    ask, train = train_module.ask_teacher, train_module.train_reward_ensemble_surf

    def recording_ask(teacher, reward_1, reward_2, *args):  # type: ignore[no-untyped-def]
        judged.append(reward_1.shape[1])
        return ask(teacher, reward_1, reward_2, *args)

    def recording_train(ensemble, optimizer, data, unlabelled, *args):  # type: ignore[no-untyped-def]
        stored.append((data[0].obs_1.shape[1], unlabelled[0].obs_1.shape[1]))
        return train(ensemble, optimizer, data, unlabelled, *args)

    monkeypatch.setattr(train_module, "ask_teacher", recording_ask)
    monkeypatch.setattr(train_module, "train_reward_ensemble_surf", recording_train)
    cfg = _cfg("surf", total_steps=300, eval_interval=300, feedback_budget=10, surf_window=3)
    train_online(cfg, progress=False)
    assert judged == [10] and stored == [(16, 16)]  # segment_length 10 judged, 10 + 2 * 3 stored


@pytest.mark.parametrize("algorithm", ["mrn", "ppo"])
def test_resumed_run_equals_an_uninterrupted_run(algorithm: str, tmp_path: Path) -> None:
    cfg = _cfg(algorithm, checkpoint_interval=300, total_steps=400, ppo_rollout_steps=150)
    whole = train_online(cfg, out_dir=tmp_path / "whole", progress=False)
    partial = train_online(cfg, out_dir=tmp_path / "resumed", progress=False, stop_at=300)
    assert partial.episodes["step"].max() == 300
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint.pt").is_file()
    resumed = train_online(cfg, out_dir=tmp_path / "resumed", progress=False)
    for name in ("episodes", "evaluations", "rounds", "updates"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(resumed, name))
    with pytest.raises(ValueError, match="different configuration"):
        other = _cfg(algorithm, checkpoint_interval=300, seed=1)
        train_online(other, out_dir=tmp_path / "resumed", progress=False)


@pytest.mark.slow
def test_sac_learns_pendulum() -> None:
    """SAC swings up the pendulum on the ground-truth reward (random actions score about -1200)."""
    cfg = OnlineConfig(algorithm="sac", task="gym:Pendulum-v1", total_steps=6000, hidden_dim=64,
                       hidden_depth=2,
                       batch_size=128, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, init_temperature=0.2,
                       num_seed_steps=1000, replay_capacity=6000, target_update_interval=1, tau=0.01,
                       eval_interval=3000, eval_episodes=5, checkpoint_interval=0)
    run = train_online(cfg, progress=False)
    assert run.evaluations["return"].iloc[-1] > -400, run.evaluations


def _tensors(value: object) -> list[torch.Tensor]:
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def test_a_checkpoint_holds_cpu_tensors_and_resumes_whatever_device_wrote_it(tmp_path: Path) -> None:
    """Checkpoints are written on the CPU and the device is not part of the configuration check, so a
    checkpoint written on a GPU resumes on the CPU (here the GPU writer is simulated by its config)."""
    cfg = _cfg("pebble", checkpoint_interval=300, total_steps=400)
    whole = train_online(cfg, out_dir=tmp_path / "whole", progress=False)
    train_online(cfg, out_dir=tmp_path / "resumed", progress=False, stop_at=300)
    path = tmp_path / "resumed" / "checkpoints" / "checkpoint.pt"
    state = torch.load(path, weights_only=False)  # no map_location: tensors come back where they were saved
    tensors = _tensors(state)
    assert len(tensors) > 20 and all(t.device.type == "cpu" for t in tensors)
    state["config"]["device"] = "cuda:0"
    torch.save(state, path)
    resumed = train_online(cfg, out_dir=tmp_path / "resumed", progress=False)
    for name in ("episodes", "evaluations", "rounds", "updates"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(resumed, name))


def test_a_device_without_cuda_is_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"OnlineConfig.device='cuda' but CUDA is not available"):
        _cfg("sac", device="cuda")
    with pytest.raises(ValueError, match=r"OnlineConfig.device='tpu' is not a device"):
        _cfg("sac", device="tpu")


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@CUDA
@pytest.mark.parametrize("algorithm", ["sac", "pebble", "surf", "mrn", "ipl", "ppo"])
def test_every_algorithm_runs_on_cuda(algorithm: str) -> None:
    cpu = train_online(_cfg(algorithm), progress=False)
    gpu = train_online(_cfg(algorithm, device="cuda"), progress=False)
    assert np.isfinite(gpu.evaluations[["return", "q_mc_mse"]].to_numpy()).all()
    # the same random draws (CPU generators) on either device: the random-action phase is identical
    assert gpu.episodes["return"].iloc[0] == pytest.approx(cpu.episodes["return"].iloc[0])


@CUDA
def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu(tmp_path: Path) -> None:
    gpu = _cfg("mrn", checkpoint_interval=300, total_steps=400, device="cuda")
    train_online(gpu, out_dir=tmp_path, progress=False, stop_at=300)
    resumed = train_online(_cfg("mrn", checkpoint_interval=300, total_steps=400), out_dir=tmp_path,
                           progress=False)
    assert list(resumed.evaluations["step"]) == [200, 400]
    assert np.isfinite(resumed.evaluations["return"]).all()


def _numbers(frame: pd.DataFrame) -> np.ndarray:
    return frame.select_dtypes("number").to_numpy(np.float64)


ALGORITHMS = ("sac", "pebble", "surf", "mrn", "ipl", "ppo")


# Counts over a batch flip when a value within rounding of a threshold lands on the other side: SURF's
# training accuracy (logits > 0, several hundred cropped pairs) and PPO's clip fraction (|ratio - 1| > clip,
# minibatches of 50) are compared to within two pairs and one sample; every other number by scaled_gap.
COUNTS = {"reward_accuracy": 2 / 600, "clip_fraction": 1 / 50}
# PPO's policy loss is a mean of ratio x advantage over terms of size about 1 (advantages normalised per
# minibatch) that cancel to about 1e-4: its rounding is relative to 1, not to its own size.
FLOORS = {"policy_loss": 1.0}
TABLES = ("episodes", "evaluations", "rounds", "updates")


def _gaps(x: OnlineRun, y: OnlineRun) -> dict[str, float]:
    """Per table, the scaled gap of its numbers; a count beyond its allowance counts as an infinite gap."""
    gaps = {}
    for name in TABLES:
        a, b = getattr(x, name), getattr(y, name)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        counts = [c for c in COUNTS if c in a.columns]
        off = any(not np.allclose(a[c], b[c], rtol=0, atol=COUNTS[c], equal_nan=True) for c in counts)
        a, b = a.drop(columns=counts), b.drop(columns=counts)
        floor = np.array([FLOORS.get(c, 0.0) for c in a.select_dtypes("number").columns])
        gaps[name] = np.inf if off else scaled_gap(_numbers(a), _numbers(b), floor)
    return gaps


def _scale_member(build, member: int, factor: float):  # type: ignore[no-untyped-def]
    def scaled(*args):  # type: ignore[no-untyped-def]
        agent, ensemble = build(*args)
        with torch.no_grad():
            for p in agent.parameters():
                p[member] *= factor
        return agent, ensemble
    return scaled


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_batched_seeds_equal_separate_runs(algorithm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """E = 3 seeds in one process ask the same labels and log the same curves as three runs of one seed, to
    the float32 tolerance of their updates (tests/tolerance.py); the same comparison fails for a seed whose
    initial weights were scaled by 1 + 1e-3 in the batch, and only for that seed."""
    import ipl_core.online.train as train_module

    steps = 300
    # SURF keeps a pseudo-label when the ensemble's confidence reaches surf_tau: a confidence within rounding
    # of tau flips the kept set and the runs part for real (seed 0 at tau = 0.95: 1e-3 in the return), so
    # here tau = 0.5 keeps every pair; the arithmetic compared is the same
    extra = {"surf_tau": 0.5} if algorithm == "surf" else {}
    cfg = _cfg(algorithm, total_steps=steps, eval_interval=steps, log_interval=1, feedback_budget=10, **extra)
    seeds = [0, 5, 7]
    batched = train_online_seeds(cfg, seeds, progress=False)
    alone = [train_online(dataclasses.replace(cfg, seed=s), progress=False) for s in seeds]
    if algorithm == "ppo":  # minibatch steps: epochs x minibatches of every finished rollout
        minibatches = math.ceil(cfg.ppo_rollout_steps / cfg.ppo_minibatch)
        updates = steps // cfg.ppo_rollout_steps * cfg.ppo_epochs * minibatches
    else:  # one SAC update per step after the random ones
        updates = steps - cfg.num_seed_steps
    tolerance = run_tolerance(updates)
    for together, single in zip(batched, alone, strict=True):
        assert together.config == single.config
        gaps = _gaps(together, single)
        assert max(gaps.values()) <= tolerance, (gaps, tolerance)
        if algorithm != "sac":  # the same labels asked: queries, answers kept, their accuracy
            columns = ["step", "queries", "kept", "label_accuracy"]
            pd.testing.assert_frame_equal(together.rounds.loc[together.rounds["kind"] == "feedback", columns],
                                          single.rounds.loc[single.rounds["kind"] == "feedback", columns])
    # the seeds differ from each other: a batch is not three copies of one run
    assert not np.allclose(_numbers(batched[0].episodes), _numbers(batched[1].episodes))
    monkeypatch.setattr(train_module, "_build", _scale_member(train_module._build, 1, 1 + 1e-3))
    changed = [max(_gaps(t, s).values()) for t, s in
               zip(train_online_seeds(cfg, seeds, progress=False), alone, strict=True)]
    assert changed[0] <= tolerance < changed[1] and changed[2] <= tolerance, (changed, tolerance)


@pytest.mark.parametrize("algorithm", ["pebble", "ppo"])
def test_killed_batched_run_resumes_every_seed(algorithm: str, tmp_path: Path) -> None:
    """E = 2: a run stopped after a checkpoint, then resumed, equals one that ran through; a round of
    checkpoints cut short (one seed's new checkpoint missing) is undone and both seeds resume together."""
    cfg = _cfg(algorithm, checkpoint_interval=150, total_steps=400, ppo_rollout_steps=150)
    whole = train_online_seeds(cfg, [0, 1], [tmp_path / "whole" / "0", tmp_path / "whole" / "1"],
                               progress=False)
    outs = [tmp_path / "resumed" / "0", tmp_path / "resumed" / "1"]
    train_online_seeds(cfg, [0, 1], outs, progress=False, stop_at=300)
    # a crash while writing the next round: only the first seed's new checkpoint exists
    first = outs[0] / "checkpoints"
    (first / "checkpoint.next.pt").write_bytes((first / "checkpoint.pt").read_bytes())
    resumed = train_online_seeds(cfg, [0, 1], outs, progress=False)
    assert not (first / "checkpoint.next.pt").exists()
    for a, b in zip(whole, resumed, strict=True):
        for name in ("episodes", "evaluations", "rounds", "updates"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    steps = {int(torch.load(o / "checkpoints" / "checkpoint.pt", weights_only=False)["step"]) for o in outs}
    assert steps == {400}
    with pytest.raises(ValueError, match="one out_dir per seed"):
        train_online_seeds(cfg, [0, 1], outs[:1], progress=False)
    with pytest.raises(ValueError, match="distinct seeds"):
        train_online_seeds(cfg, [3, 3], progress=False)
    # a checkpoint whose networks have other names (another layout) is refused, naming the file
    path = outs[0] / "checkpoints" / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    state["agent"] = {f"old.{k}": v for k, v in state["agent"].items()}
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"checkpoint.pt holds networks of another layout"):
        train_online_seeds(cfg, [0, 1], outs, progress=False)


def test_bad_input_stops_before_any_work(tmp_path: Path) -> None:
    """An unknown task and a label budget below one round are refused before anything is written."""
    pytest.importorskip("dm_control", reason="the unknown task is a dm_control one")
    with pytest.raises(ValueError, match="unknown dm_control task walker-fly"):
        train_online_seeds(dataclasses.replace(_cfg("pebble"), task="walker-fly"), [0, 1],
                           [tmp_path / "0", tmp_path / "1"], progress=False)
    with pytest.raises(ValueError, match=r"feedback_budget \(5\) is smaller than one feedback round"):
        _cfg("mrn", feedback_budget=5)
    assert not any(tmp_path.iterdir())
