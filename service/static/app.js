// Moderator page: sends files or text to /v1/scan with the key, shows each result with its evidence.
// No build step, no dependencies. Everything is drawn from the ScanResult JSON (the `detector scan --json` contract).
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key"), dropZone = $("drop-zone"), fileInput = $("file-input"), textInput = $("text-input");
const resultsList = $("results"), errorBox = $("error");
const PARALLEL_UPLOADS = 4, POLL_MS = 1000;

keyInput.value = sessionStorage.getItem("detector-key") || "";
keyInput.addEventListener("change", () => sessionStorage.setItem("detector-key", keyInput.value.trim()));

// ---- input: drag and drop, file picker (keyboard: Enter/Space on the drop zone), pasted text -------------------
dropZone.addEventListener("click", () => fileInput.click());
dropZone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); fileInput.click(); }
});
["dragenter", "dragover"].forEach((name) => dropZone.addEventListener(name, (event) => {
  event.preventDefault(); dropZone.classList.add("over");
}));
["dragleave", "drop"].forEach((name) => dropZone.addEventListener(name, () => dropZone.classList.remove("over")));
dropZone.addEventListener("drop", (event) => { event.preventDefault(); scanFiles([...event.dataTransfer.files]); });
fileInput.addEventListener("change", () => { scanFiles([...fileInput.files]); fileInput.value = ""; });
$("scan-text").addEventListener("click", scanText);
textInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) scanText();
});

function scanText() {
  const text = textInput.value;
  if (!text.trim()) { showError("Paste some text first."); return; }
  const form = new FormData();
  form.append("text", text);
  const card = newCard("Pasted text");
  submit(card, form, { text });
}

async function scanFiles(files) {
  if (!files.length) return;
  const queue = files.map((file) => ({ file, card: newCard(file.name) }));
  const next = async () => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const form = new FormData();
      form.append("file", item.file, item.file.name);
      await submit(item.card, form, { file: item.file });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, files.length) }, next));
}

// ---- calls ------------------------------------------------------------------------------------------------------
function headers() {
  const key = keyInput.value.trim();
  sessionStorage.setItem("detector-key", key);
  return key ? { "X-API-Key": key } : {};
}

function query() {
  const params = new URLSearchParams();
  if ($("explain").checked) params.set("explain", "true");
  if ($("declared-ai").checked) params.set("declared_ai", "true");
  return params.toString() ? `?${params}` : "";
}

async function submit(card, form, source) {
  hideError();
  setStatus(card, "Uploading and checking…", true);
  let response;
  try {
    response = await fetch(`/v1/scan${query()}`, { method: "POST", headers: headers(), body: form });
  } catch (err) {
    return fail(card, `Could not reach the service (${err.message}).`);
  }
  const body = await readJson(response);
  if (response.status === 202) return followJob(card, body, source);
  if (response.ok || response.status === 422) return renderResult(card, body, source);
  fail(card, describeError(response, body));
}

