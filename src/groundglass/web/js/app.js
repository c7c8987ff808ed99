// The groundglass page: ask, watch the answer stream with its sources, follow up in a thread, reopen
// threads from the history. It talks to the public API only (see api.js).

import { ApiError, call, getKey, setKey, streamChat, unreachable } from "./api.js";
import { el, fillCard, renderAnswer, renderFacts, renderRelated, renderSources, renderTrace, splitThink }
  from "./render.js";

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("ask-form"), question: $("question"), ask: $("ask-button"), stop: $("stop-button"),
  model: $("model"), where: $("where"), effort: $("effort"), imageInput: $("image-input"), attachments: $("attachments"),
  conversation: $("conversation"), welcome: $("welcome"), status: $("status"), banner: $("banner"),
  history: $("history"), historyEmpty: $("history-empty"), newThread: $("new-thread"),
  title: $("thread-title"), actions: $("thread-actions"), share: $("share-thread"), del: $("delete-thread"),
  shareBox: $("share-box"), shareUrl: $("share-url"), shareCopy: $("share-copy"), shareClose: $("share-close"),
  readOnlyNote: $("read-only-note"), theme: $("theme-toggle"), keyButton: $("key-button"),
  keyDialog: $("key-dialog"), keyForm: $("key-form"), keyInput: $("key-input"), keyReason: $("key-reason"),
  keyCancel: $("key-cancel"), keyForget: $("key-forget"), card: $("card"), menu: $("menu-toggle"),
  sidebar: $("sidebar"),
};

const state = {
  open: false, // the server runs with --open: no key needed
  thread: { id: null, title: "", turns: [] },
  readOnly: false,
  controller: null, // the AbortController of the answer streaming now
  images: [], // [{url (data: URI), thumb, name}]
  views: new Map(), // turn id -> its view (for the citation cards)
  rateTimer: null,
  pinned: null, // the citation whose card stays open after a click
};
let turnCounter = 0;

// --- messages to the user -----------------------------------------------------------------------

function showBanner(message, kind = "error") {
  ui.banner.hidden = false;
  ui.banner.className = `banner ${kind}`;
  ui.banner.textContent = message;
}

function hideBanner() {
  ui.banner.hidden = true;
  ui.banner.textContent = "";
  clearInterval(state.rateTimer);
}

function announce(message) {
  ui.status.textContent = message;
}

function showRateLimit(error) {
  clearInterval(state.rateTimer);
  const until = Date.now() + error.retryAfter * 1000;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(state.rateTimer);
      showBanner("You can ask again now.", "info");
      return;
    }
    showBanner(error.message.replace(/Try again in \d+ s\./, `Try again in ${left} s.`), "error rate");
  };
  tick();
  state.rateTimer = setInterval(tick, 1000);
}

function handleError(error) {
  if (error.kind === "rate") showRateLimit(error);
  else if (error.kind === "auth") {
    showBanner(error.message);
    openKeyDialog(error.message);
  } else showBanner(error.message);
}

// --- keys ---------------------------------------------------------------------------------------

function openKeyDialog(reason) {
  ui.keyReason.textContent = reason || "";
  ui.keyInput.value = "";
  if (!ui.keyDialog.open) ui.keyDialog.showModal();
  ui.keyInput.focus();
}

ui.keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return;
  setKey(key);
  ui.keyDialog.close();
  hideBanner();
  announce("Key saved.");
  await loadChoices();
  await loadHistory();
});
ui.keyCancel.addEventListener("click", () => ui.keyDialog.close());
ui.keyForget.addEventListener("click", () => {
  setKey("");
  ui.keyDialog.close();
  announce("Key removed from this browser.");
  renderHistory([]);
});
ui.keyButton.addEventListener("click", () => openKeyDialog(getKey() ? "Replace the key kept in this browser." : ""));

// --- theme and layout ---------------------------------------------------------------------------

function effectiveTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function syncThemeButton() {
  const dark = effectiveTheme() === "dark";
  ui.theme.setAttribute("aria-pressed", String(dark));
  ui.theme.textContent = dark ? "Light theme" : "Dark theme";
}

ui.theme.addEventListener("click", () => {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  store("groundglass.theme", next);
  syncThemeButton();
});
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", syncThemeButton);

ui.menu.addEventListener("click", () => {
  const open = !ui.sidebar.classList.contains("open");
  ui.sidebar.classList.toggle("open", open);
  ui.menu.setAttribute("aria-expanded", String(open));
  if (open) ui.newThread.focus();
});

function closeMenu() {
  const wasOpen = ui.sidebar.classList.contains("open");
  ui.sidebar.classList.remove("open");
  ui.menu.setAttribute("aria-expanded", "false");
  if (wasOpen && ui.sidebar.contains(document.activeElement)) ui.menu.focus();
}

// --- where to search, effort ---------------------------------------------------------------------

async function loadChoices() {
  try {
    const [indexes, models] = await Promise.all([call("GET", "/v1/indexes"), call("GET", "/v1/models")]);
    // /v1/models also lists the studio's image models (kind "image"), which cannot answer
    const answering = models.data.filter((m) => m.kind !== "image");
    const names = answering.map((m) => m.id);
    ui.model.replaceChildren(...answering.map((m) =>
      el("option", { value: m.id, title: m.description || null }, m.id)));
    const savedModel = stored("groundglass.model");
    ui.model.value = names.includes(savedModel) ? savedModel : names.includes("sonar") ? "sonar" : names[0];
    const saved = stored("groundglass.where");
    const options = indexes.data.filter((i) => !i.error).map((i) =>
      el("option", { value: `index:${i.id}` },
         `${i.id}${typeof i.documents === "number" ? ` (${i.documents.toLocaleString("en")} docs)` : ""}`));
    options.push(el("option", { value: "web" }, "Web"));
    ui.where.replaceChildren(...options);
    const wanted = saved && [...ui.where.options].some((o) => o.value === saved) ? saved : `index:${indexes.default}`;
    if ([...ui.where.options].some((o) => o.value === wanted)) ui.where.value = wanted;
  } catch (error) {
    if (error.kind !== "auth") showBanner(`Could not load the list of indexes: ${error.message}`);
  }
  const effort = stored("groundglass.effort");
  if (effort !== null) ui.effort.value = effort;
}

function stored(name) {
  try {
    return localStorage.getItem(name);
  } catch {
    return null;
  }
}

function store(name, value) {
  try {
    localStorage.setItem(name, value);
  } catch {
    /* not kept */
  }
}

ui.model.addEventListener("change", () => store("groundglass.model", ui.model.value));
ui.where.addEventListener("change", () => store("groundglass.where", ui.where.value));
ui.effort.addEventListener("change", () => store("groundglass.effort", ui.effort.value));

function sourceFields() {
  const value = ui.where.value;
  if (value === "web") return { source: "web" };
  const index = value.startsWith("index:") ? value.slice(6) : "";
  return index ? { source: "index", index } : { source: "index" };
}

// --- images -------------------------------------------------------------------------------------

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function thumbnail(url) {
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    const scale = Math.min(1, 240 / Math.max(image.naturalWidth, image.naturalHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(image.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(image.naturalHeight * scale));
    canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.8);
  } catch {
    return null; // not an image the browser can draw: sent anyway, the server says what is wrong
  }
}

async function addImages(files) {
  for (const file of files) {
    if (!file.type.startsWith("image/")) {
      showBanner(`${file.name || "That file"} is not an image.`);
      continue;
    }
    const url = await readAsDataUrl(file);
    state.images.push({ url, thumb: await thumbnail(url), name: file.name || "pasted image" });
  }
  renderAttachments();
}

