// The cache page: the local media cache (cards, paged lists with previews from the gateway's
// own /v1/files URLs, view, delete, batch delete) and each account's online assets (counts
// loaded for a selection in chunks, cleared by a clear_assets job with live progress, pause,
// resume, stop, and a retry of the accounts that failed). Names and notes are shown as text only.
import { api, confirmDialog, formatBytes, formatNumber, formatTime, h, modal, progressBar, report, toast, watchJob }
  from "../console.js";

const PAGE_SIZE = 50;
const CHUNK = 10; // accounts per count request, files per delete round (the original's rounds)
const LOCAL_EVERY_MS = 10_000;

const $ = (selector) => document.querySelector(selector);
const batch = $("[data-batch]");

const local = {
  image: { page: 1, total: 0, items: [], selected: new Set() },
  video: { page: 1, total: 0, items: [], selected: new Set() },
};
const online = { page: 1, total: 0, items: [], selected: new Set(), counts: new Map() };
let tab = "image";
let task = null; // the batch operation running now: {stop()} while it runs

function fileUrl(kind, name) {
  return `/v1/files/${kind}/${encodeURIComponent(name)}`;
}

// -- cards ----------------------------------------------------------------------------------

async function loadStats() {
  try {
    const stats = await api("/api/v1/admin/cache/local");
    for (const kind of ["image", "video"]) {
      const figures = stats[`local_${kind}`] ?? {};
      $(`[data-value=${kind}]`).textContent = formatNumber(figures.count ?? 0);
      const size = figures.size_mb ?? 0; // rounded to 0.01 MB by the server
      $(`[data-size=${kind}]`).textContent = figures.count && !size ? "under 10 KB" : formatBytes(size * 1024 * 1024);
    }
  } catch (error) {
    report(error);
  }
}

function drawOnlineCard() {
  const loaded = [...online.counts.values()];
  const ok = loaded.filter((c) => c.status === "ok");
  const errors = loaded.length - ok.length;
  $("[data-value=online]").textContent = loaded.length ? formatNumber(ok.reduce((sum, c) => sum + c.count, 0)) : "-";
  const cleared = Math.max(0, ...online.items.map((a) => a.last_asset_clear_at || 0));
  $("[data-size=online]").textContent = [
    loaded.length ? `${ok.length} of ${formatNumber(online.total)} accounts loaded` : "not loaded",
    errors ? `${errors} failed` : "",
    cleared ? `last cleared ${formatTime(cleared)}` : "",
  ].filter(Boolean).join(" · ");
}

async function clearLocal(kind) {
  if (!(await confirmDialog(`Delete every cached ${kind} file?`, { confirm: "Clear" }))) return;
  try {
    const done = await api("/api/v1/admin/cache/clear", { method: "POST", body: { type: kind } });
    toast(`${done.result.count} ${kind} file${done.result.count === 1 ? "" : "s"} deleted`, "success");
    local[kind].selected.clear();
    await Promise.all([loadStats(), tab === kind ? loadLocal() : null]);
  } catch (error) {
    report(error);
  }
}

// -- tabs, pager, batch bar -------------------------------------------------------------------

function showTab(name) {
  tab = name;
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  $("[data-view=local]").hidden = name === "online";
  $("[data-view=online]").hidden = name !== "online";
  for (const cardElement of document.querySelectorAll("[data-card]")) {
    cardElement.classList.toggle("selected", cardElement.dataset.card === name);
  }
  if (name === "online") loadOnline(); else loadLocal();
  drawBatch();
}

function pager(element, state, reload) {
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  const go = (page) => { state.page = page; reload(); };
  element.replaceChildren(
    h("span", { class: "muted" }, `Page ${state.page} of ${pages} · ${formatNumber(state.total)} in all`),
    h("span", { class: "row" },
      h("button", { class: "button small", type: "button", disabled: state.page <= 1, on: { click: () => go(state.page - 1) } },
        "Previous"),
      h("button", { class: "button small", type: "button", disabled: state.page >= pages,
        on: { click: () => go(state.page + 1) } }, "Next")));
}

