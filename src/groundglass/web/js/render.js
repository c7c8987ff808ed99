// Rendering of one turn: what was read from the images, the reasoning steps, the answer (a small,
// safe subset of Markdown, with [n] markers as links to the sources and unsupported sentences
// marked), the sources and the related questions. Text from the model and from sources is only ever
// set as textContent, never parsed as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The answer's text split into its <think> trace (null when there is none) and the answer proper.
export function splitThink(content) {
  const text = content || "";
  if (!text.startsWith("<think>")) return { think: null, thinking: false, answer: text };
  const close = text.indexOf("</think>");
  if (close < 0) return { think: text.slice(7), thinking: true, answer: "" };
  return { think: text.slice(7, close), thinking: false, answer: text.slice(close + 8).replace(/^\s+/, "") };
}

// Only web addresses become links: a stored or shared thread may hold anything a client wrote into it.
export function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

export function site(url) {
  try {
    return new URL(url).hostname.replace(/^www\./, "");
  } catch {
    return url || "";
  }
}

// --- the answer ---------------------------------------------------------------------------------

// Where each attributed sentence lies in the answer: [{start, end, item}], found in order.
function sentenceRanges(answer, attribution) {
  const ranges = [];
  let cursor = 0;
  for (const item of attribution || []) {
    const sentence = (item.sentence || "").trim();
    if (!sentence) continue;
    let at = answer.indexOf(sentence, cursor);
    if (at < 0) at = answer.indexOf(sentence);
    if (at < 0) continue;
    ranges.push({ start: at, end: at + sentence.length, item });
    cursor = at + sentence.length;
  }
  return ranges;
}

// Blocks of a small Markdown subset: headings, bullet and numbered lists, paragraphs. Each line keeps
// its offset in the answer, so that sentences can be matched across the rendering.
function blocks(answer) {
  const out = [];
  let offset = 0;
  let paragraph = null;
  let list = null;
  for (const line of answer.split("\n")) {
    const start = offset;
    offset += line.length + 1;
    const heading = line.match(/^(#{1,4})\s+(.*)$/);
    const bullet = line.match(/^\s*([-*•]|\d+[.)])\s+(.*)$/);
    if (!line.trim()) {
      paragraph = null;
      list = null;
    } else if (heading) {
      paragraph = null;
      list = null;
      out.push({ kind: "h", lines: [{ text: heading[2], start: start + line.indexOf(heading[2]) }] });
    } else if (bullet) {
      paragraph = null;
      const ordered = /\d/.test(bullet[1]);
      if (!list || list.ordered !== ordered) {
        list = { kind: "list", ordered, lines: [] };
        out.push(list);
      }
      list.lines.push({ text: bullet[2], start: start + line.indexOf(bullet[2]) });
    } else if (list && /^\s+/.test(line)) {
      list.lines[list.lines.length - 1].more = (list.lines[list.lines.length - 1].more || []).concat(
        [{ text: line.trim(), start: start + line.indexOf(line.trim()) }]);
    } else {
      list = null;
      if (!paragraph) {
        paragraph = { kind: "p", lines: [] };
        out.push(paragraph);
      }
      paragraph.lines.push({ text: line, start });
    }
  }
  return out;
}

const INLINE = /\[(\d+)\]|\*\*([^*\n]+)\*\*|`([^`\n]+)`/g;

// Inline pieces of one line: text, bold, code and citation markers, each with its offset.
function inlinePieces(text, start) {
  const pieces = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) pieces.push({ kind: "text", text: text.slice(last, m.index), at: start + last });
    if (m[1]) pieces.push({ kind: "cite", n: Number(m[1]), at: start + m.index });
    else if (m[2]) pieces.push({ kind: "bold", text: m[2], at: start + m.index });
    else pieces.push({ kind: "code", text: m[3], at: start + m.index });
    last = m.index + m[0].length;
  }
  if (last < text.length) pieces.push({ kind: "text", text: text.slice(last), at: start + last });
  return pieces;
}

function citeLink(n, ctx) {
  const source = ctx.sources[n - 1];
  if (!source) return document.createTextNode(`[${n}]`);
  return el("a", {
    class: "cite",
    href: `#${ctx.turnId}-src-${n}`,
    "aria-label": `Source ${n}: ${source.title || site(source.url)}`,
    dataset: { n: String(n), turn: ctx.turnId },
  }, `${n}`);
}