function renderAttachments() {
  ui.attachments.replaceChildren(...state.images.map((image, i) =>
    el("figure", { class: "attachment" },
       image.thumb ? el("img", { src: image.thumb, alt: `Image to send: ${image.name}` })
                   : el("span", { class: "small" }, image.name),
       el("button", { type: "button", class: "remove-image", "aria-label": `Remove ${image.name}`,
                      onclick: () => { state.images.splice(i, 1); renderAttachments(); ui.question.focus(); } },
          "×"))));
  ui.attachments.hidden = !state.images.length;
}

ui.imageInput.addEventListener("change", async () => {
  await addImages([...ui.imageInput.files]);
  ui.imageInput.value = "";
  ui.question.focus();
});

document.addEventListener("paste", async (event) => {
  const files = [...(event.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
  if (!files.length || state.readOnly) return;
  event.preventDefault();
  await addImages(files);
});

document.addEventListener("dragover", (event) => {
  if (state.readOnly || ![...(event.dataTransfer?.types || [])].includes("Files")) return;
  event.preventDefault();
  ui.form.classList.add("dropping");
});
document.addEventListener("dragleave", (event) => {
  if (!event.relatedTarget) ui.form.classList.remove("dropping");
});
document.addEventListener("drop", async (event) => {
  ui.form.classList.remove("dropping");
  if (state.readOnly || !event.dataTransfer?.files?.length) return;
  event.preventDefault();
  await addImages([...event.dataTransfer.files]);
});

// --- one turn on the page -----------------------------------------------------------------------

function createView(turn) {
  const id = `t${++turnCounter}`;
  const view = {
    id,
    question: turn.question,
    images: turn.images || [],
    content: turn.answer || "",
    sources: turn.details?.search_results || [],
    attribution: turn.details?.attribution || [],
    facts: turn.details?.visual_facts || [],
    steps: Object.fromEntries((turn.details?.reasoning?.steps || []).map((s) => [s.id, s])),
    related: turn.details?.related_questions || [],
    note: turn.details?.stopped ? "Stopped: the answer was cut short." : turn.details?.error || "",
    noteKind: turn.details?.error ? "error" : "info",
    running: false,
    pending: false,
  };
  const question = el("div", { class: "question" },
    view.images.length ? el("div", { class: "question-images" },
      view.images.map((src) => el("img", { src, alt: "An image asked about" }))) : null,
    el("p", { class: "question-text" }, view.question || "(what does this image show?)"));
  view.factsEl = el("section", { class: "panel facts-panel", hidden: true, "aria-label": "Read from the image" });
  view.traceEl = el("details", { class: "trace", hidden: true }, el("summary"), el("ol", { class: "steps" }));
  view.answerEl = el("div", { class: "answer" });
  view.noteEl = el("p", { class: "turn-note", hidden: true });
  view.sourcesEl = el("section", { class: "panel sources", hidden: true, "aria-label": "Sources" });
  view.relatedEl = el("section", { class: "panel related-panel", hidden: true, "aria-label": "Related questions" });
  view.el = el("article", { class: "turn", id, "aria-label": `Question: ${view.question || "an image"}` },
    question, view.factsEl, view.traceEl, view.answerEl, view.noteEl, view.sourcesEl, view.relatedEl);
  state.views.set(id, view);
  ui.welcome.hidden = true;
  ui.conversation.append(view.el);
  render(view);
  return view;
}

function render(view) {
  view.pending = false;
  const { think, thinking, answer } = splitThink(view.content);
  renderFacts(view.factsEl, view.facts);
  const wasHidden = view.traceEl.hidden;
  renderTrace(view.traceEl, think, view.steps, view.running && (thinking || !answer));
  if (wasHidden && !view.traceEl.hidden) view.traceEl.open = view.running;
  if (!view.running && !wasHidden && view.traceDoneOnce !== true && view.traceEl.open) {
    view.traceEl.open = false; // collapse the steps once the answer is there
    view.traceDoneOnce = true;
  }
  renderAnswer(view.answerEl, answer, { sources: view.sources, attribution: view.attribution, turnId: view.id });
  view.answerEl.setAttribute("aria-busy", String(view.running));
  view.answerEl.classList.toggle("streaming", view.running);
  if (view.running && !answer && !thinking) {
    view.answerEl.replaceChildren(el("p", { class: "muted working" },
      view.sources.length ? "Writing…" : "Searching…"));
  }
  view.noteEl.hidden = !view.note;
  view.noteEl.textContent = view.note;
  view.noteEl.className = `turn-note ${view.noteKind}`;
  view.noteEl.setAttribute("role", view.noteKind === "error" ? "alert" : "status");
  renderSources(view.sourcesEl, view.sources, view.id);
  renderRelated(view.relatedEl, view.running ? [] : view.related, (q) => ask(q), state.readOnly);
}

function schedule(view) {
  if (view.pending) return;
  view.pending = true;
  requestAnimationFrame(() => render(view));
}

// One streamed chunk into the view.
function apply(view, chunk) {
  const delta = chunk.choices?.[0]?.delta || {};
  if (delta.content) view.content += delta.content;
  if (chunk.search_results) view.sources = chunk.search_results;
  if (chunk.visual_facts) view.facts = chunk.visual_facts;
  if (chunk.reasoning_step) view.steps[chunk.reasoning_step.id] = chunk.reasoning_step;
  if (chunk.attribution) view.attribution = chunk.attribution;
  if (chunk.related_questions) view.related = chunk.related_questions;
  if (chunk.reasoning) {
    view.reasoning = chunk.reasoning;
    for (const step of chunk.reasoning.steps || []) view.steps[step.id] = step;
  }
  if (chunk.usage) view.usage = chunk.usage;
  if (chunk.choices?.[0]?.finish_reason) view.finish = chunk.choices[0].finish_reason;
}

// --- asking -------------------------------------------------------------------------------------

function threadMessages() {
  const messages = [];
  for (const turn of state.thread.turns) {
    const answer = splitThink(turn.answer).answer.trim();
    if (!answer) continue;
    messages.push({ role: "user", content: turn.question || "(an image)" });
    messages.push({ role: "assistant", content: answer });
  }
  return messages;
}

function setStreaming(on) {
  ui.stop.hidden = !on;
  ui.ask.disabled = on;
  ui.form.classList.toggle("busy", on);
}

let submittedAt = 0;

async function ask(text) {
  if (state.controller || state.readOnly) return;
  const question = (text || "").trim();
  const images = state.images.splice(0);
  if (!question && !images.length) {
    ui.question.focus();
    return;
  }
  const startedAt = submittedAt || performance.now();
  submittedAt = 0;
  if (!state.open && !getKey()) {
    state.images.push(...images);
    openKeyDialog("This server needs an API key. Enter one to ask questions.");
    return;
  }
  hideBanner();
  closeCard();
  ui.question.value = "";
  renderAttachments();
  const content = images.length
    ? [...(question ? [{ type: "text", text: question }] : []),
       ...images.map((i) => ({ type: "image_url", image_url: { url: i.url } }))]
    : question;
  const body = {
    model: ui.model.value || "sonar",
    messages: [...threadMessages(), { role: "user", content }],
    return_related_questions: true,
    ...sourceFields(),
  };
  if (ui.effort.value) body.reasoning_effort = ui.effort.value;
  const view = createView({ question, images: images.map((i) => i.thumb).filter(Boolean) });
  view.running = true;
  render(view);
  view.el.scrollIntoView({ block: "start", behavior: "smooth" });
  announce("Answering…");
  const controller = new AbortController();
  state.controller = controller;
  setStreaming(true);
  let error = null;
  // Timings on the page's clock, from the key press: the request sent, the first words received, and
  // (data-first-token-ms) the first words on screen; the page's own share of the wait is the first
  // and the gap between the last two.
  view.el.dataset.requestMs = (performance.now() - startedAt).toFixed(1);
  try {
    for await (const chunk of streamChat(body, controller.signal)) {
      if (!view.content.trim() && chunk.choices?.[0]?.delta?.content?.trim()) {
        view.el.dataset.firstChunkMs = (performance.now() - startedAt).toFixed(1);
      }
      apply(view, chunk);
      if (view.facts.length && !view.el.dataset.factsMs) {
        view.el.dataset.factsMs = (performance.now() - startedAt).toFixed(1);
      }
      if (!view.firstTokenMs && view.content.trim()) {
        render(view); // the first words show at once; later ones once per frame
        view.firstTokenMs = performance.now() - startedAt;
        view.el.dataset.firstTokenMs = view.firstTokenMs.toFixed(1);
      } else schedule(view);
    }
  } catch (caught) {
    if (caught.name === "AbortError") {
      view.note = "Stopped: the answer was cut short.";
      view.noteKind = "info";
      view.stopped = true;
    } else {
      error = caught instanceof ApiError ? caught : unreachable();
      view.note = error.message;
      view.noteKind = "error";
      handleError(error);
    }
  } finally {
    state.controller = null;
    view.running = false;
    setStreaming(false);
    render(view);
    view.el.dataset.done = view.stopped ? "stopped" : error ? "error" : "answered";
    if (error) view.noteEl.scrollIntoView({ block: "nearest" });
    announce(view.stopped ? "Stopped." : error ? "The question failed." : "Answer ready.");
  }
  if (view.content.trim()) await keep(view);
  if (document.activeElement === document.body || document.activeElement === ui.stop) ui.question.focus();
}

// The finished turn goes into the thread (created with the first answer) on the server.
async function keep(view) {
  const turn = {
    question: view.question,
    answer: view.content,
    details: {
      search_results: view.sources,
      attribution: view.attribution,
      related_questions: view.related,
      visual_facts: view.facts,
      reasoning: view.reasoning || (Object.keys(view.steps).length ? { steps: Object.values(view.steps) } : null),
      images: view.images,
      stopped: Boolean(view.stopped),
      error: view.noteKind === "error" ? view.note : "",
      usage: view.usage || null,
      model: ui.model.value,
      search: ui.where.value,
      effort: ui.effort.value || null,
    },
  };
  state.thread.turns.push(turn);
  try {
    if (!state.thread.id) {
      const created = await call("POST", "/v1/threads", { title: view.question || "An image" });
      state.thread.id = created.id;
      state.thread.title = created.title;
      history.replaceState(null, "", `/?thread=${encodeURIComponent(created.id)}`);
      showThreadHeader();
    }
    await call("POST", `/v1/threads/${encodeURIComponent(state.thread.id)}/turns`, turn);
    view.el.dataset.saved = "true";
    await loadHistory();
  } catch (error) {
    showBanner(`The answer was not saved to the history: ${error.message}`);
  }
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  ask(ui.question.value);
});

ui.question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submittedAt = event.timeStamp; // the time of the key press, on the same clock as performance.now()
    ask(ui.question.value);
  }
});

