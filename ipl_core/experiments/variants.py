"""The methods of IPL's tables and figures as data: one named variant per column or curve.

A variant is the :class:`~ipl_core.config.OfflineConfig` fields that make a paper preset into one column:
the preset (``metaworld``, Table 6, or ``locomotion``, Table 5) comes from the study, the study's settings
(steps, schedule, seed) come next, and the variant's own changes win. :data:`VARIANTS` is the only place
that maps a name to those changes; the studies of :mod:`ipl_core.experiments.studies` list names as their
``variant`` axis. Taught in the reproduction chapters (book/reproduction/ipl_efficiency, ipl_locomotion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ipl_core.config import OfflineConfig, preset


@dataclass(frozen=True)
class Variant:
    """One column of a table or curve of a figure of the IPL paper."""

    label: str
    """How the paper writes it, e.g. ``IPL (64)``."""
    changes: dict[str, Any] = field(default_factory=dict)
    """OfflineConfig fields set on top of the preset and of the study's settings."""
    reward_model: str | None = None
    """For the two-phase baselines (NMR, PT): the non-Markovian reward model of
    :data:`~ipl_core.reward_models.REWARD_MODELS` fitted first on whole segments; the offline data is
    relabelled with it and ``changes["method"]`` (IQL) trains on that."""


LAMBDAS: tuple[float, ...] = (0.0, 0.125, 0.5, 2.0, 8.0)
"""lambda values of the sensitivity study: 0 (no regulariser, IPL Table 2), the default 0.5 (Tables 5-6),
and factors of 4 and 16 either way. Fig. 2 and Fig. 8 show their values only in the plots."""

REWARD_STEPS: tuple[int, ...] = (20, 200, 2_000, 5_000, 20_000, 50_000, 200_000)
"""Reward-model training steps of the sensitivity study: 20 (smoke); 200, 2k, 5k of a 5k-step ``cpu`` run;
2k to 200k of the paper's 200k-step run, whose default is 20k (Table 6)."""

TABLE_COLUMNS: dict[str, Variant] = {
    "iql": Variant("IQL (Oracle)", {"method": "iql"}),
    "mr": Variant("MR (reimpl.)", {"method": "mr"}),
    "ipl": Variant("IPL", {"method": "ipl"}),
    "ipl-no-aug": Variant("No Aug", {"method": "ipl", "subsample_length": 0}),
    "ipl-xql": Variant("IPL-XQL", {"method": "ipl-xql", "alpha": 2.0}),
    "brex": Variant("BREX (reimpl.)", {"method": "brex"}),
    "nmr": Variant("LSTM", {"method": "iql", "subsample_length": 0}, reward_model="nmr"),
    "pt": Variant("PT", {"method": "iql", "subsample_length": 0}, reward_model="pt"),
}
"""IPL Table 1, 2 and 7: "No Aug" trains on whole segments (``subsample_length=0``), IPL-XQL uses alpha = 2
(Table 5 caption). NMR and PT see whole segments too (sub-sampling does not apply to non-Markovian models,
IPL Sec. 4.1); the paper copies their numbers, and MR's first one, from Kim et al. (2023). Table 2's
"lambda = 0" column is ``ipl-lambda-0`` below."""

BUDGET_COLUMNS: dict[str, Variant] = {
    "ipl-64": Variant("IPL (64)", {"method": "ipl-awac", "hidden_dim": 64, "num_layers": 2}),
    "mr-35": Variant("MR (35)", {"method": "mr", "hidden_dim": 35, "num_layers": 2}),
    "mr-64": Variant("MR (64)", {"method": "mr", "hidden_dim": 64, "num_layers": 2}),
}
"""IPL Sec. 4.4, App. B.4, Table 8: IPL with AWAC (Algorithm 3) and two 64-unit layers against MR with the
same parameter budget (two 35-unit layers) and with two 64-unit layers (Table 4: 14,025, 14,012 and
34,892 parameters at MetaWorld shapes)."""

SWEEPS: dict[str, Variant] = {
    **{
        f"ipl-lambda-{lam:g}": Variant(f"IPL, lambda = {lam:g}", {"method": "ipl", "lam": lam})
        for lam in LAMBDAS
    },
    **{
        f"mr-reward-steps-{n}": Variant(f"MR, {n} reward steps", {"method": "mr", "reward_steps": n})
        for n in REWARD_STEPS
    },
}
"""IPL Fig. 2 middle and right (Fig. 8), and Table 2's lambda = 0: lambda or MR's reward steps varied."""

PRECISIONS: dict[str, Variant] = {
    "ipl-fp32": Variant("IPL, float32", {"method": "ipl", "precision": "fp32"}),
    "ipl-bf16": Variant("IPL, bfloat16 hidden layers", {"method": "ipl", "precision": "bf16"}),
}
"""IPL (with IQL, Table 6) in float32 and with bfloat16 in its hidden layers
(:func:`ipl_core.nets.set_precision`): does the faster arithmetic change a result?"""

VARIANTS: dict[str, Variant] = {**TABLE_COLUMNS, **BUDGET_COLUMNS, **SWEEPS, **PRECISIONS}
"""Every variant by name."""


def get_variant(name: str) -> Variant:
    """The variant called ``name``; an unknown name raises a KeyError listing the known ones."""
    if name not in VARIANTS:
        raise KeyError(f"unknown variant {name!r}; known variants: {sorted(VARIANTS)}")
    return VARIANTS[name]


def variant_config(name: str, preset_name: str, **settings: Any) -> OfflineConfig:
    """The config of variant ``name``: the preset ``preset_name``, then ``settings`` (a study's steps,
    schedule, seed...), then the variant's changes, which win (``mr-reward-steps-200`` trains its reward for
    200 steps whatever the study's ``reward_steps``)."""
    return preset(preset_name, **{**settings, **get_variant(name).changes})
