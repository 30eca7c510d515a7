"""A trained policy on its own: save the actor of a run, load it anywhere, act with it.

:func:`save_policy` writes one file (``policy.pt``) with the actor of a one-member agent (the
``TrainResult.agent`` of :func:`ipl_core.trainer.train`), the observation and action sizes it was trained
on, and the action box its outputs are mapped onto. :func:`load_policy` reads it on the CPU or a GPU and
checks, when given, that the environment's observation and action spaces are the ones the policy was
trained for. :meth:`Policy.act` is the deterministic evaluation action of the offline methods (the actor's
tanh-squashed mean, IPL Algorithm 2's pi), mapped linearly from [-1, 1] onto the action box, exactly as
:class:`ipl_core.trainer.GymEvaluator` maps it. Taught in "Use ipl_core on your own data"
(book/appendix/own_data.ipynb).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ipl_core.agents import Agent
from ipl_core.config import check_device
from ipl_core.data.errors import DataFormatError, damaged, require_file
from ipl_core.io import atomic_write
from ipl_core.nets import GaussianActor, to_action_box

POLICY = "policy.pt"
"""The file name :func:`save_policy` uses inside a run folder, and :func:`load_policy` looks for there."""

FORMAT = "ipl_core.policy/1"
"""The ``format`` entry of a policy file; files without it (a trainer checkpoint, say) are refused."""

_KEYS = ("format", "method", "obs_dim", "act_dim", "hidden_dims", "action_low", "action_high", "actor")


def _box(space: Any, act_dim: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of an action box: ``None`` for [-1, 1], a gymnasium ``Box``, or a (low, high) pair."""
    if space is None:
        return -np.ones(act_dim), np.ones(act_dim)
    low, high = (space.low, space.high) if hasattr(space, "low") else space
    low = np.broadcast_to(np.asarray(low, dtype=np.float64), (act_dim,)).copy()
    high = np.broadcast_to(np.asarray(high, dtype=np.float64), (act_dim,)).copy()
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (low < high).all()):
        raise ValueError(f"{what}: expected a finite action box with low < high, got low={low}, high={high}")
    return low, high


class Policy:
    """The deterministic policy of a trained run: ``act(obs)`` maps observations to actions in the box."""

    def __init__(self, actor: GaussianActor, method: str, action_low: np.ndarray, action_high: np.ndarray,
                 source: str = "<memory>") -> None:
        self.actor, self.method, self.source = actor.eval(), method, source
        self.obs_dim = int(actor.net.layers[0].in_dim)
        self.act_dim = int(actor.net.layers[-1].out_dim)
        self.action_low = np.asarray(action_low, dtype=np.float64)
        self.action_high = np.asarray(action_high, dtype=np.float64)

    @property
    def device(self) -> torch.device:
        return self.actor.log_std.device

    def act(self, obs: np.ndarray | Sequence[float] | torch.Tensor) -> np.ndarray:
        """Actions for one observation (obs_dim,) or a batch (N, obs_dim): float64 numpy, (act_dim,) or
        (N, act_dim), inside [action_low, action_high]."""
        x = torch.as_tensor(np.asarray(obs.cpu() if torch.is_tensor(obs) else obs), dtype=torch.float32)
        if x.ndim not in (1, 2) or x.shape[-1] != self.obs_dim:
            raise ValueError(f"{self.source}: the policy takes observations of shape ({self.obs_dim},) or "
                             f"(N, {self.obs_dim}); got shape {tuple(x.shape)}")
        single = x.ndim == 1
        with torch.no_grad():
            unit = self.actor.act(x.reshape(1, -1, self.obs_dim).to(self.device))[0].cpu().double().numpy()
        action = to_action_box(unit, self.action_low, self.action_high)
        return action[0] if single else action

    def check_spaces(self, observation_space: Any = None, action_space: Any = None) -> None:
        """Raise a ValueError naming the policy file and the mismatch unless ``observation_space`` has shape
        (obs_dim,) and ``action_space`` has shape (act_dim,) and the policy's action bounds (each may be
        None: not checked; gymnasium ``Box`` spaces or anything with ``shape``, ``low`` and ``high``)."""
        if observation_space is not None:
            shape = tuple(observation_space.shape)
            if shape != (self.obs_dim,):
                raise ValueError(f"{self.source}: the policy was trained on observations of shape "
                                 f"({self.obs_dim},); the observation space has shape {shape}")
        if action_space is not None:
            shape = tuple(action_space.shape)
            if shape != (self.act_dim,):
                raise ValueError(f"{self.source}: the policy was trained on actions of shape "
                                 f"({self.act_dim},); the action space has shape {shape}")
            low, high = _box(action_space, self.act_dim, "action_space")
            if not (np.allclose(low, self.action_low) and np.allclose(high, self.action_high)):
                raise ValueError(
                    f"{self.source}: the policy acts in the box low={self.action_low.tolist()}, "
                    f"high={self.action_high.tolist()}; the action space has low={low.tolist()}, "
                    f"high={high.tolist()} (save the policy with action_space=... of this environment)"
                )


