// @ts-check
// The sign-in page (#/login): username and password, then the 6-digit code when the account has a second factor,
// then what the account must do first (choose its own password, an admin's TOTP enrolment).

import { ApiError } from "../api.js";
import { t } from "../i18n.js";
import { asError, el, showError } from "./dom.js";
import { passwordForm } from "./password.js";
import { totpEnrolment } from "./totp.js";


/**
 * @param {HTMLElement} root
 * @param {{api: import("../api.js").Api, onSignedIn: (user: import("../api.js").User) => void,
 *   notice?: string|undefined}} context when the api already holds a restricted session (a reload), the page
 *   starts at the step the restriction asks for
 * @returns {() => void} cleanup
 */
export function mountLogin(root, { api, onSignedIn, notice }) {
  const panel = el("div", { class: "panel login-panel", "data-testid": "login-panel" });
  root.append(el("div", { class: "centre" }, panel));

  /** What the account must do next, or onSignedIn. @param {string|undefined} password known when just typed */
  const next = (/** @type {string|undefined} */ password) => {
    const user = /** @type {import("../api.js").User} */ (api.user);
    if (api.restriction === "password_change_required") {
      panel.replaceChildren(passwordForm({
        api,
        forced: true,
        ...(password === undefined ? {} : { currentPassword: password }),
        onChanged: (_, chosen) => next(chosen),
      }));
    } else if (api.restriction === "totp_enrolment_required") {
      panel.replaceChildren(totpEnrolment({ api, password, forced: true, onDone: () => next(password) }));
    } else {
      onSignedIn(user);
    }
  };

  if (api.user && api.restriction) {
    next(undefined);
    return () => {};
  }

  const error = el("p", { class: "error", "data-testid": "login-error", role: "alert", hidden: true });
  const username = el("input", { name: "username", id: "login-username", autocomplete: "username", required: true });
  const password = el("input", {
    name: "password",
    id: "login-password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const code = el("input", { name: "totp", id: "login-totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6 });
  const codeField = el("div", { class: "login-code", hidden: true },
    el("label", { for: "login-totp", text: t("login.code") }), code);
  const submit = el("button", { type: "submit", class: "primary", text: t("login.submit") });
  const form = el(
    "form",
    { id: "login-form", novalidate: true },
    el("h1", { text: t("common.brand") }),
    el("p", { class: "muted", text: t("login.subtitle") }),
    notice ? el("p", { class: "notice", text: notice }) : null,
    el("label", { for: "login-username", text: t("login.username") }),
    username,
    el("label", { for: "login-password", text: t("login.password") }),
    password,
    codeField,
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    if (!username.value || !password.value) {
      showError(error, { code: "invalid_request", text: t("login.missing") });
      return;
    }
    submit.disabled = true;
    try {
      await api.login(username.value, password.value, codeField.hidden ? undefined : code.value.trim());
      next(password.value);
    } catch (err) {
      const refusal = asError(err);
      if (refusal.code === "totp_required" || refusal.code === "totp_invalid") {
        codeField.hidden = false;
        code.value = "";
        code.focus();
        if (refusal.code === "totp_invalid") showError(error, refusal);
      } else {
        const retry = err instanceof ApiError ? err.retryAfter : 0;
        showError(error, retry ? { code: refusal.code, text: t("login.retry", { seconds: retry }) }
 : refusal);
        password.value = "";
        password.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });
  panel.append(form);
  username.focus();
  return () => {};
}
