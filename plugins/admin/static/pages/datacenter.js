// The datacenter: the pool's and the request log's numbers as cards and charts (refreshed
// every 5 s), and the log files (tail, keyword filter, refreshed every 3 s or followed live
// over server-sent events). Log lines are shown as text only.
import { api, formatBytes, formatNumber, h, report } from "../console.js";
import { barChart, lineChart, rankChart } from "../charts.js";

const METRICS_EVERY_MS = 5000;
const LOGS_EVERY_MS = 3000;
const MAX_LIVE_LINES = 5000;

const $ = (selector) => document.querySelector(selector);
const autoRefresh = $("[data-auto-refresh]");
const logForm = $("[data-log-form]");
const logView = $("[data-log-view]");
const logStatus = $("[data-log-status]");
const fileSelect = $("[data-log-file]");
const follow = $("[data-follow]");

function card(label, value, { tone = "", hint = "" } = {}) {
  return h("div", { class: `card stat${tone ? ` ${tone}` : ""}` },
    h("div", { class: "label" }, label), h("div", { class: "value" }, value),
    hint ? h("div", { class: "muted small" }, hint) : null);
}

function ms(value) {
  if (!Number.isFinite(value)) return "-";
  return value >= 1000 ? `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)} s` : `${Math.round(value)} ms`;
}

function megabytes(stats) {
  return `${formatNumber(stats?.count ?? 0)} / ${formatBytes((stats?.size_mb ?? 0) * 1024 * 1024)}`;
}

/** Time to first token (``summary.ttft_ms{p50, p95}``) and tokens in and out, when the metrics carry them. */
function extraCards(summary) {
  const cards = [];
  const ttft = summary.ttft_ms;
  if (ttft) {
    cards.push(card("Time to first token", ms(ttft.p50 ?? NaN),
      { hint: ttft.count ? `median · p95 ${ms(ttft.p95 ?? NaN)}` : "no answered requests" }));
  }
  if (Number.isFinite(summary.avg_duration_ms)) cards.push(card("Average duration", ms(summary.avg_duration_ms)));
  if (Number.isFinite(summary.tokens_in)) {
    cards.push(card("Tokens in", formatNumber(summary.tokens_in)), card("Tokens out", formatNumber(summary.tokens_out)));
  }
  return cards;
}

function drawCards(metrics) {
  const tokens = metrics.tokens ?? {};
  const stats = metrics.request_stats ?? {};
  const summary = stats.summary ?? {};
  const invalid = (tokens.expired ?? 0) + (tokens.disabled ?? 0);
  $("[data-cards=tokens]").replaceChildren(
    card("Accounts", formatNumber(tokens.total)),
    card("Active", formatNumber(tokens.active), { tone: "green" }),
    card("Cooling", formatNumber(tokens.cooling), { tone: tokens.cooling ? "orange" : "" }),
    card("Invalid", formatNumber(invalid), { tone: invalid ? "red" : "", hint: "expired or disabled" }),
    ...(metrics.accounts?.by_state ? [card("Exhausted", formatNumber(metrics.accounts.by_state.exhausted),
      { tone: metrics.accounts.by_state.exhausted ? "orange" : "", hint: "cooling or out of quota" })] : []),
    card("Chat quota", formatNumber(tokens.chat_quota), { hint: `images ≈ ${formatNumber(tokens.image_quota)}` }),
    card("Total calls", formatNumber(tokens.total_calls)),
    card("Cached images", megabytes(metrics.cache?.local_image)),
    card("Cached videos", megabytes(metrics.cache?.local_video)));
  const rate = Number(summary.success_rate ?? 0);
  $("[data-cards=requests]").replaceChildren(
    card("Requests", formatNumber(summary.total), { hint: "last 7 days" }),
    card("Succeeded", formatNumber(summary.success), { tone: "green" }),
    card("Failed", formatNumber(summary.failed), { tone: summary.failed ? "red" : "",
      hint: "rate_limited" in summary ? `429: ${formatNumber(summary.rate_limited)} · 4xx: ${formatNumber(summary.client_error)}`
        + ` · 5xx: ${formatNumber(summary.server_error)}` : "" }),
    card("Success rate", summary.total ? `${rate.toFixed(1)}%` : "-",
      { tone: !summary.total ? "" : rate >= 95 ? "green" : rate >= 80 ? "orange" : "red" }),
    ...extraCards(summary));
}

function drawCharts(stats) {
  const hourly = stats.hourly ?? [];
  lineChart($("[data-chart=hourly]"), {
    labels: hourly.map((bucket) => bucket.hour),
    series: [{ name: "Succeeded", values: hourly.map((b) => b.success) },
      { name: "Failed", values: hourly.map((b) => b.failed) }],
  });
  const daily = stats.daily ?? [];
  barChart($("[data-chart=daily]"), {
    labels: daily.map((day) => day.date.slice(5)),
    series: [{ name: "Succeeded", values: daily.map((d) => d.success) },
      { name: "Failed", values: daily.map((d) => d.failed) }],
  });
  rankChart($("[data-chart=models]"), {
    items: (stats.models ?? []).map((m) => ({ label: m.model, value: m.count })),
    emptyText: "No model requests in the last 7 days",
  });
  const keys = stats.keys; // by API key (id, name, display_key, count), when the metrics carry it
  $("[data-keys-panel]").hidden = !Array.isArray(keys);
  if (Array.isArray(keys)) {
    rankChart($("[data-chart=keys]"), {
      items: keys.slice(0, 10).map((k) => ({ label: k.display_key ? `${k.name || "unnamed"} (${k.display_key})`
        : k.name || k.id, value: k.count ?? 0 })),
      emptyText: "No requests with an API key in the last 7 days",
    });
  }
}

