"""The agents of the offline chapters, built by one factory: :func:`make_agent`.

An agent is an ``nn.Module`` whose learnable parameters are exactly its networks (IPL Table 4 counts
them): the critic ensemble, the value network (not for IPL-AWAC), the actor, and for a reward-learning
baseline its reward model. Every network has a leading *member* axis: an agent of E members is E
independent seeds trained together (E = 1 is a single run), member e built from its own
``torch.Generator`` exactly as a single-seed agent with that generator. The Polyak-averaged target critic
is kept as buffers (:func:`~ipl_core.nets.frozen_copy`), so it is saved with the agent but neither optimised
nor counted. Taught in "IPL in practice" (book/ipl/offline.ipynb) and "The Markovian-reward baseline"
(book/baselines/markovian_reward.ipynb).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ipl_core.nets import CriticEnsemble, GaussianActor, ValueNetwork, frozen_copy, polyak_update
from ipl_core.reward_models import REWARD_MODELS, RewardModel

IPL_METHODS = ("ipl", "ipl-xql", "ipl-awac")
"""Methods that learn no reward: the Q-function's implicit reward is fitted to the preferences."""
POLICY_METHODS = ("cpl", "bc")
"""Methods that learn only a policy, no reward and no Q: CPL fits alpha log pi as the optimal advantage, BC
(CPL's SFT baseline) clones the segments' actions."""
PREFERENCE_METHODS = IPL_METHODS + POLICY_METHODS
"""Methods that read the preference batch directly in their update (reward models read it through theirs)."""
ORACLE_METHODS = ("iql",)
"""Methods that read the offline dataset's ground-truth rewards."""


def known_methods() -> tuple[str, ...]:
    """Every name :func:`make_agent` accepts: the oracle, the IPL variants, and IQL on each reward model."""
    return ORACLE_METHODS + IPL_METHODS + POLICY_METHODS + tuple(sorted(REWARD_MODELS))


class RewardModels(nn.Module):
    """One reward model per member: ``forward(obs (E, B, T, o), act (E, B, T, a))`` -> (E, B, T).

    The family of reward models (MLP, LSTM, transformer, B-REX) has no common batched layer, so the members
    are evaluated one after the other; each is an ordinary :class:`~ipl_core.reward_models.RewardModel`."""

    def __init__(self, models: Sequence[RewardModel]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(o, a) for m, o, a in zip(self.models, obs, act, strict=True)])

    def segment_score(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Each member's segment scores, (E, B)."""
        return torch.stack([m.segment_score(o, a) for m, o, a in zip(self.models, obs, act, strict=True)])


class Agent(nn.Module):
    """Critic ensemble (none for CPL), optional value network, actor, optional reward models, and a target
    critic, each with a leading member axis of size :attr:`members`."""

    def __init__(self, method: str, critic: CriticEnsemble | None, value: ValueNetwork | None,
                 actor: GaussianActor,
                 reward_model: RewardModels | None = None) -> None:
        super().__init__()
        self.method = method
        self.critic = critic
        self.value = value
        self.actor = actor
        self.reward_model = reward_model
        self.target_critic = None if critic is None else frozen_copy(critic)

    @property
    def members(self) -> int:
        """E, the number of independent seeds this agent holds."""
        return self.actor.members

    def target_q(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q-values of the target critic, (E, num_critics, N), without gradient."""
        if self.target_critic is None:
            raise ValueError(f"method {self.method!r} has no critic")
        with torch.no_grad():
            return self.target_critic(obs, act)

    def update_target(self, tau: float) -> None:
        """Polyak-average the target critic towards the online critic (every step, tau = 0.005)."""
        if self.critic is not None:
            polyak_update(self.target_critic, self.critic, tau)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic evaluation actions (the actor's mean), (E, N, act_dim) from (E, N, obs_dim)."""
        return self.actor.act(obs)


def _reward_model(factory, obs_dim: int, act_dim: int, hidden_dims: Sequence[int],
                  generator: torch.Generator | None) -> RewardModel:
    # Reward-model factories take no generator: seed torch's global RNG from ours, inside fork_rng so that
    # the caller's global state is left as it was.
    if generator is None:
        return factory(obs_dim, act_dim, hidden_dims)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(obs_dim, act_dim, hidden_dims)


def make_agent(method: str, obs_dim: int, act_dim: int, hidden_dims: Sequence[int] = (256, 256),
               generator: torch.Generator | Sequence[torch.Generator] | None = None,
               hidden_gain: float = math.sqrt(2.0)) -> Agent:
    """Build the networks of ``method`` (IPL Table 4 counts their parameters) for one member per generator
    (a single generator or None: one member).

    - ``"iql"``: oracle IQL on ground-truth rewards: two Q heads, V, actor.
    - ``"ipl"``, ``"ipl-xql"``: IPL with IQL (Algorithm 2) or XQL (Algorithm 1): the same networks.
    - ``"ipl-awac"``: IPL with AWAC (Algorithm 3): one Q head and the actor, no value network.
    - ``"cpl"``: Contrastive Preference Learning (Hejna et al. 2024): the actor alone, no critic, no value.
    - ``"bc"``: behaviour cloning on the preference segments (CPL's SFT baseline): the same lone actor.
    - any name in :data:`ipl_core.reward_models.REWARD_MODELS` (``"mr"``, ...): IQL plus that reward model,
      built with the same ``hidden_dims``.

    Each member draws its weights from its generator in the order critic heads, value, actor, reward
    model. ``hidden_gain`` is the orthogonal gain of the hidden layers (sqrt 2, He's gain for ReLU; the
    authors' code uses 1).
    """
    methods = known_methods()
    if method not in methods:
        raise ValueError(f"method must be one of {methods}, got {method!r}")
    if obs_dim <= 0 or act_dim <= 0:
        raise ValueError(f"obs_dim and act_dim must be positive, got obs_dim={obs_dim}, act_dim={act_dim}")
    hidden_dims = tuple(int(h) for h in hidden_dims)
    if not hidden_dims or any(h <= 0 for h in hidden_dims):
        raise ValueError(f"hidden_dims must be a non-empty sequence of positive sizes, got {hidden_dims}")
    generators = list(generator) if isinstance(generator, Sequence) else [generator]
    if not generators:
        raise ValueError("make_agent needs at least one generator (one member), got an empty sequence")
    members, awac, policy_only = len(generators), method == "ipl-awac", method in POLICY_METHODS
    critic = None if policy_only else CriticEnsemble(
        obs_dim, act_dim, hidden_dims, num_critics=1 if awac else 2, members=members, generators=generators,
        hidden_gain=hidden_gain)
    value = None if awac or policy_only else ValueNetwork(obs_dim, hidden_dims, members, generators,
                                                          hidden_gain)
    actor = GaussianActor(obs_dim, act_dim, hidden_dims, members, generators, hidden_gain)
    reward_model = None
    if method in REWARD_MODELS:
        reward_model = RewardModels([_reward_model(REWARD_MODELS[method], obs_dim, act_dim, hidden_dims, g)
                                     for g in generators])
    return Agent(method, critic, value, actor, reward_model)
