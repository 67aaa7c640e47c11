// What every console page shares: calls to the admin API (session cookie + CSRF token),
// DOM built from text (never from markup a user or the upstream supplied), toasts, modals,
// the phone drawer, job progress, and the one allow-list sanitiser for model output.

const CSRF_COOKIE = "grok2api-csrf";

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
    this.param = body?.error?.param ?? null;
  }
}

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

/** The message a person should read from an error body: the original's order of preference. */
export function errorMessage(body, status) {
  if (body && typeof body === "object") {
    for (const field of ["detail", "error", "message"]) {
      if (typeof body[field] === "string" && body[field]) return body[field];
    }
    if (typeof body.error?.message === "string") return body.error.message;
  }
  return `Request failed (${status})`;
}

export function loginUrl() {
  return `/login?${new URLSearchParams({ next: location.pathname + location.search })}`;
}

/**
 * An admin API call. ``body`` is sent as JSON (as is when it is FormData or a Blob); a 401 sends the
 * browser to the login page; any other error throws an ApiError with the backend's message.
 */
export async function api(path, { method = "GET", body, signal, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers["X-CSRF-Token"] = cookie(CSRF_COOKIE);
  let payload = body;
  if (body !== undefined && !(body instanceof FormData) && !(body instanceof Blob)) { // a Blob (a file) as is
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, signal, credentials: "same-origin" });
  if (response.status === 401 && !path.endsWith("/login")) {
    location.assign(loginUrl());
    throw new ApiError("Your session ended: log in again", 401, null);
  }
  if (raw && response.ok) return response;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(errorMessage(data, response.status), response.status, data);
  return data;
}

/**
 * ``h("button", {class: "button", on: {click}}, "Save")``: an element whose children are
 * nodes or text. Attributes are set as attributes; there is no way to pass markup.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name in element && typeof value !== "string") {
      element[name] = value; // properties such as checked, disabled, value
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : String(child))));
  return element;
}

export function toast(message, kind = "info") {
  const box = document.querySelector("[data-toasts]");
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 6000 : 3500);
}

/** Reports an error from an API call (or any exception) as a toast; returns nothing. */
export function report(error) {
  if (error?.status === 401) return;
  toast(error?.message || String(error), "error");
}

/**
 * A modal dialog. Esc, the overlay and every element with ``data-close`` close it;
 * ``close()`` does too. Focus returns to where it was.
 */
export function modal(title, body, { actions = [], wide = false, onClose } = {}) {
  const returnFocus = document.activeElement;
  const dialog = h("div", { class: `modal${wide ? " wide" : ""}`, role: "dialog", "aria-modal": "true",
    "aria-label": title },
    h("div", { class: "modal-head" }, h("h2", {}, title),
      h("button", { class: "icon-button", type: "button", "aria-label": "Close", dataset: { close: "" } }, "×")),
    h("div", { class: "modal-body" }, body),
    actions.length ? h("div", { class: "modal-actions" }, actions) : null);
  const overlay = h("div", { class: "overlay" }, dialog);
  const onKey = (event) => { if (event.key === "Escape") close(); };
  function close() {
    overlay.remove();
    document.removeEventListener("keydown", onKey);
    returnFocus?.focus?.();
    onClose?.();
  }
  overlay.addEventListener("click", (event) => {
    if (event.target === overlay || event.target.closest("[data-close]")) close();
  });
  document.addEventListener("keydown", onKey);
  document.body.append(overlay);
  requestAnimationFrame(() => overlay.classList.add("open"));
  dialog.querySelector("input, select, textarea, button:not([data-close])")?.focus();
  return { close, dialog };
}

/** ``await confirmDialog("Delete 3 keys?")``: true when confirmed. */
export function confirmDialog(message, { confirm = "Delete", danger = true } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h("button", { class: `button ${danger ? "danger" : "primary"}`, type: "button",
      on: { click: () => { answer = true; dialog.close(); } } }, confirm);
    const no = h("button", { class: "button", type: "button", dataset: { close: "" } }, "Cancel");
    const dialog = modal("Please confirm", h("p", {}, message), { actions: [no, yes], onClose: () => resolve(answer) });
  });
}

