"""Every loss against values computed by hand on tiny batches, and what each loss lets gradients reach."""

from __future__ import annotations

import math

import pytest
import torch

from ipl_core.losses import (
    awr_actor_loss,
    awr_weights,
    bellman_loss,
    expectile_loss,
    implicit_reward,
    ipl_preference_loss,
    linex_loss,
    value_loss,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_expectile_loss_weights_positive_and_negative_errors() -> None:
    # u = -2: (1 - 0.7) * 4 = 1.2; u = 1: 0.7 * 1 = 0.7.
    torch.testing.assert_close(expectile_loss(t(-2.0, 1.0), 0.7), t(1.2, 0.7))
    with pytest.raises(ValueError, match="expectile"):
        expectile_loss(t(1.0), 1.0)


def test_linex_loss_by_hand_and_its_clip() -> None:
    # z = (0, 1): exp(z) - z - 1 = (0, e - 2); z = -2: e^-2 + 1.
    torch.testing.assert_close(linex_loss(t(0.0, 2.0, -4.0), alpha=2.0), t(0.0, math.e - 2, math.exp(-2) + 1))
    torch.testing.assert_close(linex_loss(t(100.0), alpha=1.0), t(math.exp(7) - 8))
    with pytest.raises(ValueError, match="alpha"):
        linex_loss(t(1.0), alpha=0.0)


def test_linex_minimiser_is_the_soft_maximum() -> None:
    q = t(0.0, 1.0, 3.0)
    v = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([v], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = linex_loss(q - v, alpha=2.0, max_z=None).mean()
        loss.backward()
        return loss

    opt.step(closure)
    soft_max = 2.0 * torch.log(torch.exp(q / 2.0).mean())
    torch.testing.assert_close(v.detach(), soft_max, atol=1e-6, rtol=0)


def test_awr_weights_multiply_by_beta_and_clip() -> None:
    torch.testing.assert_close(awr_weights(t(0.0, 1.0, 10.0), beta=3.0), t(1.0, math.exp(3.0), 100.0))


def test_implicit_reward_by_hand_with_clip_and_without_value_gradient() -> None:
    q = t(1.0, 2.0, 3.0, 4.0, 5.0, 6.0).reshape(1, 2, 3)  # one member, two heads, three transitions
    next_v = t(10.0, -10.0, 1.0).reshape(1, 3).requires_grad_()
    discount = t(0.5, 0.5, 0.0).reshape(1, 3)
    expected = t(-4.0, 7.0, 3.0, -1.0, 10.0, 6.0).reshape(1, 2, 3)
    torch.testing.assert_close(implicit_reward(q, next_v, discount), expected)
    # clip V(s') to [-4, 4]: 1 - 2, 2 + 2, 3 - 0.
    torch.testing.assert_close(implicit_reward(q, next_v, discount, clip=4.0)[0, 0], t(-1.0, 4.0, 3.0))
    q = q.requires_grad_()
    implicit_reward(q, next_v, discount).sum().backward()
    assert next_v.grad is None
    torch.testing.assert_close(q.grad, torch.ones_like(q))


def test_ipl_preference_loss_by_hand() -> None:
    r_1 = t(1.0, 0.5).reshape(1, 1, 1, 2)  # (E, H, B, T)
    r_2 = t(0.0, 0.0).reshape(1, 1, 1, 2)
    r_off = t(2.0).reshape(1, 1, 1)
    out = ipl_preference_loss(r_1, r_2, r_off, t(1.0).reshape(1, 1), lam=0.5)
    bce = math.log1p(math.exp(-1.5))  # -log sigmoid(1.5 - 0)
    reg = 0.5 * 0.5 * (1.0 + 0.25 + 0.0 + 0.0) / 4 + 0.5 * 0.5 * 4.0
    torch.testing.assert_close(out.preference, t(bce))
    torch.testing.assert_close(out.regulariser, t(reg))
    torch.testing.assert_close(out.loss, t(bce + reg))
    assert out.accuracy.tolist() == [1.0]
    torch.testing.assert_close(out.reward_abs, t(3.5 / 5))


def test_regulariser_without_offline_batch_is_lambda_times_the_mean_square() -> None:
    """IPL Eq. 6's lam E_{D_p u D_o}[r^2] with D_o empty: lam mean(r^2) over the preference transitions (the
    authors' code), not half of it."""
    r_1 = t(1.0, 2.0).reshape(1, 1, 1, 2)
    r_2 = t(-1.0, 0.0).reshape(1, 1, 1, 2)
    out = ipl_preference_loss(r_1, r_2, torch.zeros(1, 1, 0, dtype=torch.float64), t(1.0).reshape(1, 1), 0.5)
    torch.testing.assert_close(out.regulariser, t(0.5 * (1 + 4 + 1 + 0) / 4))


def test_members_are_independent() -> None:
    """Two members in one call give each member's own loss: the first equals the one-member call."""
    g = torch.Generator().manual_seed(0)
    r_1, r_2 = torch.randn(2, 2, 3, 4, generator=g), torch.randn(2, 2, 3, 4, generator=g)
    r_off, label = torch.randn(2, 2, 5, generator=g), torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
    both = ipl_preference_loss(r_1, r_2, r_off, label, 0.5)
    first = ipl_preference_loss(r_1[:1], r_2[:1], r_off[:1], label[:1], 0.5)
    assert both.loss.shape == (2,)
    for a, b in zip(both, first, strict=True):
        torch.testing.assert_close(a[:1], b)


def test_ipl_preference_loss_soft_label_and_heads() -> None:
    # Two heads, label 0.5: the cross-entropy of each head from its definition, averaged.
    r_1 = t(1.0, -1.0).reshape(1, 2, 1, 1)
    r_2 = t(0.0, 0.0).reshape(1, 2, 1, 1)
    out = ipl_preference_loss(r_1, r_2, torch.zeros(1, 2, 0, dtype=torch.float64), t(0.5).reshape(1, 1),
                              lam=0.0)

    def bce(logit: float) -> float:
        p = 1 / (1 + math.exp(-logit))
        return -(0.5 * math.log(p) + 0.5 * math.log(1 - p))

    torch.testing.assert_close(out.loss, t((bce(1.0) + bce(-1.0)) / 2))
    assert torch.isnan(out.accuracy).all()  # no strict label


def test_ipl_preference_loss_rejects_bad_shapes() -> None:
    seg, off = torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 4)
    with pytest.raises(ValueError, match="label"):
        ipl_preference_loss(seg, seg, off, torch.zeros(1, 3), 0.5)
    with pytest.raises(ValueError, match="reward_1"):
        ipl_preference_loss(torch.zeros(2, 3), torch.zeros(2, 3), off, torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="reward_offline"):
        ipl_preference_loss(seg, seg, torch.zeros(1, 4), torch.zeros(1, 2), 0.5)
    with pytest.raises(ValueError, match="lam"):
        ipl_preference_loss(seg, seg, off, torch.zeros(1, 2), -1)


def test_value_loss_kinds_and_detached_target() -> None:
    target = t(1.0, 3.0).reshape(1, 2).requires_grad_()
    v = t(2.0, 1.0).reshape(1, 2).requires_grad_()
    out = value_loss(target, v, "expectile", expectile=0.9)
    torch.testing.assert_close(out.loss, t((0.1 * 1 + 0.9 * 4) / 2))
    out.loss.sum().backward()
    assert target.grad is None and v.grad is not None
    out = value_loss(t(1.0, 3.0).reshape(1, 2), t(2.0, 1.0).reshape(1, 2), "linex", alpha=2.0)
    expected = ((math.exp(-0.5) + 0.5 - 1) + (math.exp(1.0) - 2)) / 2
    torch.testing.assert_close(out.loss, t(expected))
    weighted = value_loss(t(1.0, 3.0).reshape(1, 2), t(2.0, 1.0).reshape(1, 2), "expectile", 0.9,
                          weight=t(0.25, 0.75))
    torch.testing.assert_close(weighted.loss, t(0.25 * 0.1 * 1 + 0.75 * 0.9 * 4))
    with pytest.raises(ValueError, match="kind"):
        value_loss(t(1.0).reshape(1, 1), t(1.0).reshape(1, 1), "mse")


def test_bellman_loss_sums_heads() -> None:
    q = t(1.0, 2.0, 3.0, 4.0).reshape(1, 2, 2).requires_grad_()
    target = t(1.0, 1.0).reshape(1, 2).requires_grad_()
    out = bellman_loss(q, target)
    torch.testing.assert_close(out.loss, t(0.5 + 6.5))
    out.loss.sum().backward()
    assert target.grad is None


def test_awr_actor_loss_by_hand_and_detached_advantage() -> None:
    log_prob = t(-1.0, -2.0).reshape(1, 2).requires_grad_()
    advantage = t(0.0, math.log(2.0)).reshape(1, 2).requires_grad_()
    out = awr_actor_loss(log_prob, advantage, beta=1.0)
    torch.testing.assert_close(out.loss, t(2.5))
    torch.testing.assert_close(out.weight, t(1.5))
    out.loss.sum().backward()
    assert advantage.grad is None
    torch.testing.assert_close(log_prob.grad, t(-0.5, -1.0).reshape(1, 2))
    weighted = awr_actor_loss(log_prob, advantage, beta=1.0, row_weight=t(0.25, 0.75))
    torch.testing.assert_close(weighted.loss, t(0.25 * 1.0 + 0.75 * 2 * 2.0))
