"""CPL's updates per second beside IPL's at IPL's MetaWorld shapes, both measured in one run.

    python benchmarks/bench_cpl.py [--seconds 10] [--threads 2] [--device cpu|cuda] [--rounds 5]

Shapes (IPL Table 6): 3x256 networks, obs 39, act 4, 16 pairs x 2 segments x 16 transitions, and for IPL
256 offline transitions. CPL (``ipl_core.offline.cpl_update``) steps one network, the actor, on the
preference batch; IPL (``ipl_update``) steps V, two Q heads and the actor and Polyak-averages the target
critic. Both run after CPL's BC pretraining phase (the contrastive step). Random data: the arithmetic does
not depend on the values. The two alternate in short rounds so that a change in the machine's load hits
both alike; medians and the ratio CPL / IPL of one run are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from bench_ipl_updates import make_batches, synchronize

from ipl_core.agents import make_agent
from ipl_core.batches import stack_batches
from ipl_core.config import preset
from ipl_core.offline import make_optimizers, update_function

OBS, ACT, PAIRS, STEPS, OFFLINE = 39, 4, 16, 16, 256


class Setting:
    """One method's agent, optimisers and fixed batches at the MetaWorld shapes."""

    def __init__(self, method: str, device: str) -> None:
        self.cfg = preset("metaworld", method=method, device=device, cpl_bc_fraction=0.0)
        self.agent = make_agent(method, OBS, ACT, self.cfg.hidden_dims,
                                generator=[torch.Generator().manual_seed(0)]).to(device)
        self.optimizers = make_optimizers(self.agent, self.cfg)
        pref, off = make_batches(OBS, ACT, PAIRS, STEPS, OFFLINE, device)
        self.pref, self.off = stack_batches([pref]), stack_batches([off])
        self.update, self.step = update_function(method), 0

    def rate(self, seconds: float, device: str) -> float:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(5):
                self.update(self.agent, self.optimizers, self.pref, self.off, self.cfg, self.step, [])
                self.step += 1
            count += 5
        synchronize(device)
        return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per method and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {method: Setting(method, args.device) for method in ("cpl", "ipl")}
    for setting in settings.values():  # warm-up
        setting.rate(0.5, args.device)
    rates: dict[str, list[float]] = {method: [] for method in settings}
    for _ in range(args.rounds):
        for method, setting in settings.items():
            rates[method].append(setting.rate(args.seconds / args.rounds, args.device))
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} threads, device {args.device}; load average {os.getloadavg()[0]:.2f}")
    median = {method: statistics.median(r) for method, r in rates.items()}
    for method, value in median.items():
        print(f"{method:>4}: {value:7.1f} updates/s (median of {args.rounds} rounds: "
              f"{', '.join(f'{x:.1f}' for x in rates[method])})")
    print(f"ratio CPL / IPL: {median['cpl'] / median['ipl']:.2f}")


if __name__ == "__main__":
    main()
