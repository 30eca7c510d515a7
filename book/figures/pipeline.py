"""Draw the preface's figure: two-stage preference-based RL against IPL (after IPL Fig. 1).

Run `python book/figures/pipeline.py` to rewrite `book/figures/pipeline.svg`; the output is byte-for-byte
reproducible (tests/test_book_figures.py regenerates it and compares).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).with_name("pipeline.svg")
GREY, BLUE, ORANGE = "#f2f2f2", "#dbe8f6", "#fbe3cf"


def _box(ax: plt.Axes, x: float, y: float, text: str, color: str, width: float = 2.3) -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.42), width, 0.84, boxstyle="round,pad=0.04",
                                facecolor=color, edgecolor="#333333", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=10.5)


def _arrow(ax: plt.Axes, x0: float, x1: float, y: float, label: str = "") -> None:
    ax.add_patch(FancyArrowPatch((x0, y), (x1, y), arrowstyle="-|>", mutation_scale=14, color="#333333"))
    if label:
        ax.text((x0 + x1) / 2, y + 0.08, label, ha="center", va="bottom", fontsize=9, color="#444444")


def draw() -> plt.Figure:
    """The figure: two rows of boxes, the reward model (top) and the Q-function alone (bottom)."""
    fig, ax = plt.subplots(figsize=(9.6, 3.6))
    ax.set(xlim=(-0.3, 12.8), ylim=(-0.4, 4.1))
    ax.axis("off")
    top, bottom = 2.9, 0.7
    ax.text(-0.2, top + 0.78, "Two-stage (PEBBLE, PT, MR, MRN)", fontsize=11, fontweight="bold")
    _box(ax, 1.2, top, "preferences\n$(\\sigma^{(1)}, \\sigma^{(2)}, y)$", GREY)
    _box(ax, 4.6, top, "reward model $r_\\psi$\nBradley-Terry loss", ORANGE)
    _box(ax, 8.0, top, "RL on $r_\\psi$\n(IQL, SAC, ...)\n$Q_\\theta$", BLUE)
    _box(ax, 11.3, top, "policy $\\pi$", GREY, width=1.9)
    _arrow(ax, 2.4, 3.4, top, "fit")
    _arrow(ax, 5.8, 6.8, top, "relabel")
    _arrow(ax, 9.2, 10.3, top, "extract")
    ax.text(-0.2, bottom + 0.78, "IPL: no reward model", fontsize=11, fontweight="bold")
    _box(ax, 1.2, bottom, "preferences\n$(\\sigma^{(1)}, \\sigma^{(2)}, y)$", GREY)
    _box(ax, 6.3, bottom, "one Q-function $Q_\\theta$, fitted so that its\n"
         "implicit reward $r_Q = \\mathcal{T} Q$ explains the labels", BLUE, width=5.6)
    _box(ax, 11.3, bottom, "policy $\\pi$", GREY, width=1.9)
    _arrow(ax, 2.4, 3.45, bottom, "fit")
    _arrow(ax, 9.15, 10.3, bottom, "extract")
    return fig


def main(out: Path = OUT) -> Path:
    plt.rcParams["svg.hashsalt"] = "ipl-book"
    plt.rcParams["svg.fonttype"] = "path"
    fig = draw()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
