// What the chat page's tabs share: the API key (kept in this tab's sessionStorage, never in
// localStorage), calls to /v1 with it, server-sent events, picture uploads checked before
// they are sent, and model output rendered as text with only its media through the sanitiser.
import { ApiError, errorMessage, h, sanitize } from "../console.js";

const KEY_STORE = "grok2api.chat.api_key";
let currentKey = sessionStorage.getItem(KEY_STORE) || "";

export const apiKey = {
  get: () => currentKey,
  set(value) {
    currentKey = value.trim();
    if (currentKey) sessionStorage.setItem(KEY_STORE, currentKey);
    else sessionStorage.removeItem(KEY_STORE);
  },
};

async function failure(response) {
  const body = await response.json().catch(() => null);
  const message = errorMessage(body, response.status);
  return new ApiError(response.status === 401 ? `The API key was refused: ${message}` : message, response.status, body);
}

/** A /v1 call with the key; JSON bodies as JSON, FormData as is. Throws an ApiError with the backend's message. */
export async function v1(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json, text/event-stream" };
  if (currentKey) headers.Authorization = `Bearer ${currentKey}`;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, signal, credentials: "omit" });
  if (!response.ok) throw await failure(response);
  return response;
}

/** Every server-sent event of a response: ``{event, data}`` with ``data`` the raw text. */
export async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
    if (done) return;
  }
}

const SIGNATURES = [
  ["image/png", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0],
  ["image/jpeg", [0xff, 0xd8, 0xff], 0],
  ["image/gif", [0x47, 0x49, 0x46, 0x38], 0],
  ["image/webp", [0x57, 0x45, 0x42, 0x50], 8],
];
let rules = null;

/** What the gateway takes (``GET /v1/uploads/image``), asked once; 5 MB and the four types when it cannot say. */
async function uploadRules() {
  if (!rules) {
    try {
      rules = await (await v1("/v1/uploads/image")).json();
    } catch {
      return { max_bytes: 5 * 1024 * 1024, mime_types: SIGNATURES.map(([type]) => type) };
    }
  }
  return rules;
}

/** The picture type a file's first bytes show (its name and declared type prove nothing), or null. */
export async function pictureType(file) {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const found = SIGNATURES.find(([, bytes, at]) => bytes.every((byte, i) => head[at + i] === byte));
  return found ? found[0] : null;
}

/** Checks ``file`` here (type by its bytes, size), then uploads it; resolves with its link. */
export async function uploadPicture(file) {
  const { max_bytes: maxBytes, mime_types: types } = await uploadRules();
  const type = await pictureType(file);
  if (!type || !types.includes(type)) throw new ApiError(`${file.name} is not a PNG, JPEG, WebP or GIF picture`, 400, null);
  if (file.size > maxBytes) {
    throw new ApiError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${(maxBytes / 1048576).toFixed(1)} MB`, 413, null);
  }
  const form = new FormData();
  form.append("file", file, file.name);
  return (await (await v1("/v1/uploads/image", { method: "POST", body: form })).json()).url;
}

// markdown pictures, <video>…</video> and a poster linking to its video (the gateway's own
// media answers): the only parts of an answer that go through the sanitiser; the rest is text
const MEDIA = /!\[([^\]\n]*)\]\(([^)\s]+)\)|<video\b[\s\S]*?<\/video>|<a\b[^>]*>\s*<img\b[^>]*>[\s\S]*?<\/a>/gi;

/** ``![alt](url)`` as markup serialised from an element we built (its attribute values escaped). */
const markdownPicture = (alt, url) => h("img", { src: url, alt }).outerHTML;

/** ``text`` as nodes: text stays text (line breaks kept by CSS); media through ``sanitize``. */
export function renderOutput(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(MEDIA)) {
    if (match.index > last) fragment.append(text.slice(last, match.index));
    const markup = match[0].startsWith("!") ? markdownPicture(match[1], match[2]) : match[0];
    fragment.append(sanitize(markup));
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.append(text.slice(last));
  for (const image of fragment.querySelectorAll("img")) retryOnError(image);
  return fragment;
}

/** A picture that fails to load becomes a button that tries it again (with a cache-buster). */
export function retryOnError(image) {
  image.addEventListener("error", () => {
    const source = image.getAttribute("src");
    if (!source) return;
    const button = h("button", { class: "button small broken-image", type: "button" }, "Picture failed to load: retry");
    button.addEventListener("click", () => {
      const probe = new Image();
      const separator = source.includes("?") ? "&" : "?";
      const url = source.startsWith("data:") ? source : `${source}${separator}_retry=${Date.now()}`;
      button.disabled = true;
      button.textContent = "Retrying…";
      probe.onload = () => { image.src = url; button.replaceWith(image); };
      probe.onerror = () => { button.disabled = false; button.textContent = "Still failing: retry"; };
      probe.src = url;
    });
    image.replaceWith(button);
  });
}

/** Models from /v1/models whose ids ``keep`` accepts, into ``select`` (``preferred`` first when there). */
export function fillModels(select, models, keep, preferred) {
  const ids = models.map((model) => model.id).filter(keep);
  const previous = select.value;
  select.replaceChildren(...ids.map((id) => h("option", { value: id }, id)));
  select.value = ids.includes(previous) ? previous : ids.includes(preferred) ? preferred : (ids[0] ?? "");
  select.disabled = !ids.length;
  if (!ids.length) select.append(h("option", { value: "" }, "No model for this tab"));
}
