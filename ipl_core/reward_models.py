"""Learned reward models with one interface: per-step rewards of a segment, and the segment's score.

- ``"mr"`` :class:`MarkovianReward`: an MLP of (s, a) (Christiano et al. 2017; IPL Sec. 4.2).
- ``"nmr"`` :class:`NonMarkovianReward`: an LSTM over the segment (Early et al. 2022, as used by Kim et al.
  2023).
- ``"pt"`` :class:`PreferenceTransformer`: a causal transformer over (state, action) tokens with the
  preference-attention layer (Kim et al. 2023).
- ``"brex"`` :class:`BayesianREXReward`: a linear reward over random Gaussian projections, with a
  Metropolis-Hastings posterior over its weights (Brown et al. 2020; :mod:`ipl_core.brex`).

Taught in the chapters "The Markovian-reward baseline" (book/baselines/markovian_reward.ipynb) and "Reward
models: Markovian, non-Markovian, Bayesian" (book/baselines/reward_models.ipynb).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ipl_core.batches import PreferenceBatch, full_preference_batch, sample_preference_batch
from ipl_core.brex import PosteriorSamples, metropolis_hastings
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.nets import mlp
from ipl_core.preferences import PreferenceLoss, preference_loss


class RewardModel(nn.Module):
    """Interface: ``forward(obs, act)`` gives per-step rewards (B, T) from obs (B, T, obs_dim) and act
    (B, T, act_dim); ``segment_score`` is the logit used in the Bradley-Terry model (IPL Eq. 1).

    Two class attributes tell the trainer (:mod:`ipl_core.offline`) how to use a model: ``markovian``
    (r_t depends on (s_t, a_t) alone, so IQL may query one transition at a time) and
    ``trained_by_gradient`` (else the model provides ``fit(preferences, generator)``, called once)."""

    markovian: bool = True
    trained_by_gradient: bool = True

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def segment_score(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Score of each segment, (B,): the undiscounted sum of per-step rewards, unless overridden."""
        return self(obs, act).sum(dim=-1)


def check_segments(model: str, obs: torch.Tensor, act: torch.Tensor, obs_dim: int, act_dim: int) -> None:
    """Raise a ValueError naming ``model`` unless obs is (B, T, obs_dim) and act is (B, T, act_dim)."""
    if obs.ndim != 3 or act.ndim != 3 or obs.shape[:2] != act.shape[:2] or obs.shape[1] == 0:
        raise ValueError(
            f"{model} expects obs (B, T, {obs_dim}) and act (B, T, {act_dim}) with T >= 1, got obs "
            f"{tuple(obs.shape)} and act {tuple(act.shape)}"
        )
    if obs.shape[-1] != obs_dim or act.shape[-1] != act_dim:
        raise ValueError(
            f"{model} was built for obs_dim={obs_dim}, act_dim={act_dim}; got obs {tuple(obs.shape)} and act "
            f"{tuple(act.shape)}"
        )