ui.stop.addEventListener("click", () => state.controller?.abort());

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    if (state.pinned || !ui.card.hidden) closeCard();
    else if (state.controller) state.controller.abort();
    else if (ui.sidebar.classList.contains("open")) closeMenu();
  } else if (event.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "")
             && !ui.keyDialog.open) {
    event.preventDefault();
    ui.question.focus();
  }
});

// --- citation cards -----------------------------------------------------------------------------

function cardFor(link) {
  const view = state.views.get(link.dataset.turn);
  const n = Number(link.dataset.n);
  const source = view?.sources[n - 1];
  if (!source) return false;
  const span = link.closest(".sentence");
  const sentence = span ? { support: Number(span.dataset.support),
                            supported: !span.classList.contains("unsupported") } : null;
  fillCard(ui.card, source, n, sentence);
  ui.card.hidden = false;
  const box = link.getBoundingClientRect();
  const width = Math.min(360, window.innerWidth - 16);
  ui.card.style.width = `${width}px`;
  const left = Math.max(8, Math.min(box.left + window.scrollX - 20, window.scrollX + window.innerWidth - width - 8));
  ui.card.style.left = `${left}px`;
  const below = box.bottom + window.scrollY + 6;
  ui.card.style.top = `${below}px`;
  const height = ui.card.offsetHeight;
  if (box.bottom + height + 12 > window.innerHeight && box.top > height + 12) {
    ui.card.style.top = `${box.top + window.scrollY - height - 6}px`;
  }
  link.setAttribute("aria-describedby", "card");
  return true;
}