async function followJob(card, job, source) {
  const started = Date.now();
  for (;;) {
    const seconds = Math.round((Date.now() - started) / 1000);
    setStatus(card, `Job ${job.state} (${seconds} s) — long media is checked in the background.`, true,
              job.state === "queued" ? 0.1 : 0.5);
    if (job.state === "done") return renderResult(card, job.result, source);
    if (job.state === "failed") return fail(card, `The job failed: ${job.error || "unknown error"}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    let response;
    try {
      response = await fetch(`/v1/jobs/${encodeURIComponent(job.job_id)}`, { headers: headers() });
    } catch (err) {
      continue;                                    // transient: keep polling
    }
    const body = await readJson(response);
    if (!response.ok && response.status !== 429) return fail(card, describeError(response, body));
    if (response.ok) job = body;
  }
}

async function readJson(response) {
  try { return await response.json(); } catch { return {}; }
}

function describeError(response, body) {
  const detail = body && body.error ? ` (${body.error})` : "";
  switch (response.status) {
    case 401: return `The API key is missing or not valid${detail}. Enter the key you were given above.`;
    case 403: return `This key is not allowed to do that${detail}.`;
    case 413: return `Too large${detail}.`;
    case 415: return `This kind of file is not supported${detail}.`;
    case 429: return `Too many requests: try again in ${response.headers.get("Retry-After") || "a few"} s.`;
    case 503: return `The service is busy or restarting: try again shortly${detail}.`;
    default: return `The service answered ${response.status}${detail}.`;
  }
}

// ---- cards ------------------------------------------------------------------------------------------------------
function newCard(title) {
  const card = el("li", { className: "result" });
  card.append(el("h3", { textContent: title }));
  card.status = el("p", { className: "status" });
  card.progress = el("progress", { max: 1 });
  card.progress.setAttribute("aria-label", `Progress for ${title}`);
  card.append(card.status, card.progress);
  resultsList.prepend(card);
  return card;
}

function setStatus(card, text, busy, fraction) {
  card.status.textContent = text;
  card.progress.hidden = !busy;
  if (fraction === undefined) card.progress.removeAttribute("value"); else card.progress.value = fraction;
  card.setAttribute("aria-busy", busy ? "true" : "false");
}

function fail(card, message) {
  setStatus(card, "", false);
  card.status.textContent = message;
  card.status.className = "status error";
  showError(message);
}

function showError(message) { errorBox.textContent = message; errorBox.hidden = false; }
function hideError() { errorBox.hidden = true; errorBox.textContent = ""; }

function renderResult(card, result, source) {
  setStatus(card, "", false);
  card.status.remove();
  card.progress.remove();
  const summary = el("p", { className: "summary" });
  summary.append(el("span", { className: `verdict ${result.verdict}`, textContent: result.verdict.replace("_", " ") }));
  if (result.score !== null && result.score !== undefined) {
    summary.append(el("span", { className: "score",
                                textContent: `${(100 * result.score).toFixed(1)}% likely synthetic` }));
  }
  card.append(summary);
  if (result.reason) card.append(el("p", { className: "reasons", textContent: result.reason }));
  const model = result.model ? `${result.model.name} ${result.model.version}` : "no model";
  card.append(el("p", { className: "meta",
                        textContent: `${result.modality || "unknown"} · ${model} · ${result.elapsed_ms} ms` }));
  if (result.model && result.model.caveat) {
    card.append(el("p", { className: "caveat", textContent: `Model caveat: ${result.model.caveat}` }));
  }
  const evidence = result.evidence || {};
  if (result.modality === "image" && source.file) drawImage(card, source.file, evidence);
  if (result.modality === "video") drawVideo(card, evidence);
  if (result.modality === "audio") drawAudio(card, source.file, evidence);
  if (result.modality === "text") drawText(card, source.text, evidence);
  drawProvenance(card, result.provenance || {});
  if (result.matches && result.matches.length) {
    card.append(findings("Known-content matches", Object.fromEntries(
      result.matches.map((m, i) => [`match ${i + 1}`, m]))));
  }
  const raw = el("details");
  raw.append(el("summary", { textContent: "Full result (JSON)" }), el("pre", { textContent: JSON.stringify(result, null, 2) }));
  card.append(raw);
}

// Face boxes over the image, each with its Grad-CAM heatmap (when explained) blended inside the box.
function drawImage(card, file, evidence) {
  const faces = evidence.faces || [];
  const wrap = el("div", { className: "media" });
  const canvas = el("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", faces.length
    ? `Image with ${faces.length} face box(es): ${faces.map((f) => `${Math.round(100 * f.score)}%`).join(", ")}`
    : "Image (no faces marked)");
  wrap.append(canvas);
  card.append(wrap);
  const image = new Image();
  image.onload = async () => {
    canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0);
    for (const face of faces) {
      const [x1, y1, x2, y2] = face.box;
      if (face.heatmap_png) {
        const heat = await loadImage(`data:image/png;base64,${face.heatmap_png}`);
        ctx.globalAlpha = 0.6; ctx.drawImage(heat, x1, y1, x2 - x1, y2 - y1); ctx.globalAlpha = 1;
      }
      ctx.lineWidth = Math.max(2, canvas.width / 300);
      ctx.strokeStyle = face.score >= 0.5 ? "#e53935" : "#43a047";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = `${Math.max(12, canvas.width / 40)}px sans-serif`;
      ctx.fillText(`${Math.round(100 * face.score)}% ${face.kind || ""}`, x1, Math.max(12, y1 - 4));
    }
    URL.revokeObjectURL(image.src);
  };
  image.src = URL.createObjectURL(file);
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image(); image.onload = () => resolve(image); image.onerror = reject; image.src = src;
  });
}

// Face tracks and the time ranges where faces look synthetic, plus heatmaps of the most telling faces.
function drawVideo(card, evidence) {
  const ranges = evidence.suspicious_ranges || [];
  const tracks = evidence.tracks || [];
  const end = Math.max(1, ...tracks.map((t) => t.end || 0), ...ranges.map((r) => r[1]));
  card.append(timeline(ranges.map(([start, stop]) => ({ start, end: stop })), end, "Suspicious face time ranges"));
  if (tracks.length) {
    // every head's mean per tracked face, the ones the model does not read for video included
    const list = el("ul", { className: "tracks" });
    for (const t of tracks) {
      const heads = Object.entries(t.heads || {})
        .map(([name, value]) => `${name.replace("_", " ")} ${Math.round(100 * value)}%`).join(", ");
      list.append(el("li", { textContent: `Face ${t.track + 1}, ${t.start}–${t.end} s (${t.faces} frames): `
        + `${Math.round(100 * t.score)}%` + (heads ? `; heads: ${heads}` : "") }));
    }
    card.append(list);
  }
  const heatmaps = (evidence.faces || []).filter((f) => f.heatmap_png);
  if (heatmaps.length) {
    const strip = el("div", { className: "media" });
    for (const face of heatmaps) {
      strip.append(el("img", { src: `data:image/png;base64,${face.heatmap_png}`, width: 112,
                               alt: `Face heatmap at ${face.time} s, ${Math.round(100 * face.score)}%` }));
    }
    card.append(strip);
  }
  if (evidence.soundtrack) drawSoundtrack(card, evidence.soundtrack);
}

// The voice detector's own verdict on a video's soundtrack, with the segments it scored synthetic.
function drawSoundtrack(card, soundtrack) {
  const line = el("p", { className: "soundtrack" });
  line.append("Soundtrack: ", el("span", { className: `verdict ${soundtrack.verdict}`,
                                          textContent: soundtrack.verdict.replace("_", " ") }));
  if (soundtrack.score !== null && soundtrack.score !== undefined) {
    line.append(`, ${(100 * soundtrack.score).toFixed(1)}% likely synthetic`);
  }
  if (soundtrack.model) line.append(` (${soundtrack.model.name} ${soundtrack.model.version})`);
  card.append(line);
  if (soundtrack.reason) card.append(el("p", { className: "reasons", textContent: soundtrack.reason }));
  if (soundtrack.model && soundtrack.model.caveat) {
    card.append(el("p", { className: "caveat", textContent: `Voice model caveat: ${soundtrack.model.caveat}` }));
  }
  const evidence = soundtrack.evidence || {};
  if (evidence.duration_seconds) {
    card.append(timeline(evidence.suspicious_segments || [], evidence.duration_seconds,
                         "Suspicious soundtrack segments"));
  }
}

// Waveform of the uploaded audio with suspicious segments shaded; window scores as a line when explained.
async function drawAudio(card, file, evidence) {
  const segments = evidence.suspicious_segments || [];
  const canvas = el("canvas", { className: "waveform" });
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", segments.length
    ? `Waveform; suspicious segments: ${segments.map((s) => `${s.start}–${s.end} s`).join(", ")}`
    : "Waveform; no suspicious segments");
  card.append(canvas, el("p", { className: "legend",
    textContent: "Shaded: segments scored synthetic. Red line: score per window (top = 100%)." }));
  canvas.width = canvas.clientWidth || 800; canvas.height = 120;
  const ctx = canvas.getContext("2d");
  let samples = null, duration = evidence.duration_seconds || 1;
  if (file) {
    try {
      const audio = await new AudioContext().decodeAudioData(await file.arrayBuffer());
      samples = audio.getChannelData(0); duration = audio.duration;
    } catch { /* the browser cannot decode this format: draw the segments alone */ }
  }
  const x = (t) => (t / duration) * canvas.width;
  ctx.fillStyle = "rgba(179, 38, 30, 0.25)";
  for (const s of segments) ctx.fillRect(x(s.start), 0, Math.max(2, x(s.end) - x(s.start)), canvas.height);
  if (samples) {
    ctx.strokeStyle = "#1a5fd0"; ctx.beginPath();
    const step = Math.max(1, Math.floor(samples.length / canvas.width)), mid = canvas.height / 2;
    for (let px = 0; px < canvas.width; px++) {
      let low = 1, high = -1;
      for (let i = px * step; i < Math.min(samples.length, (px + 1) * step); i++) {
        low = Math.min(low, samples[i]); high = Math.max(high, samples[i]);
      }
      ctx.moveTo(px, mid - high * mid); ctx.lineTo(px, mid - low * mid);
    }
    ctx.stroke();
  }
  const windows = evidence.windows || [];
  if (windows.length) {
    ctx.strokeStyle = "#b3261e"; ctx.beginPath();
    windows.forEach((w, i) => {
      const px = x(w.start + (evidence.window_seconds || 0) / 2), py = canvas.height * (1 - w.score);
      if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
  }
}

// The text with each scored span highlighted; darker means more likely machine-written. Spans index the decoded
// text: pasted text is shown whole where they line up with it; otherwise (uploaded documents, web pages, PDFs, or
// pasted text that decoding normalized) the scored passages that the evidence carries are shown in order.
function drawText(card, text, evidence) {
  const spans = (evidence.spans || []).slice().sort((a, b) => a.start - b.start);
  const whole = Boolean(text) && spans.every((span) => span.text === undefined
                                                   || text.slice(span.start, span.end) === span.text);
  const passages = spans.filter((span) => span.text);
  if (!whole && !passages.length) return;
  const view = el("div", { className: "text-view" });
  let at = 0;
  if (whole) {
    for (const span of spans) {
      const start = Math.max(at, Math.min(span.start, text.length)), end = Math.min(span.end, text.length);
      if (end <= start) continue;
      view.append(text.slice(at, start), scoredPassage(text.slice(start, end), span.score));
      at = end;
    }
    view.append(text.slice(at));
  } else {
    for (const span of passages) {
      if (span.start > at + 2) view.append(view.childNodes.length ? " … " : "… ");    // text not scored before it
      else if (view.childNodes.length) view.append(" ");
      view.append(scoredPassage(span.text, span.score));
      at = span.end;
    }
  }
  card.append(view);
  if (spans.length) {
    card.append(el("p", { className: "legend", textContent: whole
      ? "Highlighted: passages scored as likely machine-written."
      : "The scored passages of the document; highlighted: likely machine-written." }));
  }
  if (evidence.unread_characters) {
    card.append(el("p", { className: "legend", textContent:
      `${evidence.unread_characters} characters between passages were not read by the model (chunks cut short).` }));
  }
}

function scoredPassage(passage, score) {
  const mark = el("mark", { className: score >= 0.5 ? "suspicious" : "", textContent: passage,
                            title: `${Math.round(100 * score)}% likely machine-written` });
  mark.style.setProperty("--s", score);
  if (score < 0.5) mark.style.background = "transparent";
  return mark;
}

// Labels (implicit metadata, explicit visible/audible), C2PA, watermark and generator traces.
function drawProvenance(card, provenance) {
  const shown = Object.fromEntries(Object.entries(provenance).filter(([, v]) =>
    v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0)));
  if (!Object.keys(shown).length) return;
  card.append(findings("Provenance and labels", shown, true));
}

function findings(title, values, open) {
  const details = el("details");
  details.open = !!open;
  details.append(el("summary", { textContent: title }));
  const list = el("dl", { className: "findings" });
  for (const [name, value] of Object.entries(values)) {
    list.append(el("dt", { textContent: name.replaceAll("_", " ") }),
                el("dd", { textContent: typeof value === "object" ? JSON.stringify(value) : String(value) }));
  }
  details.append(list);
  return details;
}

function timeline(ranges, duration, label) {
  const canvas = el("canvas", { className: "waveform", height: 40 });
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", ranges.length
    ? `${label}: ${ranges.map((r) => `${r.start}–${r.end} s`).join(", ")}` : `${label}: none`);
  requestAnimationFrame(() => {
    canvas.width = canvas.clientWidth || 800;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#eee"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "rgba(179, 38, 30, 0.7)";
    for (const r of ranges) {
      ctx.fillRect((r.start / duration) * canvas.width, 0,
                   Math.max(2, ((r.end - r.start) / duration) * canvas.width), canvas.height);
    }
  });
  return canvas;
}

function el(tag, props = {}) {
  return Object.assign(document.createElement(tag), props);
}
