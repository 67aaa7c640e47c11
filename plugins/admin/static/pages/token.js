// The token page: the account pool one server-side page at a time (fast at any pool size),
// filters the server applies, a selection kept by account id across filters and pages, and
// batch operations as server-side jobs followed live. Tokens arrive masked; full tokens
// leave only through the export. Every value from the pool is rendered as text.
import {
  api, h, toast, report, modal, confirmDialog, field, showFieldError, clearFieldErrors,
  formatTime, formatNumber, jobEnded, progressBar, watchJob,
} from "../console.js";

const TOKENS = "/api/v1/admin/tokens";
const JOBS = "/api/v1/admin/jobs";
const NOTE_MAX = 50;
const POOLS = ["ssoBasic", "ssoSuper"];
const JOB_TITLES = { refresh: "Refreshing", enable: "Enabling", disable: "Disabling", delete: "Deleting",
  clear_assets: "Clearing assets of" };
const JOB_NAMES = { refresh: "Refresh", enable: "Enable", disable: "Disable", delete: "Delete",
  clear_assets: "Asset clearing" };
const COUNTS_EVERY_MS = 5000;

const $ = (selector) => document.querySelector(selector);
const rows = $("[data-rows]");
const searchBox = $("[data-search]");
const sortBox = $("[data-sort]");
const pageSizeBox = $("[data-page-size]");
const selectPage = $("[data-select-page]");
const batch = $("[data-batch]");

const state = {
  page: 1,
  pageSize: 50,
  items: [],
  total: 0,
  pages: 1,
  poolTotal: 0,
  /** ids of the selected accounts: kept while filters and pages change */
  selected: new Set(),
  /** every account the filters match is selected (the filters as they were then) */
  matching: null,
  job: null,
  loading: 0,
};

// -- filters and the list ----------------------------------------------------------------

function checked(name) {
  return [...document.querySelectorAll(`.token-filters input[name="${name}"]:checked`)].map((box) => box.value);
}

/** The filters as the API's query string: type and status are unions, none means all. */
function filterQuery() {
  const query = new URLSearchParams();
  const types = checked("type");
  const statuses = checked("status");
  if (types.length) query.set("type", types.join(","));
  if (statuses.length) query.set("status", statuses.join(","));
  const search = searchBox.value.trim();
  if (search) query.set("search", search);
  return query;
}

function listQuery() {
  const query = filterQuery();
  const [sort, order] = sortBox.value.split(":");
  query.set("sort", sort);
  query.set("order", order);
  query.set("page", String(state.page));
  query.set("page_size", String(state.pageSize));
  return query;
}

async function load() {
  const ticket = ++state.loading; // an answer to an older query is dropped
  try {
    const data = await api(`${TOKENS}?${listQuery()}`);
    if (ticket !== state.loading) return;
    if (data.page > data.pages) { // the pool shrank under this page
      state.page = data.pages;
      load();
      return;
    }
    Object.assign(state, { items: data.items, total: data.total, pages: data.pages });
    showCounts(data.counts);
    renderRows();
    renderPager();
    renderBatch();
  } catch (error) {
    if (ticket !== state.loading) return;
    rows.replaceChildren(h("tr", {}, h("td", { colspan: 9, class: "empty" }, error.message)));
    report(error);
  }
}

function filtersChanged() {
  state.page = 1;
  state.matching = null; // "all matching" meant the filters as they were
  load();
  renderBatch();
}

function showCounts(counts) {
  if (!counts) return;
  state.poolTotal = counts.total;
  const values = { ...counts, image_quota: Math.floor((counts.chat_quota || 0) / 2) };
  for (const cell of document.querySelectorAll("[data-count]")) {
    cell.textContent = formatNumber(values[cell.dataset.count]);
  }
}

/** The cards follow the pool every few seconds; the table is left as the operator sees it. */
async function refreshCounts() {
  if (document.hidden) return;
  try { showCounts(await api(`${TOKENS}/counts`)); } catch (error) { report(error); }
}