function closeCard() {
  ui.card.hidden = true;
  state.pinned?.removeAttribute("aria-expanded");
  state.pinned = null;
}

let hideTimer = null;
ui.conversation.addEventListener("mouseover", (event) => {
  const link = event.target.closest("a.cite");
  if (!link || state.pinned) return;
  clearTimeout(hideTimer);
  cardFor(link);
});
ui.conversation.addEventListener("mouseout", (event) => {
  if (!event.target.closest("a.cite") || state.pinned) return;
  hideTimer = setTimeout(() => { if (!ui.card.matches(":hover")) ui.card.hidden = true; }, 250);
});
ui.card.addEventListener("mouseleave", () => { if (!state.pinned) ui.card.hidden = true; });
ui.conversation.addEventListener("focusin", (event) => {
  const link = event.target.closest("a.cite");
  if (link) {
    if (state.pinned && state.pinned !== link) closeCard();
    cardFor(link);
  }
});
ui.conversation.addEventListener("focusout", (event) => {
  const link = event.target.closest("a.cite");
  if (link && !state.pinned && !ui.card.contains(event.relatedTarget)) ui.card.hidden = true;
});
ui.conversation.addEventListener("click", (event) => {
  const link = event.target.closest("a.cite");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault(); // the card names the source and links to it; the panel entry is highlighted
  if (state.pinned === link) {
    closeCard();
    return;
  }
  closeCard();
  if (cardFor(link)) {
    state.pinned = link;
    link.setAttribute("aria-expanded", "true");
    const entry = document.getElementById(link.getAttribute("href").slice(1));
    document.querySelectorAll(".source-list li.highlight").forEach((li) => li.classList.remove("highlight"));
    entry?.classList.add("highlight");
  }
});
document.addEventListener("click", (event) => {
  if (state.pinned && !event.target.closest("a.cite") && !ui.card.contains(event.target)) closeCard();
});

