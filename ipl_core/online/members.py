"""The seed axis of the online learners: E independent seeds trained together in one process.

Every network and optimiser state of an online learner has a leading *member* axis of size E (E = 1 for a
single run): seed e is member e. :class:`MemberAdam` is Adam with one step count per member and a mask of
the members that step, since the seeds of a batch need not update at the same moments (PEBBLE's reward
training stops each seed at its own accuracy). :func:`member_slice` and :func:`stack_members` cut a state
into per-seed pieces and join them again, so each seed keeps its own checkpoint. Taught in the appendix
"Running the experiments at scale" (book/appendix/scale.ipynb).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ipl_core.seeding import torch_generator


class MemberAdam:
    """Adam (Kingma and Ba 2015) on tensors whose first axis holds independent members.

    Member e has its own step count, so its bias corrections, and so its whole trajectory, are those of
    Adam run on member e alone; :meth:`step` with ``active`` updates only the members marked true and leaves
    the others, parameters and moments, exactly as they were."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("MemberAdam needs at least one parameter")
        members = {p.shape[0] for p in self.params}
        if len(members) != 1:
            raise ValueError(f"MemberAdam expects one leading member axis for all parameters, got sizes "
                             f"{sorted(members)}")
        self.members = members.pop()
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = torch.zeros(self.members, dtype=torch.float64)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """One Adam step of the members ``active`` (a bool tensor (E,) on the CPU; None: all)."""
        beta_1, beta_2 = self.betas
        mask = torch.ones(self.members, dtype=torch.bool) if active is None else active.cpu()
        self.steps += mask.double()
        if bool(mask.all()) and bool((self.steps == self.steps[0]).all()):
            self._step_together(float(self.steps[0]))
            return
        steps = self.steps.clamp(min=1.0)
        step_size = (self.lr / (1 - beta_1 ** steps)).float()
        root_correction = (1 - beta_2 ** steps).sqrt().float()
        everyone = bool(mask.all())  # below: members at different step counts, or some masked
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:
                continue
            shape = (self.members,) + (1,) * (p.ndim - 1)
            keep = mask.to(p.device).view(shape)
            g = p.grad
            new_m = m.lerp(g, 1 - beta_1)
            new_v = v.mul(beta_2).addcmul_(g, g, value=1 - beta_2)
            denom = new_v.sqrt().div_(root_correction.to(p.device).view(shape)).add_(self.eps)
            new_p = p - step_size.to(p.device).view(shape) * (new_m / denom)  # as addcdiv rounds
            if not everyone:
                new_m, new_v, new_p = (torch.where(keep, new, old) for new, old in ((new_m, m), (new_v, v),
                                                                                    (new_p, p)))
            m.copy_(new_m)
            v.copy_(new_v)
            p.copy_(new_p)

    def _step_together(self, step: float) -> None:
        """Every member steps and all have taken the same number of steps: one bias correction for all, in
        fused multi-tensor operations (the arithmetic of ``torch.optim.Adam``'s foreach path)."""
        beta_1, beta_2 = self.betas
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        params, grads = [self.params[i] for i in live], [self.params[i].grad for i in live]
        exp_avg, exp_avg_sq = [self.exp_avg[i] for i in live], [self.exp_avg_sq[i] for i in live]
        torch._foreach_lerp_(exp_avg, grads, 1 - beta_1)
        torch._foreach_mul_(exp_avg_sq, beta_2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta_2)
        step_size = self.lr / (1 - beta_1 ** step)
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, math.sqrt(1 - beta_2 ** step))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, -step_size)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps.clone(), "exp_avg": [m.clone() for m in self.exp_avg],
                "exp_avg_sq": [v.clone() for v in self.exp_avg_sq]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"].to(torch.float64).clone()
        for mine, saved in ((self.exp_avg, state["exp_avg"]), (self.exp_avg_sq, state["exp_avg_sq"])):
            for target, value in zip(mine, saved, strict=True):
                target.copy_(value)


def clip_member_grad_norm_(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for each member on its own: member e's gradients, over all
    ``params``, are scaled by ``min(1, max_norm / (norm_e + 1e-6))``, norm_e their joint 2-norm. Returns the
    norms before clipping, (E,)."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view((-1,) + (1,) * (g.ndim - 1)))
    return norms


def member_slice(value: Any, e: int) -> Any:
    """Member ``e`` of a state (nested dicts and lists of tensors with a leading member axis), kept as a
    member axis of size 1 and copied to the CPU; other values are kept as they are."""
    if torch.is_tensor(value):
        return value[e:e + 1].detach().cpu().clone() if value.ndim else value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: member_slice(v, e) for k, v in value.items()}
    if isinstance(value, list):
        return [member_slice(v, e) for v in value]
    return value


def stack_members(values: Sequence[Any]) -> Any:
    """The inverse of :func:`member_slice`: per-member states joined along their member axes."""
    first = values[0]
    if torch.is_tensor(first):
        return torch.cat(list(values)) if first.ndim else first
    if isinstance(first, dict):
        return {k: stack_members([v[k] for v in values]) for k in first}
    if isinstance(first, list):
        return [stack_members([v[i] for v in values]) for i in range(len(first))]
    return first


def init_generators(seeds: Sequence[int], role: str = "init") -> list[torch.Generator]:
    """One CPU generator per seed for initial weights, on stream (seed, ``role``) of
    :mod:`ipl_core.seeding` (``"critic_reset"``: PEBBLE's reset critic; ``"reward_init"``: the ensemble)."""
    return [torch_generator(int(seed), role) for seed in seeds]
