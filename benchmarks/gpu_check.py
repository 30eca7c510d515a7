"""Device check of the offline studies: batched seeds at full shapes, kill-and-resume, and what the `full`
grids would cost, measured in one run.

    python benchmarks/gpu_check.py --device cuda [--seeds 1 5 20] [--steps 200] [--out gpu-check]
    python benchmarks/gpu_check.py --device cpu --quick          # seconds: the path works (a test runs it)

1. **Throughput.** For every method of the offline studies (ipl-metaworld-scaling, -budget, -sensitivity,
   ipl-locomotion), ``ipl_core.trainer.train_seeds`` trains E seeds as one batched agent for ``--steps``
   updates (after a short warm-up) at the study's `full` shapes on random data (the arithmetic does not
   depend on the values; see ``benchmarks/throughput.py``), for each E of ``--seeds``. Reported: updates per
   second of the batch, seed-updates per second (E times that), the speed-up of the aggregate over E = 1,
   and the peak GPU memory of the run. The reward-model phase of NMR and PT is timed too (E <= 5: it fits
   the seeds one after another).
2. **Evaluation.** One call of the vectorised ``GymEvaluator`` with the `full` profile's episodes for E seeds
   (MetaWorld drawer-open, Hopper), timed at two episode lengths; the difference gives the cost per step.
3. **Kill and resume.** A child process trains with checkpoints on the device and is killed with SIGKILL
   after its first checkpoint; the run resumed on the device must log the metrics of an uninterrupted run,
   and the device's checkpoint must also resume on the CPU.
4. **Extrapolation.** Each study's `full` grid, run as groups of all 5 seeds of a configuration per process
   (``--seeds-per-process 5``, one process at a time): training steps over the measured rate at E = 5, plus
   the evaluations at the measured cost. This is an extrapolation from the measured rates, labelled as such.

5. **Online studies.** For every online learner (SAC, PEBBLE, SURF, MRN, IPL online, Preference PPO) on
   walker-walk at the task file's (`full`) network sizes, ``ipl_core.online.train.train_online_seeds`` runs
   E seeds in one process for each E of ``--online-seeds`` (1 5 10). Two runs of different lengths with the
   same schedule (random steps, unsupervised pre-training, the first feedback round) give the steady rate of
   the learned-reward phase (``--quick``: one tiny run on Pendulum, timed whole): environment steps per
   second per seed, the aggregate over the E seeds, its speed-up over E = 1, and the peak GPU memory. The
   `full` grids of the studies `online` and `online-feedback`, in groups of the largest E, are extrapolated
   from these walker-walk rates, labelled as such.

The tables are printed and written to ``--out`` as CSV and Markdown (``throughput``, ``evaluation``,
``grids``, ``online_throughput``, ``online_grids``), with the date, the device and the command.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from throughput import random_data

from ipl_core.config import OfflineConfig, check_device, preset
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.experiments.locomotion import relabel_with_reward_model
from ipl_core.experiments.studies import expand
from ipl_core.experiments.variants import get_variant, variant_config
from ipl_core.trainer import GymEvaluator, train_seeds

STUDIES = {  # study: (preset, grid axis naming the method)
    "ipl-metaworld-scaling": ("metaworld", "method"),
    "ipl-metaworld-budget": ("metaworld", "variant"),
    "ipl-metaworld-sensitivity": ("metaworld", "variant"),
    "ipl-locomotion": ("locomotion", "variant"),
}
GRID_SEEDS = 5
"""Seeds per configuration in every offline `full` grid: the group size the extrapolation uses."""
QUIET = {"eval_every": 0, "log_every": 10**9, "checkpoint_every": 0}


def study_config(study: str, name: str) -> OfflineConfig:
    """The `full` profile's config of ``name`` (a method or a variant) in ``study``."""
    preset_name, axis = STUDIES[study]
    cell = expand(study, "full")[0].params
    base = {"subsample_length": cell["subsample_length"], "reward_steps": cell["reward_steps"],
            "steps": cell["steps"]}
    return preset(preset_name, method=name, **base) if axis == "method" else variant_config(name, preset_name,
                                                                                            **base)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed_train(cfg: OfflineConfig, seeds: list[int], offline: OfflineDataset | list[OfflineDataset],
                prefs: PreferenceDataset, steps: int) -> tuple[float, float]:
    """Batch updates per second of ``train_seeds`` over ``steps`` updates and the peak device memory (MiB;
    NaN on the CPU), after a 3-update warm-up."""
    train_seeds(cfg.replace(steps=3, **QUIET), seeds, offline, prefs, progress=False)
    if cfg.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(cfg.device)
    synchronize(cfg.device)
    start = time.perf_counter()
    train_seeds(cfg.replace(steps=steps, **QUIET), seeds, offline, prefs, progress=False)
    synchronize(cfg.device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(cfg.device) / 2**20 if cfg.device.startswith("cuda") else np.nan
    return steps / seconds, peak


SAME_RATE_AS = {"brex": "iql"}
"""B-REX trains IQL on a reward fitted once per seed (20k Metropolis-Hastings steps, on the CPU): not timed
here; the extrapolation uses IQL's rate for its training and leaves the fit out (and says so)."""


def throughput(device: str, seed_counts: list[int], steps: int, pairs: int, quick: bool) -> pd.DataFrame:
    """Table 1: one row per study, method and E (``quick``: the first method of each study and NMR)."""
    rng = np.random.default_rng(0)
    data = {name: random_data(name, pairs, rng) for name in ("metaworld", "locomotion")}
    rows, seen = [], {}
    for study, (preset_name, axis) in STUDIES.items():
        offline, prefs = data[preset_name]
        names = [n for n in dict.fromkeys(c.params[axis] for c in expand(study, "full"))
                 if n not in SAME_RATE_AS]
        for name in names[:1] + [n for n in names[1:] if n == "nmr"] if quick else names:
            cfg = study_config(study, name).replace(device=device)
            reward_model = axis == "variant" and get_variant(name).reward_model is not None
            same = dataclasses.asdict(cfg.replace(lam=0.0, reward_steps=0))  # lambda costs nothing
            key = repr((preset_name, sorted(same.items()), reward_model and name))
            for count in seed_counts:
                seeds = list(range(count))
                if (key, count) not in seen:
                    rate, peak = timed_train(cfg.replace(reward_steps=0), seeds, offline, prefs, steps)
                    row = {"updates_per_s": rate, "peak_mib": peak}
                    if cfg.method == "mr":  # the reward model trains beside IQL for its first reward_steps
                        both = cfg.replace(reward_steps=10**9)
                        rate, peak = timed_train(both, seeds, offline, prefs, steps)
                        row |= {"with_reward_model_per_s": rate, "peak_mib": max(peak, row["peak_mib"])}
                    if reward_model and count <= GRID_SEEDS:  # NMR, PT: each seed fits its own model
                        start = time.perf_counter()  # first, one seed after another (and relabels the data)
                        phase = cfg.replace(reward_steps=steps)
                        relabel_with_reward_model(name, offline, prefs, phase, seeds)
                        synchronize(device)
                        row["reward_phase_per_s"] = steps / (time.perf_counter() - start)
                    seen[key, count] = row
                rows.append({"study": study, "method": name, "seeds": count, **seen[key, count]})
    table = pd.DataFrame(rows)
    table["seed_updates_per_s"] = table["updates_per_s"] * table["seeds"]
    one = table[table.seeds == 1].set_index(["study", "method"])["seed_updates_per_s"]
    table["speedup_vs_1"] = [row.seed_updates_per_s / one.get((row.study, row.method), np.nan)
                             for row in table.itertuples()]
    return table


def evaluation(device: str, seed_counts: list[int], lengths: tuple[int, int], quick: bool) -> pd.DataFrame:
    """Table 2: seconds of one vectorised evaluation of E seeds (the `full` episodes per seed), at two
    episode lengths; per-step cost and fixed cost (making the environments) from their difference."""
    from ipl_core.agents import make_agent
    from ipl_core.data.metaworld_gen import make_metaworld_env
    from ipl_core.online.envs import make_env

    suites = {"metaworld": (lambda s: make_metaworld_env("drawer-open", seed=s), 39, 4,
                            expand("ipl-metaworld-scaling", "full")[0].params["eval_episodes"]),
              "locomotion": (lambda s: make_env("gym:Hopper-v5", seed=s), 11, 3,
                             expand("ipl-locomotion", "full")[0].params["eval_episodes"])}
    rows = []
    for suite, (make, obs_dim, act_dim, episodes) in suites.items():
        episodes = 1 if quick else episodes
        for count in seed_counts:
            agent = make_agent("ipl", obs_dim, act_dim, (256, 256),
                               generator=[torch.Generator().manual_seed(k) for k in range(count)]).to(device)
            seconds = []
            for length in lengths:
                evaluator = GymEvaluator(make, episodes, seeds=list(range(count)),
                                         max_episode_steps=length)
                start = time.perf_counter()
                evaluator(agent)
                seconds.append(time.perf_counter() - start)
            per_step = max(0.0, (seconds[1] - seconds[0]) / (lengths[1] - lengths[0]))
            rows.append({"suite": suite, "seeds": count, "episodes_per_seed": episodes,
                         f"seconds_at_{lengths[0]}_steps": seconds[0],
                         f"seconds_at_{lengths[1]}_steps": seconds[1], "seconds_per_step": per_step,
                         "fixed_seconds": max(0.0, seconds[0] - lengths[0] * per_step)})
    return pd.DataFrame(rows)


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {bench!r})
import torch
torch.set_num_threads({threads})
from throughput import random_data
import numpy as np
from ipl_core.config import preset
from ipl_core.trainer import train_seeds
offline, prefs = random_data("metaworld", 64, np.random.default_rng(0))
cfg = preset("metaworld", method="ipl", device={device!r}, steps={steps}, checkpoint_every={every},
             log_every={every}, eval_every=0)