/** A form field: label, control and the place its error appears (``showFieldError``). */
export function field(label, control, hint = "") {
  return h("label", { class: "field" }, h("span", {}, label), control,
    hint ? h("small", { class: "muted" }, hint) : null, h("span", { class: "field-error", hidden: true }));
}

/** Shows ``message`` under the field whose control is named ``name`` (a backend 400's ``param``). */
export function showFieldError(form, name, message) {
  const control = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  const slot = control?.closest(".field")?.querySelector(".field-error");
  if (!slot) return false;
  slot.textContent = message;
  slot.hidden = false;
  control.setAttribute("aria-invalid", "true");
  control.focus();
  return true;
}

export function clearFieldErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) { slot.hidden = true; slot.textContent = ""; }
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "-";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(value) {
  if (!value) return "-";
  const ms = value < 1e12 ? value * 1000 : value; // seconds or milliseconds
  return new Date(ms).toLocaleString();
}

export function formatNumber(value) {
  return Number.isFinite(value) ? value.toLocaleString() : "-";
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied", "success");
  } catch {
    toast("The browser refused the clipboard: select and copy by hand", "error");
  }
}

/** A progress bar: ``bar.set(done, total, label)``. */
export function progressBar() {
  const fill = h("div", { class: "progress-fill" });
  const text = h("span", { class: "progress-text" });
  const element = h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" },
    fill, text);
  return {
    element,
    /** ``paused``: the job waits to be resumed (the bar turns orange). */
    set(done, total, label = "", { paused = false } = {}) {
      const percent = total ? Math.min(100, Math.round((done / total) * 100)) : 0;
      element.classList.toggle("paused", paused);
      fill.style.width = `${percent}%`;
      element.setAttribute("aria-valuenow", String(percent));
      text.textContent = label || `${done} / ${total} (${percent}%)`;
    },
  };
}

/** Whether a batch job has ended: a paused one has not (it waits to be resumed). */
export function jobEnded(job) {
  return !["queued", "running", "paused"].includes(job.state);
}

/**
 * Follows a batch job over its server-sent events: ``onProgress(job)`` on every change,
 * a paused spell included; resolves with the final job record. When the stream ends or
 * breaks for good, the job is read again, and followed again unless it has ended.
 */
export function watchJob(jobId, onProgress) {
  const url = `/api/v1/admin/jobs/${encodeURIComponent(jobId)}`;
  return new Promise((resolve, reject) => {
    const follow = () => {
      const source = new EventSource(`${url}/events`);
      const reread = async () => {
        source.close();
        try {
          const { job } = await api(url);
          if (jobEnded(job)) { resolve(job); return; }
          onProgress(job);
          setTimeout(follow, 2000);
        } catch (error) { reject(error); }
      };
      source.addEventListener("progress", (event) => onProgress(JSON.parse(event.data)));
      source.addEventListener("end", reread);
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) reread(); // else the browser reconnects by itself
      };
    };
    follow();
  });
}

const ALLOWED_TAGS = new Set(["A", "IMG", "VIDEO", "SOURCE", "BR", "P", "PRE", "CODE", "DIV", "SPAN", "STRONG", "EM",
  "UL", "OL", "LI", "BLOCKQUOTE"]);
const URL_ATTRIBUTES = { A: ["href"], IMG: ["src"], VIDEO: ["src", "poster"], SOURCE: ["src"] };
const KEPT_ATTRIBUTES = { IMG: ["alt"], VIDEO: ["controls"], SOURCE: ["type"], A: ["title"] };

