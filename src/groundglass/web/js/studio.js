// The studio page: upload photos, fine-tune a base model with DreamBooth, watch the job (phase,
// progress, loss curve, samples), then draw with the new model and download images and exports.
// A client of the public API like any other (/v1/files, /v1/fine_tuning/jobs, /v1/images/generations).

import { getKey, setKey } from "./api.js";

const $ = (id) => document.getElementById(id);
const state = { files: [], job: null, losses: [], seenSamples: new Set(), stream: null };

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function showError(message) {
  const banner = $("banner");
  banner.textContent = message;
  banner.hidden = !message;
}

async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  } catch {
    throw new Error(`Cannot reach the groundglass server at ${location.origin}.`);
  }
  if (response.status === 401) {
    $("key-form").hidden = false;
    throw new Error("This server needs an API key: enter it above.");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error.message || message;
    } catch {
      /* not JSON */
    }
    throw new Error(message);
  }
  return response;
}

async function json(path, options = {}) {
  return (await call(path, options)).json();
}

// --- models --------------------------------------------------------------------------------------

async function loadModels(select) {
  const models = (await json("/v1/models")).data.filter((m) => m.kind === "image");
  const fill = (el, list) => {
    const keep = el.value;
    el.replaceChildren(...list.map((m) => new Option(m.id, m.id)));
    if (list.some((m) => m.id === keep)) el.value = keep;
  };
  fill($("base-model"), models.filter((m) => !m.id.startsWith("ft:")));
  fill($("draw-model"), models);
  if (select) $("draw-model").value = select;
}

// --- photos --------------------------------------------------------------------------------------

function showPhotos(files) {
  state.files = files;
  const items = files.map((file) => {
    const li = document.createElement("li");
    if (file.type.startsWith("image/")) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      li.append(img);
    }
    const name = document.createElement("span");
    name.textContent = file.name;
    li.append(name);
    return li;
  });
  $("thumbs").replaceChildren(...items);
  $("photo-count").textContent = files.length ? `${files.length} file(s) chosen.` : "No photos chosen.";
}

// --- the job ----------------------------------------------------------------------------------------

function hyperparameters() {
  const out = {
    preset: $("preset").value,
    instance_prompt: $("instance-prompt").value.trim(),
    class_prompt: $("class-prompt").value.trim(),
    train_steps: Number($("steps").value),
    sample_every: Number($("sample-every").value),
    num_class_images: Number($("class-images").value),
    checkpoint_every: Math.max(1, Number($("sample-every").value) || Number($("steps").value)),
  };
  if (!out.preset) delete out.preset; // the server picks lora or sdxl_lora by the base model's family
  const identifier = out.instance_prompt.split(/\s+/).find((w) => w === "sks");
  if (identifier) out.identifier = identifier;
  if ($("learning-rate").value.trim()) out.learning_rate = Number($("learning-rate").value);
  return out;
}

async function start() {
  showError("");
  if (!state.files.length) {
    showError("Choose 3-5 photos of the subject first.");
    return;
  }
  $("start").disabled = true;
  try {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    for (const file of state.files) form.append("file", file, file.name);
    const uploaded = await json("/v1/files", { method: "POST", body: form });
    const job = await json("/v1/fine_tuning/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: $("base-model").value,
        training_file: uploaded.id,
        method: { type: "dreambooth", dreambooth: { hyperparameters: hyperparameters() } },
      }),
    });
    watch(job);
  } catch (error) {
    showError(error.message);
    $("start").disabled = false;
  }
}

function drawCurve() {
  const svg = $("loss-curve");
  const points = state.losses;
  svg.dataset.points = String(points.length);
  if (!points.length) return;
  const maxStep = Math.max(...points.map((p) => p[0]), 1);
  const losses = points.map((p) => p[1]);
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const y = (v) => 110 - (hi > lo ? ((v - lo) / (hi - lo)) * 100 : 50);
  $("loss-line").setAttribute("points", points.map(([s, v]) => `${(s / maxStep) * 390 + 5},${y(v)}`).join(" "));
  $("loss-last").textContent = `${losses[losses.length - 1].toFixed(4)} at step ${points[points.length - 1][0]}`;
}

async function showSample(url) {
  if (state.seenSamples.has(url)) return;
  state.seenSamples.add(url);
  const blob = await (await call(url)).blob();
  const li = document.createElement("li");
  const img = document.createElement("img");
  img.src = URL.createObjectURL(blob);
  img.alt = `sample ${url.split("/").slice(-2).join(" ")}`;
  const step = document.createElement("span");
  step.textContent = url.split("/").slice(-2)[0].replace("step_", "step ").replace(/ 0+(\d)/, " $1");
  li.append(img, step);
  $("samples").append(li);
}

