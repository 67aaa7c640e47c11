// The keys page: managed API keys with their daily quotas and access limits. A key's text
// is shown once, right after it is created (the gateway keeps only its hash); names and
// models are rendered as text.
import {
  api, h, toast, report, modal, confirmDialog, field, showFieldError, clearFieldErrors,
  formatNumber, formatTime, copyText,
} from "../console.js";

const KEYS = "/api/v1/admin/keys";
const BUCKETS = ["chat", "heavy", "image", "video"];
const PRESETS = {
  recommended: { chat: 300, heavy: 100, image: 100, video: 20 },
  unlimited: { chat: "", heavy: "", image: "", video: "" },
};
const NAME_MAX = 50;
const KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

const $ = (selector) => document.querySelector(selector);
const rows = $("[data-rows]");
const searchBox = $("[data-search]");
const statusBox = $("[data-status]");
let keys = [];

/** ``sk-`` and 24 letters and digits from the browser's CSPRNG (no modulo bias: 248 = 62 × 4). */
export function generateKey() {
  let out = "";
  while (out.length < 24) {
    for (const byte of crypto.getRandomValues(new Uint8Array(32))) {
      if (byte < 248 && out.length < 24) out += KEY_ALPHABET[byte % 62];
    }
  }
  return `sk-${out}`;
}

function limitOf(row, bucket) {
  const value = row[`${bucket}_limit`];
  return typeof value === "number" && value >= 0 ? value : null;
}

function isExhausted(row) {
  return BUCKETS.some((bucket) => row.remaining_today?.[bucket] === 0);
}

function statusOf(row) {
  if (row.expired) return ["red", "expired"];
  if (!row.is_active) return ["", "disabled"];
  if (isExhausted(row)) return ["orange", "out of quota"];
  return ["green", "enabled"];
}

function limitsText(row) {
  const values = BUCKETS.map((bucket) => limitOf(row, bucket));
  if (values.every((value) => value === null)) return "unlimited";
  return values.map((value) => (value === null ? "∞" : formatNumber(value))).join(" / ");
}

function usedText(row) {
  return BUCKETS.map((bucket) => formatNumber(row.usage_today?.[`${bucket}_used`] ?? 0)).join(" / ");
}

function plural(count, word) {
  return `${formatNumber(count)} ${word}${count === 1 ? "" : "s"}`;
}

function countOf(value) {
  return typeof value === "number" && value >= 0 ? formatNumber(value) : "unlimited";
}

function modelsCell(models) {
  if (!models?.length) return h("span", { class: "muted" }, "every model");
  const shown = models.slice(0, 2).join(", ");
  return h("span", { title: models.join("\n") }, models.length > 2 ? `${shown} +${models.length - 2}` : shown);
}

function matches(row) {
  const search = searchBox.value.trim().toLowerCase();
  if (search && !`${row.name}\n${row.display_key}`.toLowerCase().includes(search)) return false;
  switch (statusBox.value) {
    case "active": return row.is_active && !row.expired;
    case "inactive": return !row.is_active;
    case "exhausted": return isExhausted(row);
    case "expired": return Boolean(row.expired);
    default: return true;
  }
}

function render() {
  const shown = keys.filter(matches);
  const counts = { total: keys.length, enabled: keys.filter((r) => r.is_active).length,
    disabled: keys.filter((r) => !r.is_active).length, exhausted: keys.filter(isExhausted).length };
  for (const cell of document.querySelectorAll("[data-count]")) cell.textContent = formatNumber(counts[cell.dataset.count]);
  const filtered = searchBox.value.trim() || statusBox.value;
  $("[data-result-count]").textContent = filtered
    ? `${formatNumber(shown.length)} of ${plural(keys.length, "key")} match`
    : plural(keys.length, "key");
  if (!shown.length) {
    rows.replaceChildren(h("tr", {}, h("td", { colspan: 10, class: "empty" },
      filtered ? "No key matches these filters." : "No keys yet: /v1 is open to the global key only.")));
    return;
  }
  rows.replaceChildren(...shown.map((row) => {
    const [colour, label] = statusOf(row);
    return h("tr", { dataset: { id: row.id } },
      h("td", { class: "wrap" }, h("div", { class: "key-name" }, row.name), h("code", { class: "muted" }, row.display_key)),
      h("td", {}, h("span", { class: `badge ${colour}` }, label)),
      h("td", { class: "num" }, limitsText(row)),
      h("td", { class: "num" }, usedText(row)),
      h("td", { class: "num" }, countOf(row.rpm)),
      h("td", { class: "num" }, countOf(row.concurrency)),
      h("td", { class: row.expired ? "expired" : "" }, row.expires_at ? formatTime(row.expires_at) : "never"),
      h("td", { class: "wrap models" }, modelsCell(row.models)),
      h("td", { class: "muted" }, formatTime(row.created_at)),
      h("td", { class: "actions" }, h("div", { class: "row-actions" },
        h("button", { class: "button small", type: "button", on: { click: () => editor(row) } }, "Edit"),
        h("button", { class: "button small danger", type: "button", on: { click: () => remove(row) } }, "Delete"))));
  }));
}

