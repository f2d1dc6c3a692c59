// @ts-check
// One's own account (#/account): the password, the two-step sign-in (TOTP), the browser sessions signed in, and
// API tokens for scripts (made here, shown once, listed without their secret, revoked here).

import { personName, t } from "../i18n.js";
import { roleLabel } from "./labels.js";
import { createToken, listSessions, listTokens, removeOwnTotp, revokeSession, revokeToken, when } from "../accounts.js";
import { asError, el, showError } from "./dom.js";
import { openPasswordDialog } from "./password.js";
import { totpEnrolment } from "./totp.js";

const TEXT = {
  session: (/** @type {import("../accounts.js").Session} */ s) =>
    t("account.session", { address: s.address ?? "?", agent: s.user_agent ?? "", since: when(s.created_at) }),
  token: (/** @type {import("../accounts.js").Token} */ k) =>
    t(k.expired ? "account.token_expired" : "account.token", { label: k.label, scope: t(`account.scope.${k.scope}`),
      made: when(k.created_at), used: when(k.last_used_at), expires: when(k.expires_at) }),
};

/**
 * @param {HTMLElement} root
 * @param {{api: import("../api.js").Api, user: import("../api.js").User}} context
 * @returns {() => void} cleanup
 */
export function mountAccount(root, { api, user }) {
  let stopped = false;
  const error = el("p", { class: "error", "data-testid": "account-error", role: "alert", hidden: true });
  const twoStep = el("div", { "data-testid": "two-step" });
  const sessions = el("ul", { "data-testid": "my-sessions" });
  const tokens = el("ul", { "data-testid": "my-tokens" });
  const secret = el("p", { class: "notice", hidden: true });
  /** @param {unknown} err */
  const fail = (err) => showError(error, asError(err));

  const fillTwoStep = () => {
    const on = Boolean(api.user?.totp);
    const password = el("input", { name: "password", type: "password", autocomplete: "current-password" });
    const off = el("form", { class: "form-actions", novalidate: true },
      el("label", { class: "field" }, el("span", { text: t("account.password") }), password),
      el("button", { type: "submit", text: t("account.remove") }));
    off.addEventListener("submit", (event) => {
      event.preventDefault();
      removeOwnTotp(api, password.value).then(fillTwoStep, fail);
    });
    const setUp = el("button", { type: "button", class: "primary", text: t("account.set_up"), onclick: () => {
      twoStep.replaceChildren(totpEnrolment({ api, onDone: fillTwoStep }));
    } });
    twoStep.replaceChildren(el("p", { text: on ? t("account.totp_on") : t("account.totp_off") }), on ? off : setUp);
  };

  const refresh = async () => {
    try {
      const [mySessions, myTokens] = await Promise.all([listSessions(api, null), listTokens(api, null)]);
      if (stopped) return;
      sessions.replaceChildren(...mySessions.map((s) => el("li", {},
        el("span", { text: TEXT.session(s) + (s.current ? t("account.this_one") : "") }),
        s.current ? null : el("button", { type: "button", text: t("account.end"),
          onclick: () => void revokeSession(api, s.id).then(refresh, fail) }))));
      tokens.replaceChildren(...(myTokens.length ? myTokens.map((k) => el("li", {}, el("span", { text: TEXT.token(k) }),
        el("button", { type: "button", text: t("account.revoke"), onclick: () => void revokeToken(api, k.id).then(refresh, fail) })))
        : [el("li", { text: t("account.none") })]));
    } catch (err) {
      if (!stopped) fail(err);
    }
  };

  const label = el("input", { name: "label", maxlength: 200, value: t("account.default_label") });
  const scope = el("select", { name: "scope" }, el("option", { value: "read", text: t("account.scope.read") }),
    el("option", { value: "write", text: t("account.scope.write") }));
  const days = el("input", { name: "days", type: "number", min: 1, max: 366, value: 90 });
  const tokenForm = el("form", { class: "create-user", novalidate: true },
    el("label", { class: "field" }, el("span", { text: t("account.label") }), label),
    el("label", { class: "field" }, el("span", { text: t("account.scope") }), scope),
    el("label", { class: "field" }, el("span", { text: t("account.days") }), days),
    el("button", { type: "submit", text: t("account.make") }));
  tokenForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    try {
      const made = await createToken(api, {
        label: label.value.trim() || t("account.default_label"),

        scope: scope.value === "write" ? "write" : "read",
        days: Number(days.value) || 90,
      });
      secret.replaceChildren(t("account.shown_once"), el("span", { class: "secret-once", "data-testid": "new-token", text: made.token }));
      secret.hidden = false;
      await refresh();
    } catch (err) {
      fail(err);
    }
  });

  root.append(el("div", { class: "queue accounts" },
    el("section", { class: "panel wide" },
      el("h2", { text: t("account.title") }),
      el("p", { text: `${personName(user.name)} · ${user.username} · ${roleLabel(user.role)}` }),
      el("button", { type: "button", "data-action": "change-password", text: t("account.change_password"),
        onclick: () => openPasswordDialog(api) }),
      error),
    el("section", { class: "panel wide" }, el("h2", { text: t("account.two_step") }), twoStep),
    el("section", { class: "panel wide" }, el("h2", { text: t("account.sessions") }), sessions),
    el("section", { class: "panel wide" }, el("h2", { text: t("account.tokens") }), tokenForm, secret, tokens)));
  fillTwoStep();
  void refresh();
  return () => {
    stopped = true;
  };
}
