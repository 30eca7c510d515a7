"""Network building blocks shared by every algorithm of the book.

MLPs with orthogonal initialisation; the agents' networks with a leading *member* axis E (one member per seed,
E = 1 for a single run): the critic ensemble Q_i(s, a), the state value V(s), the Gaussian actor pi(a|s), all
built on :class:`EnsembleLinear`; and Polyak-averaged target copies that hold buffers, not parameters. Taught
in the chapter "IPL in practice" (book/ipl/offline.ipynb).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
"""The actor's log standard deviation is clamped to this range before use."""
LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def mlp(
    in_dim: int,
    out_dim: int,
    hidden_dims: Sequence[int] = (256, 256),
    activation: type[nn.Module] = nn.ReLU,
    output_gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A multi-layer perceptron with orthogonal initialisation (gain sqrt(2) inside, ``output_gain`` last)
    and zero biases. ``hidden_dims=(256, 256)`` means two hidden layers of 256 units. Pass ``generator``
    to make the initial weights independent of torch's global random state."""
    if in_dim <= 0 or out_dim <= 0 or any(h <= 0 for h in hidden_dims):
        raise ValueError(
            f"mlp expects positive sizes, got in_dim={in_dim}, out_dim={out_dim}, hidden_dims={hidden_dims}"
        )
    dims = [in_dim, *hidden_dims, out_dim]
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(dims)):
        linear = nn.Linear(d_in, d_out)
        last = i == len(dims) - 2
        gain = output_gain if last else nn.init.calculate_gain("relu")
        nn.init.orthogonal_(linear.weight, gain=gain, generator=generator)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


