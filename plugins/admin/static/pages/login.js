// The login page: trades the username and password for a session cookie, then goes on to
// the page the user first asked for (a same-origin path only) or the token page.
import { api } from "../console.js";

const form = document.querySelector("[data-login-form]");
const error = document.querySelector("[data-login-error]");

function destination() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/admin/token";
}

async function alreadySignedIn() {
  if (!document.cookie.includes("grok2api-csrf=")) return; // never signed in here: nothing to ask
  const response = await fetch("/api/v1/admin/session", { credentials: "same-origin" });
  if (response.ok) location.replace(destination());
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const values = Object.fromEntries(new FormData(form));
  error.hidden = true;
  if (!values.username || !values.password) {
    error.textContent = "Enter the username and the password";
    error.hidden = false;
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await api("/api/v1/admin/login", { method: "POST", body: { username: values.username, password: values.password } });
    location.replace(destination());
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
    form.elements.password.select();
  } finally {
    button.disabled = false;
  }
});

alreadySignedIn();
form.elements.password.focus();
