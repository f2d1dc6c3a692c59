// @ts-check
// Changing one's own password: a form (used by the sign-in page when a change is required) and the header's
// "Change password" dialog.

import { t } from "../i18n.js";
import { asError, el, showError } from "./dom.js";


/**
 * @param {{api: import("../api.js").Api, currentPassword?: string, forced?: boolean,
 *   onChanged: (user: import("../api.js").User, password: string) => void, onCancel?: () => void}} options
 *   `currentPassword`: already known (just typed at sign-in), so not asked again
 * @returns {HTMLFormElement}
 */
export function passwordForm({ api, currentPassword, forced = false, onChanged, onCancel }) {
  const error = el("p", { class: "error", "data-testid": "password-error", role: "alert", hidden: true });
  const current = el("input", { name: "current_password", type: "password", autocomplete: "current-password" });
  const next = el("input", { name: "new_password", type: "password", autocomplete: "new-password", minlength: 8 });
  const again = el("input", { name: "new_password_again", type: "password", autocomplete: "new-password" });
  const submit = el("button", { type: "submit", class: "primary", text: t("password.submit") });
  /** @param {string} text @param {HTMLInputElement} input */
  const field = (text, input) => el("label", { class: "field" }, el("span", { text }), input);
  const form = el("form", { class: "password-form", "data-testid": "password-form", novalidate: true },
    el("h2", { text: forced ? t("password.forced_title") : t("password.title") }),
    forced ? el("p", { class: "notice", text: t("password.forced_note") }) : null,
    currentPassword === undefined ? field(t("password.current"), current) : null,
    field(t("password.next"), next),
    field(t("password.again"), again),
    el("div", { class: "form-actions" }, submit,
      onCancel ? el("button", { type: "button", text: t("password.cancel"), onclick: () => onCancel() }) : null),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    if (next.value.length < 8) return showError(error, { code: "invalid_request", text: t("password.short") });
    if (next.value !== again.value) return showError(error, { code: "invalid_request", text: t("password.differ") });
    submit.disabled = true;
    try {
      onChanged(await api.changePassword(currentPassword ?? current.value, next.value), next.value);
    } catch (err) {
      showError(error, asError(err));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * The header's dialog: change the password, then say so.
 * @param {import("../api.js").Api} api
 */
export function openPasswordDialog(api) {
  const dialog = el("dialog", { class: "panel dialog", "data-testid": "password-dialog" });
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  dialog.append(passwordForm({
    api,
    onChanged: () => dialog.replaceChildren(el("p", { "data-testid": "password-changed", text: t("password.done") }),
      el("button", { type: "button", class: "primary", text: t("common.ok"), onclick: close })),
    onCancel: close,
  }));
  dialog.addEventListener("cancel", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