function renderPiece(piece, ctx) {
  if (piece.kind === "cite") return citeLink(piece.n, ctx);
  if (piece.kind === "bold") return el("strong", {}, piece.text);
  if (piece.kind === "code") return el("code", {}, piece.text);
  return document.createTextNode(piece.text);
}

// Text pieces cut where an attributed sentence starts or ends, so each piece lies in one sentence.
function cutAtSentences(pieces, ranges) {
  const out = [];
  for (const piece of pieces) {
    if (piece.kind !== "text") {
      out.push(piece);
      continue;
    }
    const end = piece.at + piece.text.length;
    const cuts = ranges.flatMap((r) => [r.start, r.end]).filter((c) => c > piece.at && c < end)
      .sort((a, b) => a - b);
    let from = piece.at;
    for (const cut of [...new Set(cuts), end]) {
      out.push({ kind: "text", text: piece.text.slice(from - piece.at, cut - piece.at), at: from });
      from = cut;
    }
  }
  return out;
}

// One line's inline content, with the pieces inside an attributed sentence wrapped in its span.
function renderLine(line, ctx, into) {
  let span = null;
  let spanRange = null;
  for (const piece of cutAtSentences(inlinePieces(line.text, line.start), ctx.ranges)) {
    const range = ctx.ranges.find((r) => piece.at >= r.start && piece.at < r.end) || null;
    if (range !== spanRange) {
      spanRange = range;
      span = null;
      if (range) {
        const unsupported = !range.item.supported;
        span = el("span", {
          class: unsupported ? "sentence unsupported" : "sentence",
          dataset: { support: String(range.item.support) },
          title: unsupported
            ? `Not supported by the sources it cites (support ${Number(range.item.support).toFixed(2)})`
            : null,
        });
        into.append(span);
      }
    }
    (span || into).append(renderPiece(piece, ctx));
  }
}

export function renderAnswer(container, answer, ctx) {
  const context = { ...ctx, ranges: sentenceRanges(answer, ctx.attribution) };
  const out = [];
  for (const block of blocks(answer)) {
    if (block.kind === "h") {
      const h = el("h3", { class: "answer-heading" });
      renderLine(block.lines[0], context, h);
      out.push(h);
    } else if (block.kind === "list") {
      const list = el(block.ordered ? "ol" : "ul");
      for (const line of block.lines) {
        const li = el("li");
        renderLine(line, context, li);
        for (const more of line.more || []) {
          li.append(" ");
          renderLine(more, context, li);
        }
        list.append(li);
      }
      out.push(list);
    } else {
      const p = el("p");
      block.lines.forEach((line, i) => {
        if (i) p.append(el("br"));
        renderLine(line, context, p);
      });
      out.push(p);
    }
  }
  container.replaceChildren(...out);
}

// --- around the answer --------------------------------------------------------------------------

export function renderFacts(container, facts) {
  container.replaceChildren();
  if (!facts || !facts.length) {
    container.hidden = true;
    return;
  }
  container.hidden = false;
  container.append(el("h3", { class: "panel-title" }, "Read from the image" + (facts.length > 1 ? "s" : "")));
  facts.forEach((fact, i) => {
    const rows = el("dl", { class: "facts" });
    if (facts.length > 1) rows.append(el("dt", {}, "Image"), el("dd", {}, String(i + 1)));
    const text = (fact.text || "").trim();
    rows.append(el("dt", {}, "Text"), el("dd", { class: text ? "ocr" : "muted" }, text || "no text found"));
    // labels below 10% are guesses, not something the image shows
    const labels = (fact.labels || []).filter((l) => l.score >= 0.1).slice(0, 5);
    rows.append(el("dt", {}, "Looks like"),
                el("dd", { class: labels.length ? null : "muted" }, labels.length
                  ? labels.map((l) => `${l.name} (${Math.round(l.score * 100)}%)`).join(", ")
                  : "nothing recognised with confidence"));
    if (fact.caption) rows.append(el("dt", {}, "Caption"), el("dd", {}, fact.caption));
    container.append(rows);
  });
}