function onEvent(event) {
  const data = event.data || {};
  if (event.kind === "phase" && data.phase) $("phase").textContent = `phase: ${data.phase.replace("_", " ")}`;
  if (event.kind === "start" || (event.kind === "phase" && data.phase === "training")) {
    state.losses = state.losses.filter((p) => p[0] <= (data.step || 0));  // a resume replays later steps
  }
  if (event.kind === "step") {
    $("progress").max = data.max_steps;
    $("progress").value = data.step;
    if (data.loss !== undefined) {
      state.losses = state.losses.filter((p) => p[0] < data.step).concat([[data.step, data.loss]]);
      drawCurve();
    }
    $("eta").textContent = data.eta_s !== undefined
      ? `step ${data.step}/${data.max_steps}, ${data.steps_per_sec.toFixed(2)} steps/s, about ${Math.round(data.eta_s)} s left`
      : `step ${data.step}/${data.max_steps}`;
  }
  if (event.kind === "samples") for (const url of data.images || []) showSample(url).catch((e) => showError(e.message));
  if (["succeeded", "failed", "cancelled", "running", "queued", "cancelling"].includes(event.kind)) {
    $("job-status").textContent = event.kind;
  }
  if (event.kind === "failed") showError(event.message);
}

async function finished(jobId) {
  const job = await json(`/v1/fine_tuning/jobs/${jobId}`);
  state.job = job;
  $("job-status").textContent = job.status;
  $("cancel").hidden = true;
  $("start").disabled = false;
  if (job.status === "succeeded") {
    $("model-id").textContent = `Model: ${job.fine_tuned_model}`;
    $("exports").hidden = false;
    await loadModels(job.fine_tuned_model);
    $("generate").focus();
  }
}

async function watch(job) {
  state.job = job;
  state.losses = [];
  state.seenSamples = new Set();
  $("samples").replaceChildren();
  $("progress-box").hidden = false;
  $("exports").hidden = true;
  $("model-id").textContent = "";
  $("job-status").textContent = job.status;
  $("cancel").hidden = false;
  drawCurve();
  const response = await call(`/v1/fine_tuning/jobs/${job.id}/events?stream=true`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const line = block.split("\n").find((l) => l.startsWith("data: "));
      if (!line || line === "data: [DONE]") continue;
      onEvent(JSON.parse(line.slice(6)));
    }
  }
  await finished(job.id);
}

async function cancel() {
  if (!state.job) return;
  try {
    await json(`/v1/fine_tuning/jobs/${state.job.id}/cancel`, { method: "POST" });
  } catch (error) {
    showError(error.message);
  }
}

async function download(path, fallbackName) {
  const response = await call(path);
  const disposition = response.headers.get("content-disposition") || "";
  const name = (disposition.match(/filename="?([^";]+)"?/) || [])[1] || fallbackName;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

// --- generation ----------------------------------------------------------------------------------------

async function generate() {
  showError("");
  $("generate").disabled = true;
  try {
    const body = {
      model: $("draw-model").value,
      prompt: $("prompt").value,
      n: Number($("n").value),
      seed: Number($("seed").value),
      steps: Number($("draw-steps").value),
      guidance_scale: Number($("guidance").value),
      response_format: "b64_json",
    };
    const result = await json("/v1/images/generations", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const items = result.data.map((image) => {
      const li = document.createElement("li");
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${image.b64_json}`;
      img.alt = `${body.prompt} (seed ${image.seed})`;
      const link = document.createElement("a");
      link.href = img.src;
      link.download = `groundglass-seed${image.seed}.png`;
      link.textContent = `Download PNG (seed ${image.seed})`;
      li.append(img, link);
      return li;
    });
    $("drawn").replaceChildren(...items);
  } catch (error) {
    showError(error.message);
  } finally {
    $("generate").disabled = false;
  }
}

// --- start-up ---------------------------------------------------------------------------------------------

function init() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setKey($("key-input").value.trim());
    $("key-form").hidden = true;
    showError("");
    loadModels().catch((e) => showError(e.message));
  });
  $("photos").addEventListener("change", (event) => showPhotos([...event.target.files]));
  $("start").addEventListener("click", () => start());
  $("cancel").addEventListener("click", () => cancel());
  $("generate").addEventListener("click", () => generate());
  $("exports").addEventListener("click", (event) => {
    const format = event.target.dataset && event.target.dataset.format;
    if (!format || !state.job) return;
    download(`/v1/fine_tuning/jobs/${state.job.id}/export?format=${format}`, `model-${format}`)
      .catch((e) => showError(e.message));
  });
  loadModels().catch((e) => showError(e.message));
}

init();