function selection() {
  return tab === "online" ? online.selected : local[tab].selected;
}

/** The bar at the bottom: the selection's actions, or the running operation's progress. */
function drawBatch(content = null) {
  if (task && !content) return; // a running operation owns the bar
  const selected = selection();
  if (!content && !selected.size) { batch.hidden = true; return; }
  batch.hidden = false;
  if (content) {
    $("[data-batch-count]").textContent = content.label;
    $("[data-batch-actions]").replaceChildren(...content.actions);
    return;
  }
  const unselect = h("button", { class: "button subtle small", type: "button",
    on: { click: () => { selected.clear(); redraw(); } } }, "Unselect");
  $("[data-batch-count]").textContent = `${selected.size} selected`;
  $("[data-batch-actions]").replaceChildren(...(tab === "online"
    ? [h("button", { class: "button small", type: "button", on: { click: () => loadCounts([...selected]) } }, "Load counts"),
      h("button", { class: "button small danger", type: "button", on: { click: () => clearAssets([...selected]) } },
        "Clear assets"), unselect]
    : [h("button", { class: "button small danger", type: "button", on: { click: () => deleteFiles(tab, [...selected]) } },
      "Delete"), unselect]));
}

/**
 * Progress of a batch operation in the bar; ``finish`` leaves its outcome there with a retry of the failures.
 * ``pause(wanted)`` (a job's) adds a Pause/Resume toggle; it resolves true once the server took the request,
 * and the toggle waits for the next ``set`` to show what the job did.
 */
function progressTask(label, total, stop, { pause = null } = {}) {
  const bar = progressBar();
  bar.set(0, total);
  const stopButton = h("button", { class: "button small", type: "button", on: { click: () => {
    stopButton.disabled = true;
    stop();
  } } }, "Stop");
  let paused = false;
  const pauseButton = pause && h("button", { class: "button small", type: "button", on: { click: async () => {
    pauseButton.disabled = true;
    if (!await pause(!paused)) pauseButton.disabled = false;
  } } }, "Pause");
  task = { label };
  drawBatch({ label, actions: [bar.element, pauseButton, stopButton].filter(Boolean) });
  return {
    /** ``paused``: the job waits to be resumed; ``pausing``/``stopping``: its worker is yet to act. */
    set(done, failed = 0, { paused: now = false, pausing = false, stopping = false } = {}) {
      paused = now;
      const state = stopping ? " · stopping…" : now ? " · paused" : pausing ? " · pausing…" : "";
      bar.set(done + failed, total, `${done + failed} / ${total}${failed ? ` · ${failed} failed` : ""}${state}`,
        { paused: now });
      if (pauseButton) {
        pauseButton.textContent = now ? "Resume" : "Pause";
        pauseButton.disabled = pausing || stopping;
      }
    },
    /** ``failures``: [what, why] pairs, listed by the Details button; ``retry`` runs the failed ones again. */
    finish(message, { retry = null, failures = [] } = {}) {
      task = null;
      const close = h("button", { class: "button subtle small", type: "button", on: { click: () => drawBatch() } }, "Close");
      const details = failures.length ? h("button", { class: "button small", type: "button",
        on: { click: () => showFailures(failures) } }, "Details") : null;
      const again = retry ? h("button", { class: "button small primary", type: "button", on: { click: retry } },
        "Retry failed") : null;
      drawBatch({ label: message, actions: [details, again, close].filter(Boolean) });
    },
  };
}

function showFailures(failures) {
  modal("What failed", h("ul", { class: "failure-list" }, failures.map(([what, why]) =>
    h("li", {}, h("span", { class: "mono" }, what), h("span", { class: "muted" }, why)))), { wide: true });
}

function redraw() {
  if (tab === "online") drawOnline(); else drawLocal();
  drawBatch();
}

function checkbox(selected, key) {
  return h("input", { type: "checkbox", "aria-label": "Select", checked: selected.has(key), on: { change: (event) => {
    if (event.target.checked) selected.add(key); else selected.delete(key);
    drawBatch();
    syncPageBox();
  } } });
}

