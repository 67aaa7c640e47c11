// The chat pages: /chat (public: the visitor brings an API key) and /admin/chat (an admin picks a
// managed key or makes one for the page; the gateway keeps only keys' hashes, so it cannot fill one
// in). The key lives in this tab's sessionStorage. Models come from /v1/models, by tab.
import { api, h, report } from "../console.js";
import { apiKey, fillModels, v1 } from "./chat-api.js";
import { setUpChat } from "./chat-talk.js";
import { setUpImages } from "./chat-image.js";
import { setUpVideo } from "./chat-video.js";

const $ = (selector) => document.querySelector(selector);
const page = $("[data-chat-page]");
const admin = page.dataset.admin === "true";
const keyBox = $("[data-key]");
const PREFERRED = { chat: "grok-4.20-beta", image: "grok-imagine-1.0", video: "grok-imagine-1.0-video" };
const TABS = {
  chat: (id) => !id.includes("imagine"),
  image: (id) => id === "grok-imagine-1.0",
  video: (id) => id === "grok-imagine-1.0-video",
};

const selects = Object.fromEntries(Object.keys(TABS).map((tab) => [tab, $(`[data-model="${tab}"]`)]));
const model = (tab = "chat") => selects[tab].value;

const images = setUpImages({ model });
setUpChat({ model: () => model("chat") });
setUpVideo({ model });

async function loadModels() {
  if (!apiKey.get()) {
    for (const [tab, select] of Object.entries(selects)) fillModels(select, [], TABS[tab], PREFERRED[tab]);
    return;
  }
  try {
    const { data } = await (await v1("/v1/models")).json();
    for (const [tab, select] of Object.entries(selects)) fillModels(select, data, TABS[tab], PREFERRED[tab]);
    await images.detectMethod();
  } catch (error) {
    report(error);
  }
}

function selectTab(name) {
  for (const tab of document.querySelectorAll("[data-tab]")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
}
for (const tab of document.querySelectorAll("[data-tab]")) tab.addEventListener("click", () => selectTab(tab.dataset.tab));

const note = $("[data-key-note]");

function useKey() {
  apiKey.set(keyBox.value);
  note.textContent = apiKey.get()
    ? "Key in use. It stays in this tab only (sessionStorage) and is sent to this gateway alone."
    : "No key: enter one to load the models.";
  loadModels();
}
$("[data-key-save]").addEventListener("click", useKey);
keyBox.addEventListener("keydown", (event) => { if (event.key === "Enter") useKey(); });
keyBox.value = apiKey.get();

async function setUpAdminKeys() {
  const pick = $("[data-key-pick]");
  let rows = [];
  try {
    rows = (await api("/api/v1/admin/keys")).data.filter((row) => row.is_active !== false);
  } catch (error) {
    report(error);
  }
  pick.append(...rows.map((row) => h("option", { value: row.id }, `${row.name} (${row.display_key})`)));
  pick.addEventListener("change", () => {
    const row = rows.find((r) => r.id === pick.value);
    keyBox.value = "";
    keyBox.placeholder = row ? `Paste the key ${row.display_key}` : "sk-…";
    note.textContent = row
      ? "The gateway keeps only a hash of each key: paste this key's text (shown once when it was made), or make a new one."
      : "The key stays in this tab only (sessionStorage) and is sent to this gateway alone.";
    keyBox.focus();
  });
  $("[data-key-create]").addEventListener("click", async () => {
    try {
      const created = (await api("/api/v1/admin/keys", { method: "POST", body: { name: "console-chat" } })).data;
      keyBox.value = created.key;
      pick.append(h("option", { value: created.id }, `${created.name} (${created.display_key})`));
      pick.value = created.id;
      useKey();
    } catch (error) {
      report(error);
    }
  });
}

if (admin) setUpAdminKeys();
loadModels();