// The reasoning: one item per <think> line; a step's sources and time when the API sent them.
export function renderTrace(details, think, steps, running) {
  const lines = (think || "").split("\n").map((l) => l.trim()).filter(Boolean);
  if (!lines.length && !Object.keys(steps).length) {
    details.hidden = true;
    return;
  }
  details.hidden = false;
  const stepCount = Object.keys(steps).length;
  const summary = details.querySelector("summary");
  const count = stepCount || lines.length;
  summary.textContent = running
    ? `Working… ${stepCount ? `${stepCount} search${stepCount > 1 ? "es" : ""} done` : ""}`
    : `Reasoning: ${count} step${count === 1 ? "" : "s"}`;
  const list = details.querySelector("ol");
  // the <think> lines, each with its step's details; then the steps no line mentions (a stream whose
  // trace is not in the text still sends each step as reasoning_step)
  const named = new Set(lines.map((line) => (line.match(/^(s\d+):/) || [])[1]).filter(Boolean));
  const items = [
    ...lines.map((line) => [line, steps[(line.match(/^(s\d+):/) || [])[1]]]),
    ...Object.values(steps).filter((s) => !named.has(s.id)).map((s) =>
      [`${s.id}: searched “${s.query}”${s.partial_answer ? `. Found: ${s.partial_answer}` : ""}`, s]),
  ];
  list.replaceChildren(...items.map(([line, step]) => {
    const li = el("li", {}, el("span", { class: "step-text" }, line));
    if (step) {
      li.prepend(el("span", { class: "step-time" }, `${Number(step.seconds || 0).toFixed(1)} s`));
      if ((step.sources || []).length) {
        li.append(el("ul", { class: "step-sources" }, step.sources.map((s) =>
          el("li", {}, el("a", { href: safeUrl(s.url), target: "_blank", rel: "noopener noreferrer" },
                          s.title || site(s.url))))));
      }
    }
    return li;
  }));
  if (running) list.append(el("li", { class: "step-running", "aria-hidden": "true" }, "…"));
}

export function renderSources(container, sources, turnId) {
  container.replaceChildren();
  if (!sources || !sources.length) {
    container.hidden = true;
    return;
  }
  container.hidden = false;
  container.append(el("h3", { class: "panel-title" }, `Sources (${sources.length})`));
  container.append(el("ol", { class: "source-list" }, sources.map((s, i) =>
    el("li", { id: `${turnId}-src-${i + 1}`, tabindex: "-1" },
      el("span", { class: "source-n", "aria-hidden": "true" }, String(i + 1)),
      el("div", { class: "source-body" },
        el("a", { class: "source-title", href: safeUrl(s.url), target: "_blank", rel: "noopener noreferrer" },
           s.title || s.url),
        el("div", { class: "source-meta muted small" },
           [site(s.url), s.date, `relevance ${Number(s.score || 0).toFixed(2)}`].filter(Boolean).join(" · ")),
        s.snippet ? el("p", { class: "source-snippet small" }, s.snippet) : null)))));
}

export function renderRelated(container, questions, onAsk, readOnly) {
  container.replaceChildren();
  const list = (questions || []).filter((q) => q && q.trim());
  if (!list.length) {
    container.hidden = true;
    return;
  }
  container.hidden = false;
  container.append(el("h3", { class: "panel-title" }, "Related"));
  container.append(el("div", { class: "related-buttons" }, list.map((q) =>
    el("button", { type: "button", class: "related", disabled: readOnly, onclick: () => onAsk(q) }, q))));
}

// --- the source card ----------------------------------------------------------------------------

export function fillCard(card, source, n, sentence) {
  const when = source.date ? ` · ${source.date}` : "";
  const parts = [
    el("div", { class: "card-head" }, el("span", { class: "source-n" }, String(n)),
       el("strong", { class: "card-title" }, source.title || source.url)),
    el("div", { class: "muted small" }, `${site(source.url)}${when}`),
  ];
  if (source.snippet) parts.push(el("p", { class: "card-snippet small" }, source.snippet));
  const scores = [`Relevance ${Number(source.score || 0).toFixed(2)}`];
  if (sentence) {
    scores.push(`support ${Number(sentence.support).toFixed(2)}` +
                (sentence.supported ? " (supported)" : " (not supported)"));
  }
  parts.push(el("div", { class: "card-scores small" }, scores.join(" · ")));
  parts.push(el("a", { class: "card-open small", href: safeUrl(source.url), target: "_blank",
                       rel: "noopener noreferrer" }, "Open source ↗"));
  card.replaceChildren(...parts);
}
