"""The labelling widget for Jupyter (classic, Lab, Colab): a thin ``anywidget`` view of a LabellingState.

It shows the teacher's question, the current pair as one looping video (segment 1 left, segment 2 right),
buttons and keys for left (←), right (→), equal (↓ or E), skip (S) and undo (U or Backspace), and a progress
bar. Every press goes to :class:`~ipl_core.labelling.LabellingState`, which saves at once; the widget only
draws what it sends back. Taught in the appendix "Be the teacher"
(book/appendix/be_the_teacher.ipynb).
"""

from __future__ import annotations

import base64
from typing import Any

from ipl_core.labelling import LabellingState

KEYS = {"ArrowLeft": "left", "ArrowRight": "right", "ArrowDown": "equal", "e": "equal", "s": "skip",
        "u": "undo", "Backspace": "undo"}
"""Keyboard keys and the action each one triggers (the same in the book's static labelling page)."""

_ESM = """
const KEYS = %(keys)s;
function render({ model, el }) {
  el.classList.add("ipl-labelling");
  el.tabIndex = 0;
  el.setAttribute("data-lm-suppress-shortcuts", "true");  // JupyterLab: keys go to the widget
  el.innerHTML = `
    <style>
      .ipl-labelling { font-family: sans-serif; max-width: 560px; outline: none; }
      .ipl-labelling:focus { box-shadow: 0 0 0 2px #4a90d9; }
      .ipl-labelling video { width: 100%%; image-rendering: pixelated; background: #000; }
      .ipl-labelling .sides { display: flex; justify-content: space-between; font-weight: bold; }
      .ipl-labelling button { margin: 4px 4px 0 0; padding: 4px 10px; }
      .ipl-labelling progress { width: 100%%; }
    </style>
    <p class="question"></p>
    <div class="sides"><span>left</span><span>right</span></div>
    <video autoplay loop muted playsinline></video>
    <div class="buttons"></div>
    <progress></progress>
    <p class="status"></p>`;
  const buttons = el.querySelector(".buttons");
  for (const [action, text] of [["left", "← left"], ["right", "right →"], ["equal", "↓ equal"],
                                ["skip", "S skip"], ["undo", "U undo"]]) {
    const b = document.createElement("button");
    b.textContent = text; b.dataset.action = action;
    b.addEventListener("click", () => { model.send({ action }); el.focus(); });
    buttons.appendChild(b);
  }
  el.addEventListener("keydown", (event) => {
    const action = KEYS[event.key];
    if (!action) return;
    event.preventDefault(); event.stopPropagation();
    model.send({ action });
  });
  const draw = () => {
    const s = model.get("state");
    el.querySelector(".question").textContent = s.question;
    const video = el.querySelector("video");
    if (s.clip && video.src !== s.clip) { video.src = s.clip; video.play().catch(() => {}); }
    video.style.display = s.clip ? "" : "none";
    const bar = el.querySelector("progress");
    bar.max = s.total; bar.value = s.done;
    el.querySelector(".status").textContent = s.pair === null
      ? `All ${s.total} pairs answered. ${s.message}`
      : `Pair ${s.pair + 1} of ${s.total}; ${s.done} answered. ${s.message}`;
    for (const b of buttons.children) b.disabled = s.pair === null && b.dataset.action !== "undo";
  };
  model.on("change:state", draw);
  draw();
}
export default { render };
"""


def clip_data_url(labelling: LabellingState, pair: int | None) -> str:
    """The clip of ``pair`` as a ``data:video/mp4;base64,...`` URL ("" for None)."""
    if pair is None:
        return ""
    return "data:video/mp4;base64," + base64.b64encode(labelling.queries.clip(pair).read_bytes()).decode()


def view_state(labelling: LabellingState, message: str = "") -> dict[str, Any]:
    """What the widget draws: the question, the current pair and its clip, progress, and a message."""
    pair = labelling.current
    return {"question": labelling.question, "pair": pair, "done": labelling.done, "total": labelling.total,
            "clip": clip_data_url(labelling, pair), "message": message}


def handle(labelling: LabellingState, action: str) -> str:
    """Apply a button or key ``action`` to ``labelling``; returns the message to show."""
    if action == "undo":
        pair = labelling.undo()
        return "Nothing to undo." if pair is None else f"Took back the answer to pair {pair + 1}."
    pair = labelling.current
    if pair is None:
        return "Every pair has an answer; undo to change one."
    labelling.answer(action)
    return f"Saved '{action}' for pair {pair + 1} to {labelling.path.name}."


def labelling_widget(labelling: LabellingState) -> Any:
    """The widget (an ``anywidget.AnyWidget``) that labels the pairs of ``labelling``; display it."""
    import json

    import anywidget
    import traitlets

    class LabellingWidget(anywidget.AnyWidget):
        _esm = _ESM % {"keys": json.dumps(KEYS)}
        state = traitlets.Dict().tag(sync=True)

    widget = LabellingWidget(state=view_state(labelling))

    def on_message(_widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        action = content.get("action")
        if action in ("left", "right", "equal", "skip", "undo"):
            widget.state = view_state(labelling, handle(labelling, action))

    widget.on_msg(on_message)
    return widget
