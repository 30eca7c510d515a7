"""Environment steps per second of every online method, and the cost of the released code's PEBBLE loop
(query candidates from the last 100 episodes, 100 extra SAC updates after the critic reset) against the
same loop without them, measured in one run.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_online_methods.py           # the cpu profile's sizes
    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_online_methods.py --full    # the task file's sizes

Each timed run is one seed of walker-walk on a short schedule that passes through every phase of a real run:
random steps, unsupervised pre-training, the critic reset, feedback rounds (reward training and relabelling)
and learned-reward updates, then one evaluation episode. Its rate is environment steps over wall-clock
seconds, evaluation included, and over the process's CPU seconds, which a busy machine inflates far less
(torch runs on one thread). The 100 updates after the reset are a larger share of this short run (about 5
% of its updates) than of a real one (under 1 % of the `cpu` profile's). The runs alternate in ``--rounds``
rounds, so that a busy machine slows all of them alike; each rate is the median over rounds. Preference PPO
has no replay buffer, reset or query pool and runs its own rollout schedule.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from ipl_core.experiments.studies import ONLINE_CPU_SETTINGS
from ipl_core.online.config import load_task_config
from ipl_core.online.train import train_online

METHODS = ("sac", "pebble", "surf", "mrn", "ipl", "ppo")


def timed(cfg) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Environment steps per wall-clock second and per CPU second of one run of ``cfg`` (no files written)."""
    wall, cpu = time.perf_counter(), time.process_time()
    train_online(cfg, progress=False)
    return cfg.total_steps / (time.perf_counter() - wall), cfg.total_steps / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="walker-walk")
    parser.add_argument("--phase", type=int, default=600, help="steps of each phase: random, pre-training, "
                        "and between feedback rounds (the first round must follow a finished episode)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed runs per configuration")
    parser.add_argument("--full", action="store_true", help="the task file's network and batch sizes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on 2 shared cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = {} if args.full else {k: ONLINE_CPU_SETTINGS[k] for k in ("hidden_dim", "batch_size")}
    schedule = {"num_seed_steps": args.phase, "num_unsup_steps": args.phase, "feedback_interval": args.phase,
                "total_steps": 4 * args.phase, "eval_interval": 10**9, "eval_episodes": 1,
                "log_interval": 10**9, "checkpoint_interval": 0, "ppo_rollout_steps": args.phase}
    configs = {name: load_task_config(args.task, algorithm=name, **sizes, **schedule)
               for name in dict.fromkeys([*args.methods, "pebble"])}
    pebble = configs["pebble"]
    configs["pebble without them"] = dataclasses.replace(pebble, query_episodes=0, reset_update=0)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, cfg in configs.items():
            rates[name].append(timed(cfg))
    print(f"task={pebble.task} hidden={pebble.hidden_dim}x{pebble.hidden_depth} batch={pebble.batch_size} "
          f"threads={args.threads}; {pebble.total_steps} steps per run ({args.phase} random, {args.phase} "
          f"pre-training, rounds every {args.phase}); median of {args.rounds} runs")
    median = {name: [statistics.median(v[i] for v in runs) for i in (0, 1)] for name, runs in rates.items()}
    for name, (wall, cpu) in median.items():
        print(f"{name:>20}: {wall:7.1f} env steps per wall-clock s, {cpu:7.1f} per CPU s")
    for i, clock in enumerate(("wall-clock", "CPU")):
        ratio = median["pebble"][i] / median["pebble without them"][i]
        print(f"PEBBLE with the released code's query pool and reset updates: {ratio:.2f}x the rate "
              f"without them ({clock} time)")


if __name__ == "__main__":
    main()
