"""The configuration of one offline run, as a frozen dataclass of flat scalars, and the paper's presets.

The same field names are the papermill parameters of the offline notebooks. Defaults follow IPL Table 6
(MetaWorld); :data:`PRESETS` holds Table 5 (locomotion) and Table 6; :mod:`ipl_core.experiments.variants`
names the changes that make them into each column of the paper's tables. Taught in "IPL in practice"
(book/ipl/offline.ipynb).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from ipl_core.agents import known_methods
from ipl_core.nets import PRECISIONS


@dataclass(frozen=True)
class OfflineConfig:
    """Everything one offline preference-based run needs, besides its data."""

    method: str = "ipl"
    """Agent for :func:`~ipl_core.agents.make_agent`: iql, ipl, ipl-xql, ipl-awac, cpl, bc, or a reward
    model (mr)."""
    hidden_dim: int = 256
    """Units per hidden layer of every MLP (Q, V, pi, reward)."""
    num_layers: int = 3
    """Hidden layers per MLP (Table 6: 3x256 on MetaWorld; Table 5: 2x256 on locomotion)."""
    lr: float = 3e-4
    """Adam learning rate of every network."""
    discount: float = 0.99
    """gamma."""
    target_tau: float = 0.005
    """Polyak rate of the target critic, applied every step."""
    expectile: float = 0.7
    """IQL expectile tau of the value loss (ipl, iql, mr)."""
    alpha: float = 2.0
    """XQL temperature of the linex value loss (ipl-xql; Table 5 caption: 2 on locomotion, 5 on Robomimic)."""
    beta: float = 4.0
    """Inverse temperature of advantage weighting, exp(beta * A), as IQL and Tables 5-6 write it."""
    max_weight: float = 100.0
    """Clip of the advantage weights exp(beta * A)."""
    lam: float = 0.5
    """lambda: strength of the L2 regulariser on implicit rewards (IPL Eq. 6)."""
    target_clipping: bool = True
    """Clip V(s') to +-1 / (lam (1 - gamma)) inside the implicit reward (reference code; ipl, ipl-xql)."""
    balance_losses: bool = False
    """Weigh the value and actor losses half on preference rows, half on offline rows (the authors' code)
    instead of a plain mean over all rows (IPL Algorithm 2's text)."""
    init_gain: float = math.sqrt(2.0)
    """Orthogonal gain of the hidden layers: sqrt(2), He's gain for ReLU (the authors' code: 1)."""
    pref_batch_size: int = 16
    """Preference pairs per batch."""
    offline_batch_size: int = 256
    """Offline transitions per batch; 0 trains IPL on the preference batch alone (the authors' MetaWorld
    setting). The oracle and the reward models need offline transitions."""
    subsample_length: int = 16
    """s: observations kept from each segment, one random start per batch (0 keeps whole segments)."""
    reward_steps: int = 20_000
    """Steps the reward model of a reward-learning baseline trains for (Tables 5-6: 20k)."""
    reward_lr: float = 3e-4
    """Adam learning rate of the reward model."""
    cpl_alpha: float = 0.1
    """CPL's temperature alpha in A*(s, a) = alpha log pi(a|s) (CPL Sec. 3.1; 0.1 in CPL's MetaWorld runs)."""
    cpl_bias: float = 0.5
    """CPL's conservative bias lambda in (0, 1] on the rejected segment (CPL Sec. 3.2; 0.5 in CPL's runs,
    1 for CPL (BC))."""
    cpl_bc_weight: float = 0.0
    """Weight of the behaviour-cloning term added to CPL's loss (0 for CPL, 1 for CPL (BC))."""
    cpl_bc_fraction: float = 0.4
    """Share of the steps CPL first spends on behaviour cloning alone, on the segments' actions, and that BC
    (CPL's SFT) clones every segment before it clones the preferred ones only (CPL's MetaWorld runs: 200k of
    500k steps for both)."""
    steps: int = 200_000
    """Gradient steps."""
    log_every: int = 1000
    """Steps between rows of training metrics."""
    eval_every: int = 2500
    """Steps between evaluations (and full-dataset preference accuracy); 0 disables them."""
    eval_episodes: int = 20
    """Episodes per evaluation, when an evaluator is given."""
    checkpoint_every: int = 10_000
    """Steps between atomic checkpoints, when an output folder is given."""
    seed: int = 0
    """Seed of the initial weights, the minibatch sampler and the actor's samples."""
    device: str = "cpu"
    """Torch device of the networks and batches: "cpu", "cuda" or "cuda:N"."""
    precision: str = "fp32"
    """Arithmetic of the networks: "fp32", or "bf16" for bfloat16 in the hidden layers between the first and
    the last (:func:`ipl_core.nets.set_precision`); losses, targets and optimiser state stay float32."""

    def __post_init__(self) -> None:
        if self.method not in known_methods():
            raise ValueError(f"OfflineConfig.method must be one of {known_methods()}, got {self.method!r}")
        positive = ("hidden_dim", "num_layers", "lr", "pref_batch_size", "steps", "log_every", "alpha",
                    "max_weight", "reward_lr", "init_gain", "cpl_alpha")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"OfflineConfig.{name} must be positive, got {getattr(self, name)!r}")
        non_negative = ("beta", "lam", "cpl_bc_weight", "subsample_length", "reward_steps", "eval_every",
                        "eval_episodes", "checkpoint_every", "seed", "offline_batch_size")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"OfflineConfig.{name} must be non-negative, got {getattr(self, name)!r}")
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"OfflineConfig.discount must lie in [0, 1), got {self.discount}")
        if not 0.0 < self.target_tau <= 1.0:
            raise ValueError(f"OfflineConfig.target_tau must lie in (0, 1], got {self.target_tau}")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"OfflineConfig.expectile must lie in (0, 1), got {self.expectile}")
        if not 0.0 < self.cpl_bias <= 1.0:
            raise ValueError(f"OfflineConfig.cpl_bias must lie in (0, 1], got {self.cpl_bias}")
        if not 0.0 <= self.cpl_bc_fraction < 1.0:
            raise ValueError(f"OfflineConfig.cpl_bc_fraction must lie in [0, 1), got {self.cpl_bc_fraction}")
        if self.offline_batch_size == 0 and not self.method.startswith(("ipl", "cpl", "bc")):
            raise ValueError(f"OfflineConfig.offline_batch_size=0 (no offline batch) is for the IPL methods, "
                             f"CPL and BC; method {self.method!r} learns from offline transitions: expected "
                             "at least 1")
        check_device(self.device, "OfflineConfig.device")
        if self.precision not in PRECISIONS:
            raise ValueError(f"OfflineConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.subsample_length == 1:
            raise ValueError("OfflineConfig.subsample_length must be 0 (off) or at least 2, got 1")

    @property
    def hidden_dims(self) -> tuple[int, ...]:
        """(hidden_dim,) * num_layers, the ``hidden_dims`` of :func:`~ipl_core.agents.make_agent`."""
        return (self.hidden_dim,) * self.num_layers

    @property
    def cpl_switch_step(self) -> int:
        """The first step after CPL's and BC's behaviour-cloning phase: ceil(cpl_bc_fraction * steps)."""
        return math.ceil(self.cpl_bc_fraction * self.steps)

    def replace(self, **changes: Any) -> OfflineConfig:
        """A copy with ``changes``; an unknown name raises a TypeError naming it."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"OfflineConfig has no field(s) {unknown}; fields are {sorted(names)}")
        return dataclasses.replace(self, **changes)


def check_device(device: str, setting: str = "device") -> torch.device:
    """``device`` as a torch device: "cpu", "cuda" or "cuda:N", with CUDA present and N in range; else a
    ValueError naming ``setting``."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"{setting}={device!r} is not a device; expected 'cpu', 'cuda' or 'cuda:N'"
                         ) from error
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"{setting}={device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{setting}={device!r} but CUDA is not available (torch {torch.__version__}, "
                             f"built with CUDA {torch.version.cuda}); use 'cpu'")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"{setting}={device!r} but only {torch.cuda.device_count()} CUDA device(s) "
                             "exist")
    return parsed


PRESETS: dict[str, OfflineConfig] = {
    # IPL Table 6 (MetaWorld data scaling). The offline batch size is not in the table: 256 as in Table 5.
    "metaworld": OfflineConfig(),
    # IPL Table 5 (D4RL locomotion with the human preferences of Kim et al.), 2x256 networks.
    "locomotion": OfflineConfig(num_layers=2, beta=3.0, pref_batch_size=8, offline_batch_size=256,
                                steps=1_000_000, subsample_length=64, eval_every=5000, eval_episodes=10),
}
"""Paper settings by name; combine with :meth:`OfflineConfig.replace`, e.g. ``preset("locomotion",
method="ipl-xql")``."""


def preset(name: str, **changes: Any) -> OfflineConfig:
    """A paper preset with ``changes`` applied; an unknown preset name raises a KeyError listing them."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    return PRESETS[name].replace(**changes)