def count_parameters(module: nn.Module) -> int:
    """Number of learnable scalars of ``module`` (the quantity of IPL Table 4)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _generators(generators: Sequence[torch.Generator | None] | None, count: int,
                what: str) -> list[torch.Generator | None]:
    if generators is None:
        return [None] * count
    generators = list(generators)
    if len(generators) != count:
        raise ValueError(f"{what} needs one generator per member ({count}), got {len(generators)}")
    return generators


class EnsembleLinear(nn.Module):
    """Independent affine maps, one per member of a leading member axis: y[m] = x[m] W[m]^T + b[m].

    ``weight`` is ``(*members, out_dim, in_dim)`` (``nn.Linear``'s layout) and ``bias``
    ``(*members, 1, out_dim)``; the input is ``(M, N, in_dim)`` with the member axes flattened into
    M = prod(members). All members run in one batched matrix product (``torch.baddbmm``), the "vectorised
    linear layer" of ensemble methods such as SAC-N/EDAC."""

    def __init__(self, members: tuple[int, ...], in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.members, self.in_dim, self.out_dim = tuple(members), in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(*members, out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(*members, 1, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.reshape(-1, 1, self.out_dim), x,
                             self.weight.reshape(-1, self.out_dim, self.in_dim).transpose(1, 2))


def member_noise(shape: Sequence[int], generators: Sequence[torch.Generator | None],
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise ``(len(generators), *shape)`` on the CPU, member e's drawn from
    ``generators[e]`` (zeros where it is None: a member that draws nothing), so that a seed draws the same
    noise on any device and in a batch of any size."""
    return torch.stack([torch.zeros(shape, dtype=dtype) if g is None
                        else torch.randn(shape, generator=g, dtype=dtype) for g in generators])


def require_layout(state: Mapping[str, object], module: nn.Module, source: object, what: str,
                   remedy: str) -> None:
    """Stop with an error naming ``source`` when the weights ``state`` has other names than ``module``'s (a
    file written by another version of the network), before ``load_state_dict`` fails without saying where."""
    expected = set(module.state_dict())
    if set(state) != expected:
        raise ValueError(f"{source} holds {what} of another layout (expected keys such as "
                         f"{sorted(expected - set(state))[:2]}); {remedy}")


class EnsembleMLP(nn.Module):
    """Independent MLPs with ReLU (or ``activation``), one per member, evaluated together
    (:class:`EnsembleLinear` layers).

    Member m is initialised exactly as ``mlp(..., generator=generators[m])`` would be: orthogonal weights
    (gain ``hidden_gain`` inside, ``output_gain`` last), zero biases, drawn member after member. So one
    member built with seed k equals the network a single-seed run with seed k builds."""

    def __init__(self, members: tuple[int, ...], in_dim: int, out_dim: int, hidden_dims: Sequence[int],
                 output_gain: float = 1.0, hidden_gain: float = math.sqrt(2.0),
                 generators: Sequence[torch.Generator | None] | None = None,
                 activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu) -> None:
        super().__init__()
        self.members, self.in_dim, self.out_dim, self.activation = tuple(members), in_dim, out_dim, activation
        self.bf16_hidden = False
        """Run the layers between the first and the last under bfloat16 autocast (:func:`set_precision`)."""
        dims = [in_dim, *hidden_dims, out_dim]
        if min(dims) <= 0 or not members or min(members) <= 0:
            raise ValueError(f"EnsembleMLP expects positive sizes, got members={members}, in_dim={in_dim}, "
                             f"out_dim={out_dim}, hidden_dims={tuple(hidden_dims)}")
        self.layers = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in itertools.pairwise(dims))
        count = math.prod(members)
        gains = [hidden_gain] * (len(self.layers) - 1) + [output_gain]
        with torch.no_grad():
            for m, generator in enumerate(_generators(generators, count, "EnsembleMLP")):
                for layer, gain in zip(self.layers, gains, strict=True):
                    weight = layer.weight.view(count, layer.out_dim, layer.in_dim)[m]
                    nn.init.orthogonal_(weight, gain=gain, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(*members, N, in_dim)`` -> ``(*members, N, out_dim)``."""
        if x.shape[:-2] != self.members or x.shape[-1] != self.in_dim:
            raise ValueError(f"EnsembleMLP expects input (*{self.members}, N, {self.in_dim}), got "
                             f"{tuple(x.shape)}")
        n = x.shape[-2]
        x = x.reshape(-1, n, self.in_dim)  # the member axes flattened, once for all layers
        first, *middle, last = self.layers  # iterated: slicing a ModuleList builds a new one at every call
        if self.bf16_hidden and middle:
            x = self.activation(first(x))
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                for layer in middle:
                    x = self.activation(layer(x))
            return last(x.float()).view(*self.members, n, self.out_dim)
        for layer in (first, *middle):
            x = self.activation(layer(x))
        return last(x).view(*self.members, n, self.out_dim)


PRECISIONS = ("fp32", "bf16")
"""Arithmetic of the networks' forward passes: float32 throughout, or bfloat16 in the hidden layers."""


def set_precision(module: nn.Module, precision: str) -> nn.Module:
    """Set every :class:`EnsembleMLP` inside ``module`` to ``precision`` and return ``module``.

    ``"bf16"`` runs the layers between the first and the last under ``torch.autocast(dtype=bfloat16)``;
    the first and last layers, every loss, target and optimiser state stay in float32. The output layer
    in float32 keeps the level of a large Q (held by its bias and weights) exact, which matters for the
    implicit reward Q - gamma V(s'), a small difference of two large numbers. An MLP with one hidden layer
    has no layer in between and runs in float32 either way."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    for sub in module.modules():
        if isinstance(sub, EnsembleMLP):
            sub.bf16_hidden = precision == "bf16"
    return module


class CriticEnsemble(nn.Module):
    """``num_critics`` independent Q-networks Q_i(s, a) for each of ``members`` seeds, one MLP of the
    concatenated state and action each, all evaluated in one batched product.

    ``forward`` maps obs (E, N, obs_dim) and act (E, N, act_dim) to (E, num_critics, N). IQL and IPL-IQL
    use two heads (the "twin-Q" of TD3/IQL), IPL-AWAC one (IPL App. B.4)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: Sequence[int], num_critics: int = 2,
                 members: int = 1, generators: Sequence[torch.Generator | None] | None = None,
                 hidden_gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        if num_critics < 1:
            raise ValueError(f"num_critics must be at least 1, got {num_critics}")
        self.num_critics = num_critics
        per_head = [g for g in _generators(generators, members, "CriticEnsemble") for _ in range(num_critics)]
        self.net = EnsembleMLP((members, num_critics), obs_dim + act_dim, 1, hidden_dims,
                               hidden_gain=hidden_gain, generators=per_head)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], dim=-1).unsqueeze(1)
        return self.net(x.expand(-1, self.num_critics, -1, -1)).squeeze(-1)


class ValueNetwork(nn.Module):
    """V(s) of each member: obs (E, N, obs_dim) -> (E, N) (IQL's value network, fitted by expectile or
    linex regression)."""

    def __init__(self, obs_dim: int, hidden_dims: Sequence[int], members: int = 1,
                 generators: Sequence[torch.Generator | None] | None = None,
                 hidden_gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        self.net = EnsembleMLP((members,), obs_dim, 1, hidden_dims, hidden_gain=hidden_gain,
                               generators=generators)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class GaussianActor(nn.Module):
    """pi(a|s) = Normal(tanh(mlp(s)), exp(log_std)) with a state-independent learned log-std per member.

    The mean is squashed by tanh into the action box [-1, 1]; the log-std, (E, 1, act_dim), is clamped to
    [``LOG_STD_MIN``, ``LOG_STD_MAX``]. Inputs are (E, N, obs_dim). Evaluation acts with the mean
    (:meth:`act`)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: Sequence[int], members: int = 1,
                 generators: Sequence[torch.Generator | None] | None = None,
                 hidden_gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        self.net = EnsembleMLP((members,), obs_dim, act_dim, hidden_dims, hidden_gain=hidden_gain,
                               generators=generators)
        self.log_std = nn.Parameter(torch.zeros(members, 1, act_dim))

    @property
    def members(self) -> int:
        """E, the number of members."""
        return self.log_std.shape[0]

    def mean_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Normal's mean tanh(mlp(s)), (E, N, act_dim), and standard deviation, (E, 1, act_dim)."""
        return torch.tanh(self.net(obs)), self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) summed over action dimensions, (E, N): the Normal log-density written out."""
        mean, std = self.mean_std(obs)
        log_density = -(act - mean).square() / (2 * std.square()) - std.log() - LOG_SQRT_2PI
        return log_density.sum(dim=-1)

    def sample(self, obs: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """A draw a ~ pi(.|s) (mean + std * standard normal), member e's noise from ``generators[e]``. The
        generators are CPU generators whatever the device, so a run draws the same noise on any device."""
        mean, std = self.mean_std(obs)
        noise = member_noise(mean.shape[1:], _generators(generators, mean.shape[0], "GaussianActor.sample"),
                             obs.dtype)
        return mean + std * noise.to(obs.device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic evaluation action: the tanh-squashed mean."""
        return torch.tanh(self.net(obs))


def to_action_box(unit: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map actions in [-1, 1] (the squashed actor's range) linearly onto the box [low, high]."""
    return low + (unit + 1.0) * 0.5 * (high - low)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters are buffers: it is saved in ``state_dict`` and moves with
    ``.to()``, but ``parameters()`` (hence optimisers and parameter counts) do not see it."""
    target = copy.deepcopy(module)
    for sub in target.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            del sub._parameters[name]
            sub.register_buffer(name, param.detach().clone())
    return target


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float, members: torch.Tensor | None = None
                  ) -> None:
    """target <- tau * source + (1 - tau) * target for every parameter of ``source`` (soft target update);
    the target holds them as parameters or as buffers of the same names. With ``members`` (one bool per
    seed of the leading axis) only the seeds marked true move; otherwise one fused call."""
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"polyak tau must lie in (0, 1], got {tau}")
    held = dict(target.named_parameters()) | dict(target.named_buffers())
    sources = [p for _, p in source.named_parameters()]
    targets = [held[name] for name, _ in source.named_parameters()]
    if members is None or bool(members.all()):
        torch._foreach_lerp_(targets, sources, tau)
        return
    for p_target, p in zip(targets, sources, strict=True):
        p_target.lerp_(p, tau * members.to(p.device, p.dtype).view((-1,) + (1,) * (p.ndim - 1)))
