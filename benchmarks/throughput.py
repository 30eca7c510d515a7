"""Single-seed throughput at every offline study's `full` shapes on this CPU, for the runner's dry run.

    python benchmarks/throughput.py [--steps 60] [--threads 1] [--out benchmarks/throughput-cpu.json]
                                    [--only STUDY:METHOD ...]

For each distinct configuration of the studies ipl-metaworld-scaling, -budget, -sensitivity,
ipl-locomotion and cpl-metaworld (method and network widths resolved by the study's preset and variant), it
times ``ipl_core.trainer.train`` for ``--steps`` updates on random data of the study's shapes (MetaWorld: 39-d
observations, 4-d actions, pairs of 25-step segments cut to 16; locomotion: Hopper's 11/3, pairs of
100-step segments cut to 64, 256 offline rows), after a short warm-up, with no evaluation. Where a method also
trains a reward model, the rate of its updates is measured too: MR's updates with the reward model training
beside IQL (its first ``reward_steps``), and NMR's and PT's reward-model phase before IQL. The simulators'
steps per second (random actions) give the evaluation cost. ``python -m ipl_core.experiments.run <study>
--profile full --dry-run`` divides each cell's steps by these rates: an estimate of CPU time, not a
measurement of it. The arithmetic does not depend on the data's values, so random data is enough.
``--only`` measures the named methods alone and adds them to the existing file, each entry with the date,
command and load average of its own measurement; the other entries keep theirs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ipl_core.config import OfflineConfig, preset
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.experiments.studies import expand
from ipl_core.experiments.variants import get_variant, variant_config
from ipl_core.io import atomic_write
from ipl_core.trainer import train

OUT = Path(__file__).with_name("throughput-cpu.json")
SHAPES = {  # obs_dim, act_dim, segment length, offline transitions of the random dataset
    "metaworld": (39, 4, 25, 0),
    "locomotion": (11, 3, 100, 20_000),
}


def random_data(preset_name: str, pairs: int, rng: np.random.Generator
                ) -> tuple[OfflineDataset, PreferenceDataset]:
    """Random preferences of the preset's shapes; the offline data is their transitions (MetaWorld,
    IPL Sec. 4.3) or a random dataset (locomotion)."""
    obs_dim, act_dim, length, transitions = SHAPES[preset_name]

    def f(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)
    prefs = PreferenceDataset(f(pairs, length, obs_dim), f(pairs, length, obs_dim),
                              np.tanh(f(pairs, length, act_dim)), np.tanh(f(pairs, length, act_dim)),
                              rng.integers(0, 2, pairs).astype(np.float32))
    if not transitions:
        return prefs.transitions(), prefs
    zeros = np.zeros(transitions, dtype=np.float32)
    offline = OfflineDataset(f(transitions, obs_dim), np.tanh(f(transitions, act_dim)),
                             f(transitions, obs_dim), f(transitions), zeros, zeros)
    return offline, prefs


def rate(cfg: OfflineConfig, offline: OfflineDataset, prefs: PreferenceDataset, steps: int) -> float:
    """Updates per second of ``train`` over ``steps`` updates, after a 5-update warm-up."""
    quiet = {"eval_every": 0, "log_every": 10**9, "checkpoint_every": 0}
    train(cfg.replace(steps=5, **quiet), offline, prefs, progress=False)
    start = time.perf_counter()
    train(cfg.replace(steps=steps, **quiet), offline, prefs, progress=False)
    return steps / (time.perf_counter() - start)


def reward_model_rate(variant: str, cfg: OfflineConfig, prefs: PreferenceDataset, steps: int) -> float:
    """Steps per second of the two-phase variants' reward model (NMR, PT), fitted on whole segments."""
    from ipl_core.reward_models import REWARD_MODELS, train_reward_model

    model = REWARD_MODELS[get_variant(variant).reward_model](prefs.obs_dim, prefs.act_dim, cfg.hidden_dims)
    start = time.perf_counter()
    train_reward_model(model, prefs, steps, np.random.default_rng(0), batch_size=cfg.pref_batch_size)
    return steps / (time.perf_counter() - start)


def env_rate(make: Any, steps: int = 2000) -> float:
    """Simulator steps per second with random actions."""
    env = make()
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()
    return steps / (time.perf_counter() - start)


