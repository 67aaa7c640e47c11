// The config page: every section and key of GET /api/v1/admin/config?detail=1, each with the
// input its type calls for (switch, select, number, JSON, text; secrets write-only), checked
// here before the server checks it again. Only changed keys are sent; the server's 400 names
// the key, and its message appears under that key.
import { api, confirmDialog, h, report, showFieldError, toast } from "../console.js";

const FIRST = ["app", "grok", "token", "cache", "performance"];
const LAST = ["server", "plugins"];
const TITLES = { app: "Application", grok: "Grok upstream", token: "Accounts", cache: "Media cache",
  performance: "Performance", server: "Server", plugins: "Plugins" };
const SOURCES = { environment: "blue", runtime: "green", file: "", default: "" };

const form = document.querySelector("[data-config-form]");
const links = document.querySelector("[data-section-links]");
const search = document.querySelector("[data-config-search]");
const saveBar = document.querySelector("[data-save-bar]");
const saveButton = document.querySelector("[data-save]");

/** dotted key → {dotted, field, initial, control, row, kind}; rebuilt on every load */
let entries = new Map();
let refused = {};

function sectionOrder(names) {
  const middle = names.filter((n) => !FIRST.includes(n) && !LAST.includes(n)).sort();
  return [...FIRST.filter((n) => names.includes(n)), ...middle, ...LAST.filter((n) => names.includes(n))];
}

function title(name) {
  return TITLES[name] ?? name.charAt(0).toUpperCase() + name.slice(1);
}

function refusal(dotted) {
  return refused[dotted] ?? refused[`${dotted.split(".")[0]}.*`] ?? null;
}

function display(value) {
  return typeof value === "string" ? (value === "" ? '""' : value) : JSON.stringify(value);
}

/** The control for one key, by its type; ``kind`` says how its value is read back. */
function makeControl(dotted, field, value, disabled) {
  const id = `key-${dotted.replace(/[^a-z0-9_]/gi, "-")}`;
  const common = { id, name: dotted, disabled };
  if (field.secret) {
    const set = value !== "" && value !== null && value !== undefined;
    return { kind: "secret", control: h("input", { ...common, type: "password", autocomplete: "new-password",
      placeholder: disabled ? "" : set ? "Set: type a new value to replace it" : "Not set: type a value to set it" }) };
  }
  if (field.type === "boolean") {
    return { kind: "boolean", control: h("input", { ...common, type: "checkbox", checked: Boolean(value), role: "switch" }) };
  }
  if (field.choices) {
    const choices = field.choices.includes(value) ? field.choices : [value, ...field.choices];
    const select = h("select", common, choices.map((choice) => h("option", { value: String(choice) }, String(choice))));
    select.value = String(value);
    return { kind: "choice", control: select };
  }
  if (field.type === "integer" || field.type === "number") {
    const bounds = { min: field.minimum ?? field.exclusiveMinimum, max: field.maximum ?? field.exclusiveMaximum };
    return { kind: "number", control: h("input", { ...common, type: "number", inputmode: "decimal",
      step: field.type === "integer" ? "1" : "any", min: bounds.min, max: bounds.max, value: String(value) }) };
  }
  if (field.type === "array" || field.type === "object") {
    const text = JSON.stringify(value, null, 2);
    const area = h("textarea", { ...common, rows: Math.min(8, Math.max(2, text.split("\n").length)), spellcheck: "false" });
    area.value = text;
    return { kind: "json", control: area };
  }
  return { kind: "text", control: h("input", { ...common, type: "text", autocomplete: "off", spellcheck: "false",
    value: value ?? "" }) };
}

function checkNumber(field, text) {
  if (text.trim() === "") return { error: "Enter a number" };
  const value = Number(text);
  if (!Number.isFinite(value)) return { error: "Enter a number" };
  if (field.type === "integer" && !Number.isInteger(value)) return { error: "Enter a whole number" };
  if (field.minimum !== undefined && value < field.minimum) return { error: `Must be at least ${field.minimum}` };
  if (field.maximum !== undefined && value > field.maximum) return { error: `Must be at most ${field.maximum}` };
  if (field.exclusiveMinimum !== undefined && value <= field.exclusiveMinimum) {
    return { error: `Must be greater than ${field.exclusiveMinimum}` };
  }
  if (field.exclusiveMaximum !== undefined && value >= field.exclusiveMaximum) {
    return { error: `Must be less than ${field.exclusiveMaximum}` };
  }
  return { value };
}

