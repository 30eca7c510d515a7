"""IPL updates per second at the paper's batch shapes: the update before the seed axis against today's, and
E seeds batched, all measured in one run.

    python benchmarks/bench_ipl_updates.py [--seconds 10] [--threads 2] [--device cpu|cuda] [--seeds 1,5]
                                           [--shapes metaworld,locomotion] [--bf16] [--profile]
                                           [--json benchmarks/ipl-updates-cpu.json]

Shapes (IPL Tables 5-6): MetaWorld, 3x256 networks, obs 39, act 4, 16 pairs x 2 segments x 16 transitions +
256 offline transitions; locomotion (hopper), 2x256 networks, obs 11, act 3, 8 pairs x 2 x 64 transitions +
256 offline. A segment of s + 1 observations gives s transitions. Random data: the arithmetic does not
depend on the values. "before" is the IPL-IQL update as the library computed it before the seed axis
(``baseline_ipl_update.py``: a loop over Q heads, V on s and s' separately, unfused Adam); "E=k" is
``ipl_core.offline.ipl_update`` on an agent of k members, its rate counted in seed-updates per second;
with ``--bf16`` also "E=k bf16", the same update with ``precision="bf16"`` (bfloat16 in the hidden layers).
The modes alternate in short rounds so that a change in machine load hits all alike; medians are printed
with the ratio to "before", and first a check that both compute the same step. ``--json`` also writes the
medians, the command and the machine to a file (the IPL chapter reads ``benchmarks/ipl-updates-cpu.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime

import torch
from baseline_ipl_update import BaselineAgent, baseline_ipl_update, baseline_optimizers

from ipl_core.agents import make_agent
from ipl_core.batches import OfflineBatch, PreferenceBatch, stack_batches
from ipl_core.config import preset
from ipl_core.io import git_commit, write_json
from ipl_core.nets import set_precision
from ipl_core.offline import make_optimizers, stack_transitions, update_function

SHAPES = {
    # name: (preset, obs_dim, act_dim, pairs, transitions per segment, offline batch)
    "metaworld": ("metaworld", 39, 4, 16, 16, 256),
    "locomotion": ("locomotion", 11, 3, 8, 64, 256),
}


def make_batches(obs_dim: int, act_dim: int, pairs: int, steps: int, offline: int, device: str,
                 seed: int = 0) -> tuple[PreferenceBatch, OfflineBatch]:
    """One member's random batches of the given shapes."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device)

    s = steps + 1
    label = torch.randint(0, 2, (pairs,), generator=g).float().to(device)
    pref = PreferenceBatch(r(pairs, s, obs_dim), r(pairs, s, act_dim).tanh(), r(pairs, s, obs_dim),
                           r(pairs, s, act_dim).tanh(), label, torch.zeros(pairs, s, device=device),
                           torch.zeros(pairs, s, device=device))
    off = OfflineBatch(r(offline, obs_dim), r(offline, act_dim).tanh(), r(offline, obs_dim), r(offline),
                       torch.zeros(offline, device=device))
    return pref, off


class Library:
    """``ipl_core``'s update on an agent of ``members`` seeds."""

    def __init__(self, shape: str, members: int, device: str, precision: str = "fp32") -> None:
        name, obs_dim, act_dim, pairs, steps, offline = SHAPES[shape]
        self.cfg = preset(name, method="ipl", device=device, precision=precision)
        generators = [torch.Generator().manual_seed(e) for e in range(members)]
        self.agent = make_agent("ipl", obs_dim, act_dim, self.cfg.hidden_dims, generator=generators)
        set_precision(self.agent, precision)
        self.agent.to(device)
        self.optimizers = make_optimizers(self.agent, self.cfg)
        batches = [make_batches(obs_dim, act_dim, pairs, steps, offline, device, e) for e in range(members)]
        self.pref = stack_batches([p for p, _ in batches])
        self.off = stack_batches([o for _, o in batches])
        self.members, self.update, self.step = members, update_function("ipl"), 0

    def run(self, count: int) -> None:
        for _ in range(count):
            self.update(self.agent, self.optimizers, self.pref, self.off, self.cfg, self.step, [])
            self.step += 1


