// @ts-check
// The sign-in form (#/login).

import { el, showError, asError } from "./dom.js";

/**
 * @param {HTMLElement} root
 * @param {{api: import("../api.js").Api, onSignedIn: (user: import("../api.js").User) => void,
 *   notice?: string|undefined}} context
 * @returns {() => void} cleanup
 */
export function mountLogin(root, { api, onSignedIn, notice }) {
  const error = el("p", { class: "error", "data-testid": "login-error", role: "alert", hidden: true });
  const username = el("input", { name: "username", id: "login-username", autocomplete: "username", required: true });
  const password = el("input", {
    name: "password",
    id: "login-password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = el("button", { type: "submit", class: "primary", text: "Sign in" });
  const form = el(
    "form",
    { id: "login-form", class: "panel login-panel", novalidate: true },
    el("h1", { text: "teleus" }),
    el("p", { class: "muted", text: "Tele-ultrasound live consultation" }),
    notice ? el("p", { class: "notice", text: notice }) : null,
    el("label", { for: "login-username", text: "Username" }),
    username,
    el("label", { for: "login-password", text: "Password" }),
    password,
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    if (!username.value || !password.value) {
      showError(error, { code: "invalid_request", message: "Enter your username and password." });
      return;
    }
    submit.disabled = true;
    try {
      const user = await api.login(username.value, password.value);
      onSignedIn(user);
    } catch (err) {
      showError(error, asError(err));
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  root.append(el("div", { class: "centre" }, form));
  username.focus();
  return () => {};
}