// --- threads and history ------------------------------------------------------------------------

function showThreadHeader() {
  ui.title.textContent = state.thread.title || "New thread";
  ui.actions.hidden = !state.thread.id || state.readOnly;
  document.title = state.thread.title ? `${state.thread.title} · groundglass` : "groundglass";
}

function clearConversation() {
  for (const view of state.views.values()) view.el.remove();
  state.views.clear();
  ui.welcome.hidden = false;
  ui.shareBox.hidden = true;
  closeCard();
}

function newThread() {
  state.controller?.abort();
  state.thread = { id: null, title: "", turns: [] };
  state.readOnly = false;
  clearConversation();
  ui.form.hidden = false;
  ui.readOnlyNote.hidden = true;
  history.replaceState(null, "", "/");
  showThreadHeader();
  markCurrent();
  closeMenu();
  ui.question.focus();
}

function showThread(thread, readOnly) {
  state.controller?.abort();
  state.thread = { id: thread.id, title: thread.title, turns: thread.turns.map((t) => ({
    question: t.question, answer: t.answer, details: t.details })) };
  state.readOnly = readOnly;
  clearConversation();
  for (const turn of thread.turns) {
    createView({ question: turn.question, images: turn.details?.images || [], answer: turn.answer,
                 details: turn.details });
  }
  ui.form.hidden = readOnly;
  ui.readOnlyNote.hidden = !readOnly;
  showThreadHeader();
  markCurrent();
}

