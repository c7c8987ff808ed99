// The page's client of the groundglass API: the key, JSON calls, and the streamed chat completion
// (server-sent events read from fetch, so that the key travels in a header and Stop can abort it).
// Every failure becomes an ApiError whose message a person can act on.

const KEY_STORE = "groundglass.key";

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORE, key);
    else localStorage.removeItem(KEY_STORE);
  } catch {
    /* storage blocked: the key lasts until the page closes */
  }
  memoryKey = key;
}

let memoryKey = "";

function currentKey() {
  return getKey() || memoryKey;
}

export class ApiError extends Error {
  // kind: "auth" | "rate" | "down" | "model" | "search" | "server" | "request"
  constructor(message, { status = 0, code = "", kind = "request", retryAfter = 0, detail = "" } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.kind = kind;
    this.retryAfter = retryAfter;
    this.detail = detail;
  }
}

function headers(extra = {}) {
  const out = { ...extra };
  const key = currentKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

export function unreachable() {
  return new ApiError(
    `Cannot reach the groundglass server at ${location.origin}. Is \`groundglass serve\` still running?`,
    { kind: "down" },
  );
}

// Statuses of errors that arrive inside a stream (the HTTP status was already 200 by then).
const STREAM_STATUS = { model_error: 502, invalid_model_output: 502, search_failed: 502,
                        internal_error: 500, engine_error: 500, rate_limit_exceeded: 429 };

export function describe(status, error = {}, retryAfterHeader = null) {
  const code = error.code || "";
  const message = error.message || "";
  if (status === 429) {
    const fromHeader = parseInt(retryAfterHeader || "", 10);
    const fromText = parseInt((message.match(/retry in (\d+)/) || [])[1] || "", 10);
    const seconds = fromHeader > 0 ? fromHeader : fromText > 0 ? fromText : 60;
    const what = message.split(";")[0] || "rate limit reached";
    return new ApiError(`Too many requests: ${what}. Try again in ${seconds} s.`,
                        { status, code, kind: "rate", retryAfter: seconds, detail: message });
  }
  if (status === 401) {
    const text = code === "missing_api_key"
      ? "This server needs an API key. Enter one to ask questions."
      : "The API key was refused: it is invalid or has been revoked. Enter another key.";
    return new ApiError(text, { status, code, kind: "auth", detail: message });
  }
  if (code === "model_error" || code === "invalid_model_output") {
    return new ApiError(`The model failed to answer: ${message}`, { status, code, kind: "model" });
  }
  if (code === "search_failed") {
    return new ApiError(`The search failed: ${message}`, { status, code, kind: "search" });
  }
  if (status >= 500) {
    return new ApiError(`The server had a problem (${status}): ${message || "no details"}`,
                        { status, code, kind: "server" });
  }
  return new ApiError(message || `The request failed (${status}).`, { status, code, kind: "request" });
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: a proxy's page, say */
  }
  return describe(response.status, (body && body.error) || {}, response.headers.get("Retry-After"));
}

export async function call(method, path, body = undefined) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw unreachable();
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

// Parse one server-sent event block ("event: x\ndata: y") into {event, data}.
function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a comment: sse-starlette's keep-alive ping
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

// POST /chat/completions with stream=true; yields each chunk object until [DONE].
export async function* streamChat(body, signal) {
  let response;
  try {
    response = await fetch("/chat/completions", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw unreachable();
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      let read;
      try {
        read = await reader.read();
      } catch (error) {
        if (error.name === "AbortError") throw error;
        throw new ApiError("The connection to the server was lost while the answer was streaming.",
                           { kind: "down" });
      }
      if (read.done) break;
      buffer = (buffer + decoder.decode(read.value, { stream: true })).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (!event) continue;
        if (event.data === "[DONE]") return;
        const data = JSON.parse(event.data);
        if (event.event === "error") {
          const error = data.error || {};
          throw describe(STREAM_STATUS[error.code] || 500, error);
        }
        yield data;
      }
    }
  } finally {
    reader.releaseLock();
  }
  throw new ApiError("The answer stopped before it was finished: the server closed the connection.",
                     { kind: "down" });
}
