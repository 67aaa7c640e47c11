// The chat tab: a conversation kept in this page, pictures attached through /v1/uploads/image,
// answers streamed with their reasoning shown apart, and "retry last answer".
import { h, report, toast } from "../console.js";
import { events, renderOutput, uploadPicture, v1 } from "./chat-api.js";

const $ = (selector) => document.querySelector(selector);

export function setUpChat({ model }) {
  const log = $("[data-log]");
  const form = $("[data-compose]");
  const prompt = $("[data-prompt]");
  const picker = $("[data-attach]");
  const tray = $("[data-attachments]");
  const send = $("[data-send]");
  const stop = $("[data-stop]");
  const stream = $("[data-stream]");
  const history = []; // {role, content, turn} as sent to the API; ``turn`` is an answer's bubble
  let attached = []; // {file, preview}: the picked files and their local previews
  let running = null; // the AbortController of the answer being written

  const scroll = () => log.lastElementChild?.scrollIntoView({ block: "end" });

  function showAttachments() {
    tray.hidden = !attached.length;
    tray.replaceChildren(...attached.map((item, index) => h("div", { class: "attachment" },
      h("img", { src: item.preview, alt: item.file.name }),
      h("button", { class: "icon-button", type: "button", "aria-label": `Remove ${item.file.name}`,
        on: { click: () => { URL.revokeObjectURL(item.preview); attached.splice(index, 1); showAttachments(); } } }, "×"))));
  }

  picker.addEventListener("change", () => {
    for (const file of picker.files) attached.push({ file, preview: URL.createObjectURL(file) });
    picker.value = "";
    showAttachments();
  });

  function bubble(role, ...children) {
    $("[data-empty]")?.remove();
    const element = h("div", { class: `bubble ${role}` }, ...children);
    log.append(element);
    scroll();
    return element;
  }

  function userBubble(text, pictures) {
    return bubble("user", text ? h("div", { class: "bubble-text" }, text) : null,
      pictures.length ? h("div", { class: "bubble-pictures" }, pictures.map((url) => h("img", { src: url, alt: "attached picture" }))) : null);
  }

  /** An answer bubble: reasoning apart (collapsible), the answer as text, its retry button. */
  function answerBubble() {
    const thinking = h("pre", { class: "reasoning-text" });
    const reasoning = h("details", { class: "reasoning", open: true, hidden: true }, h("summary", {}, "Reasoning"),
      thinking);
    const body = h("div", { class: "bubble-text answer" });
    const actions = h("div", { class: "bubble-actions" });
    const element = bubble("assistant", reasoning, body, actions);
    return { element, reasoning, thinking, body, actions };
  }

  function setBusy(busy) {
    send.disabled = busy;
    stop.hidden = !busy;
  }

  /** Asks for an answer to ``history`` (up to the last user message) and writes it into ``turn``. */
  async function answer(turn) {
    const controller = new AbortController();
    running = controller;
    setBusy(true);
    turn.body.replaceChildren(h("span", { class: "muted" }, "…"));
    turn.thinking.textContent = "";
    turn.reasoning.hidden = true;
    turn.actions.replaceChildren();
    const messages = history.filter((m) => m.role && m.content).map(({ role, content }) => ({ role, content }));
    let text = "";
    let thought = "";
    let frame = 0;
    const paint = () => {
      cancelAnimationFrame(frame);
      frame = 0;
      turn.body.replaceChildren(renderOutput(text || (thought ? "" : "…")));
      turn.thinking.textContent = thought;
      turn.reasoning.hidden = !thought;
      scroll();
    };
    const paintSoon = () => { frame ||= requestAnimationFrame(paint); }; // once a frame, however many chunks
    try {
      const response = await v1("/v1/chat/completions", { method: "POST", signal: controller.signal,
        body: { model: model(), messages, stream: stream.checked } });
      if (stream.checked) {
        for await (const { data } of events(response)) {
          if (data === "[DONE]") break;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message || "The answer failed");
          const delta = chunk.choices?.[0]?.delta ?? {};
          if (delta.reasoning_content) thought += delta.reasoning_content;
          if (delta.content) text += delta.content;
          paintSoon();
        }
        paint();
      } else {
        const message = (await response.json()).choices?.[0]?.message ?? {};
        thought = message.reasoning_content ?? "";
        text = message.content ?? "";
        paint();
      }
    } catch (error) {
      if (error.name === "AbortError") {
        paint();
        turn.actions.append(h("span", { class: "muted small" }, "Stopped"));
      } else {
        if (text) paint();
        else { cancelAnimationFrame(frame); turn.body.replaceChildren(); }
        turn.body.append(h("p", { class: "field-error" }, error.message || String(error)));
        report(error);
      }
    } finally {
      running = null;
      setBusy(false);
    }
    return text;
  }

  /** Writes the answer of ``entry`` (an assistant turn) again from the conversation before it. */
  async function reply(entry) {
    entry.role = null; // not part of what is sent
    entry.content = await answer(entry.turn);
    entry.role = "assistant";
    showRetry();
  }

  /** The retry button sits under the last answer only: it resends the conversation up to the last user message. */
  function showRetry() {
    for (const old of log.querySelectorAll("[data-retry]")) old.remove();
    const last = history.at(-1);
    if (!last || last.role !== "assistant") return;
    last.turn.actions.append(h("button", { class: "button subtle small", type: "button", dataset: { retry: "" },
      on: { click: () => { if (!running) reply(last); } } }, "Retry last answer"));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (running) return;
    const text = prompt.value.trim();
    if (!text && !attached.length) return;
    if (!model()) { toast("No chat model: enter an API key first", "error"); return; }
    send.disabled = true;
    let links;
    try {
      links = await Promise.all(attached.map((item) => uploadPicture(item.file)));
    } catch (error) {
      send.disabled = false;
      report(error);
      return;
    }
    const content = links.length
      ? [{ type: "text", text: text || " " }, ...links.map((url) => ({ type: "image_url", image_url: { url } }))]
      : text;
    userBubble(text, attached.map((item) => item.preview));
    history.push({ role: "user", content });
    attached = [];
    showAttachments();
    prompt.value = "";
    const entry = { role: null, content: "", turn: answerBubble() };
    history.push(entry);
    await reply(entry);
  });

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
  });
  stop.addEventListener("click", () => running?.abort());
  $("[data-clear]").addEventListener("click", () => {
    running?.abort();
    history.length = 0;
    log.replaceChildren(h("p", { class: "muted chat-empty", dataset: { empty: "" } }, "A new conversation."));
  });
}