function badgeOf(item) {
  const states = item.states || [];
  if (states.includes("active")) return h("span", { class: "badge green" }, "active");
  const reason = item.last_fail_reason ? `: ${item.last_fail_reason}` : "";
  if (states.includes("exhausted")) {
    return h("span", { class: "badge orange", title: `${item.status}${reason}` },
      states.includes("invalid") ? `exhausted · ${item.status}` : "exhausted");
  }
  return h("span", { class: "badge red", title: `${item.status}${reason}` }, item.status || "invalid");
}

function quotaOf(item) {
  const chat = item.quota_known ? formatNumber(item.quota) : "-";
  if (item.token_type !== "ssoSuper" || !item.heavy_quota_known) return chat;
  return `${chat} · heavy ${formatNumber(item.heavy_quota)}`;
}

function rowOf(item) {
  const box = h("input", { type: "checkbox", "aria-label": `Select ${item.token}`,
    checked: Boolean(state.matching) || state.selected.has(item.id), disabled: Boolean(state.matching),
    on: { change: (event) => toggle(item.id, event.target.checked) } });
  const note = h("td", { class: "wrap note" }, item.note || h("span", { class: "muted" }, "-"),
    (item.tags || []).map((tag) => h("span", { class: "badge tag" }, tag)));
  return h("tr", { dataset: { id: item.id } },
    h("td", { class: "check" }, box),
    h("td", {}, h("code", { class: "token" }, item.token)),
    h("td", {}, h("span", { class: `badge${item.token_type === "ssoSuper" ? " blue" : ""}` }, item.pool)),
    h("td", {}, badgeOf(item)),
    h("td", { class: "num quota" }, quotaOf(item)),
    h("td", { class: "num" }, formatNumber(item.use_count)),
    note,
    h("td", { class: "muted" }, formatTime(item.last_used_at)),
    h("td", { class: "actions" }, h("div", { class: "row-actions" },
      h("button", { class: "button small", type: "button", on: { click: (e) => refreshOne(item, e.currentTarget) } },
        "Refresh"),
      h("button", { class: "button small", type: "button", on: { click: () => editOne(item) } }, "Edit"),
      h("button", { class: "button small danger", type: "button", on: { click: () => deleteOne(item) } },
        "Delete"))));
}

function renderRows() {
  if (!state.items.length) {
    const filtered = filterQuery().toString() !== "";
    rows.replaceChildren(h("tr", {}, h("td", { colspan: 9, class: "empty" },
      filtered ? "No account matches these filters." : "No accounts yet: add or import tokens.")));
  } else {
    rows.replaceChildren(...state.items.map(rowOf));
  }
  syncPageBox();
}

function plural(count, word) {
  return `${formatNumber(count)} ${word}${count === 1 ? "" : "s"}`;
}

function renderPager() {
  const filtered = filterQuery().toString() !== "";
  $("[data-result-count]").textContent = filtered
    ? `${formatNumber(state.total)} of ${plural(state.poolTotal, "account")} match`
    : plural(state.total, "account");
  $("[data-page-number]").value = String(state.page);
  $("[data-page-number]").max = String(state.pages);
  $("[data-page-info]").textContent = `of ${formatNumber(state.pages)}`;
  $('[data-page="prev"]').disabled = state.page <= 1;
  $('[data-page="next"]').disabled = state.page >= state.pages;
}

// -- selection ---------------------------------------------------------------------------

function toggle(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  syncPageBox();
  renderBatch();
}

function syncPageBox() {
  const visible = state.items.map((item) => item.id);
  const picked = visible.filter((id) => state.selected.has(id)).length;
  selectPage.checked = Boolean(state.matching) || (visible.length > 0 && picked === visible.length);
  selectPage.indeterminate = !state.matching && picked > 0 && picked < visible.length;
  selectPage.disabled = Boolean(state.matching) || !visible.length;
}

