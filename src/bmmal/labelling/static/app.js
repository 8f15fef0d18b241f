// bmmal labelling page: shows the sample leased to this tab, sends answers, skips and undos.
// Up to 9 classes: one button and one digit key per class. More: the model's top guesses (keys 1-5) and
// the recently used classes (keys 6-9) as one-key choices, and a search box over every class name
// (type, arrows, Enter).
"use strict";

const $ = (id) => document.getElementById(id);
const FEW = 9; // up to this many classes, every class is a one-key button

function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

// One session per browser tab (kept across reloads of the tab), so undo still works after a reload
// and two tabs never show the same sample.
const session = sessionStorage.getItem("bmmal-session") || newId();
sessionStorage.setItem("bmmal-session", session);
const labellerInput = $("labeller");
labellerInput.value = localStorage.getItem("bmmal-labeller") || "";
labellerInput.addEventListener("change", () => localStorage.setItem("bmmal-labeller", labellerInput.value.trim()));

let project = null;
let current = null;
let busy = false;
let quick = []; // the classes on keys 1-9 for the sample shown
let matches = []; // the search's classes, in the order shown
let highlighted = -1; // index in matches of the class Enter chooses

function labeller() {
  return project && project.labeller ? project.labeller : labellerInput.value.trim();
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({session, labeller: labeller(), ...body}),
  });
  const data = await response.json().catch(() => ({error: `the server answered ${response.status}`}));
  if (!response.ok) throw Object.assign(new Error(data.error || `error ${response.status}`), {data});
  return data;
}

function say(text, kind) {
  const message = $("message");
  message.textContent = text || "";
  message.className = "message" + (kind ? " " + kind : "");
}

function showProgress(progress) {
  if (!progress) return;
  const share = progress.total ? progress.done / progress.total : 0;
  $("progress-fill").style.width = (100 * share).toFixed(1) + "%";
  let text = `${progress.done} / ${progress.total} labelled · ${progress.labeled} in total`;
  if (progress.set_aside) text += ` · ${progress.set_aside} set aside`;
  if (progress.second_wanted) text += ` · ${progress.second_wanted} await a second answer`;
  $("progress-text").textContent = text;
}

function mediaError(url) {
  fetch(url).then((r) => r.json()).then((d) => say(d.error, "error"))
    .catch(() => say("a media file of this sample could not be loaded", "error"));
}

function fieldElement(field) {
  const box = document.createElement("figure");
  box.className = "field field-" + field.kind;
  const caption = document.createElement("figcaption");
  caption.textContent = field.name;
  let body;
  if (field.missing) {  // this sample lacks the modality (an empty manifest cell)
    body = document.createElement("div");
    body.className = "missing";
    body.textContent = "missing";
  } else if (field.kind === "image") {
    body = document.createElement("img");
    body.src = field.url;
    body.alt = field.name;
    body.addEventListener("load", () => body.classList.toggle("small", body.naturalHeight < 120));
    body.addEventListener("error", () => mediaError(field.url));
  } else if (field.kind === "audio") {
    body = document.createElement("audio");
    body.controls = true;
    body.preload = "auto";
    body.src = field.url;
    body.addEventListener("error", () => mediaError(field.url));
  } else {
    body = document.createElement("div");
    body.className = "text";
    body.textContent = field.text;
  }
  box.append(body, caption);
  return box;
}

function choiceButton(name, key, note) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.label = name;
  if (key) {
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    button.append(kbd, " ");
  }
  const span = document.createElement("span");
  span.textContent = name;
  button.append(span);
  if (note) {
    const small = document.createElement("small");
    small.textContent = note;
    button.append(" ", small);
  }
  button.disabled = !current;
  button.addEventListener("click", () => { button.blur(); answer(name); });
  return button;
}

function recentKey() { return "bmmal-recent:" + project.name; }
function recentClasses() {
  try { return JSON.parse(localStorage.getItem(recentKey()) || "[]").filter((c) => project.classes.includes(c)); }
  catch (error) { return []; }
}
function remember(label) {
  const recent = [label, ...recentClasses().filter((c) => c !== label)].slice(0, 8);
  localStorage.setItem(recentKey(), JSON.stringify(recent));
}