def measure(steps: int, only: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Rates per study and method (or variant), keyed as the runner's dry run reads them; with ``only``,
    just those (study, method) pairs."""
    from ipl_core.data.metaworld_gen import make_metaworld_env
    from ipl_core.online.envs import make_env

    rng = np.random.default_rng(0)
    data = {name: random_data(name, 500, rng) for name in SHAPES}
    envs = {"metaworld": env_rate(lambda: make_metaworld_env("drawer-open", seed=0)),
            "locomotion": env_rate(lambda: make_env("gym:Hopper-v5", seed=0))}
    cache: dict[str, dict[str, float]] = {}
    studies: dict[str, Any] = {}
    for study, preset_name, axis in (("ipl-metaworld-scaling", "metaworld", "method"),
                                     ("ipl-metaworld-budget", "metaworld", "variant"),
                                     ("ipl-metaworld-sensitivity", "metaworld", "variant"),
                                     ("ipl-locomotion", "locomotion", "variant"),
                                     ("cpl-metaworld", "metaworld", "method")):
        offline, prefs = data[preset_name]
        cell = expand(study, "full")[0].params
        methods: dict[str, dict[str, float]] = {}
        for name in dict.fromkeys(c.params[axis] for c in expand(study, "full")):
            if only is not None and (study, name) not in only:
                continue
            base = {"subsample_length": cell["subsample_length"], "reward_steps": cell["reward_steps"]}
            cfg = (preset(preset_name, method=name, **base) if axis == "method"
                   else variant_config(name, preset_name, **base))
            two_phase = axis == "variant" and get_variant(name).reward_model is not None
            same = dataclasses.asdict(cfg.replace(lam=0.0, reward_steps=0, seed=0))  # lambda costs nothing
            key = json.dumps([preset_name, same, two_phase and name], sort_keys=True, default=str)
            if key not in cache:
                print(f"{study}: {name} ...", flush=True)
                measured = {"updates_per_s": rate(cfg.replace(reward_steps=0), offline, prefs, steps)}
                if cfg.method == "mr":  # the reward model trains beside IQL for its first reward_steps
                    both = cfg.replace(reward_steps=10**9)
                    measured["with_reward_model_per_s"] = rate(both, offline, prefs, steps)
                if two_phase:  # NMR, PT: the reward model is fitted before IQL
                    measured["reward_phase_per_s"] = reward_model_rate(name, cfg, prefs, max(10, steps // 2))
                cache[key] = {k: round(v, 2) for k, v in measured.items()}
            methods[name] = dict(cache[key])
            if cfg.reward_steps != cell["reward_steps"] and cfg.method == "mr":
                methods[name]["reward_steps"] = cfg.reward_steps  # the variant sets its own
        studies[study] = {"env_steps_per_s": round(envs[preset_name], 1), "methods": methods}
    return studies


def save(path: Path, record: dict[str, Any]) -> None:
    """Write the record as indented JSON in its own key order, atomically (a killed run keeps the old one)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed updates per configuration")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the runner's cores // jobs)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="+", default=None, metavar="STUDY:METHOD",
                        help="measure these alone and add them to the existing --out file")
    args = parser.parse_args()
    only = None
    if args.only is not None:
        pairs = [tuple(text.split(":", 1)) for text in args.only]
        bad = [text for text, pair in zip(args.only, pairs, strict=True) if len(pair) != 2]
        if bad:
            parser.error(f"--only expects STUDY:METHOD, got {bad}")
        only = set(pairs)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    studies = measure(args.steps, only)
    command = f"python benchmarks/throughput.py --steps {args.steps} --threads {args.threads}"
    if only is not None:
        record = json.loads(args.out.read_text())
        stamp = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                 "command": f"{command} --only {' '.join(args.only)}",
                 "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
        for study, entry in studies.items():
            if not entry["methods"]:
                continue
            if study not in record["studies"]:  # a new study: its simulator rate comes from this run too
                record["studies"][study] = {"env_steps_per_s": entry["env_steps_per_s"], **stamp,
                                            "methods": {}}
            for name, measured in entry["methods"].items():
                record["studies"][study]["methods"][name] = measured | stamp
        save(args.out, record)
        print(json.dumps(studies, indent=2))
        return
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "device": f"cpu ({os.cpu_count()} cores, {platform.machine()}), {args.threads} torch thread(s)",
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # other work on the cores
        "studies": studies,
    }
    save(args.out, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