function selectedCount() {
  return state.matching ? state.matching.total : state.selected.size;
}

function renderBatch() {
  const count = selectedCount();
  batch.hidden = count === 0 && !state.job;
  $("[data-selected-count]").textContent = state.matching
    ? `All ${formatNumber(count)} matching selected`
    : `${formatNumber(count)} selected`;
  const more = $('[data-action="select-matching"]');
  more.hidden = Boolean(state.matching) || state.total <= count || count === 0;
  more.textContent = `Select all ${formatNumber(state.total)} matching`;
  $("[data-batch-actions]").hidden = Boolean(state.job);
}

/** What a batch request names: the ids, or (all matching) the filters in the query string. */
function target() {
  if (state.matching) return { query: state.matching.query, body: {} };
  return { query: "", body: { ids: [...state.selected] } };
}

// -- row actions -------------------------------------------------------------------------

async function refreshOne(item, button) {
  button.disabled = true;
  try {
    const { results } = await api(`${TOKENS}/refresh`, { method: "POST", body: { ids: [item.id] } });
    if (results[item.id]) toast(`Quota of ${item.token} synced`, "success");
    else toast(`Grok did not answer the quota of ${item.token}`, "error");
    await load();
  } catch (error) {
    report(error);
  } finally {
    button.disabled = false;
  }
}

function poolSelect(current) {
  const names = [...new Set([...POOLS, current].filter(Boolean))];
  return h("select", { name: "pool" }, names.map((name) => h("option", { value: name, selected: name === current },
    name)));
}

function noteInput(value = "") {
  return h("input", { name: "note", maxlength: NOTE_MAX, value, autocomplete: "off" });
}

function tagsOf(text) {
  return [...new Set(text.split(",").map((tag) => tag.trim()).filter(Boolean))];
}

/** A dialog whose form posts once at a time; a backend 400 naming a field shows beside it
 * (``aliases`` maps the API's names to the form's). */
function formDialog(title, form, label, submit, { wide = false, aliases = {} } = {}) {
  const save = h("button", { class: "button primary", type: "submit", form: form.id }, label);
  const dialog = modal(title, form, { wide,
    actions: [h("button", { class: "button", type: "button", dataset: { close: "" } }, "Cancel"), save] });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    save.disabled = true;
    try {
      await submit(dialog, save);
    } catch (error) {
      if (!showFieldError(form, aliases[error.param] || error.param, error.message)) report(error);
    } finally {
      save.disabled = false;
    }
  });
  return dialog;
}

let forms = 0;
function formOf(...children) {
  forms += 1;
  return h("form", { class: "stack", id: `token-form-${forms}`, novalidate: true }, ...children);
}

function editOne(item) {
  const quota = h("input", { name: "quota", type: "number", min: 0, step: 1,
    value: item.quota_known ? String(item.quota) : "", placeholder: "unknown" });
  const form = formOf(
    h("p", { class: "muted small" }, "Account ", h("code", {}, item.token)),
    field("Note", noteInput(item.note), `At most ${NOTE_MAX} characters`),
    field("Tags", h("input", { name: "tags", value: (item.tags || []).join(", "), autocomplete: "off" }),
      "Comma-separated"),
    field("Pool", poolSelect(item.pool)),
    field("Chat quota", quota, "Grok's own count replaces it at the next sync"));
  formDialog("Edit account", form, "Save", async (dialog) => {
    const values = Object.fromEntries(new FormData(form));
    const body = { id: item.id, note: values.note.trim(), tags: tagsOf(values.tags), pool: values.pool };
    if (values.quota !== "" && Number(values.quota) !== item.quota) body.quota = Number(values.quota);
    await api(`${TOKENS}/update`, { method: "POST", body });
    dialog.close();
    toast("Account saved", "success");
    await load();
  });
}