// The one-key choices for the sample shown: every class (few classes), or the model's guesses then
// the recent classes not among them.
function buildQuick() {
  if (project.classes.length <= FEW) {
    quick = project.classes.slice();
    $("classes").replaceChildren(...quick.map((c, i) => choiceButton(c, String(i + 1))));
    return;
  }
  const guesses = current && current.prediction ? current.prediction.top.map((g) => g.label) : [];
  const recent = recentClasses().filter((c) => !guesses.includes(c)).slice(0, FEW - guesses.length);
  quick = [...guesses, ...recent];
  const scores = current && current.prediction ? current.prediction.top.map((g) => g.score) : [];
  $("guesses").replaceChildren(...guesses.map((c, i) => choiceButton(c, String(i + 1),
    scores[i] < 0.01 ? "<1%" : `${Math.round(100 * scores[i])}%`)));
  $("recent").replaceChildren(...recent.map((c, i) => choiceButton(c, String(guesses.length + i + 1))));
  $("guesses-row").hidden = guesses.length === 0;
  $("recent-row").hidden = recent.length === 0;
}

// Search: prefix of the name first, then prefix of a word in it, then anywhere; `_` and `-` count as spaces.
const plain = (s) => s.toLowerCase().replace(/[_-]+/g, " ").trim();
function search(query) {
  const q = plain(query);
  if (!q) return project.classes.slice();
  const ranked = [];
  project.classes.forEach((c, i) => {
    const name = plain(c);
    const rank = name.startsWith(q) ? 0 : (" " + name).includes(" " + q) ? 1 : name.includes(q) ? 2 : -1;
    if (rank >= 0) ranked.push([rank, i, c]);
  });
  return ranked.sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((r) => r[2]);
}

function showMatches() {
  const query = $("search").value;
  matches = search(query);
  highlighted = query.trim() && matches.length ? Math.min(Math.max(highlighted, 0), matches.length - 1) : -1;
  const list = $("class-list");
  list.replaceChildren(...matches.map((c, i) => {
    const item = document.createElement("li");
    item.setAttribute("role", "option");
    item.id = "class-option-" + i;
    item.dataset.label = c;
    item.textContent = c;
    item.setAttribute("aria-selected", i === highlighted ? "true" : "false");
    item.addEventListener("click", () => answer(c));
    return item;
  }));
  if (!matches.length) {
    const none = document.createElement("li");
    none.className = "none";
    none.textContent = "no class matches";
    list.append(none);
  }
  $("search").setAttribute("aria-activedescendant", highlighted >= 0 ? "class-option-" + highlighted : "");
  if (highlighted >= 0) list.children[highlighted].scrollIntoView({block: "nearest"});
}

function moveHighlight(step) {
  if (!matches.length) return;
  highlighted = highlighted < 0 ? 0 : (highlighted + step + matches.length) % matches.length;
  if (!$("search").value.trim()) { // arrows on the full list: remember the choice while the box is empty
    const list = $("class-list");
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", i === highlighted ? "true" : "false"));
    $("search").setAttribute("aria-activedescendant", "class-option-" + highlighted);
    list.children[highlighted].scrollIntoView({block: "nearest"});
    return;
  }
  showMatches();
}

function show(reply) {
  showProgress(reply.progress);
  current = reply.sample;
  $("card").hidden = !current;
  $("done").hidden = !!current;
  $("skip").disabled = !current;
  if (current) {
    $("sample-id").textContent = current.id;
    $("prediction").textContent = current.prediction
      ? `model guess: ${current.prediction.label} (${Math.round(100 * current.prediction.score)}%)` : "";
    $("fields").replaceChildren(...current.fields.map(fieldElement));
  }
  buildQuick();
  if (project.classes.length > FEW) {
    $("search").value = "";
    highlighted = -1;
    showMatches();
  }
  if (reply.set_aside) {
    const which = reply.set_aside.map((s) => `${s.id} (${s.reason})`).join("; ");
    return which;
  }
  return "";
}

async function act(path, body, done) {
  if (busy) return;
  busy = true;
  document.body.classList.add("busy");
  try {
    const reply = await post(path, body);
    const asideNote = show(reply);
    if (asideNote) say(`set aside, cannot be shown: ${asideNote}`, "warning");
    else say(reply.message || done || "");
  } catch (error) {
    say(error.message, "error");
    if (error.data && error.data.progress) showProgress(error.data.progress);
    if (path !== "/api/next") await refresh(false);
  } finally {
    busy = false;
    document.body.classList.remove("busy");
  }
}