const ITEM_CHECKS = {
  integer: (item) => Number.isInteger(item), number: (item) => typeof item === "number",
  string: (item) => typeof item === "string", object: (item) => item !== null && typeof item === "object",
};

function checkJson(field, text) {
  let value;
  try { value = JSON.parse(text); } catch (error) { return { error: `Not valid JSON: ${error.message}` }; }
  if (field.type === "array") {
    if (!Array.isArray(value)) return { error: "Must be a JSON list, such as [\"a\", \"b\"]" };
    const check = ITEM_CHECKS[field.items];
    const bad = check ? value.find((item) => !check(item)) : undefined;
    if (bad !== undefined) return { error: `Every item must be ${field.items === "integer" ? "a whole number" : `a ${field.items}`}` };
  } else if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { error: "Must be a JSON object, such as {\"a\": 1}" };
  }
  return { value };
}

/** ``{value}``, ``{error}``, or ``{}`` for a secret left empty (kept as it is). */
function read(entry) {
  const { control, field, kind } = entry;
  switch (kind) {
    case "secret": return control.value ? { value: control.value } : {};
    case "boolean": return { value: control.checked };
    case "choice": return { value: field.choices.find((c) => String(c) === control.value) ?? control.value };
    case "number": return checkNumber(field, control.value);
    case "json": return checkJson(field, control.value);
    default:
      if (field.minLength !== undefined && control.value.length < field.minLength) {
        return { error: `At least ${field.minLength} character${field.minLength === 1 ? "" : "s"}` };
      }
      if (field.maxLength !== undefined && control.value.length > field.maxLength) {
        return { error: `At most ${field.maxLength} characters` };
      }
      return { value: control.value };
  }
}

function isChanged(entry, result) {
  if (result.error) return true; // something was typed that is not the saved value
  if (!("value" in result)) return false;
  return entry.kind === "secret" || JSON.stringify(result.value) !== JSON.stringify(entry.initial);
}

function setError(entry, message) {
  const slot = entry.row.querySelector(".field-error");
  slot.textContent = message || "";
  slot.hidden = !message;
  if (message) entry.control.setAttribute("aria-invalid", "true");
  else entry.control.removeAttribute("aria-invalid");
}

function refresh(entry, { validate = false } = {}) {
  const result = read(entry);
  const changed = isChanged(entry, result);
  entry.row.classList.toggle("changed", changed);
  if (validate || !result.error) setError(entry, result.error);
  return { changed, result };
}

function updateSaveBar() {
  const count = [...entries.values()].filter((entry) => entry.row.classList.contains("changed")).length;
  saveBar.hidden = count === 0;
  document.querySelector("[data-save-count]").textContent = `${count} unsaved change${count === 1 ? "" : "s"}`;
}

function row(dotted, field, value, source) {
  const [, key] = dotted.split(/\.(.*)/s);
  const reason = refusal(dotted);
  const { control, kind } = makeControl(dotted, field, value, Boolean(reason));
  const notes = [];
  if (reason) notes.push(h("p", { class: "config-note" }, `Read-only here: ${reason}`));
  if (source === "environment") {
    notes.push(h("p", { class: "config-note" }, "Set in the environment: a value saved here is overridden by it."));
  }
  const hints = [];
  if (field.secret) {
    const set = value !== "" && value !== null && value !== undefined;
    hints.push(h("span", { class: `badge ${set ? "green" : ""}` }, set ? "set" : "not set"));
    if (set && value !== "***") hints.push(h("span", { class: "muted small mono" }, display(value)));
  } else if ("default" in field && JSON.stringify(field.default) !== JSON.stringify(value)) {
    hints.push(h("span", { class: "muted small" }, `default: ${display(field.default)}`));
  }
  let reset = null;
  if (!reason && source === "runtime" && (field.secret || JSON.stringify(field.default) !== JSON.stringify(value))) {
    reset = h("button", { class: "button small subtle", type: "button", on: { click: () => resetKey(dotted) } },
      "Reset");
  }
  const input = kind === "boolean" ? h("label", { class: "switch" }, control, h("span", { class: "muted small" },
    "On")) : control;
  if (kind === "boolean") {
    const label = input.querySelector("span");
    const sync = () => { label.textContent = control.checked ? "On" : "Off"; };
    control.addEventListener("change", sync);
    sync();
  }
  const element = h("div", { class: "config-row", dataset: { key: dotted } },
    h("div", { class: "config-label" },
      h("div", { class: "config-name" }, h("label", { class: "mono", for: control.id }, key),
        h("span", { class: `badge ${SOURCES[source] ?? ""}`, title: "where the value comes from" }, source),
        h("span", { class: "badge orange changed-badge" }, "changed")),
      field.description ? h("p", { class: "muted small config-description" }, field.description) : null, notes),
    h("div", { class: "config-control field" }, input, h("span", { class: "field-error", hidden: true }),
      hints.length || reset ? h("div", { class: "config-hints" }, hints, reset) : null));
  return { element, control, kind };
}