async function deleteOne(item) {
  if (!await confirmDialog(`Delete the account ${item.token}? Its token leaves the pool for good.`)) return;
  try {
    await api(`${TOKENS}/delete`, { method: "POST", body: { ids: [item.id] } });
    state.selected.delete(item.id);
    toast("Account deleted", "success");
    renderBatch();
    await load();
  } catch (error) {
    report(error);
  }
}

// -- add, import, export -----------------------------------------------------------------

/** One token per line; a bare ``sso=<token>`` loses its prefix (cookie strings go as they are). */
function tokensOf(text) {
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line && !line.startsWith("#"));
  return [...new Set(lines.map((line) => (/^sso=[^;\s]+$/.test(line) ? line.slice(4) : line)))];
}

function reportText(result) {
  return `Added ${formatNumber(result.added)}, merged ${formatNumber(result.merged)}, `
    + `skipped ${formatNumber(result.skipped)}`;
}

function addTokens() {
  const form = formOf(
    field("Tokens", h("textarea", { name: "tokens", rows: 5, spellcheck: false,
      placeholder: "One token per line (sso=… is fine)" })),
    field("Pool", poolSelect("ssoBasic")),
    field("Note", noteInput(), `Optional, at most ${NOTE_MAX} characters`),
    field("Tags", h("input", { name: "tags", autocomplete: "off" }), "Optional, comma-separated"));
  formDialog("Add tokens", form, "Add", async (dialog) => {
    const values = Object.fromEntries(new FormData(form));
    const tokens = tokensOf(values.tokens);
    if (!tokens.length) {
      showFieldError(form, "tokens", "Enter at least one token");
      return;
    }
    const body = { tokens, pool: values.pool, tags: tagsOf(values.tags) };
    if (values.note.trim()) body.note = values.note.trim();
    const result = await api(`${TOKENS}/add`, { method: "POST", body });
    dialog.close();
    toast(reportText(result), result.added || result.merged ? "success" : "info");
    await load();
  });
}