class MarkovianReward(RewardModel):
    """r_theta(s, a): an MLP of the state-action pair, applied to each step on its own (IPL Sec. 4.2, MR)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1, hidden_dims)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


class NonMarkovianReward(RewardModel):
    """NMR: r_t = f(h_t, x_t) where h_t is an LSTM state over the segment so far (Early et al. 2022).

    The layout is Kim et al. (2023)'s ``LSTMRewardModel`` with ``embed_dim`` d (256 there): an encoder MLP
    (s, a) -> d -> d/2 -> d/2, an LSTM of width d/2, and a head MLP on [x_t, h_t] -> d/2 -> d/4 -> d/4 -> 1,
    ReLU throughout. The segment score is the sum of the per-step outputs (their ``train_type="sum"``).
    PyTorch's LSTM has two bias vectors per gate (b_ih + b_hh) where Flax's has one; they only ever appear
    as a sum, so ``b_hh`` is held at zero and not learned: the learnable count is the reference's
    (230,209 at hopper shapes). The reference's dropout (0.1) is left out: our randomness comes only
    from explicit generators.
    """

    markovian = False

    def __init__(self, obs_dim: int, act_dim: int, embed_dim: int = 256,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if embed_dim < 4 or embed_dim % 4:
            raise ValueError(f"embed_dim must be a positive multiple of 4, got {embed_dim}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        width = embed_dim // 2
        self.encoder = nn.Sequential(
            mlp(obs_dim + act_dim, width, (embed_dim, width), generator=generator), nn.ReLU()
        )
        self.lstm = nn.LSTM(width, width, batch_first=True)
        for name, param in self.lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.uniform_(param, -1 / math.sqrt(width), 1 / math.sqrt(width), generator=generator)
            else:
                nn.init.zeros_(param)
        self.lstm.bias_hh_l0.requires_grad_(False)
        self.head = mlp(2 * width, 1, (width, embed_dim // 4, embed_dim // 4), generator=generator)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        check_segments("NonMarkovianReward", obs, act, self.obs_dim, self.act_dim)
        x = self.encoder(torch.cat([obs, act], dim=-1))
        h, _ = self.lstm(x)
        return self.head(torch.cat([x, h], dim=-1)).squeeze(-1)


class CausalBlock(nn.Module):
    """One pre-norm GPT-2 block: x + attn(LN(x)) with a causal mask, then x + MLP(LN(x)), MLP d -> 4d -> d."""

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm_1 = nn.LayerNorm(embed_dim)
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.norm_2 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.ReLU(),
                                 nn.Linear(4 * embed_dim, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm_1(x)).view(b, n, 3, self.num_heads, d // self.num_heads).unbind(dim=2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm_2(x))


class PreferenceTransformer(RewardModel):
    """PT (Kim et al. 2023): a causal transformer over (s_1, a_1, s_2, a_2, ...) and a preference-attention
    layer that turns its outputs into per-step rewards r_t and importance weights w_t.

    Each step's state and action are embedded (linear maps plus a learned embedding of the step index),
    layer-normed and interleaved into 2T tokens; x_t is the transformer's output at the token of a_t, so it
    has seen (s_1..s_t, a_1..a_t) and nothing later. The preference-attention layer maps x_t to a query q_t,
    a key k_t (``pref_dim`` each) and the reward r_t; bidirectional attention gives z_t = sum_i
    softmax_i(q_t.k_i / sqrt(pref_dim)) r_i, and the score is the mean of z_t, i.e. sum_i w_i r_i with
    w_i = mean_t softmax_i(...): weights that sum to one. With ``preference_attention=False`` the head is
    an MLP x_t -> d/2 -> 1 and the score is the plain mean of r_t (the reference code's default, which its
    README command keeps). IQL reads r_t (``forward``) either way.

    The step index runs over positions in the segment: the reference embeds the episode time step (up to
    ``max_timestep`` = 1000), which our segments do not carry; the table keeps its size. Other departures
    from the reference code: tokens are ordered (s_t, a_t) and read at a_t (it orders (a_t, s_t) and reads
    at s_t: the same information), no dropout (it uses 0.1; our randomness comes only from explicit
    generators), GPT-2's N(0, 0.02) initialisation. Like the reference, the block MLPs use ReLU.
    """

    markovian = False

    def __init__(self, obs_dim: int, act_dim: int, embed_dim: int = 256, num_layers: int = 1,
                 num_heads: int = 4, pref_dim: int | None = None, max_timestep: int = 1000,
                 preference_attention: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim must be a positive multiple of num_heads, got {embed_dim} and {num_heads}"
            )
        if num_layers < 1 or max_timestep < 1:
            raise ValueError(f"num_layers and max_timestep must be >= 1, got {num_layers}, {max_timestep}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.pref_dim = embed_dim if pref_dim is None else pref_dim
        self.max_timestep = max_timestep
        self.preference_attention = preference_attention
        self.state_embed = nn.Linear(obs_dim, embed_dim)
        self.action_embed = nn.Linear(act_dim, embed_dim)
        self.step_embed = nn.Embedding(max_timestep + 1, embed_dim)
        self.embed_norm = nn.LayerNorm(embed_dim)
        self.blocks = nn.ModuleList(CausalBlock(embed_dim, num_heads) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(embed_dim)
        if preference_attention:
            self.head = nn.Linear(embed_dim, 2 * self.pref_dim + 1)
        else:
            self.head = nn.Sequential(nn.Linear(embed_dim, embed_dim // 2), nn.ReLU(),
                                      nn.Linear(embed_dim // 2, 1))
        for module in self.modules():  # GPT-2 initialisation: N(0, 0.02) weights, zero biases
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02, generator=generator)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def hidden(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """x_t, (B, T, embed_dim): the causal transformer's output at the action token of each step."""
        check_segments("PreferenceTransformer", obs, act, self.obs_dim, self.act_dim)
        b, t, _ = obs.shape
        if t > self.max_timestep + 1:
            raise ValueError(f"segments of length {t} exceed max_timestep + 1 = {self.max_timestep + 1}")
        step = self.step_embed(torch.arange(t, device=obs.device))
        tokens = torch.stack([self.state_embed(obs) + step, self.action_embed(act) + step], dim=2)
        x = self.embed_norm(tokens.reshape(b, 2 * t, -1))
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)[:, 1::2]

    def rewards_and_weights(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step rewards r_t and importance weights w_t, both (B, T); each row of w sums to one."""
        x = self.hidden(obs, act)
        if not self.preference_attention:
            reward = self.head(x).squeeze(-1)
            return reward, torch.full_like(reward, 1.0 / reward.shape[1])
        query, key, reward = self.head(x).split([self.pref_dim, self.pref_dim, 1], dim=-1)
        attention = torch.softmax(query @ key.transpose(1, 2) / math.sqrt(self.pref_dim), dim=-1)
        return reward.squeeze(-1), attention.mean(dim=1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.rewards_and_weights(obs, act)[0]

    def segment_score(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """sum_t w_t r_t, (B,): the preference-attention weighted sum (Kim et al. 2023, Eq. 4)."""
        reward, weights = self.rewards_and_weights(obs, act)
        return (weights * reward).sum(dim=-1)


class BayesianREXReward(RewardModel):
    """B-REX's reward r(s, a) = w . phi(s, a) with phi a fixed random Gaussian projection of [s, a].

    ``phi(s, a) = [s, a] @ P`` with P ~ N(0, 1 / (obs_dim + act_dim)) drawn once (IPL Sec. 4.2 uses random
    Gaussian projections as B-REX's predefined features; it does not state how many, we use
    ``num_features`` = 32, enough to span every linear reward of hopper's 14 inputs). The unit-norm weights
    w are not trained by gradient: :meth:`fit_posterior` samples their posterior
    (:func:`ipl_core.brex.metropolis_hastings`) and sets the reward to beta * (its MAP or mean). Until then
    w = 0. Neither P nor w is an ``nn.Parameter``: the model has no gradient-trained parameters.
    """

    trained_by_gradient = False

    def __init__(self, obs_dim: int, act_dim: int, num_features: int = 32, beta: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if num_features < 1 or beta <= 0:
            raise ValueError(f"num_features must be >= 1 and beta > 0, got {num_features} and {beta}")
        self.obs_dim, self.act_dim, self.beta = obs_dim, act_dim, beta
        in_dim = obs_dim + act_dim
        projection = torch.randn(in_dim, num_features, generator=generator) / math.sqrt(in_dim)
        self.register_buffer("projection", projection)
        self.register_buffer("weights", torch.zeros(num_features))

    def features(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """phi(s_t, a_t), (B, T, num_features)."""
        check_segments("BayesianREXReward", obs, act, self.obs_dim, self.act_dim)
        return torch.cat([obs, act], dim=-1) @ self.projection

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.features(obs, act) @ self.weights

    @torch.no_grad()
    def fit_posterior(self, prefs: PreferenceDataset, generator: torch.Generator, num_steps: int = 20_000,
                      burn_in: int = 5_000, step_size: float = 0.05, target_acceptance: float | None = 0.3,
                      estimate: str = "map") -> PosteriorSamples:
        """Sample p(w | prefs) by Metropolis-Hastings over the S - 1 transitions of each segment (the
        library's convention, as in :func:`reward_model_loss`) and set w to its ``"map"``
        or ``"mean"``. By default the step size adapts during burn-in towards 30% acceptance."""
        if estimate not in ("map", "mean"):
            raise ValueError(f"estimate must be 'map' or 'mean', got {estimate!r}")
        batch = full_preference_batch(prefs, device=self.weights.device)
        posterior = metropolis_hastings(
            self.features(batch.obs_1[:, :-1], batch.act_1[:, :-1]).sum(dim=1),
            self.features(batch.obs_2[:, :-1], batch.act_2[:, :-1]).sum(dim=1), batch.label,
            num_steps=num_steps, generator=generator, step_size=step_size, beta=self.beta, burn_in=burn_in,
            target_acceptance=target_acceptance,
        )
        chosen = posterior.map_weights if estimate == "map" else posterior.mean_weights
        self.weights.copy_(self.beta * chosen.to(self.weights.dtype))
        return posterior

    def fit(self, preferences: PreferenceDataset, generator: torch.Generator) -> PosteriorSamples:
        """The trainer's hook for models not trained by gradient: :meth:`fit_posterior` with its defaults
        (20k proposals after 5k of burn-in, MAP estimate)."""
        return self.fit_posterior(preferences, generator)


def reward_model_loss(model: RewardModel, pref: PreferenceBatch, members: bool = False) -> PreferenceLoss:
    """Bradley-Terry loss of a reward model (IPL Eq. 1-2) on the S - 1 transitions of each segment, the
    same (s_t, a_t) pairs whose implicit rewards IPL scores. With ``members=True`` the model and the batch
    have a leading member axis (:class:`ipl_core.agents.RewardModels`): one loss per member."""
    score_1 = model.segment_score(pref.obs_1[..., :-1, :], pref.act_1[..., :-1, :])
    score_2 = model.segment_score(pref.obs_2[..., :-1, :], pref.act_2[..., :-1, :])
    return preference_loss(score_1, score_2, pref.label, members=members)


def _check_prefs(prefs: PreferenceDataset) -> None:
    if not isinstance(prefs, PreferenceDataset):
        raise TypeError(f"prefs must be a PreferenceDataset, got {type(prefs).__name__}")


class RewardTraining(NamedTuple):
    """Per-step record of :func:`train_reward_model`."""

    loss: np.ndarray
    """(steps,): the Bradley-Terry cross-entropy of each minibatch (IPL Eq. 2)."""
    accuracy: np.ndarray
    """(steps,): the share of strict labels each minibatch's scores order correctly."""


def train_reward_model(model: RewardModel, prefs: PreferenceDataset, steps: int, rng: np.random.Generator,
                       batch_size: int = 8, lr: float = 3e-4, subsample_length: int = 0) -> RewardTraining:
    """Fit a gradient-trained reward model on its own, before IQL (the two-phase pipeline NMR and PT need):
    ``steps`` Adam steps on the Bradley-Terry loss (IPL Eq. 2) of minibatches of ``batch_size`` pairs.

    The batch (:func:`ipl_core.batches.sample_preference_batch`, ``subsample_length=0`` keeps whole
    segments) and the loss (:func:`reward_model_loss`) are those of the concurrent
    trainer. IPL Table 5: Adam, lr 3e-4, batch 8 pairs, 20k steps. B-REX is fitted by
    :meth:`BayesianREXReward.fit_posterior` instead.
    """
    if not model.trained_by_gradient:
        raise TypeError(f"{type(model).__name__} is not trained by gradient; call model.fit(prefs, ...)")
    _check_prefs(prefs)
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"steps and batch_size must be >= 1 and lr > 0, got {steps}, {batch_size}, {lr}")
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses, accuracies = np.empty(steps), np.empty(steps)
    model.train()
    for step in range(steps):
        batch = sample_preference_batch(prefs, batch_size, subsample_length, rng, device)
        result = reward_model_loss(model, batch)
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
        losses[step], accuracies[step] = result.loss.item(), result.accuracy.item()
    return RewardTraining(losses, accuracies)


@torch.no_grad()
def reward_model_accuracy(model: RewardModel, prefs: PreferenceDataset) -> float:
    """Share of strict labels of ``prefs`` whose preferred segment gets the larger ``segment_score`` (over
    the S - 1 transitions of each segment, like :func:`reward_model_loss`)."""
    _check_prefs(prefs)
    return float(reward_model_loss(model, full_preference_batch(prefs)).accuracy)


@torch.no_grad()
def relabel_rewards(model: RewardModel, observations: torch.Tensor, actions: torch.Tensor,
                    episode_ends: torch.Tensor, context: int = 100) -> torch.Tensor:
    """Per-step rewards (N,) for a flat offline dataset, from a (possibly non-Markovian) reward model.

    Each episode (``episode_ends`` marks its last step) is cut into consecutive chunks of ``context``
    steps and the model is run on each chunk; step t's reward is the model's output at t, so it sees the
    chunk's earlier steps and nothing later. For a Markovian model this equals r(s_t, a_t) step by step.
    """
    n = observations.shape[0]
    if observations.ndim != 2 or actions.ndim != 2 or actions.shape[0] != n or episode_ends.shape != (n,):
        raise ValueError(
            f"relabel_rewards expects observations (N, o), actions (N, a), episode_ends (N,), got "
            f"{tuple(observations.shape)}, {tuple(actions.shape)}, {tuple(episode_ends.shape)}"
        )
    if context < 1:
        raise ValueError(f"context must be >= 1, got {context}")
    rewards = torch.empty(n)
    device = next(itertools.chain(model.parameters(), model.buffers())).device
    ends = torch.nonzero(episode_ends.bool()).flatten().tolist()
    if not ends or ends[-1] != n - 1:
        ends.append(n - 1)
    start = 0
    for end in ends:
        for chunk_start in range(start, end + 1, context):
            chunk = slice(chunk_start, min(chunk_start + context, end + 1))
            obs, act = observations[None, chunk].to(device), actions[None, chunk].to(device)
            rewards[chunk] = model(obs, act)[0].cpu()
        start = end + 1
    return rewards


def relabelled(offline: OfflineDataset, model: RewardModel, context: int = 100) -> OfflineDataset:
    """A copy of ``offline`` whose ``rewards`` are the model's (:func:`relabel_rewards`): the second phase of
    the two-phase pipeline, after which the oracle method ``"iql"`` trains on the learned reward."""
    obs = torch.as_tensor(offline.observations, dtype=torch.float32)
    act = torch.as_tensor(offline.actions, dtype=torch.float32)
    rewards = relabel_rewards(model, obs, act, torch.as_tensor(offline.episode_ends()), context)
    return dataclasses.replace(offline, rewards=rewards.numpy().astype(offline.rewards.dtype),
                               source=f"{offline.source} relabelled by {type(model).__name__}")


def non_markovian_reward(obs_dim: int, act_dim: int, hidden_dims: Sequence[int]) -> NonMarkovianReward:
    """``"nmr"``: Kim et al.'s LSTM reward with embedding width ``hidden_dims[0]`` (256 in the paper)."""
    return NonMarkovianReward(obs_dim, act_dim, embed_dim=hidden_dims[0])


def preference_transformer(obs_dim: int, act_dim: int, hidden_dims: Sequence[int]) -> PreferenceTransformer:
    """``"pt"``: Kim et al.'s published setting (1 layer, 4 heads, width ``hidden_dims[0]`` = 256) with the
    preference-attention layer switched on."""
    return PreferenceTransformer(obs_dim, act_dim, embed_dim=hidden_dims[0], num_layers=1, num_heads=4)


def bayesian_rex_reward(obs_dim: int, act_dim: int, hidden_dims: Sequence[int]) -> BayesianREXReward:
    """``"brex"``: a linear reward over 32 random projections; ``hidden_dims`` is not used."""
    return BayesianREXReward(obs_dim, act_dim)


RewardFactory = Callable[[int, int, Sequence[int]], RewardModel]
"""Builds a reward model from (obs_dim, act_dim, hidden_dims)."""

REWARD_MODELS: dict[str, RewardFactory] = {
    "mr": MarkovianReward,
    "nmr": non_markovian_reward,
    "pt": preference_transformer,
    "brex": bayesian_rex_reward,
}
"""Reward-learning methods of the book by their ``make_agent`` name: IQL on top of this reward model."""


def synthetic_preferences(num_pairs: int, segment_length: int, obs_dim: int, act_dim: int,
                          generator: torch.Generator, theta: torch.Tensor | None = None,
                          ) -> tuple[PreferenceDataset, torch.Tensor]:
    """A small problem with a known answer: Gaussian states, actions clipped to [-1, 1], a linear
    ground-truth reward r(s, a) = theta . [s, a] (a random unit theta unless given), and perfect labels
    1[R_1 > R_2] (ties 0.5), R the return of the S - 1 transitions of a segment. Returns the dataset
    (with ``reward_i`` filled in) and theta; pass theta back in to draw a test set of the same problem.
    Used by the tests and the chapter.
    """
    if min(num_pairs, obs_dim, act_dim) < 1 or segment_length < 2:
        raise ValueError(
            f"num_pairs, obs_dim, act_dim must be >= 1 and segment_length >= 2, got {num_pairs}, "
            f"{obs_dim}, {act_dim}, {segment_length}"
        )
    if theta is None:
        theta = torch.randn(obs_dim + act_dim, generator=generator, dtype=torch.float64)
        theta = theta / theta.norm()
    elif theta.shape != (obs_dim + act_dim,):
        raise ValueError(f"theta must have shape ({obs_dim + act_dim},), got {tuple(theta.shape)}")
    theta = theta.double()
    shape = (2, num_pairs, segment_length)
    obs = torch.randn(*shape, obs_dim, generator=generator, dtype=torch.float64)
    act = torch.randn(*shape, act_dim, generator=generator, dtype=torch.float64).clamp(-1, 1)
    reward = torch.cat([obs, act], dim=-1) @ theta
    returns = reward[..., :-1].sum(dim=-1)
    label = (returns[0] > returns[1]).double() + 0.5 * (returns[0] == returns[1]).double()
    dataset = PreferenceDataset(
        obs_1=obs[0].float().numpy(), obs_2=obs[1].float().numpy(), action_1=act[0].float().numpy(),
        action_2=act[1].float().numpy(), label=label.float().numpy(), reward_1=reward[0].float().numpy(),
        reward_2=reward[1].float().numpy(), source="synthetic_preferences",
    )
    return dataset, theta.float()