function syncPageBox() {
  const keys = tab === "online" ? online.items.map((a) => a.id) : local[tab].items.map((f) => f.name);
  const box = $(`[data-select-page=${tab === "online" ? "online" : "local"}]`);
  const chosen = keys.filter((key) => selection().has(key)).length;
  box.checked = keys.length > 0 && chosen === keys.length;
  box.indeterminate = chosen > 0 && chosen < keys.length;
}

// -- local files ------------------------------------------------------------------------------

function preview(kind, item) {
  const src = kind === "image" ? fileUrl("image", item.name) : item.preview_url;
  if (!src) return h("span", { class: "thumb placeholder", "aria-hidden": "true" }, "▶");
  return h("img", { class: "thumb", src, alt: "", loading: "lazy", decoding: "async" });
}

function view(kind, item) {
  const url = fileUrl(kind, item.name);
  const media = kind === "image" ? h("img", { class: "viewer-media", src: url, alt: item.name })
    : h("video", { class: "viewer-media", src: url, controls: true, preload: "metadata",
      poster: item.preview_url ?? undefined });
  modal(item.name, h("div", { class: "viewer" }, media,
    h("p", { class: "muted small" }, `${formatBytes(item.size_bytes)} · ${formatTime(item.mtime_ms)} · `,
      h("a", { href: url, target: "_blank", rel: "noopener" }, "Open in a new tab"))), { wide: true });
}

function drawLocal() {
  const state = local[tab];
  const rows = $("[data-local-rows]");
  if (!state.items.length) {
    rows.replaceChildren(h("tr", {}, h("td", { class: "empty", colspan: "6" }, `No cached ${tab}s`)));
  } else {
    rows.replaceChildren(...state.items.map((item) => h("tr", { dataset: { name: item.name } },
      h("td", { class: "check" }, checkbox(state.selected, item.name)),
      h("td", {}, h("button", { class: "thumb-button", type: "button", "aria-label": `View ${item.name}`,
        on: { click: () => view(tab, item) } }, preview(tab, item))),
      h("td", { class: "wrap mono small" }, item.name),
      h("td", {}, formatBytes(item.size_bytes)),
      h("td", {}, formatTime(item.mtime_ms)),
      h("td", { class: "actions" },
        h("button", { class: "button small", type: "button", on: { click: () => view(tab, item) } }, "View"), " ",
        h("button", { class: "button small danger", type: "button",
          on: { click: () => deleteFiles(tab, [item.name], { ask: true }) } }, "Delete")))));
  }
  $("[data-local-count]").textContent = `${formatNumber(state.total)} cached ${tab}${state.total === 1 ? "" : "s"}, newest first`;
  pager($("[data-local-pager]"), state, loadLocal);
  syncPageBox();
}

async function loadLocal() {
  const kind = tab;
  const state = local[kind];
  try {
    const query = new URLSearchParams({ type: kind, page: String(state.page), page_size: String(PAGE_SIZE) });
    const listed = await api(`/api/v1/admin/cache/list?${query}`);
    if (kind !== tab) return;
    state.items = listed.items;
    state.total = listed.total;
    if (!listed.items.length && state.page > 1) { state.page -= 1; return loadLocal(); }
    drawLocal();
  } catch (error) {
    report(error);
  }
}

/** Deletes files ``CHUNK`` at a time with progress; the failures can be retried. */
async function deleteFiles(kind, names, { ask = false } = {}) {
  if (ask && !(await confirmDialog(`Delete ${names.length === 1 ? names[0] : `${names.length} files`}?`))) return;
  let stopped = false;
  const progress = progressTask(`Deleting ${names.length} ${kind} file${names.length === 1 ? "" : "s"}`, names.length,
    () => { stopped = true; });
  const failed = [];
  const failures = [];
  let done = 0;
  for (let start = 0; start < names.length && !stopped; start += CHUNK) {
    const round = names.slice(start, start + CHUNK);
    const results = await Promise.allSettled(round.map((name) => api("/api/v1/admin/cache/item/delete",
      { method: "POST", body: { type: kind, name } })));
    results.forEach((result, i) => {
      if (result.status === "fulfilled") {
        done += 1;
        local[kind].selected.delete(round[i]);
      } else {
        failed.push(round[i]);
        failures.push([round[i], result.reason?.message ?? String(result.reason)]);
      }
    });
    progress.set(done, failed.length);
  }
  const left = stopped ? names.length - done - failed.length : 0;
  progress.finish(`${done} deleted${failed.length ? `, ${failed.length} failed` : ""}${left ? `, ${left} not tried` : ""}`,
    { retry: failed.length ? () => deleteFiles(kind, failed) : null, failures });
  await Promise.all([loadStats(), tab === kind ? loadLocal() : null]);
}