function importTokens() {
  const outcome = h("p", { class: "import-report", role: "status", hidden: true });
  const form = formOf(
    field("Paste", h("textarea", { name: "text", rows: 6, spellcheck: false,
      placeholder: "One token per line, the original's token.json, or an export of this console" })),
    field("Or a file", h("input", { name: "file", type: "file", accept: ".txt,.json,text/plain,application/json" }),
      "TXT or JSON"),
    field("Pool for new accounts", h("select", { name: "pool" },
      h("option", { value: "" }, "As the file says (else ssoBasic)"),
      POOLS.map((name) => h("option", { value: name }, name)))),
    outcome);
  formDialog("Import tokens", form, "Import", async () => {
    const file = form.elements.file.files[0];
    const text = form.elements.text.value;
    if (!file && !text.trim()) {
      showFieldError(form, "text", "Paste tokens or choose a file");
      return;
    }
    const pool = form.elements.pool.value;
    const result = await api(`${TOKENS}/import${pool ? `?${new URLSearchParams({ pool })}` : ""}`,
      { method: "POST", body: file || new Blob([text], { type: "text/plain" }) });
    outcome.textContent = reportText(result);
    outcome.hidden = false;
    form.closest(".modal").querySelector(".modal-actions [data-close]").textContent = "Close";
    form.reset();
    toast(reportText(result), "success");
    await load();
  }, { wide: true, aliases: { body: "text" } });
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function exportTokens(preferSelected = false) {
  const count = selectedCount();
  const radio = (name, value, label, on, disabled = false) => h("label", { class: "choice" },
    h("input", { type: "radio", name, value, checked: on, disabled }), label);
  const filtered = filterQuery().toString() !== "";
  const form = formOf(
    h("fieldset", { class: "choices" }, h("legend", {}, "Accounts"),
      radio("scope", "selected", `The selected ones (${formatNumber(count)})`, preferSelected && count > 0, !count),
      radio("scope", "matching", `Those the filters match (${formatNumber(state.total)})`,
        !(preferSelected && count) && filtered, !filtered),
      radio("scope", "all", `The whole pool (${formatNumber(state.poolTotal)})`, !(preferSelected && count) && !filtered)),
    h("fieldset", { class: "choices" }, h("legend", {}, "Format"),
      radio("format", "txt", "TXT, one token per line", true),
      radio("format", "json", "JSON, every stored field (token.json)", false)),
    h("p", { class: "muted small" }, "The file holds full tokens: keep it as safe as a password."));
  formDialog("Export tokens", form, "Download", async (dialog) => {
    const { scope, format } = Object.fromEntries(new FormData(form));
    const day = new Date().toISOString().slice(0, 10);
    let response;
    if (scope === "selected" && !state.matching) {
      response = await api(`${TOKENS}/export`, { method: "POST", raw: true,
        body: { ids: [...state.selected], format } });
    } else {
      const query = scope === "all" ? new URLSearchParams() : new URLSearchParams(
        scope === "selected" ? state.matching.query : filterQuery());
      query.set("format", format);
      response = await api(`${TOKENS}/export?${query}`, { raw: true });
    }
    saveBlob(await response.blob(), `tokens-${scope}-${day}.${format}`);
    dialog.close();
  });
}

// -- batch jobs --------------------------------------------------------------------------

const bar = progressBar();
$("[data-job-progress]").append(bar.element);

async function startJob(kind) {
  const count = selectedCount();
  if (kind === "delete" && !await confirmDialog(`Delete ${plural(count, "account")}? Their tokens leave the pool.`)) {
    return;
  }
  const { query, body } = target();
  try {
    const { job } = await api(`${JOBS}${query ? `?${query}` : ""}`, { method: "POST", body: { kind, ...body } });
    if (kind === "delete") { state.selected.clear(); state.matching = null; }
    follow(job);
  } catch (error) {
    report(error);
  }
}

/** The bar and its buttons from the job record alone (a flag asked for shows until its worker acts). */
function showJob(job) {
  const finished = jobEnded(job);
  const paused = job.state === "paused";
  const title = `${JOB_TITLES[job.kind] || job.kind} ${plural(job.total, "account")}`;
  const states = { finished: "done", cancelled: "stopped", failed: "failed", paused: "paused" };
  let heading = finished || paused ? `${title}: ${states[job.state] || job.state}` : `${title}…`;
  if (!finished && job.cancel) heading = "Stopping after the current chunk…";
  else if (!paused && !finished && job.pause) heading = "Pausing after the current chunk…";
  $("[data-job-title]").textContent = heading;
  const handled = job.done + job.failed;
  bar.set(handled, job.total, `${formatNumber(handled)} / ${formatNumber(job.total)}`
    + (job.failed ? ` · ${formatNumber(job.failed)} failed` : "") + (paused ? " · paused" : ""), { paused });
  const stop = $('[data-action="stop-job"]');
  stop.hidden = finished;
  stop.disabled = Boolean(job.cancel);
  const toggle = $('[data-action="pause-job"]');
  toggle.hidden = finished;
  toggle.textContent = paused ? "Resume" : "Pause";
  toggle.disabled = Boolean(job.cancel || (job.pause && !paused));
  $('[data-action="retry-job"]').hidden = !finished || !job.failed;
  $('[data-action="close-job"]').hidden = !finished;
  const errors = Object.entries(job.errors || {});
  const list = $("[data-job-error-list]");
  list.replaceChildren(...errors.map(([token, reason]) => h("li", {}, h("code", {}, token), " ", reason)));
  if (job.failed > errors.length) list.append(h("li", { class: "muted" }, `and ${job.failed - errors.length} more`));
  $("[data-job-errors]").hidden = !errors.length;
  if (job.reason && job.state === "failed") $("[data-job-title]").textContent += ` (${job.reason})`;
}

async function follow(job) {
  state.job = job;
  $("[data-job-panel]").hidden = false;
  showJob(job);
  renderBatch();
  try {
    const final = await watchJob(job.id, (update) => { if (state.job?.id === job.id) showJob(update); });
    if (state.job?.id !== job.id) return;
    state.job = final;
    showJob(final);
    toast(`${JOB_NAMES[final.kind] || final.kind} ${final.state}: ${formatNumber(final.done)} done, `
      + `${formatNumber(final.failed)} failed`, final.failed || final.state !== "finished" ? "error" : "success");
  } catch (error) {
    report(error);
  }
  await Promise.all([load(), refreshCounts()]);
}

function closeJob() {
  state.job = null;
  $("[data-job-panel]").hidden = true;
  renderBatch();
}

/** Stop, pause or resume: the button waits for the job's next record, which the stream brings. */
async function askJob(button, verb) {
  button.disabled = true;
  try {
    await api(`${JOBS}/${encodeURIComponent(state.job.id)}/${verb}`, { method: "POST" });
  } catch (error) {
    button.disabled = false;
    report(error);
  }
}

function stopJob() {
  askJob($('[data-action="stop-job"]'), "cancel");
}

function pauseJob() {
  const button = $('[data-action="pause-job"]');
  askJob(button, button.textContent === "Resume" ? "resume" : "pause");
}

async function retryJob() {
  try {
    const { job } = await api(`${JOBS}/${encodeURIComponent(state.job.id)}/retry`, { method: "POST" });
    follow(job);
  } catch (error) {
    report(error);
  }
}

/** A job not ended (started from another tab, or before a reload; paused too) is shown again. */
async function showUnended() {
  try {
    const { jobs } = await api(JOBS);
    const running = jobs.find((job) => !jobEnded(job));
    if (running && !state.job) follow(running);
  } catch (error) {
    report(error);
  }
}

// -- wiring ------------------------------------------------------------------------------

let searchTimer = 0;
searchBox.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(filtersChanged, 250);
});
for (const box of document.querySelectorAll(".token-filters input[type=checkbox]")) {
  box.addEventListener("change", filtersChanged);
}
sortBox.addEventListener("change", () => { state.page = 1; load(); });
pageSizeBox.addEventListener("change", () => {
  state.pageSize = Number(pageSizeBox.value);
  state.page = 1;
  load();
});
$('[data-page="prev"]').addEventListener("click", () => { state.page = Math.max(1, state.page - 1); load(); });
$('[data-page="next"]').addEventListener("click", () => { state.page = Math.min(state.pages, state.page + 1); load(); });
$("[data-page-number]").addEventListener("change", (event) => {
  const wanted = Math.trunc(Number(event.target.value));
  state.page = Number.isFinite(wanted) ? Math.min(Math.max(1, wanted), state.pages) : 1;
  load();
});
selectPage.addEventListener("change", () => {
  for (const item of state.items) {
    if (selectPage.checked) state.selected.add(item.id); else state.selected.delete(item.id);
  }
  renderRows();
  renderBatch();
});

const actions = {
  add: addTokens,
  import: importTokens,
  export: () => exportTokens(false),
  "export-selected": () => exportTokens(true),
  reset: () => {
    searchBox.value = "";
    for (const box of document.querySelectorAll(".token-filters input[type=checkbox]")) box.checked = false;
    filtersChanged();
  },
  "select-matching": () => {
    state.matching = { query: filterQuery().toString(), total: state.total };
    renderRows();
    renderBatch();
  },
  "clear-selection": () => {
    state.selected.clear();
    state.matching = null;
    renderRows();
    renderBatch();
  },
  "stop-job": stopJob,
  "pause-job": pauseJob,
  "retry-job": retryJob,
  "close-job": closeJob,
};
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action], [data-job]");
  if (!button || button.closest(".modal")) return;
  if (button.dataset.job) startJob(button.dataset.job);
  else actions[button.dataset.action]?.();
});

load();
showUnended();
setInterval(refreshCounts, COUNTS_EVERY_MS);