train_seeds(cfg, [0, 1], offline, prefs, out_dirs=[Path(sys.argv[1]) / "0", Path(sys.argv[1]) / "1"],
            progress=False)
"""


def checkpoint_step(folder: Path) -> int | None:
    """The step of both members' checkpoints in ``folder``, or None while they are missing or differ."""
    try:
        steps = {int(torch.load(folder / k / "checkpoint.pt", map_location="cpu", weights_only=False)["step"])
                 for k in ("0", "1")}
    except (OSError, EOFError, RuntimeError):
        return None
    return steps.pop() if len(steps) == 1 else None


def kill_and_resume(device: str, steps: int) -> dict[str, Any]:
    """Train 2 seeds in a child process, SIGKILL it after its first checkpoint, resume on ``device`` and on
    the CPU, and compare with an uninterrupted run on ``device``."""
    every = max(1, steps // 4)
    offline, prefs = random_data("metaworld", 64, np.random.default_rng(0))
    cfg = preset("metaworld", method="ipl", device=device, steps=steps, checkpoint_every=every,
                 log_every=every, eval_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        killed, cpu = Path(tmp) / "killed", Path(tmp) / "cpu"
        # The child uses the parent's thread count: CPU kernels split their sums by thread, so a different
        # count rounds differently and the resumed run would not repeat the uninterrupted one bit for bit.
        code = CHILD.format(bench=str(Path(__file__).parent), device=device, steps=steps * 100, every=every,
                            threads=torch.get_num_threads())
        child = subprocess.Popen([sys.executable, "-c", code, str(killed)], start_new_session=True)
        deadline = time.time() + 300
        while (saved_step := checkpoint_step(killed)) is None:
            if child.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the child ended (code {child.returncode}) or timed out before its "
                                   "first checkpoint")
            time.sleep(0.01)
        # Kill mid-run, between two rounds of checkpoints (a kill while the members' files are being
        # written leaves them at different steps, which the trainer refuses to resume).
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if checkpoint_step(killed) != saved_step:
            raise RuntimeError("the child wrote another round of checkpoints before it was killed")
        # The child ran for 100x the steps: resume to the first checkpoint after the kill, on both devices.
        resume_to = saved_step + every
        subprocess.run(["cp", "-r", str(killed), str(cpu)], check=True)
        resumed = train_seeds(cfg.replace(steps=resume_to), [0, 1], offline, prefs,
                              out_dirs=[killed / "0", killed / "1"], progress=False)
        on_cpu = train_seeds(cfg.replace(steps=resume_to, device="cpu"), [0, 1], offline, prefs,
                             out_dirs=[cpu / "0", cpu / "1"], progress=False)
        straight = train_seeds(cfg.replace(steps=resume_to), [0, 1], offline, prefs, progress=False)

    def values(results: list[Any]) -> np.ndarray:
        return np.concatenate([r.metrics.sort_values(["step", "metric"])["value"].to_numpy()
                               for r in results])

    reference = values(straight)

    def gap(results: list[Any]) -> float:  # largest difference relative to 1 + |value|
        return float((np.abs(values(results) - reference) / (1 + np.abs(reference))).max())

    return {"device": device, "killed_at_checkpoint_step": saved_step, "resumed_to_step": resume_to,
            "rel_diff_resumed_on_device": gap(resumed), "rel_diff_resumed_on_cpu": gap(on_cpu)}


def grids(table: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """Table 3: each study's `full` grid in groups of 5 seeds per process, extrapolated from Tables 1-2."""
    rates = table[table.seeds == GRID_SEEDS].set_index(["study", "method"])
    cost = evals[evals.seeds == GRID_SEEDS].set_index("suite")
    rows = []
    for study, (preset_name, axis) in STUDIES.items():
        cells = expand(study, "full")
        configs = {c.config_id: c for c in cells}
        train_s = eval_s = 0.0
        unmeasured: set[str] = set()
        for cell in configs.values():
            params, name = cell.params, cell.params[axis]
            cfg = study_config(study, name)
            if (study, SAME_RATE_AS.get(name, name)) not in rates.index:
                unmeasured.add(name)
                continue
            rate = rates.loc[(study, SAME_RATE_AS.get(name, name))]
            groups = -(-sum(c.config_id == cell.config_id for c in cells) // GRID_SEEDS)
            seconds = cfg.steps / rate.updates_per_s
            if cfg.method == "mr" and "with_reward_model_per_s" in rate and cfg.reward_steps:
                reward = min(cfg.reward_steps, cfg.steps)
                seconds += reward / rate.with_reward_model_per_s - reward / rate.updates_per_s
            if "reward_phase_per_s" in rate and not np.isnan(rate.reward_phase_per_s):
                seconds += cfg.reward_steps / rate.reward_phase_per_s
            length = params.get("eval_episode_length") or params["episode_length"]
            evaluations = params["steps"] // params["eval_every"] + 1
            suite = cost.loc[preset_name]
            train_s += groups * seconds
            eval_s += groups * evaluations * (suite.fixed_seconds + length * suite.seconds_per_step)
        left_out = [f"{n}'s reward fit" for n in sorted({c.params[axis] for c in cells} & set(SAME_RATE_AS))]
        left_out += [f"{n} (not timed)" for n in sorted(unmeasured)]
        rows.append({"study": study, "cells": len(cells), "processes": len(configs),
                     "not_included": ", ".join(left_out) or "-",
                     "train_hours_extrapolated": train_s / 3600, "eval_hours_extrapolated": eval_s / 3600,
                     "total_hours_extrapolated": (train_s + eval_s) / 3600})
    return pd.DataFrame(rows)


ONLINE_ALGORITHMS = ("sac", "pebble", "surf", "mrn", "ipl", "ppo")
ONLINE_STUDIES = ("online", "online-feedback")


def _online_config(algorithm: str, device: str, total_steps: int, quick: bool) -> Any:
    from ipl_core.online.config import load_task_config

    schedule = {"num_seed_steps": 10, "num_unsup_steps": 10} if quick else {"num_seed_steps": 300,
                                                                              "num_unsup_steps": 300}
    small = {"task": "gym:Pendulum-v1", "episode_length": 10, "hidden_dim": 32, "batch_size": 32,
             "reward_hidden_dim": 16, "segment_length": 5, "surf_window": 2, "surf_crop": 2,
             "replay_capacity": 200,
             "reward_max_epochs": 5, "ppo_rollout_steps": 10, "ppo_minibatch": 10, "ppo_hidden_dim": 16,
             "mrn_interval": 5} if quick else {}
    # walker-walk's task file; one feedback round of its 10 labels right after pre-training, its candidates
    # from the whole buffer (no episode has ended yet); one evaluation episode at the end of each run
    return load_task_config("walker-walk", algorithm=algorithm, device=device, total_steps=total_steps,
                        feedback_interval=10**6, feedback_per_round=10, feedback_budget=10,
                        query_episodes=0, eval_interval=10**6, eval_episodes=1,
                        checkpoint_interval=0,
                        log_interval=10**6, **schedule, **small)


def online_throughput(device: str, seed_counts: list[int], steps: int, quick: bool) -> pd.DataFrame:
    """Table 4: environment steps per second of each online learner, E seeds per process."""
    from ipl_core.online.train import train_online_seeds

    rows = []
    for algorithm in ONLINE_ALGORITHMS:
        for count in seed_counts:
            first = _online_config(algorithm, device, 10**6, quick)  # its schedule; the runs set the length
            start = first.learning_starts + (10 if quick else 100)
            seconds, peak = [], float("nan")
            # --quick: one short run, its whole length timed (the path only); else two runs whose
            # difference is the steady rate of the learned-reward phase
            for total in (start + steps,) if quick else (start, start + steps):
                cfg = dataclasses.replace(first, total_steps=total)
                if device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats(device)
                synchronize(device)
                began = time.perf_counter()
                train_online_seeds(cfg, list(range(count)), progress=False)
                synchronize(device)
                seconds.append(time.perf_counter() - began)
                if device.startswith("cuda"):
                    peak = torch.cuda.max_memory_allocated(device) / 2**20
            if quick:
                rate = (start + steps) / seconds[0]
            else:
                rate = steps / (seconds[1] - seconds[0]) if seconds[1] > seconds[0] else float("nan")
            rows.append({"algorithm": algorithm, "task": first.task, "seeds": count,
                         "hidden": f"{first.hidden_dim}x{first.hidden_depth}", "batch": first.batch_size,
                         "env_steps_per_s_per_seed": rate, "env_steps_per_s_all_seeds": rate * count,
                         "peak_mib": peak})
            print(f"online {algorithm} E={count}: {rate:.1f} steps/s per seed", flush=True)
    table = pd.DataFrame(rows)
    single = table[table.seeds == 1].set_index("algorithm").env_steps_per_s_all_seeds
    table["speedup_vs_1_seed"] = table.env_steps_per_s_all_seeds / table.algorithm.map(single)
    return table


def online_grids(table: pd.DataFrame) -> pd.DataFrame:
    """Table 5: the `full` grids of the online studies, the largest measured E seeds per process, extrapolated
    from the walker-walk rates of Table 4."""
    from ipl_core.online.config import FIELD_TYPES, study_config

    group = int(table.seeds.max())
    rows = []
    for study in ONLINE_STUDIES:
        cells = expand(study, "full")
        hours = 0.0
        for config_id in {c.config_id for c in cells}:
            members = [c for c in cells if c.config_id == config_id]
            params = members[0].params
            settings = {k: v for k, v in params.items() if k in FIELD_TYPES and k not in ("task", "seed",
                                                                                            "device")}
            cfg = study_config(params["task"], **settings)
            rates = table[(table.algorithm == cfg.algorithm) & (table.seeds == group)]
            groups = -(-len(members) // group)
            hours += groups * cfg.total_steps / float(rates.env_steps_per_s_per_seed.iloc[0]) / 3600
        rows.append({"study": study, "cells": len(cells), "seeds_per_process": group,
                     "gpu_hours_extrapolated": hours,
                     "assumes": "every task steps as fast as walker-walk; evaluations not included"})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seed counts E (default 1 5 20)")
    parser.add_argument("--steps", type=int, default=None, help="timed updates per run (default 200)")
    parser.add_argument("--quick", action="store_true",
                        help="a few updates and short episodes: the path only")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for the CSV and Markdown")
    parser.add_argument("--online-seeds", type=int, nargs="+", default=None,
                        help="seed counts E of the online learners (default 1 5 10)")
    parser.add_argument("--online-steps", type=int, default=None,
                        help="environment steps between the two timed online runs (default 300)")
    args = parser.parse_args()
    try:
        device = str(check_device(args.device, "--device"))
    except ValueError as error:
        parser.error(str(error))
    seeds = args.seeds or ([1, 2] if args.quick else [1, GRID_SEEDS, 20])
    if GRID_SEEDS not in seeds and not args.quick:
        parser.error(f"--seeds must include {GRID_SEEDS} (the group size of the grids' extrapolation)")
    steps = args.steps or (2 if args.quick else 200)
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    started = time.perf_counter()
    cuda = device.startswith("cuda")
    name = torch.cuda.get_device_name(device) if cuda else f"cpu ({os.cpu_count()} cores)"
    command = f"python benchmarks/gpu_check.py {' '.join(sys.argv[1:])}"
    header = (f"# Device check, {datetime.now(UTC).isoformat(timespec='seconds')}\n\n"
              f"Device: {name}; torch {torch.__version__}; command: `{command}`\n")
    print(header)
    args.out.mkdir(parents=True, exist_ok=True)
    sections = [header]

    def record(name: str, frame: pd.DataFrame, title: str) -> None:
        """Write ``name``.csv and the Markdown so far as soon as a table is measured: a check stopped
        later (a time limit) keeps every table it finished."""
        frame.to_csv(args.out / f"{name}.csv", index=False)
        text = frame.to_markdown(index=False, floatfmt=".3g")
        sections.append(f"## {title}\n\n{text}\n")
        print(f"{title}\n{text}\n", flush=True)
        partial = args.out / "gpu_check.md.partial"
        partial.write_text("\n".join(sections))
        partial.replace(args.out / "gpu_check.md")

    table = throughput(device, seeds, steps, pairs=64 if args.quick else 500, quick=args.quick)
    record("throughput", table, "Measured throughput (updates/s, peak memory)")
    print(f"throughput measured after {time.perf_counter() - started:.0f} s", flush=True)
    evals = evaluation(device, sorted({1, min(GRID_SEEDS, max(seeds))}) if args.quick else [1, GRID_SEEDS],
                       (2, 4) if args.quick else (25, 50), args.quick)
    record("evaluation", evals, "Measured evaluation time")
    resume = kill_and_resume(device, 20 if args.quick else 40)
    record("resume", pd.DataFrame([resume]), "Kill and resume (measured)")
    group = GRID_SEEDS if GRID_SEEDS in seeds else max(seeds)  # --quick: its largest E stands in
    extrapolated = grids(table.assign(seeds=table.seeds.replace(group, GRID_SEEDS)),
                         evals.assign(seeds=evals.seeds.replace(group, GRID_SEEDS)))
    record("grids", extrapolated, f"Full grids, {GRID_SEEDS} seeds per process: EXTRAPOLATED from the rates "
                                  "above, not measured")
    online = online_throughput(device, args.online_seeds or ([1, 2] if args.quick else [1, 5, 10]),
                               args.online_steps or (10 if args.quick else 300), args.quick)
    record("online_throughput", online, "Online learners, walker-walk (measured)")
    record("online_grids", online_grids(online), "Online full grids: EXTRAPOLATED from the online rates "
                                                  "above, not measured")
    sections.append(f"Total time of this check: {time.perf_counter() - started:.0f} s\n")
    (args.out / "gpu_check.md").write_text("\n".join(sections))
    print(sections[-1])
    # On its own device a resumed run repeats the uninterrupted one (to rounding on a GPU); on the CPU it
    # continues the same run with the CPU's rounding.
    same, other = (1e-4, 1e-2) if device.startswith("cuda") else (1e-6, 1e-6)
    if resume["rel_diff_resumed_on_device"] > same or resume["rel_diff_resumed_on_cpu"] > other:
        raise SystemExit(f"a resumed run differs from the uninterrupted one (limits {same}, {other}): "
                         f"{resume}")


if __name__ == "__main__":
    main()
