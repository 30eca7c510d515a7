// The book's labelling page: answers pairs of clips, keeps them in local storage, exports an answer file.
// It reads sets/<set>/pairs.json (the layout of ipl_core.data.labels) and writes the "ipl-book-labels"
// format that ipl_core.data.labels.load_labels reads; the checksum is the 32-bit FNV-1a of the answers.
// Tabs showing the same set share their answers: every change starts from the stored answers, and a change
// made in another tab arrives here as a "storage" event.
"use strict";
(function () {
  const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowDown: "equal", e: "equal", E: "equal",
                 s: "skip", S: "skip", u: "undo", U: "undo", Backspace: "undo" };
  const ANSWERS = ["left", "right", "equal", "skip"];
  const params = new URLSearchParams(window.location.search);
  const setName = params.get("set") || "metaworld-drawer-open";
  const base = "sets/" + encodeURIComponent(setName) + "/";
  const $ = (id) => document.getElementById(id);
  let pairs = null, history = [], storageKey = null, shown = null;
  let unsaved = false;  // true while local storage refuses the answers: then they live in this tab only
  let notice = "";      // told once, with the next status

  function fnv1a(text) {
    let h = 0x811c9dc5;
    for (const byte of new TextEncoder().encode(text)) { h ^= byte; h = Math.imul(h, 0x01000193) >>> 0; }
    return h.toString(16).padStart(8, "0");
  }
  const answersText = (list) => list.map(([p, a]) => p + ":" + a).join(",");
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  // The stored answers, or null when local storage cannot be used. Entries that cannot be read are set
  // aside: the stored text is kept, unchanged, under a backup key, and only the readable entries stay.
  function readStored() {
    try {
      const raw = localStorage.getItem(storageKey);
      let list;
      try { list = raw === null ? [] : JSON.parse(raw); } catch (error) { list = [raw]; }
      if (!Array.isArray(list)) list = [list];
      const n = pairs.pairs.length, seen = new Set();
      const readable = list.filter((e) => Array.isArray(e) && e.length === 2 && Number.isInteger(e[0])
        && e[0] >= 0 && e[0] < n && ANSWERS.includes(e[1]) && !seen.has(e[0]) && seen.add(e[0]));
      const bad = list.length - readable.length;
      if (bad) {
        const backup = `${storageKey}:set-aside:${new Date().toISOString()}`;
        localStorage.setItem(backup, raw);
        localStorage.setItem(storageKey, JSON.stringify(readable));
        notice = `${plural(bad, "stored entry", "stored entries")} could not be read and ` +
          `${bad === 1 ? "was" : "were"} set aside (kept in local storage as "${backup}").`;
      }
      return readable;
    } catch (error) { return null; }
  }
  // Brings this tab up to date with the stored answers, keeping the answers it could not save.
  function sync() {
    const stored = readStored();
    if (stored === null) return false;
    const mine = new Set(history.map((e) => e[0]));
    history = unsaved ? stored.filter((e) => !mine.has(e[0])).concat(history) : stored;
    return true;
  }
  function store() {
    try { localStorage.setItem(storageKey, JSON.stringify(history)); return true; }
    catch (error) { return false; }
  }
  // Applies a change to the freshly read answers and stores the result.
  function change(apply) {
    const readable = sync();
    apply();
    unsaved = !(readable && store());
  }

  function current() {
    const answered = new Set(history.map((e) => e[0]));
    for (let i = 0; i < pairs.pairs.length; i++) if (!answered.has(i)) return i;
    return null;
  }

  function draw(message) {
    const total = pairs.pairs.length, video = $("clip"), status = $("status");
    shown = current();
    $("question").textContent = pairs.question;
    $("progress").max = total; $("progress").value = history.length;
    const warning = unsaved ? "Your answers are NOT being saved (the browser refuses to store them): " +
      "export them now." : "";
    let where;
    if (shown === null) {
      video.removeAttribute("src"); video.style.display = "none";
      where = `All ${total} pairs answered.`;
      message = message || "Export your answers.";
    } else {
      const src = base + pairs.pairs[shown].clip;
      if (video.getAttribute("src") !== src) { video.setAttribute("src", src); video.play().catch(() => {}); }
      video.style.display = "";
      where = `Pair ${shown + 1} of ${total}; ${history.length} answered.`;
    }
    status.textContent = [warning, where, message, notice].filter(Boolean).join(" ");
    status.classList.toggle("error", unsaved);
    notice = "";
    for (const b of document.querySelectorAll(".buttons button"))
      b.disabled = shown === null && b.dataset.action !== "undo";
    $("btn-export").disabled = history.length === 0;
    $("btn-clear").disabled = false;
    document.body.dataset.answered = String(history.length);
  }

  function act(action) {
    if (!pairs) return;
    if (action === "undo") {
      let last;
      change(() => { last = history.pop(); });
      draw(last ? `Took back the answer to pair ${last[0] + 1}.` : "Nothing to undo.");
      return;
    }
    const pair = shown;  // the pair on screen, even if another tab has answered it meanwhile
    if (pair === null) { draw("Every pair has an answer; undo to change one."); return; }
    change(() => { history = history.filter((e) => e[0] !== pair).concat([[pair, action]]); });
    draw(`${unsaved ? "Noted" : "Saved"} '${action}' for pair ${pair + 1}.`);
  }

  function exportAnswers() {
    if (!pairs || history.length === 0) return;
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
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const action = KEYS[event.key];
    if (event.repeat) {  // a held key answers once (and a held Enter does not press a button again and again)
      if (action || event.key === "Enter") event.preventDefault();
      return;
    }
    if (action) { event.preventDefault(); act(action); }
  });
  for (const b of document.querySelectorAll(".buttons button"))
    b.addEventListener("click", () => act(b.dataset.action));
  $("btn-export").addEventListener("click", exportAnswers);
  $("btn-clear").addEventListener("click", () => {
    if (pairs && window.confirm("Forget every answer given on this page?")) {
      change(() => { history = []; });
      draw("Started again.");
    }
  });
  // After a mouse click the keys go to the page again, so that Space or Enter does not press the clicked
  // button a second time (a button pressed from the keyboard keeps the focus).
  document.addEventListener("click", (event) => {
    if (event.detail > 0 && event.target.closest("button")) $("labelling").focus({ preventScroll: true });
  });
  window.addEventListener("storage", (event) => {
    if (!pairs || event.key !== storageKey) return;
    sync();
    draw("Answers given in another tab are included.");
  });

  fetch(base + "pairs.json")
    .then((response) => { if (!response.ok) throw new Error(response.status + " " + response.statusText);
                          return response.json(); })
    .then((data) => {
      if (data.format !== "ipl-book-pairs") throw new Error("not an ipl-book-pairs file");
      pairs = data;
      storageKey = `ipl-book-labels:${data.dataset_id}:${data.fingerprint}`;
      const stored = readStored();
      history = stored || [];
      unsaved = stored === null;
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
