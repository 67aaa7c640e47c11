// The video tab: every video_config field and an optional reference picture (uploaded like
// chat attachments), through /v1/chat/completions; progress lines are the answer's reasoning.
import { h, progressBar, report } from "../console.js";
import { events, renderOutput, uploadPicture, v1 } from "./chat-api.js";

const $ = (selector) => document.querySelector(selector);

export function setUpVideo({ model }) {
  const form = $("[data-video-form]");
  const results = $("[data-video-results]");
  const fail = $("[data-video-error]");
  const go = $("[data-video-go]");

  const setError = (message) => { fail.textContent = message; fail.hidden = !message; };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("");
    const values = Object.fromEntries(new FormData(form));
    const prompt = String(values.prompt ?? "").trim();
    const length = Number(values.video_length);
    if (!prompt) { setError("Write a prompt first"); return; }
    if (!Number.isInteger(length) || length < 5 || length > 15) { setError("Length must be from 5 to 15 seconds"); return; }
    if (!model("video")) { setError("No video model: enter an API key first"); return; }
    go.disabled = true;
    const bar = progressBar();
    bar.set(0, 100, "starting");
    const output = h("div", { class: "bubble-text answer" });
    const entry = h("div", { class: "card video-card" }, h("p", { class: "small muted" }, prompt), bar.element, output);
    results.prepend(entry);
    try {
      const reference = values.reference instanceof File && values.reference.size ? await uploadPicture(values.reference) : null;
      const content = reference
        ? [{ type: "text", text: prompt }, { type: "image_url", image_url: { url: reference } }]
        : prompt;
      const response = await v1("/v1/chat/completions", { method: "POST", body: {
        model: model("video"), stream: true, messages: [{ role: "user", content }],
        video_config: { aspect_ratio: values.aspect_ratio, video_length: length, resolution: values.resolution,
          preset: values.preset } } });
      let text = "";
      for await (const { data } of events(response)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "The video failed");
        const delta = chunk.choices?.[0]?.delta ?? {};
        const percent = /(\d{1,3})%/.exec(delta.reasoning_content ?? "");
        if (percent) bar.set(Number(percent[1]), 100, `${percent[1]}%`);
        if (delta.content) text += delta.content;
      }
      bar.set(100, 100, "done");
      output.replaceChildren(renderOutput(text));
    } catch (error) {
      bar.set(0, 100, "failed");
      output.replaceChildren(h("p", { class: "field-error" }, error.message || String(error)));
      report(error);
    } finally {
      go.disabled = false;
    }
  });
}
