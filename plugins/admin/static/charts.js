// Small SVG charts of our own (no chart library): a line chart, a stacked bar chart and a
// horizontal bar chart. Each draws into a container at its current width and redraws when
// the container is resized; labels are text nodes, colours come from CSS classes
// (.series-0, .series-1, … in charts.css), so nothing here is markup or inline style.

const SVG = "http://www.w3.org/2000/svg";
const PAD = { top: 12, right: 12, bottom: 28, left: 40 };

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children.map((child) => (child instanceof Node ? child : document.createTextNode(String(child)))));
  return element;
}

/** Round steps (1, 2, 5 × 10^n) from 0 to at least ``max``: the y axis ticks. */
function ticks(max, count = 4) {
  if (max <= 0) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let value = 0; value <= max + step * 0.001; value += step) out.push(Math.round(value * 1e6) / 1e6);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

function compact(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(value >= 1e4 ? 0 : 1)}k`;
  return String(value);
}

function legend(series) {
  return h2("div", "chart-legend", series.map((s, i) => h2("span", "legend-item",
    [h2("span", `legend-swatch series-${i}`, []), document.createTextNode(s.name)])));
}

function h2(tag, className, children) {
  const element = document.createElement(tag);
  element.className = className;
  element.append(...children);
  return element;
}

/** Draws ``draw(width)`` into ``container`` now and whenever its width changes. */
function responsive(container, draw) {
  container._chartObserver?.disconnect();
  let last = -1;
  const render = () => {
    const width = Math.max(240, Math.floor(container.clientWidth));
    if (width === last) return;
    last = width;
    container.replaceChildren(...draw(width));
  };
  render();
  const observer = new ResizeObserver(render);
  observer.observe(container);
  container._chartObserver = observer;
}

function empty(container, message) {
  container._chartObserver?.disconnect();
  container.replaceChildren(h2("p", "chart-empty", [document.createTextNode(message)]));
}

/** Axes and horizontal grid lines for ``max``; returns the y scale and the drawn group. */
function frame(width, height, max, labels, every) {
  const steps = ticks(max);
  const top = steps[steps.length - 1];
  const inner = { w: width - PAD.left - PAD.right, h: height - PAD.top - PAD.bottom };
  const y = (value) => PAD.top + inner.h - (value / top) * inner.h;
  const group = svg("g", { class: "chart-axes" });
  for (const value of steps) {
    group.append(svg("line", { x1: PAD.left, x2: width - PAD.right, y1: y(value), y2: y(value), class: "grid" }),
      svg("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, compact(value)));
  }
  const slot = inner.w / Math.max(1, labels.length);
  labels.forEach((label, i) => {
    if (i % every) return;
    group.append(svg("text", { x: PAD.left + slot * (i + 0.5), y: height - 8, "text-anchor": "middle" }, label));
  });
  return { y, slot, group };
}

/** How many labels to skip so they do not overlap (about 48 px each). */
function labelEvery(count, width) {
  return Math.max(1, Math.ceil(count / Math.max(1, Math.floor((width - PAD.left - PAD.right) / 48))));
}

/**
 * ``lineChart(el, {labels, series: [{name, values}], height})``: one line per series, a dot per
 * point with its value as a native tooltip.
 */
export function lineChart(container, { labels, series, height = 220, emptyText = "No data yet" }) {
  const max = Math.max(0, ...series.flatMap((s) => s.values));
  if (!labels.length) { empty(container, emptyText); return; }
  responsive(container, (width) => {
    const every = labelEvery(labels.length, width);
    const { y, slot, group } = frame(width, height, max, labels, every);
    const chart = svg("svg", { class: "chart line-chart", width, height, viewBox: `0 0 ${width} ${height}`,
      role: "img", "aria-label": series.map((s) => s.name).join(", ") }, group);
    series.forEach((s, index) => {
      const points = s.values.map((value, i) => [PAD.left + slot * (i + 0.5), y(value)]);
      chart.append(svg("polyline", { class: `series-${index} line`,
        points: points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ") }));
      points.forEach(([px, py], i) => chart.append(svg("circle", { class: `series-${index} dot`, cx: px, cy: py, r: 3 },
        svg("title", {}, `${labels[i]} · ${s.name}: ${s.values[i]}`))));
    });
    return [chart, legend(series)];
  });
}

/**
 * ``barChart(el, {labels, series: [{name, values}], height})``: bars stacked per label, each
 * segment with its value as a native tooltip.
 */
export function barChart(container, { labels, series, height = 220, emptyText = "No data yet" }) {
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  if (!labels.length) { empty(container, emptyText); return; }
  responsive(container, (width) => {
    const { y, slot, group } = frame(width, height, Math.max(0, ...totals), labels, labelEvery(labels.length, width));
    const chart = svg("svg", { class: "chart bar-chart", width, height, viewBox: `0 0 ${width} ${height}`,
      role: "img", "aria-label": series.map((s) => s.name).join(", ") }, group);
    const bar = Math.min(36, slot * 0.6);
    labels.forEach((label, i) => {
      let base = 0;
      series.forEach((s, index) => {
        const value = s.values[i] || 0;
        if (!value) return;
        const top = y(base + value);
        chart.append(svg("rect", { class: `series-${index} bar`, x: PAD.left + slot * (i + 0.5) - bar / 2, y: top,
          width: bar, height: Math.max(0, y(base) - top), rx: 2 }, svg("title", {}, `${label} · ${s.name}: ${value}`)));
        base += value;
      });
    });
    return [chart, legend(series)];
  });
}

/**
 * ``rankChart(el, {items: [{label, value}]})``: one horizontal bar per item, longest first, the
 * label above its bar and the value at its end (model names can be long; this keeps them whole).
 */
export function rankChart(container, { items, emptyText = "No data yet" }) {
  const sorted = [...items].sort((a, b) => b.value - a.value);
  if (!sorted.length) { empty(container, emptyText); return; }
  const max = Math.max(1, ...sorted.map((item) => item.value));
  const total = sorted.reduce((sum, item) => sum + item.value, 0);
  container._chartObserver?.disconnect();
  container.replaceChildren(h2("ol", "rank-chart", sorted.map((item, index) => {
    const fill = h2("span", `rank-fill series-${index % 8}`, []);
    fill.style.width = `${(item.value / max) * 100}%`;
    const share = total ? ` (${Math.round((item.value / total) * 100)}%)` : "";
    return h2("li", "rank-row", [
      h2("span", "rank-label", [document.createTextNode(item.label)]),
      h2("span", "rank-value", [document.createTextNode(`${item.value.toLocaleString()}${share}`)]),
      h2("span", "rank-track", [fill]),
    ]);
  })));
}
