// bmmal labelling page: shows the sample leased to this tab, sends answers, skips and undos.
"use strict";

const $ = (id) => document.getElementById(id);

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

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({session, ...body}),
  });
  const data = await response.json().catch(() => ({error: `server answered ${response.status}`}));
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
  $("progress-text").textContent = `${progress.done} / ${progress.total} labelled · ${progress.labeled} in total`;
}

function fieldElement(field) {
  const box = document.createElement("figure");
  box.className = "field field-" + field.kind;
  const caption = document.createElement("figcaption");
  caption.textContent = field.name;
  let body;
  if (field.kind === "image") {
    body = document.createElement("img");
    body.src = field.url;
    body.alt = field.name;
    body.addEventListener("load", () => body.classList.toggle("small", body.naturalHeight < 120));
  } else if (field.kind === "audio") {
    body = document.createElement("audio");
    body.controls = true;
    body.preload = "auto";
    body.src = field.url;
  } else {
    body = document.createElement("div");
    body.className = "text";
    body.textContent = field.text;
  }
  box.append(body, caption);
  return box;
}

function show(reply) {
  showProgress(reply.progress);
  current = reply.sample;
  $("card").hidden = !current;
  $("done").hidden = !!current;
  $("skip").disabled = !current;
  document.querySelectorAll(".classes button").forEach((b) => { b.disabled = !current; });
  if (!current) return;
  $("sample-id").textContent = current.id;
  $("prediction").textContent = current.prediction
    ? `model guess: ${current.prediction.label} (${Math.round(100 * current.prediction.score)}%)` : "";
  $("fields").replaceChildren(...current.fields.map(fieldElement));
}

async function act(path, body, done) {
  if (busy) return;
  busy = true;
  document.body.classList.add("busy");
  try {
    const reply = await post(path, body);
    show(reply);
    say(reply.message || done || "");
  } catch (error) {
    say(error.message, "error");
    if (error.data && error.data.progress) showProgress(error.data.progress);
    if (path !== "/api/next") await refresh();
  } finally {
    busy = false;
    document.body.classList.remove("busy");
  }
}

async function refresh() {
  try { show(await post("/api/next", {})); } catch (error) { say(error.message, "error"); }
}

function answer(label) {
  if (!current) return;
  const id = current.id;
  act("/api/answer", {id, label, labeller: labellerInput.value.trim()}, `saved: ${id} → ${label}`);
}

function buildClasses() {
  const nav = $("classes");
  nav.replaceChildren(...project.classes.map((name, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.label = name;
    button.innerHTML = (i < 9 ? `<kbd>${i + 1}</kbd> ` : "") + "<span></span>";
    button.querySelector("span").textContent = name;
    button.addEventListener("click", () => { button.blur(); answer(name); });
    return button;
  }));
}

$("skip").addEventListener("click", () => current && act("/api/skip", {id: current.id}, `skipped ${current.id}`));
$("undo").addEventListener("click", () => act("/api/undo", {}, "undone"));

document.addEventListener("keydown", (event) => {
  if (event.target === labellerInput || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (/^[1-9]$/.test(key) && project && Number(key) <= project.classes.length) {
    answer(project.classes[Number(key) - 1]);
  } else if (key === "s" && current) {
    act("/api/skip", {id: current.id}, `skipped ${current.id}`);
  } else if (key === "u") {
    act("/api/undo", {}, "undone");
  } else {
    return;
  }
  event.preventDefault();
});

(async function start() {
  const response = await fetch("/api/project");
  project = await response.json();
  document.title = `bmmal · ${project.name}`;
  $("project-name").textContent = project.name;
  buildClasses();
  await refresh();
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