// -- online assets ----------------------------------------------------------------------------

function countCell(account) {
  const count = online.counts.get(account.id);
  if (!count) return h("span", { class: "badge" }, "not loaded");
  if (count.status === "loading") return h("span", { class: "badge blue" }, "loading…");
  if (count.status !== "ok") return h("span", { class: "badge red", title: count.error ?? "" }, "error");
  return h("span", { class: "badge green" }, `${formatNumber(count.count)} asset${count.count === 1 ? "" : "s"}`);
}

function drawOnline() {
  const rows = $("[data-online-rows]");
  if (!online.items.length) {
    rows.replaceChildren(h("tr", {}, h("td", { class: "empty", colspan: "6" }, "No accounts in the pool")));
  } else {
    rows.replaceChildren(...online.items.map((account) => h("tr", { dataset: { id: account.id } },
      h("td", { class: "check" }, checkbox(online.selected, account.id)),
      h("td", { class: "wrap" }, h("span", { class: "mono" }, account.token),
        account.note ? h("div", { class: "muted small" }, account.note) : null),
      h("td", {}, h("span", { class: "badge" }, account.pool)),
      h("td", { class: "wrap" }, countCell(account),
        online.counts.get(account.id)?.error ? h("div", { class: "muted small" }, online.counts.get(account.id).error) : null),
      h("td", {}, formatTime(account.last_asset_clear_at)),
      h("td", { class: "actions" },
        h("button", { class: "button small", type: "button", on: { click: () => loadCounts([account.id]) } }, "Load"), " ",
        h("button", { class: "button small danger", type: "button", on: { click: () => clearAssets([account.id]) } },
          "Clear")))));
  }
  $("[data-online-count]").textContent = `${formatNumber(online.total)} account${online.total === 1 ? "" : "s"}`;
  pager($("[data-online-pager]"), online, loadOnline);
  syncPageBox();
  drawOnlineCard();
}

async function loadOnline() {
  try {
    const query = new URLSearchParams({ page: String(online.page), page_size: String(PAGE_SIZE), sort: "created_at",
      order: "asc" });
    const listed = await api(`/api/v1/admin/tokens?${query}`);
    online.items = listed.items;
    online.total = listed.total;
    if (tab === "online") drawOnline(); else drawOnlineCard();
  } catch (error) {
    report(error);
  }
}

/** Asks Grok how many assets each account holds, ``CHUNK`` accounts a request; ``onChunk(done, failed)``. */
async function fetchCounts(ids, { stopped = () => false, onChunk = () => {} } = {}) {
  const failed = [];
  let done = 0;
  for (const id of ids) online.counts.set(id, { status: "loading" });
  drawOnline();
  for (let start = 0; start < ids.length && !stopped(); start += CHUNK) {
    const chunk = ids.slice(start, start + CHUNK);
    try {
      const answer = await api(`/api/v1/admin/cache?${new URLSearchParams({ ids: chunk.join(",") })}`);
      for (const id of chunk) {
        const result = answer.online?.[id] ?? { status: "error", error: "no answer" };
        online.counts.set(id, result);
        if (result.status === "ok") done += 1; else failed.push(id);
      }
    } catch (error) {
      for (const id of chunk) online.counts.set(id, { status: "error", error: error.message });
      failed.push(...chunk);
    }
    onChunk(done, failed.length);
    drawOnline();
  }
  for (const id of ids) if (online.counts.get(id)?.status === "loading") online.counts.delete(id);
  drawOnline();
  return { done, failed };
}

