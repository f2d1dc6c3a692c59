// @ts-check
// One's own account (#/account): the password, the two-step sign-in (TOTP), the browser sessions signed in, and
// API tokens for scripts (made here, shown once, listed without their secret, revoked here).

import { createToken, listSessions, listTokens, removeOwnTotp, revokeSession, revokeToken, when } from "../accounts.js";
import { asError, el, showError } from "./dom.js";
import { openPasswordDialog } from "./password.js";
import { totpEnrolment } from "./totp.js";

const TEXT = {
  title: "Your account",
  changePassword: "Change password",
  twoStep: "Two-step sign-in",
  totpOn: "On: you sign in with your password and a code from your authenticator app.",
  totpOff: "Off: you sign in with your password only.",
  setUp: "Set up",
  remove: "Turn off",
  password: "Your password",
  sessions: "Signed-in browsers",
  thisOne: " (this one)",
  end: "Sign out",
  tokens: "API tokens for scripts",
  label: "Label",
  scope: "Scope",
  days: "Days",
  make: "Make token",
  revoke: "Revoke",
  shownOnce: "Copy it now, it is not shown again: ",
  none: "none",
  session: (/** @type {import("../accounts.js").Session} */ s) =>
    `${s.address ?? "?"} · ${s.user_agent ?? ""} · since ${when(s.created_at)}`,
  token: (/** @type {import("../accounts.js").Token} */ t) =>
    `${t.label} (${t.scope}) · made ${when(t.created_at)} · used ${when(t.last_used_at)} · ` +
    `${t.expired ? "expired" : "expires"} ${when(t.expires_at)}`,
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
      el("label", { class: "field" }, el("span", { text: TEXT.password }), password),
      el("button", { type: "submit", text: TEXT.remove }));
    off.addEventListener("submit", (event) => {
      event.preventDefault();
      removeOwnTotp(api, password.value).then(fillTwoStep, fail);
    });
    const setUp = el("button", { type: "button", class: "primary", text: TEXT.setUp, onclick: () => {
      twoStep.replaceChildren(totpEnrolment({ api, onDone: fillTwoStep }));
    } });
    twoStep.replaceChildren(el("p", { text: on ? TEXT.totpOn : TEXT.totpOff }), on ? off : setUp);
  };

  const refresh = async () => {
    try {
      const [mySessions, myTokens] = await Promise.all([listSessions(api, null), listTokens(api, null)]);
      if (stopped) return;
      sessions.replaceChildren(...mySessions.map((s) => el("li", {},
        el("span", { text: TEXT.session(s) + (s.current ? TEXT.thisOne : "") }),
        s.current ? null : el("button", { type: "button", text: TEXT.end,
          onclick: () => void revokeSession(api, s.id).then(refresh, fail) }))));
      tokens.replaceChildren(...(myTokens.length ? myTokens.map((t) => el("li", {}, el("span", { text: TEXT.token(t) }),
        el("button", { type: "button", text: TEXT.revoke, onclick: () => void revokeToken(api, t.id).then(refresh, fail) })))
        : [el("li", { text: TEXT.none })]));
    } catch (err) {
      if (!stopped) fail(err);
    }
  };

  const label = el("input", { name: "label", maxlength: 200, value: "script" });
  const scope = el("select", { name: "scope" }, el("option", { value: "read", text: "read-only" }),
    el("option", { value: "write", text: "read and write" }));
  const days = el("input", { name: "days", type: "number", min: 1, max: 366, value: 90 });
  const tokenForm = el("form", { class: "create-user", novalidate: true },
    el("label", { class: "field" }, el("span", { text: TEXT.label }), label),
    el("label", { class: "field" }, el("span", { text: TEXT.scope }), scope),
    el("label", { class: "field" }, el("span", { text: TEXT.days }), days),
    el("button", { type: "submit", text: TEXT.make }));
  tokenForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    try {
      const made = await createToken(api, {
        label: label.value.trim() || "script",
        scope: scope.value === "write" ? "write" : "read",
        days: Number(days.value) || 90,
      });
      secret.replaceChildren(TEXT.shownOnce, el("span", { class: "secret-once", "data-testid": "new-token", text: made.token }));
      secret.hidden = false;
      await refresh();
    } catch (err) {
      fail(err);
    }
  });

  root.append(el("div", { class: "queue accounts" },
    el("section", { class: "panel wide" },
      el("h2", { text: TEXT.title }),
      el("p", { text: `${user.name} · ${user.username} · ${user.role}` }),
      el("button", { type: "button", "data-action": "change-password", text: TEXT.changePassword,
        onclick: () => openPasswordDialog(api) }),
      error),
    el("section", { class: "panel wide" }, el("h2", { text: TEXT.twoStep }), twoStep),
    el("section", { class: "panel wide" }, el("h2", { text: TEXT.sessions }), sessions),
    el("section", { class: "panel wide" }, el("h2", { text: TEXT.tokens }), tokenForm, secret, tokens)));
  fillTwoStep();
  void refresh();
  return () => {
    stopped = true;
  };
}