function safeUrl(value, media) {
  const text = value.trim();
  if (/^https?:\/\//i.test(text) || (text.startsWith("/") && !text.startsWith("//"))) return text;
  return media && /^data:(image|video)\/[a-z0-9.+-]+;base64,/i.test(text) ? text : null;
}

/**
 * HTML from a model or the upstream, reduced to an allow-list: the tags above, http(s),
 * same-origin or data-media URLs, no attribute else. Other elements are unwrapped (their
 * text stays), scripts and styles dropped whole. Returns a DocumentFragment.
 */
export function sanitize(markup) {
  const parsed = new DOMParser().parseFromString(`<body>${markup}</body>`, "text/html");
  const fragment = document.createDocumentFragment();
  const copy = (node, into) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) { into.append(child.textContent); continue; }
      if (child.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = child.tagName;
      if (["SCRIPT", "STYLE", "TEMPLATE", "IFRAME", "OBJECT", "EMBED", "NOSCRIPT"].includes(tag)) continue;
      if (!ALLOWED_TAGS.has(tag)) { copy(child, into); continue; }
      const clean = document.createElement(tag.toLowerCase());
      for (const name of URL_ATTRIBUTES[tag] ?? []) {
        const url = child.getAttribute(name) && safeUrl(child.getAttribute(name), tag !== "A");
        if (url) clean.setAttribute(name, url);
      }
      for (const name of KEPT_ATTRIBUTES[tag] ?? []) {
        if (child.hasAttribute(name)) clean.setAttribute(name, child.getAttribute(name));
      }
      if (tag === "A") { clean.setAttribute("rel", "noopener noreferrer"); clean.setAttribute("target", "_blank"); }
      copy(child, clean);
      into.append(clean);
    }
  };
  copy(parsed.body, fragment);
  return fragment;
}

function setUpDrawer() {
  const navigation = document.getElementById("navigation");
  const overlay = document.querySelector(".drawer-overlay");
  const opener = document.querySelector("[data-drawer-open]");
  if (!navigation || !overlay || !opener) return;
  const setOpen = (open) => {
    navigation.classList.toggle("open", open);
    overlay.hidden = !open;
    opener.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("drawer-open", open);
  };
  opener.addEventListener("click", () => setOpen(true));
  for (const closer of document.querySelectorAll("[data-drawer-close]")) closer.addEventListener("click", () => setOpen(false));
  for (const link of navigation.querySelectorAll("a")) link.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") setOpen(false); });
}

function changePassword() {
  const form = h("form", { class: "stack", novalidate: true },
    field("Current password", h("input", { name: "current_password", type: "password", required: true,
      autocomplete: "current-password" })),
    field("New password", h("input", { name: "new_password", type: "password", required: true,
      autocomplete: "new-password" })),
    field("Repeat the new password", h("input", { name: "repeat", type: "password", required: true,
      autocomplete: "new-password" })));
  const save = h("button", { class: "button primary", type: "button" }, "Change password");
  const dialog = modal("Change the admin password", form, {
    actions: [h("button", { class: "button", type: "button", dataset: { close: "" } }, "Cancel"), save] });
  save.addEventListener("click", async () => {
    clearFieldErrors(form);
    const values = Object.fromEntries(new FormData(form));
    if (values.new_password !== values.repeat) {
      showFieldError(form, "repeat", "The two new passwords differ");
      return;
    }
    save.disabled = true;
    try {
      await api("/api/v1/admin/password", { method: "POST",
        body: { current_password: values.current_password, new_password: values.new_password } });
      dialog.close();
      document.querySelector("[data-password-banner]").hidden = true;
      toast("Password changed", "success");
    } catch (error) {
      if (!showFieldError(form, error.param, error.message)) report(error);
    } finally {
      save.disabled = false;
    }
  });
}

async function setUpSession() {
  const banner = document.querySelector("[data-password-banner]");
  if (!banner) return; // a public page
  document.querySelector("[data-change-password]")?.addEventListener("click", changePassword);
  document.querySelector("[data-logout]")?.addEventListener("click", async () => {
    try { await api("/api/v1/admin/logout", { method: "POST" }); } catch (error) { report(error); }
    location.assign("/login");
  });
  try {
    const session = await api("/api/v1/admin/session");
    banner.hidden = !session.password_change_required;
  } catch (error) {
    report(error);
  }
}

setUpDrawer();
setUpSession();