async function loadCounts(ids) {
  if (task) return;
  let stop = false;
  const progress = progressTask(`Loading asset counts of ${ids.length} account${ids.length === 1 ? "" : "s"}`,
    ids.length, () => { stop = true; });
  const { done, failed } = await fetchCounts(ids, { stopped: () => stop, onChunk: progress.set });
  const names = new Map(online.items.map((account) => [account.id, account.token]));
  progress.finish(`Counts loaded for ${done} account${done === 1 ? "" : "s"}${failed.length ? `, ${failed.length} failed` : ""}`,
    { retry: failed.length ? () => loadCounts(failed) : null,
      failures: failed.map((id) => [names.get(id) ?? id, online.counts.get(id)?.error ?? "failed"]) });
}

/** Clears the accounts' online assets as a job (it runs on the server, whatever this page does). */
async function clearAssets(ids, { retryOf = null } = {}) {
  if (task) return;
  if (!retryOf && !(await confirmDialog(`Delete every online asset of ${ids.length} account${ids.length === 1 ? "" : "s"}?`,
    { confirm: "Clear assets" }))) return;
  let job;
  try {
    job = (retryOf ? await api(`/api/v1/admin/jobs/${encodeURIComponent(retryOf)}/retry`, { method: "POST" })
      : await api("/api/v1/admin/jobs", { method: "POST", body: { kind: "clear_assets", ids } })).job;
  } catch (error) {
    report(error);
    return;
  }
  const url = `/api/v1/admin/jobs/${encodeURIComponent(job.id)}`;
  const progress = progressTask(`Clearing the assets of ${job.total} account${job.total === 1 ? "" : "s"}`, job.total,
    () => api(`${url}/cancel`, { method: "POST" }).catch(report),
    { pause: (wanted) => api(`${url}/${wanted ? "pause" : "resume"}`, { method: "POST" })
      .then(() => true, (error) => { report(error); return false; }) });
  try {
    const final = await watchJob(job.id, (update) => progress.set(update.done, update.failed, {
      paused: update.state === "paused", pausing: Boolean(update.pause) && update.state !== "paused",
      stopping: Boolean(update.cancel) }));
    progress.set(final.done, final.failed);
    await loadOnline(); // when each was last cleared
    const loaded = ids.filter((id) => online.counts.has(id));
    if (loaded.length) await fetchCounts(loaded); // the counts shown were from before the clear
    const state = final.state === "finished" ? "cleared" : final.state;
    progress.finish(`${final.done} of ${final.total} ${state}${final.failed ? `, ${final.failed} failed` : ""}`,
      { retry: final.failed ? () => clearAssets(ids, { retryOf: final.id }) : null,
        failures: Object.entries(final.errors ?? {}) });
  } catch (error) {
    progress.finish("The job could not be followed");
    report(error);
  }
}

// -- wiring -------------------------------------------------------------------------------------

for (const button of document.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}
for (const button of document.querySelectorAll("[data-open]")) {
  button.addEventListener("click", () => showTab(button.dataset.open));
}
for (const button of document.querySelectorAll("[data-clear]")) {
  button.addEventListener("click", () => clearLocal(button.dataset.clear));
}
for (const box of document.querySelectorAll("[data-select-page]")) {
  box.addEventListener("change", () => {
    const keys = tab === "online" ? online.items.map((a) => a.id) : local[tab].items.map((f) => f.name);
    for (const key of keys) { if (box.checked) selection().add(key); else selection().delete(key); }
    redraw();
  });
}
$("[data-local-refresh]").addEventListener("click", () => { loadStats(); loadLocal(); });
$("[data-online-load-page]").addEventListener("click", () => loadCounts(online.items.map((a) => a.id)));

loadStats();
loadOnline();
showTab("image");
setInterval(() => { if (!document.hidden) loadStats(); }, LOCAL_EVERY_MS);
