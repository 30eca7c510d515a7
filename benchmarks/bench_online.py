"""Environment steps per second of the SAC training loop (act, simulate, store, sample, update), the
update before the seed axis against the update now, measured in one run.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_online.py                 # cpu settings, E = 1
    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_online.py --seeds 1 5 --device cuda --full

``before`` is the single-seed SAC kept in ``benchmarks/baseline_online_sac.py`` (``nn.Linear`` networks,
``torch.optim.Adam``); ``now`` is ``ipl_core.online.sac`` (every network with a leading seed axis,
``MemberAdam``), run with E seeds in a vector environment as ``train_online_seeds`` runs them. Network and
batch sizes are the `cpu` profile's (256 units, batches of 256) unless ``--full`` (the task file's). The two
loops alternate in ``--rounds`` blocks so that a busy machine slows both alike; the median block rate of
each is reported, with their ratio, and the ratio of the median CPU seconds of the process per block (less
sensitive than wall time to other processes sharing the cores). Aggregate steps per second count every
seed's environment step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import gymnasium as gym
import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

import baseline_online_sac as before

from ipl_core.experiments.studies import ONLINE_CPU_SETTINGS
from ipl_core.online.config import load_task_config
from ipl_core.online.envs import make_env
from ipl_core.online.replay import ReplayBuffer, sample_members
from ipl_core.online.sac import SACAgent, sac_update


class Loop:
    """One training loop, advanced block by block; ``seeds`` None is the loop before the seed axis."""

    def __init__(self, cfg, seeds: list[int] | None, capacity: int) -> None:  # type: ignore[no-untyped-def]
        self.cfg, self.seeds = cfg, seeds
        count = 1 if seeds is None else len(seeds)
        self.env = gym.vector.SyncVectorEnv([partial(make_env, cfg.task, s) for s in seeds or [0]],
                                            autoreset_mode=gym.vector.AutoresetMode.DISABLED)
        obs_dim = self.env.single_observation_space.shape[0]
        self.act_dim = self.env.single_action_space.shape[0]
        if seeds is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.agent = before.SACAgent(obs_dim, self.act_dim, cfg)
            self.generators = [torch.Generator().manual_seed(0)]
        else:
            self.agent = SACAgent(obs_dim, self.act_dim, cfg, seeds)
            self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.buffers = [ReplayBuffer(obs_dim, self.act_dim, capacity) for _ in range(count)]
        self.rngs = [np.random.default_rng(e) for e in range(count)]
        self.obs, _ = self.env.reset(seed=list(range(count)))
        self.step = 0
        self.cpu_seconds: list[float] = []
        """CPU seconds of the process in each call of :meth:`run`."""

    def run(self, steps: int) -> float:
        """Advance ``steps`` environment steps (random actions before ``num_seed_steps``); the seconds."""
        cfg, device = self.cfg, self.cfg.device
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            if self.step < cfg.num_seed_steps:
                action = np.stack([r.uniform(-1, 1, self.act_dim).astype(np.float32) for r in self.rngs])
            elif self.seeds is None:
                action = self.agent.act(self.obs[0], self.generators[0])[None]
            else:
                action = self.agent.act(self.obs, self.generators)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            for e, buffer in enumerate(self.buffers):
                buffer.add(self.obs[e], action[e], float(reward[e]), next_obs[e], bool(terminated[e]), 0,
                           self.step)
            ended = terminated | truncated
            if ended.any():
                fresh, _ = self.env.reset(options={"reset_mask": ended})
                next_obs[ended] = fresh[ended]
            self.obs = next_obs
            self.step += 1
            if self.step > cfg.num_seed_steps:
                if self.seeds is None:
                    batch = self.buffers[0].sample(cfg.batch_size, self.rngs[0], device)
                    before.sac_update(self.agent, batch, self.generators[0])
                else:
                    sac_update(self.agent, sample_members(self.buffers, cfg.batch_size, self.rngs, device),
                               self.generators)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        self.cpu_seconds.append(time.process_time() - cpu_start)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="walker-walk")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="seed counts E of the new loop")
    parser.add_argument("--steps", type=int, default=100, help="timed environment steps per block")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed blocks per loop")
    parser.add_argument("--warmup", type=int, default=300, help="untimed steps (random, then updates)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on 2 shared cores)")
    parser.add_argument("--full", action="store_true", help="the task file's network and batch sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = {} if args.full else {k: ONLINE_CPU_SETTINGS[k] for k in ("hidden_dim", "batch_size")}
    cfg = load_task_config(args.task, algorithm="sac", device=args.device, num_seed_steps=args.warmup // 2,
                           **sizes)
    capacity = args.warmup + args.rounds * args.steps + 1
    loops = {"before, E=1": Loop(cfg, None, capacity)}
    loops |= {f"now, E={e}": Loop(cfg, list(range(e)), capacity) for e in args.seeds}
    for loop in loops.values():
        loop.run(args.warmup)
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, loop in loops.items():
            seconds[name].append(loop.run(args.steps))
    print(f"task={cfg.task} device={args.device} threads={args.threads} hidden={cfg.hidden_dim}x"
          f"{cfg.hidden_depth} batch={cfg.batch_size}; {args.rounds} blocks of {args.steps} steps each")
    base = args.steps / statistics.median(seconds["before, E=1"])
    cpu_base = statistics.median(loops["before, E=1"].cpu_seconds[-args.rounds:])
    for name, values in seconds.items():
        count = 1 if name.startswith("before") else int(name.split("E=")[1])
        rate = args.steps / statistics.median(values)
        cpu = statistics.median(loops[name].cpu_seconds[-args.rounds:])
        print(f"{name:>12}: {rate:7.1f} env steps/s per seed, {rate * count:7.1f} for all seeds "
              f"({rate * count / base:.2f}x the loop before, E=1; by CPU time {cpu_base * count / cpu:.2f}x)")


if __name__ == "__main__":
    main()