class Before:
    """The update before the seed axis, one seed."""

    members = 1

    def __init__(self, shape: str, device: str) -> None:
        name, obs_dim, act_dim, pairs, steps, offline = SHAPES[shape]
        self.cfg = preset(name, method="ipl", device=device)
        self.agent = BaselineAgent(obs_dim, act_dim, self.cfg.hidden_dims, torch.Generator().manual_seed(0))
        self.agent.to(device)
        self.optimizers = baseline_optimizers(self.agent, self.cfg.lr)
        pref, off = make_batches(obs_dim, act_dim, pairs, steps, offline, device, seed=0)
        x = stack_transitions(stack_batches([pref]), stack_batches([off]), self.cfg.discount)
        self.args = (x.obs[0], x.act[0], x.next_obs[0], x.discount[0], pref.label, pairs, steps)

    def run(self, count: int) -> None:
        for _ in range(count):
            baseline_ipl_update(self.agent, self.optimizers, *self.args, self.cfg)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(setting: Library | Before, seconds: float, device: str) -> float:
    """Seed-updates per second over about ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        setting.run(5)
        count += 5
    synchronize(device)
    return count * setting.members / (time.perf_counter() - start)


def same_step(shape: str) -> float:
    """Largest difference between the weights after three steps of "before" and of E = 1 from the same
    initial weights and batch (CPU)."""
    before, now = Before(shape, "cpu"), Library(shape, 1, "cpu")
    old, new = before.agent, now.agent
    depth = len(new.value.net.layers)
    pairs = [(old.heads[h][2 * i], new.critic.net.layers[i], (0, h)) for h in range(2) for i in range(depth)]
    pairs += [(old.value[2 * i], new.value.net.layers[i], (0,)) for i in range(depth)]
    pairs += [(old.actor[2 * i], new.actor.net.layers[i], (0,)) for i in range(depth)]
    for _ in range(3):
        before.run(1)
        now.run(1)
    return max(max((layer.weight[index] - linear.weight).abs().max().item(),
                   (layer.bias[index][0] - linear.bias).abs().max().item()) for linear, layer, index in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per mode")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--seeds", default="1", help="comma-separated member counts E, e.g. 1,5,20")
    parser.add_argument("--shapes", default="metaworld,locomotion", help="comma-separated shape names")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds per mode")
    parser.add_argument("--bf16", action="store_true", help="also time each E with precision='bf16'")
    parser.add_argument("--profile", action="store_true", help="print where the time of E=1 goes")
    parser.add_argument("--json", help="also write the medians and the run's record to this file")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available")
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else (
        f"cpu, {args.threads} threads, {platform.machine()}, load average {os.getloadavg()[0]:.2f}")
    print(f"torch {torch.__version__} on {where}; {args.seconds:g} s per mode")
    counts = [int(e) for e in args.seeds.split(",")]
    record = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/bench_ipl_updates.py " + " ".join(sys.argv[1:]),
              "device": where, "torch": torch.__version__, "commit": git_commit(), "rows": []}
    for shape in args.shapes.split(","):
        print(f"{shape}: largest weight difference after 3 steps, before vs E=1: {same_step(shape):.2e}")
        modes: dict[str, Library | Before] = {"before": Before(shape, args.device)}
        modes |= {f"E={e}": Library(shape, e, args.device) for e in counts}
        if args.bf16:
            modes |= {f"E={e} bf16": Library(shape, e, args.device, "bf16") for e in counts}
        for setting in modes.values():
            setting.run(3)  # warm-up
        samples: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for mode, setting in modes.items():
                samples[mode].append(rate(setting, args.seconds / args.rounds, args.device))
        base = statistics.median(samples["before"])
        print(f"{'shape':11s} {'mode':10s} {'seed-updates/s':>15s} {'ratio to before':>16s}")
        for mode, values in samples.items():
            median = statistics.median(values)
            print(f"{shape:11s} {mode:10s} {median:15.1f} {median / base:16.2f}", flush=True)
            record["rows"].append({"shape": shape, "mode": mode, "seed_updates_per_s": round(median, 2),
                                   "ratio_to_before": round(median / base, 3)})
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            setting = Library(shape, 1, args.device)
            setting.run(3)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                setting.run(20)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    if args.json:
        write_json(args.json, record)


if __name__ == "__main__":
    main()
