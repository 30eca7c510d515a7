// The book's labelling page: answers pairs of clips, keeps them in local storage, exports an answer file.
// It reads sets/<set>/pairs.json (the layout of ipl_core.data.labels) and writes the "ipl-book-labels"
// format that ipl_core.data.labels.load_labels reads; the checksum is the 32-bit FNV-1a of the answers.
"use strict";
(function () {
  const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowDown: "equal", e: "equal", s: "skip",
                 u: "undo", Backspace: "undo" };
  const ANSWERS = ["left", "right", "equal", "skip"];
  const params = new URLSearchParams(window.location.search);
  const setName = params.get("set") || "metaworld-drawer-open";
  const base = "sets/" + encodeURIComponent(setName) + "/";
  const $ = (id) => document.getElementById(id);
  let pairs = null, history = [], storageKey = null;

  function fnv1a(text) {
    let h = 0x811c9dc5;
    for (const byte of new TextEncoder().encode(text)) { h ^= byte; h = Math.imul(h, 0x01000193) >>> 0; }
    return h.toString(16).padStart(8, "0");
  }
  const answersText = (list) => list.map(([p, a]) => p + ":" + a).join(",");

  function save() { localStorage.setItem(storageKey, JSON.stringify(history)); }
  function load() {
    try {
      const stored = JSON.parse(localStorage.getItem(storageKey) || "[]");
      const n = pairs.pairs.length, seen = new Set();
      const ok = Array.isArray(stored) && stored.every(
        (e) => Array.isArray(e) && Number.isInteger(e[0]) && e[0] >= 0 && e[0] < n && ANSWERS.includes(e[1])
          && !seen.has(e[0]) && seen.add(e[0]));
      return ok ? stored : [];
    } catch (error) { return []; }
  }
  function current() {
    const answered = new Set(history.map((e) => e[0]));
    for (let i = 0; i < pairs.pairs.length; i++) if (!answered.has(i)) return i;
    return null;
  }

  function draw(message) {
    const pair = current(), total = pairs.pairs.length, video = $("clip");
    $("question").textContent = pairs.question;
    $("progress").max = total; $("progress").value = history.length;
    if (pair === null) {
      video.removeAttribute("src"); video.style.display = "none";
      $("status").textContent = `All ${total} pairs answered. ${message || "Export your answers."}`;
    } else {
      const src = base + pairs.pairs[pair].clip;
      if (video.getAttribute("src") !== src) { video.setAttribute("src", src); video.play().catch(() => {}); }
      video.style.display = "";
      $("status").textContent = `Pair ${pair + 1} of ${total}; ${history.length} answered. ${message || ""}`;
    }
    for (const b of document.querySelectorAll(".buttons button"))
      b.disabled = pair === null && b.dataset.action !== "undo";
    document.body.dataset.answered = String(history.length);
  }

  function act(action) {
    if (!pairs) return;
    if (action === "undo") {
      const last = history.pop(); save();
      draw(last ? `Took back the answer to pair ${last[0] + 1}.` : "Nothing to undo.");
      return;
    }
    const pair = current();
    if (pair === null) { draw("Every pair has an answer; undo to change one."); return; }
    history.push([pair, action]); save();
    draw(`Saved '${action}' for pair ${pair + 1}.`);
  }

  function exportAnswers() {
    const file = { format: "ipl-book-labels", version: 1, dataset_id: pairs.dataset_id,
                   fingerprint: pairs.fingerprint, num_pairs: pairs.pairs.length,
                   answers: history.map(([pair, answer]) => ({ pair, answer })),
                   checksum: fnv1a(answersText(history)) };
    const blob = new Blob([JSON.stringify(file, null, 2) + "\n"], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `labels-${setName}.json`;
    document.body.appendChild(link); link.click(); link.remove();
    draw(`Exported ${history.length} answers to labels-${setName}.json.`);
  }

  document.addEventListener("keydown", (event) => {
    const action = KEYS[event.key];
    if (!action || event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault(); act(action);
  });
  for (const b of document.querySelectorAll(".buttons button"))
    b.addEventListener("click", () => act(b.dataset.action));
  $("btn-export").addEventListener("click", exportAnswers);
  $("btn-clear").addEventListener("click", () => {
    if (window.confirm("Forget every answer given on this page?")) { history = []; save(); draw("Started again."); }
  });

  fetch(base + "pairs.json")
    .then((response) => { if (!response.ok) throw new Error(response.status + " " + response.statusText);
                          return response.json(); })
    .then((data) => {
      if (data.format !== "ipl-book-pairs") throw new Error("not an ipl-book-pairs file");
      pairs = data;
      storageKey = `ipl-book-labels:${data.dataset_id}:${data.fingerprint}`;
      history = load();
      draw(history.length ? `Resumed: ${history.length} answers kept from before.` : "");
      document.body.dataset.ready = "true";
      if (window.self === window.top) $("labelling").focus();  // inside a chapter: do not scroll to it
    })
    .catch((error) => {
      $("question").textContent = `Could not read ${base}pairs.json (${error.message}). Open this page ` +
        "through a web server (e.g. python -m http.server in the book's folder), not as a file.";
      $("question").className = "question error";
    });
})();
