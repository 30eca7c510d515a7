"""The labelling widget for Jupyter (classic, Lab, Colab): a thin ``anywidget`` view of a LabellingSession.

It shows the teacher's question, the current pair as one looping video (segment 1 left, segment 2 right),
buttons and keys for left (←), right (→), equal (↓ or E), skip (S) and undo (U or Backspace), and a progress
bar. Every press goes to :class:`~ipl_core.labelling.LabellingSession`, which saves at once; the widget only
draws the state the session sends back. Taught in the appendix "Be the teacher"
(book/appendix/be_the_teacher.ipynb).
"""

from __future__ import annotations

import base64
from typing import Any

from ipl_core.labelling import LabellingSession

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


def clip_data_url(session: LabellingSession, pair: int | None) -> str:
    """The clip of ``pair`` as a ``data:video/mp4;base64,...`` URL ("" for None)."""
    if pair is None:
        return ""
    return "data:video/mp4;base64," + base64.b64encode(session.queries.clip(pair).read_bytes()).decode()


def view_state(session: LabellingSession, message: str = "") -> dict[str, Any]:
    """What the widget draws: the question, the current pair and its clip, progress, and a message."""
    pair = session.current
    return {"question": session.question, "pair": pair, "done": session.done, "total": session.total,
            "clip": clip_data_url(session, pair), "message": message}


def handle(session: LabellingSession, action: str) -> str:
    """Apply a button or key ``action`` to the session; returns the message to show."""
    if action == "undo":
        pair = session.undo()
        return "Nothing to undo." if pair is None else f"Took back the answer to pair {pair + 1}."
    pair = session.current
    if pair is None:
        return "Every pair has an answer; undo to change one."
    session.answer(action)
    return f"Saved '{action}' for pair {pair + 1} to {session.path.name}."


def labelling_widget(session: LabellingSession) -> Any:
    """The widget (an ``anywidget.AnyWidget``) that labels ``session``'s pairs; display it in a notebook."""
    import json

    import anywidget
    import traitlets

    class LabellingWidget(anywidget.AnyWidget):
        _esm = _ESM % {"keys": json.dumps(KEYS)}
        state = traitlets.Dict().tag(sync=True)

    widget = LabellingWidget(state=view_state(session))

    def on_message(_widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        action = content.get("action")
        if action in ("left", "right", "equal", "skip", "undo"):
            widget.state = view_state(session, handle(session, action))

    widget.on_msg(on_message)
    return widget