async function refresh(announce = true) {
  try {
    const reply = await post("/api/next", {});
    const asideNote = show(reply);
    if (asideNote && announce) say(`set aside, cannot be shown: ${asideNote}`, "warning");
  } catch (error) { say(error.message, "error"); }
}

function answer(label) {
  if (!current) return;
  const id = current.id;
  remember(label);
  act("/api/answer", {id, label}, `saved: ${id} → ${label}`);
}

function skip() { if (current) act("/api/skip", {id: current.id}, `skipped ${current.id}`); }
function undo() { act("/api/undo", {}, "undone"); }

$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);

$("search").addEventListener("input", () => { highlighted = 0; showMatches(); });
$("search").addEventListener("keydown", (event) => {
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    moveHighlight(event.key === "ArrowDown" ? 1 : -1);
  } else if (event.key === "Enter") {
    if (highlighted >= 0 && matches[highlighted]) answer(matches[highlighted]);
  } else if (event.key === "Escape") {
    $("search").value = "";
    highlighted = -1;
    showMatches();
  } else {
    return;
  }
  event.preventDefault();
});

document.addEventListener("keydown", (event) => {
  if (!project || event.target === labellerInput || event.altKey) return;
  const many = project.classes.length > FEW;
  const inSearch = event.target === $("search");
  const key = event.key;
  const command = event.ctrlKey || event.metaKey;
  if (command && key === " ") {
    skip();
  } else if (command && key.toLowerCase() === "z" && !(inSearch && $("search").value)) {
    undo();
  } else if (command) {
    return;
  } else if (/^[1-9]$/.test(key) && !(inSearch && $("search").value) && Number(key) <= quick.length) {
    answer(quick[Number(key) - 1]);
  } else if (!many && key.toLowerCase() === "s") {
    skip();
  } else if (!many && key.toLowerCase() === "u") {
    undo();
  } else if (many && !inSearch && key.length === 1 && /\S/.test(key)) {
    $("search").focus(); // typing anywhere types into the search box
    return;
  } else if (many && !inSearch && (key === "ArrowDown" || key === "ArrowUp")) {
    $("search").focus();
    moveHighlight(key === "ArrowDown" ? 1 : -1);
  } else {
    return;
  }
  event.preventDefault();
});

function setUpKeys() {
  const many = project.classes.length > FEW;
  $("search-box").hidden = !many;
  $("classes").hidden = many;
  $("search").placeholder = `type to find one of ${project.classes.length} classes`;
  $("skip-key").textContent = many ? "Ctrl+Space" : "S";
  $("undo-key").textContent = many ? "Ctrl+Z" : "U";
  if (many) {
    $("keys").textContent = "Keys: type to search the classes, ↑ ↓ to move, Enter to choose · " +
      "1–9 the one-key choices · Ctrl+Space skip · Ctrl+Z undo. Every answer is saved at once.";
  }
  if (project.labeller) {
    $("who").hidden = true;
    $("who-fixed").hidden = false;
    $("who-fixed").textContent = "labelling as " + project.labeller;
  }
}

(async function start() {
  try {
    const response = await fetch("/api/project");
    project = await response.json();
    if (!response.ok) throw new Error(project.error || `the server answered ${response.status}`);
  } catch (error) {
    say(error.message, "error");
    return;
  }
  document.title = `bmmal · ${project.name}`;
  $("project-name").textContent = project.name;
  setUpKeys();
  await refresh();
  if (project.classes.length > FEW && window.matchMedia("(hover: hover)").matches) $("search").focus();
  // Renew this tab's lease while the page stays open (if it ran out and the sample went to someone
  // else meanwhile, show the sample this tab holds now).
  setInterval(() => {
    if (busy) return;
    post("/api/next", {}).then((reply) => {
      if ((reply.sample && reply.sample.id) !== (current && current.id)) show(reply);
      else showProgress(reply.progress);
    }).catch(() => {});
  }, 60000);
})();

// Closing the tab frees its sample for the others at once instead of when the lease runs out.
window.addEventListener("pagehide", () => {
  fetch("/api/release", {method: "POST", keepalive: true, headers: {"Content-Type": "application/json"},
                         body: JSON.stringify({session})}).catch(() => {});
});
