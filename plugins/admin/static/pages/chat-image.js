// The image tab: one run through /v1/images/generations (a card per picture with its progress
// from the stream's events), or continuous generation over WS /api/v1/admin/imagine/ws, where
// the key's limits hold as on the endpoint (the socket says so with rate_limit_exceeded).
import { h, progressBar, report } from "../console.js";
import { apiKey, events, retryOnError, v1 } from "./chat-api.js";

const $ = (selector) => document.querySelector(selector);
const MAX_STREAM_N = 2;
const WATERFALL = 24; // pictures kept on the page in continuous mode

const dataUrl = (b64, format = "jpeg") => `data:image/${format === "jpg" ? "jpeg" : format};base64,${b64}`;
const isPicture = (value) => typeof value === "string" && value && !["error", "null"].includes(value);

export function setUpImages({ model }) {
  const form = $("[data-image-form]");
  const results = $("[data-image-results]");
  const fail = $("[data-image-error]");
  const go = $("[data-image-go]");
  const stop = $("[data-image-stop]");
  const metrics = $("[data-metrics]");
  let experimental = false;
  let running = null; // {stop(): void}

  async function detectMethod() {
    try {
      const { image_generation_method: method } = await (await v1("/v1/images/method")).json();
      experimental = method === "imagine_ws_experimental";
      $("[data-method]").textContent = `Image method: ${method}`;
    } catch (error) {
      $("[data-method]").textContent = `Image method: unknown (${error.message})`;
    }
    for (const field of form.querySelectorAll("[data-experimental]")) field.hidden = !experimental;
  }

  function card(index) {
    const bar = progressBar();
    bar.set(0, 100, "waiting");
    const frame = h("div", { class: "picture-frame" }, h("span", { class: "muted small" }, `#${index + 1}`));
    const element = h("figure", { class: "card picture-card", dataset: { index: String(index) } }, frame, bar.element);
    return { element, frame, bar, done: false };
  }

  function show(slot, src) {
    const image = h("img", { src, alt: `picture ${Number(slot.element.dataset.index) + 1}`, loading: "lazy" });
    retryOnError(image);
    slot.frame.replaceChildren(image);
  }

  function setError(message) {
    fail.textContent = message;
    fail.hidden = !message;
  }

  function busy(on) {
    go.disabled = on;
    stop.hidden = !on;
  }

  async function single(values) {
    const n = Number(values.n);
    const controller = new AbortController();
    running = { stop: () => controller.abort() };
    const slots = Array.from({ length: n }, (_, i) => card(i));
    results.replaceChildren(...slots.map((slot) => slot.element));
    const stream = n <= MAX_STREAM_N;
    const body = { model: model("image"), prompt: values.prompt, n, response_format: "b64_json", stream,
      size: experimental ? values.aspect : "1024x1024", concurrency: experimental ? Number(values.concurrency) : 1 };
    try {
      const response = await v1("/v1/images/generations", { method: "POST", body, signal: controller.signal });
      if (stream) {
        for await (const { event, data } of events(response)) {
          const item = JSON.parse(data);
          if (event === "error") throw new Error(item.error?.message || "The generation failed");
          const slot = slots[item.index ?? 0];
          if (!slot) continue;
          if (event.endsWith(".partial_image")) {
            slot.bar.set(item.progress ?? 0, 100, `${item.progress ?? 0}%`);
            if (item.b64_json) show(slot, dataUrl(item.b64_json, item.output_format));
          } else if (event.endsWith(".completed")) {
            slot.done = true;
            slot.bar.set(100, 100, "done");
            if (isPicture(item.b64_json)) show(slot, dataUrl(item.b64_json, item.output_format));
            else if (isPicture(item.url)) show(slot, item.url);
          }
        }
      } else {
        for (const slot of slots) slot.bar.set(50, 100, "generating…");
        const answer = await response.json();
        answer.data.forEach((item, index) => {
          const slot = slots[index];
          if (!slot) return;
          slot.done = true;
          slot.bar.set(100, 100, "done");
          const value = item.b64_json ?? item.base64;
          if (isPicture(value)) show(slot, dataUrl(value));
          else if (isPicture(item.url)) show(slot, item.url);
        });
      }
      for (const slot of slots.filter((s) => !s.done)) {
        slot.bar.set(0, 100, "not made");
        slot.element.classList.add("failed");
      }
    } catch (error) {
      if (error.name !== "AbortError") { setError(error.message); report(error); }
      for (const slot of slots.filter((s) => !s.done)) slot.bar.set(0, 100, "stopped");
    } finally {
      running = null;
      busy(false);
    }
  }

  /** ``concurrency`` sockets, each running the loop; a socket that closes abnormally is reopened once. */
  function continuous(values) {
    metrics.hidden = false;
    results.replaceChildren();
    const state = { count: 0, elapsed: 0, stopped: false, sockets: new Set() };
    const metric = (name, value) => { metrics.querySelector(`[data-metric="${name}"]`).textContent = value; };
    const countOpen = () => metric("sockets",
      String([...state.sockets].filter((socket) => socket.readyState === WebSocket.OPEN).length));
    metric("status", "connecting");
    metric("count", "0");
    metric("error", "-");
    metric("elapsed", "-");
    const url = new URL("/api/v1/admin/imagine/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("api_key", apiKey.get());

    const open = (retries) => {
      const socket = new WebSocket(url);
      state.sockets.add(socket);
      socket.addEventListener("open", () => {
        countOpen();
        socket.send(JSON.stringify({ type: "start", prompt: values.prompt, aspect_ratio: values.aspect }));
      });
      socket.addEventListener("message", (message) => {
        let event;
        try { event = JSON.parse(message.data); } catch { return; }
        if (event.type === "status") {
          metric("status", event.status);
          if (event.status === "stopped") socket.close(1000, "done"); // the loop ended (its quota, say)
        }
        else if (event.type === "error") metric("error", `${event.code}: ${event.message}`);
        else if (event.type === "image") {
          state.count += 1;
          state.elapsed += event.elapsed_ms ?? 0;
          metric("count", String(state.count));
          metric("elapsed", `${(state.elapsed / state.count / 1000).toFixed(1)} s`);
          const image = h("img", { src: dataUrl(event.b64_json), alt: `picture ${event.sequence}` });
          retryOnError(image);
          results.prepend(h("figure", { class: "card picture-card" }, h("div", { class: "picture-frame" }, image),
            h("figcaption", { class: "muted small" }, `#${state.count} · ${((event.elapsed_ms ?? 0) / 1000).toFixed(1)} s`)));
          while (results.children.length > WATERFALL) results.lastElementChild.remove();
        }
      });
      socket.addEventListener("close", (event) => {
        state.sockets.delete(socket);
        countOpen();
        if (event.code === 1008) {
          metric("status", "auth rejected");
          metric("error", event.reason || "The API key was refused");
        } else if (!state.stopped && event.code !== 1000 && retries > 0) {
          open(retries - 1); // an abnormal close: reconnect once
          return;
        }
        if (!state.sockets.size && !state.stopped) {
          if (event.code !== 1008) metric("status", "stopped");
          running = null;
          busy(false);
        }
      });
    };
    for (let i = 0; i < Number(values.concurrency); i += 1) open(1);
    running = {
      stop() {
        state.stopped = true;
        for (const socket of state.sockets) {
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "stop" }));
          socket.close(1000, "stopped");
        }
        metric("status", "stopped");
      },
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setError("");
    if (running) return;
    const values = Object.fromEntries(new FormData(form));
    values.prompt = String(values.prompt ?? "").trim();
    const n = Number(values.n);
    if (!values.prompt) { setError("Write a prompt first"); return; }
    if (!Number.isInteger(n) || n < 1 || n > 10) { setError("Pictures (n) must be from 1 to 10"); return; }
    const concurrency = Number(values.concurrency ?? 1);
    if (experimental && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 3)) {
      setError("Concurrency must be from 1 to 3");
      return;
    }
    if (!model("image")) { setError("No image model: enter an API key first"); return; }
    busy(true);
    metrics.hidden = true;
    if (experimental && values.mode === "continuous") continuous(values);
    else single(values);
  });
  const mode = form.querySelector("select[name=mode]");
  mode.addEventListener("change", () => { // continuous batches are the socket's six: n does not apply
    form.querySelector("input[name=n]").closest(".field").hidden = experimental && mode.value === "continuous";
  });
  stop.addEventListener("click", () => {
    running?.stop();
    running = null;
    busy(false);
  });
  return { detectMethod };
}