def save_policy(agent: Agent, path: str | Path, action_space: Any = None) -> Path:
    """Write the actor of a one-member ``agent`` to ``path`` (a file, or a folder that gets ``policy.pt``),
    atomically and on the CPU, with the action box its [-1, 1] outputs are mapped onto: ``action_space``
    is None ([-1, 1], the range the offline datasets' actions are kept in), a gymnasium ``Box`` or a
    (low, high) pair. Returns the file written."""
    if agent.members != 1:
        raise ValueError(f"save_policy expects a one-member agent (one seed), got {agent.members} members; "
                         "save each TrainResult.agent of train_seeds on its own")
    layers = agent.actor.net.layers
    obs_dim, act_dim = int(layers[0].in_dim), int(layers[-1].out_dim)
    low, high = _box(action_space, act_dim, "save_policy(action_space=...)")
    path = Path(path)
    if path.is_dir():
        path = path / POLICY
    state = {
        "format": FORMAT, "method": agent.method, "obs_dim": obs_dim, "act_dim": act_dim,
        "hidden_dims": [int(layer.out_dim) for layer in layers[:-1]],
        "action_low": low.tolist(), "action_high": high.tolist(),
        "actor": {k: v.detach().cpu().clone() for k, v in agent.actor.state_dict().items()},
    }
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_policy(path: str | Path, device: str = "cpu", observation_space: Any = None,
                action_space: Any = None) -> Policy:
    """Read a policy written by :func:`save_policy` (``path``: the file, or a run folder holding
    ``policy.pt``) onto ``device`` ("cpu", "cuda" or "cuda:N") and check it against ``observation_space``
    and ``action_space`` when given (:meth:`Policy.check_spaces`). A missing, damaged or foreign file raises
    DataFormatError naming it."""
    torch_device = check_device(device, "load_policy(device=...)")
    path = Path(path)
    if path.is_dir():
        path = path / POLICY
    what = f"a policy file written by ipl_core.policy.save_policy ({POLICY})"
    require_file(path, what)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types on a damaged or foreign file
        raise damaged(path, error, what) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataFormatError(f"{path}: format {found!r}; expected {FORMAT!r}, {what}")
    missing = [key for key in _KEYS if key not in state]
    if missing:
        raise DataFormatError(f"{path}: missing key(s) {missing}; expected {list(_KEYS)}")
    actor = GaussianActor(int(state["obs_dim"]), int(state["act_dim"]), state["hidden_dims"])
    try:
        actor.load_state_dict(state["actor"])
    except RuntimeError as error:
        raise DataFormatError(f"{path}: the actor's weights do not fit obs_dim={state['obs_dim']}, "
                              f"act_dim={state['act_dim']}, hidden_dims={state['hidden_dims']} ({error})"
                              ) from error
    policy = Policy(actor.to(torch_device), str(state["method"]), np.asarray(state["action_low"]),
                    np.asarray(state["action_high"]), source=str(path))
    policy.check_spaces(observation_space, action_space)
    return policy
