"""bfloat16 in the hidden layers (``OfflineConfig.precision = "bf16"``): what it keeps exact, what it
changes, and that the setting reaches every network of a training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipl_core.agents import make_agent
from ipl_core.config import OfflineConfig
from ipl_core.losses import implicit_reward
from ipl_core.nets import EnsembleMLP, set_precision

OBS, ACT, N = 39, 4, 512  # MetaWorld's shapes


def _implicit_reward_error(level: float, precision: str, whole: bool = False) -> float:
    """Relative error of r_Q = Q - gamma V(s') against float32 for a critic and a value network whose outputs
    sit at ``level`` (as a trained critic's do: IPL's rewards are O(1), its Q-values O(1 / (1 - gamma))).
    ``whole`` puts the whole forward pass under autocast instead (what the setting avoids)."""
    agent = make_agent("ipl", OBS, ACT, (256, 256, 256), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # shift both networks' outputs to ``level`` through their last layers' bias
        agent.critic.net.layers[-1].bias.add_(level)
        agent.value.net.layers[-1].bias.add_(level / 0.99)
    g = torch.Generator().manual_seed(1)
    obs, next_obs = torch.randn(1, N, OBS, generator=g), torch.randn(1, N, OBS, generator=g)
    act = torch.rand(1, N, ACT, generator=g) * 2 - 1
    discount = torch.full((1, N), 0.99)

    def reward() -> torch.Tensor:
        return implicit_reward(agent.critic(obs, act), agent.value(next_obs), discount)

    exact = reward()
    set_precision(agent, precision)
    if whole:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            approx = reward().float()
    else:
        approx = reward()
    return float((approx - exact).detach().norm() / exact.detach().norm())


@pytest.mark.parametrize("level", [0.1, 10.0, 100.0])
def test_bf16_hidden_layers_keep_the_implicit_reward_at_a_large_q(level: float) -> None:
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2 %): rounding the hidden activations
    # moves r by about that share of its own size, whatever the level, since the level sits in float32.
    # The bound 1 % leaves room for the sums of 256 rounded terms.
    assert _implicit_reward_error(level, "bf16") < 0.01
    assert _implicit_reward_error(level, "fp32") == 0.0


def test_bf16_everywhere_would_lose_the_implicit_reward_at_a_large_q() -> None:
    # a Q of 100 rounded to bfloat16 is off by up to 0.25, and r = Q - 0.99 V(s') is O(1): an error of
    # its own size
    assert _implicit_reward_error(100.0, "fp32", whole=True) > 0.05


def test_precision_changes_only_the_hidden_layers() -> None:
    net = EnsembleMLP((2,), 5, 3, (16,), generators=[torch.Generator().manual_seed(0)] * 2)
    x = torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(1))
    before = net(x)
    assert torch.equal(set_precision(net, "bf16")(x), before)  # one hidden layer: nothing in between
    deep = EnsembleMLP((2,), 5, 3, (16, 16), generators=[torch.Generator().manual_seed(0)] * 2)
    fp32 = deep(x)
    bf16 = set_precision(deep, "bf16")(x)
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    torch.testing.assert_close(bf16, fp32, rtol=0.02, atol=0.02)  # bfloat16 rounding of 16-unit sums
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16'\), got 'fp16'"):
        set_precision(deep, "fp16")
    with pytest.raises(ValueError, match=r"OfflineConfig\.precision must be one of"):
        OfflineConfig(precision="half")


def test_a_bf16_run_trains_and_is_not_the_fp32_run() -> None:
    from ipl_core.toy import point_reach_datasets
    from ipl_core.trainer import train

    offline, prefs = point_reach_datasets(episodes=4, num_pairs=8)
    results = {}
    for precision in ("fp32", "bf16"):
        cfg = OfflineConfig(method="ipl", hidden_dim=32, num_layers=3, steps=30, offline_batch_size=0,
                            pref_batch_size=4, subsample_length=0, eval_every=0, log_every=10,
                            precision=precision)
        results[precision] = train(cfg, offline, prefs, progress=False)
    fp32, bf16 = (results[p].metrics.query("metric == 'critic_loss'")["value"].to_numpy()
                  for p in ("fp32", "bf16"))
    assert np.isfinite(bf16).all() and not np.array_equal(fp32, bf16)
    np.testing.assert_allclose(bf16, fp32, rtol=0.05)  # 30 steps of bfloat16 rounding, not another run
