"""The seed axis of the online learners: Adam per member with masked steps, per-member gradient clipping,
per-seed state slices."""

from __future__ import annotations

import pytest
import torch

from ipl_core.online.members import MemberAdam, clip_member_grad_norm_, member_slice, stack_members


def test_member_adam_is_torch_adam_for_each_member_and_leaves_masked_members_alone() -> None:
    torch.manual_seed(0)
    weights = torch.randn(3, 4, 5, requires_grad=True)
    alone = [weights[e].detach().clone().requires_grad_(True) for e in range(3)]
    ours = MemberAdam([weights], lr=1e-2)
    theirs = [torch.optim.Adam([w], lr=1e-2) for w in alone]
    masks = [[True, True, True], [True, False, True], [False, False, True], [True, True, True]]
    for mask in masks:
        grad = torch.randn(3, 4, 5)
        before = weights.detach().clone()
        weights.grad = grad.clone()
        ours.step(torch.tensor(mask))
        for e, (w, opt) in enumerate(zip(alone, theirs, strict=True)):
            if mask[e]:
                w.grad = grad[e].clone()
                opt.step()
            else:
                assert torch.equal(weights[e], before[e])  # a masked member does not move
            assert torch.allclose(weights[e], w, atol=1e-6), e  # its own step count: Adam on it alone
    assert ours.steps.tolist() == [3, 2, 4]


def test_member_states_slice_and_stack_back() -> None:
    state = {"w": torch.arange(12.0).reshape(3, 4), "moments": [torch.ones(3, 2)], "step": 7,
             "scalar": torch.tensor(2.0)}
    parts = [member_slice(state, e) for e in range(3)]
    assert torch.equal(parts[1]["w"], torch.tensor([[4.0, 5.0, 6.0, 7.0]])) and parts[1]["step"] == 7
    joined = stack_members(parts)
    assert torch.equal(joined["w"], state["w"]) and torch.equal(joined["moments"][0], state["moments"][0])
    assert joined["scalar"].item() == 2.0


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_member_grad_norm_clips_each_member_as_torch_clips_it_alone(max_norm: float) -> None:
    """Member e's gradients end as ``torch.nn.utils.clip_grad_norm_`` leaves the same gradients alone: the
    members' norms differ (about 2 to 45), each is clipped by its own factor at 0.5, none at 100."""
    scales = torch.tensor([0.01, 1.0, 10.0]).view(3, 1, 1)
    grads = [torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1)) * scales,
             torch.randn(3, 1, 5, generator=torch.Generator().manual_seed(2))]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    norms = clip_member_grad_norm_(params, max_norm)
    for e in range(3):
        alone = [torch.zeros_like(g[e], requires_grad=True) for g in grads]
        for p, g in zip(alone, grads, strict=True):
            p.grad = g[e].clone()
        expected = torch.nn.utils.clip_grad_norm_(alone, max_norm)
        assert norms[e].item() == pytest.approx(expected.item(), rel=1e-6)
        for p, q in zip(params, alone, strict=True):
            assert torch.allclose(p.grad[e], q.grad, rtol=1e-6, atol=1e-7)