function render(detail) {
  refused = detail.refused ?? {};
  entries = new Map();
  const sections = sectionOrder(Object.keys(detail.config));
  const panels = sections.map((name) => {
    const rows = Object.entries(detail.config[name]).map(([key, value]) => {
      const dotted = `${name}.${key}`;
      const field = detail.fields?.[dotted] ?? { type: typeof value, description: "" };
      const made = row(dotted, field, value, detail.sources?.[dotted] ?? "default");
      entries.set(dotted, { dotted, field, initial: value, control: made.control, kind: made.kind, row: made.element });
      return made.element;
    });
    const restart = LAST.includes(name) ? h("span", { class: "badge" }, "restart to change") : null;
    return h("section", { class: "card panel config-section", id: `section-${name}`, dataset: { section: name } },
      h("div", { class: "panel-head" }, h("h2", {}, title(name), " ", h("code", { class: "muted" }, `[${name}]`)),
        restart),
      rows);
  });
  form.replaceChildren(...panels);
  links.replaceChildren(...sections.map((name) => h("a", { class: "chip", href: `#section-${name}` }, title(name))));
  applySearch();
  updateSaveBar();
}

function applySearch() {
  const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  for (const section of form.querySelectorAll("[data-section]")) {
    let visible = 0;
    for (const element of section.querySelectorAll(".config-row")) {
      const entry = entries.get(element.dataset.key);
      const text = `${entry.dotted} ${entry.field.description ?? ""}`.toLowerCase();
      element.hidden = !words.every((word) => text.includes(word));
      visible += element.hidden ? 0 : 1;
    }
    section.hidden = visible === 0;
  }
}

async function load() {
  try {
    render(await api("/api/v1/admin/config?detail=1"));
  } catch (error) {
    report(error);
    form.replaceChildren(h("p", { class: "empty" }, `The config could not be loaded: ${error.message}`));
  }
}

async function save() {
  const update = {};
  let firstError = null;
  for (const entry of entries.values()) {
    const { changed, result } = refresh(entry, { validate: true });
    if (!changed) continue;
    if (result.error) { firstError ??= entry; continue; }
    const [section, key] = entry.dotted.split(/\.(.*)/s);
    (update[section] ??= {})[key] = result.value;
  }
  if (firstError) {
    firstError.control.focus();
    toast("Fix the keys marked in red first", "error");
    return;
  }
  if (!Object.keys(update).length) return;
  saveButton.disabled = true;
  try {
    const done = await api("/api/v1/admin/config", { method: "POST", body: update });
    toast(`Saved: ${done.changed.length ? done.changed.join(", ") : "nothing changed"}`, "success");
    if (done.overridden_by_environment?.length) {
      toast(`Overridden by the environment: ${done.overridden_by_environment.join(", ")}`, "error");
    }
    await load();
  } catch (error) {
    if (!(error.param && entries.has(error.param) && showFieldError(form, error.param, error.message))) report(error);
  } finally {
    saveButton.disabled = false;
  }
}

async function resetKey(dotted) {
  if (!(await confirmDialog(`Reset ${dotted} to its config.toml value, or else its default?`,
    { confirm: "Reset", danger: false }))) return;
  try {
    await api("/api/v1/admin/config/reset", { method: "POST", body: { keys: [dotted] } });
    toast(`${dotted} reset`, "success");
    await load();
  } catch (error) {
    report(error);
  }
}

form.addEventListener("input", (event) => {
  const entry = entries.get(event.target.name);
  if (!entry) return;
  refresh(entry);
  updateSaveBar();
});
form.addEventListener("change", (event) => {
  const entry = entries.get(event.target.name);
  if (entry) { refresh(entry, { validate: true }); updateSaveBar(); }
});
form.addEventListener("submit", (event) => { event.preventDefault(); save(); });
saveButton.addEventListener("click", save);
document.querySelector("[data-discard]").addEventListener("click", load);
search.addEventListener("input", applySearch);
window.addEventListener("beforeunload", (event) => { if (!saveBar.hidden) event.preventDefault(); });

load();