async function openThread(id) {
  try {
    const thread = await call("GET", `/v1/threads/${encodeURIComponent(id)}`);
    showThread(thread, false);
    history.replaceState(null, "", `/?thread=${encodeURIComponent(id)}`);
    closeMenu();
    ui.question.focus();
  } catch (error) {
    handleError(error);
  }
}

async function openShared(shareId) {
  try {
    showThread(await call("GET", `/v1/shared/${encodeURIComponent(shareId)}`), true);
  } catch (error) {
    handleError(error);
  }
}

function markCurrent() {
  for (const button of ui.history.querySelectorAll("button.history-item")) {
    if (button.dataset.id === state.thread.id) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
}

function renderHistory(threads) {
  ui.historyEmpty.hidden = threads.length > 0;
  ui.history.replaceChildren(...threads.map((t) => {
    const when = new Date(t.updated_at * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    return el("li", {}, el("button", { type: "button", class: "history-item", dataset: { id: t.id },
                                       onclick: () => openThread(t.id) },
      el("span", { class: "history-title" }, t.title),
      el("span", { class: "history-meta small muted" },
         `${when} · ${t.turn_count} question${t.turn_count === 1 ? "" : "s"}${t.shared ? " · shared" : ""}`)));
  }));
  markCurrent();
}

async function loadHistory() {
  if (!state.open && !getKey()) return;
  try {
    renderHistory((await call("GET", "/v1/threads")).data);
  } catch (error) {
    if (error.kind === "auth") handleError(error);
    else showBanner(`Could not load the history: ${error.message}`);
  }
}

ui.newThread.addEventListener("click", newThread);

ui.del.addEventListener("click", async () => {
  if (!state.thread.id || !confirm(`Delete the thread “${state.thread.title}”? This cannot be undone.`)) return;
  try {
    await call("DELETE", `/v1/threads/${encodeURIComponent(state.thread.id)}`);
    announce("Thread deleted.");
    newThread();
    await loadHistory();
  } catch (error) {
    handleError(error);
  }
});

ui.share.addEventListener("click", async () => {
  if (!state.thread.id) return;
  try {
    const shared = await call("POST", `/v1/threads/${encodeURIComponent(state.thread.id)}/share`);
    ui.shareUrl.value = new URL(shared.url, location.origin).href;
    ui.shareBox.hidden = false;
    ui.shareUrl.focus();
    ui.shareUrl.select();
    await loadHistory();
  } catch (error) {
    handleError(error);
  }
});
ui.shareCopy.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(ui.shareUrl.value);
    announce("Link copied.");
    ui.shareCopy.textContent = "Copied";
  } catch {
    ui.shareUrl.select();
    announce("Select the link and copy it.");
  }
});
ui.shareClose.addEventListener("click", () => {
  ui.shareBox.hidden = true;
  ui.share.focus();
});

// --- start --------------------------------------------------------------------------------------

async function start() {
  syncThemeButton();
  renderAttachments();
  let health = null;
  try {
    health = await (await fetch("/healthz")).json();
  } catch {
    showBanner(unreachable().message);
  }
  state.open = Boolean(health?.open);
  ui.keyButton.hidden = state.open;
  if (!state.open && !getKey()) {
    openKeyDialog("This server needs an API key. Enter one to ask questions.");
  }
  const params = new URLSearchParams(location.search);
  const share = location.pathname.match(/^\/share\/([^/]+)$/);
  await Promise.all([loadChoices(), loadHistory()]);
  if (share) await openShared(decodeURIComponent(share[1]));
  else if (params.get("thread")) await openThread(params.get("thread"));
  else if (!ui.keyDialog.open) ui.question.focus();
  document.body.dataset.ready = "true";
}

start();