async function loadMetrics() {
  try {
    const metrics = await api("/api/v1/admin/metrics");
    drawCards(metrics);
    drawCharts(metrics.request_stats ?? {});
    $("[data-updated]").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    report(error);
  }
}

// -- logs ---------------------------------------------------------------------------------

/** A log line as people read it: the JSON lines the gateway writes become "time | LEVEL | where - message". */
function parseLine(text) {
  if (text.startsWith("{")) {
    try {
      const record = JSON.parse(text).record;
      if (record) {
        const level = record.level?.name ?? "";
        const where = [record.name, record.function, record.line].filter((p) => p !== undefined).join(":");
        const time = String(record.time?.repr ?? "").slice(0, 19);
        const message = record.exception ? `${record.message} (${record.exception.type ?? "error"})` : record.message;
        return { level, text: `${time} | ${level.padEnd(8)} | ${where} - ${message}` };
      }
    } catch { /* not JSON after all: shown as it is */ }
  }
  const level = /\|\s*(TRACE|DEBUG|INFO|SUCCESS|WARNING|ERROR|CRITICAL)\s*\|/.exec(text)?.[1] ?? "";
  return { level, text };
}

let lines = [];

function lineElement(line) {
  return h("div", { class: `log-line${line.level ? ` level-${line.level.toLowerCase()}` : ""}` }, line.text);
}

function renderLines() {
  const keyword = logForm.elements.filter.value.trim().toLowerCase();
  const shown = keyword ? lines.filter((line) => line.text.toLowerCase().includes(keyword)) : lines;
  const atBottom = logView.scrollTop + logView.clientHeight >= logView.scrollHeight - 8;
  logView.replaceChildren(...(shown.length ? shown.map(lineElement)
    : [h("div", { class: "empty" }, lines.length ? "No line matches the filter" : "The file is empty")]));
  if (atBottom || !logView.dataset.scrolled) { logView.scrollTop = logView.scrollHeight; logView.dataset.scrolled = "1"; }
  const file = fileSelect.value;
  logStatus.textContent = file ? `${file}: ${shown.length} of ${lines.length} lines${following ? " · following" : follow.checked ? " · connecting…" : ""}` : "";
}

function lineCount() {
  const value = Math.round(Number(logForm.elements.lines.value));
  return Math.min(5000, Math.max(50, Number.isFinite(value) && value > 0 ? value : 500));
}

async function loadFiles() {
  try {
    const { files } = await api("/api/v1/admin/logs/files");
    const current = fileSelect.value;
    fileSelect.replaceChildren(...files.map((file) => h("option", { value: file.name },
      `${file.name} (${formatBytes(file.size_bytes)})`)));
    if (!files.length) {
      fileSelect.append(h("option", { value: "" }, "No log files"));
      logView.replaceChildren(h("div", { class: "empty" },
        "No log files yet: grok2api serve writes them to admin.log_dir"));
      return false;
    }
    if (files.some((file) => file.name === current)) fileSelect.value = current;
    return true;
  } catch (error) {
    report(error);
    return false;
  }
}

async function loadTail() {
  if (!fileSelect.value) return;
  try {
    const query = new URLSearchParams({ file: fileSelect.value, lines: String(lineCount()) });
    const tail = await api(`/api/v1/admin/logs/tail?${query}`);
    lines = tail.lines.map(parseLine);
    renderLines();
  } catch (error) {
    report(error);
  }
}

let source = null;
let following = false;

function stopFollowing() {
  source?.close();
  source = null;
  following = false;
}

function startFollowing() {
  stopFollowing();
  if (!fileSelect.value) { follow.checked = false; return; }
  following = false;
  source = new EventSource(`/api/v1/admin/logs/follow?${new URLSearchParams({ file: fileSelect.value })}`);
  source.onopen = () => { following = true; renderLines(); }; // from here on, every new line arrives
  source.onmessage = (event) => {
    lines.push(parseLine(JSON.parse(event.data)));
    if (lines.length > MAX_LIVE_LINES) lines = lines.slice(-MAX_LIVE_LINES);
    renderLines();
  };
  source.addEventListener("end", async () => {
    // the file was rotated: the newest file is the one to follow now
    stopFollowing();
    await loadFiles();
    await loadTail();
    if (follow.checked) startFollowing();
  });
  source.onerror = () => { // the browser reconnects by itself unless the stream is closed for good
    following = false;
    if (source?.readyState === EventSource.CLOSED) { follow.checked = false; stopFollowing(); }
    renderLines();
  };
  renderLines();
}

logForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  logForm.elements.lines.value = String(lineCount());
  await loadTail();
  if (follow.checked) startFollowing();
});
logForm.elements.filter.addEventListener("input", renderLines);
fileSelect.addEventListener("change", async () => {
  await loadTail();
  if (follow.checked) startFollowing();
});
follow.addEventListener("change", () => (follow.checked ? startFollowing() : (stopFollowing(), renderLines())));
$("[data-refresh]").addEventListener("click", () => { loadMetrics(); if (!follow.checked) loadTail(); });

let metricsTimer = null;
let logsTimer = null;

function schedule() {
  clearInterval(metricsTimer);
  clearInterval(logsTimer);
  if (!autoRefresh.checked) return;
  metricsTimer = setInterval(() => { if (!document.hidden) loadMetrics(); }, METRICS_EVERY_MS);
  logsTimer = setInterval(() => { if (!document.hidden && !follow.checked) loadTail(); }, LOGS_EVERY_MS);
}

autoRefresh.addEventListener("change", schedule);
window.addEventListener("pagehide", stopFollowing);

loadMetrics();
if (await loadFiles()) await loadTail();
schedule();