async function load() {
  try {
    keys = (await api(KEYS)).data;
    render();
  } catch (error) {
    rows.replaceChildren(h("tr", {}, h("td", { colspan: 10, class: "empty" }, error.message)));
    report(error);
  }
}

// -- the create / edit form --------------------------------------------------------------

function numberInput(name, value, placeholder = "unlimited") {
  return h("input", { name, type: "number", min: 0, step: 1, inputmode: "numeric", placeholder,
    value: value === null || value === undefined || value < 0 ? "" : String(value) });
}

/** ``datetime-local`` speaks local time without a zone: unix seconds to and from it. */
function localInputValue(seconds) {
  if (!seconds) return "";
  const moment = new Date(seconds * 1000);
  return new Date(moment.getTime() - moment.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function modelsOf(text) {
  return [...new Set(text.split(/[\s,]+/).map((model) => model.trim()).filter(Boolean))];
}

/** The form's values as the API's body, or an error next to the first bad field. */
function bodyOf(form, editing) {
  const values = Object.fromEntries(new FormData(form));
  const errors = [];
  const count = (name) => {
    const text = String(values[name] ?? "").trim();
    if (!text) return null;
    const number = Number(text);
    if (!Number.isInteger(number) || number < 0) errors.push([name, "A whole number, 0 or more (blank: unlimited)"]);
    return number;
  };
  const body = {
    name: values.name.trim(),
    is_active: form.elements.is_active.checked,
    limits: Object.fromEntries(BUCKETS.map((bucket) => [`${bucket}_per_day`, count(`${bucket}_per_day`) ?? -1])),
    rpm: count("rpm"),
    concurrency: count("concurrency"),
    expires_at: null,
    models: modelsOf(values.models),
  };
  if (body.name.length > NAME_MAX) errors.push(["name", `At most ${NAME_MAX} characters`]);
  if (values.expires_at) {
    const at = new Date(values.expires_at).getTime();
    if (!Number.isFinite(at)) errors.push(["expires_at", "Not a date and time"]);
    else if (!editing && at <= Date.now()) errors.push(["expires_at", "The key would be expired already"]);
    body.expires_at = Math.floor(at / 1000);
  }
  if (!editing) {
    const key = values.key.trim();
    if (key) body.key = key;
    else delete body.key;
  }
  if (!body.name) delete body.name; // the gateway names it
  return { body, errors };
}

function editor(row = null) {
  const editing = Boolean(row);
  const keyInput = h("input", { name: "key", autocomplete: "off", spellcheck: false, disabled: editing,
    value: editing ? row.display_key : "", placeholder: "Blank: the gateway makes one" });
  const generate = h("button", { class: "button", type: "button", disabled: editing,
    on: { click: () => { keyInput.value = generateKey(); } } }, "Generate");
  const limitInputs = Object.fromEntries(BUCKETS.map((bucket) => [bucket,
    numberInput(`${bucket}_per_day`, editing ? limitOf(row, bucket) : PRESETS.recommended[bucket])]));
  const preset = (name, label) => h("button", { class: "button small", type: "button", dataset: { preset: name },
    on: { click: () => { for (const bucket of BUCKETS) limitInputs[bucket].value = PRESETS[name][bucket]; } } }, label);
  const active = h("input", { type: "checkbox", name: "is_active", checked: editing ? row.is_active : true });
  const formId = `key-form-${Date.now()}`;
  const form = h("form", { class: "stack key-form", id: formId, novalidate: true },
    field("Name", h("input", { name: "name", maxlength: NAME_MAX, autocomplete: "off", value: editing ? row.name : "",
      placeholder: "Blank: a random name" })),
    h("div", { class: "field" }, h("span", {}, "Key"), h("div", { class: "row key-row" }, keyInput, generate),
      h("small", { class: "muted" }, editing ? "A key's text cannot change: create a new key instead"
        : "sk- and 24 letters and digits when generated; shown once, after saving"),
      h("span", { class: "field-error", hidden: true })),
    h("div", { class: "field" }, h("span", {}, "Daily limits"),
      h("div", { class: "row presets" }, preset("recommended", "Recommended (300 / 100 / 100 / 20)"),
        preset("unlimited", "Unlimited"))),
    h("div", { class: "limit-grid" },
      field("Chat", limitInputs.chat), field("Heavy", limitInputs.heavy),
      field("Image", limitInputs.image), field("Video", limitInputs.video)),
    h("div", { class: "access-grid" },
      field("RPM", numberInput("rpm", editing ? row.rpm : null), "Requests per minute"),
      field("Concurrency", numberInput("concurrency", editing ? row.concurrency : null), "Requests at once"),
      field("Expires", h("input", { name: "expires_at", type: "datetime-local",
        value: editing ? localInputValue(row.expires_at) : "" }), "Blank: never")),
    field("Models", h("textarea", { name: "models", rows: 2, spellcheck: false, placeholder: "grok-4, grok-imagine-1.0…" },
      editing ? (row.models || []).join("\n") : ""),
    "One per line or comma-separated; blank: every model"),
    h("label", { class: "switch" }, active, h("span", {}, "Enabled")));
  const save = h("button", { class: "button primary", type: "submit", form: formId }, editing ? "Save" : "Create key");
  const dialog = modal(editing ? `Edit ${row.name}` : "New API key", form, { wide: true,
    actions: [h("button", { class: "button", type: "button", dataset: { close: "" } }, "Cancel"), save] });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (save.disabled) return;
    clearFieldErrors(form);
    const { body, errors } = bodyOf(form, editing);
    if (errors.length) {
      for (const [name, message] of errors.reverse()) showFieldError(form, name, message);
      return;
    }
    save.disabled = true;
    try {
      if (editing) {
        await api(`${KEYS}/update`, { method: "POST", body: { id: row.id, ...body } });
        dialog.close();
        toast("Key saved", "success");
      } else {
        const { data } = await api(KEYS, { method: "POST", body });
        dialog.close();
        showCreated(data);
      }
      await load();
    } catch (error) {
      const name = error.param === "limits" ? "chat_per_day" : error.param;
      if (!showFieldError(form, name, error.message)) report(error);
    } finally {
      save.disabled = false;
    }
  });
}

/** The new key's text, this once; copied to the clipboard at once. */
function showCreated(row) {
  const text = h("code", { class: "new-key", dataset: { newKey: "" } }, row.key);
  const copy = h("button", { class: "button primary", type: "button", on: { click: () => copyText(row.key) } }, "Copy");
  modal("Key created", h("div", { class: "stack" },
    h("p", {}, "Copy the key now: the gateway keeps only its hash and cannot show it again."),
    h("div", { class: "row new-key-row" }, text, copy)),
  { actions: [h("button", { class: "button", type: "button", dataset: { close: "" } }, "Done")] });
  copyText(row.key);
}

async function remove(row) {
  if (!await confirmDialog(`Delete the key ${row.name} (${row.display_key})? Clients using it are refused at once.`)) {
    return;
  }
  try {
    await api(`${KEYS}/delete`, { method: "POST", body: { id: row.id } });
    toast("Key deleted", "success");
    await load();
  } catch (error) {
    report(error);
  }
}

searchBox.addEventListener("input", render);
statusBox.addEventListener("change", render);
$('[data-action="create"]').addEventListener("click", () => editor());
$('[data-action="reset"]').addEventListener("click", () => {
  searchBox.value = "";
  statusBox.value = "";
  render();
});

load();
