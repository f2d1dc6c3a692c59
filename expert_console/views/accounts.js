// @ts-check
// The admin's accounts page (#/accounts): every account with its role, site and state; create one; change role
// and site; disable and re-enable; reset the password (shown once; changed at the next sign-in); remove a lost
// second factor; list and end a person's sessions and API tokens; the sites each expert, admin or registrar serves
// (assign one, stop serving one).

import { personName, t } from "../i18n.js";
import {
  ASSIGNABLE_ROLES,
  assignSite,
  createUser,
  disableUser,
  enableUser,
  listAssignments,
  listSessions,
  listSites,
  listTokens,
  listUsers,
  removeTotp,
  resetPassword,
  revokeSession,
  revokeToken,
  stateWords,
  unassignSite,
  updateUser,
  when,
} from "../accounts.js";
import { asError, attempt, el, showError } from "./dom.js";
import { roleLabel } from "./labels.js";

const ROLES = ["sonographer", "doctor", "expert", "trainer", "admin", "registrar"];
const TEXT = {
  columns: () => ["username", "name", "role", "site", "serves", "state"].map((c) => t(`accounts.col.${c}`)).concat([""]),
  unassign: (/** @type {string} */ code) => t("accounts.unassign", { code }),
  state: () => ({ active: t("accounts.state.active"), disabled: t("accounts.state.disabled"),
    mustChange: t("accounts.state.must_change"), totp: t("accounts.state.totp") }),
  confirmDisable: (/** @type {string} */ who) => t("accounts.confirm_disable", { who }),
  confirmReset: (/** @type {string} */ who) => t("accounts.confirm_reset", { who }),
  resetDone: (/** @type {string} */ who) => t("accounts.reset_done", { who }),
  created: (/** @type {string} */ who) => t("accounts.created", { who }),
  session: (/** @type {import("../accounts.js").Session} */ s) =>
    t("accounts.session", { address: s.address ?? "?", agent: s.user_agent ?? "", since: when(s.created_at), seen: when(s.last_seen_at) }),
  token: (/** @type {import("../accounts.js").Token} */ k) =>
    t(k.expired ? "account.token_expired" : "account.token", { label: k.label, scope: t(`account.scope.${k.scope}`),
      made: when(k.created_at), used: when(k.last_used_at), expires: when(k.expires_at) }),
};

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../accounts.js").Site} Site
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User}} context
 * @returns {() => void} cleanup
 */
export function mountAccounts(root, { api }) {
  const page = new AccountsPage(api);
  root.append(page.element);
  void page.refresh();
  return () => {
    page.stopped = true;
  };
}

class AccountsPage {
  /** @param {Api} api */
  constructor(api) {
    this.api = api;
    this.stopped = false;
    /** @type {Site[]} */ this.sites = [];
    /** The sites each person serves, by user id. @type {Map<string, string[]>} */ this.served = new Map();
    this.error = el("p", { class: "error", "data-testid": "accounts-error", role: "alert", hidden: true });
    this.notice = el("p", { class: "notice", "data-testid": "account-notice", hidden: true });
    this.rows = el("tbody");
    this.createForm = this.makeCreateForm();
    this.element = el("div", { class: "queue accounts" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("accounts.title") })),
        this.createForm, this.notice, this.error,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "account-list" },
          el("thead", {}, el("tr", {}, TEXT.columns().map((h) => el("th", { text: h })))), this.rows))));
  }

  makeCreateForm() {
    const username = el("input", { name: "username", required: true, maxlength: 64, autocomplete: "off" });
    const name = el("input", { name: "name", required: true, maxlength: 200, autocomplete: "off" });
    const role = roleSelect("expert");
    const site = el("select", { name: "site_id" });
    const password = el("input", { name: "password", type: "password", autocomplete: "new-password", minlength: 8 });
    /** @param {string} text @param {HTMLElement} control */
    const field = (text, control) => el("label", { class: "field" }, el("span", { text }), control);
    const form = el("form", { class: "create-user", "data-testid": "create-user", novalidate: true },
      field(t("accounts.username"), username), field(t("accounts.name"), name), field(t("accounts.role"), role), field(t("accounts.site"), site),
      field(t("accounts.password"), password), el("button", { type: "submit", class: "primary", text: t("accounts.create") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      /** @type {import("../accounts.js").NewUser} */
      const body = { username: username.value.trim(), name: name.value.trim(), role: role.value, password: password.value };
      if (site.value) body.site_id = site.value;
      void this.act(async () => {
        await createUser(this.api, body);
        form.reset();
        this.say(TEXT.created(body.username));
      });
    });
    return form;
  }

  /** @param {string} text @param {string} [secret] shown once, selectable */
  say(text, secret) {
    this.notice.replaceChildren(text, secret ? el("span", { class: "secret-once", "data-testid": "temporary-password", text: secret }) : "");
    this.notice.hidden = false;
  }

  /** @param {() => Promise<void>} action */
  act(action) {
    return attempt(this, action);
  }

  async refresh() {
    let users;
    let assignments;
    try {
      [users, this.sites, assignments] = await Promise.all([listUsers(this.api), listSites(this.api), listAssignments(this.api)]);
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    this.served = new Map();
    for (const a of assignments) this.served.set(a.user_id, [...(this.served.get(a.user_id) ?? []), a.site_id]);
    const siteSelect = /** @type {HTMLSelectElement} */ (this.createForm.querySelector("[name=site_id]"));
    const chosen = siteSelect.value;
    siteSelect.replaceChildren(...siteOptions(this.sites));
    siteSelect.value = chosen;
    this.rows.replaceChildren(...users.flatMap((u) => this.userRows(u)));
  }

  /** @param {User} user @returns {HTMLElement[]} the row and its (hidden) detail row */
  userRows(user) {
    const role = roleSelect(user.role);
    const site = el("select", { "data-field": "site", "aria-label": t("accounts.site") }, ...siteOptions(this.sites));
    site.value = user.site_id ?? "";
    const detail = el("tr", { class: "detail", hidden: true }, el("td", { colspan: TEXT.columns().length }));
    const button = (/** @type {string} */ action, /** @type {string} */ text, /** @type {() => void} */ onclick) =>
      el("button", { type: "button", "data-action": action, text, onclick });
    const active = user.active !== false;
    const row = el("tr", { class: active ? "account" : "account disabled", "data-username": user.username },
      el("td", { text: user.username }),
      el("td", { text: personName(user.name) }),
      el("td", {}, role),
      el("td", {}, site),
      el("td", { "data-field": "serves" }, this.servesCell(user)),
      el("td", { "data-field": "state", text: stateWords(user, TEXT.state()) }),
      el("td", { class: "actions" },
        button("save", t("accounts.save"), () => void this.act(async () => {
          await updateUser(this.api, user.id, { role: role.value, site_id: site.value || null });
        })),
        active
          ? button("disable", t("accounts.disable"), () => {
            if (confirm(TEXT.confirmDisable(user.username))) void this.act(async () => void (await disableUser(this.api, user.id)));
          })
          : button("enable", t("accounts.enable"), () => void this.act(async () => void (await enableUser(this.api, user.id)))),
        button("reset-password", t("accounts.reset"), () => {
          if (!confirm(TEXT.confirmReset(user.username))) return;
          void this.act(async () => {
            const { password } = await resetPassword(this.api, user.id);
            this.say(TEXT.resetDone(user.username), password);
          });
        }),
        user.totp ? button("remove-totp", t("accounts.remove_totp"), () => void this.act(async () => void (await removeTotp(this.api, user.id)))) : null,
        button("details", t("accounts.details"), () => {
          detail.hidden = !detail.hidden;
          if (!detail.hidden) void this.fillDetail(user, /** @type {HTMLElement} */ (detail.firstChild));
        })));
    return [row, detail];
  }

  /**
   * The sites the person serves, each with its "stop" button, and a choice of the others to assign; a role that
   * takes no assignment shows nothing.
   * @param {User} user
   */
  servesCell(user) {
    if (!ASSIGNABLE_ROLES.includes(user.role)) return [];
    const mine = this.served.get(user.id) ?? [];
    const served = [...this.sites.map((s) => s.id).filter((siteId) => mine.includes(siteId)),
      ...mine.filter((siteId) => !this.sites.some((s) => s.id === siteId))]; // in the sites' order
    const code = (/** @type {string} */ siteId) => this.sites.find((s) => s.id === siteId)?.code ?? siteId;
    const chips = served.map((siteId) => el("span", { class: "served-site", "data-site": code(siteId) },
      el("span", { text: code(siteId) }),
      el("button", { type: "button", "data-action": "unassign", "aria-label": TEXT.unassign(code(siteId)),
        title: TEXT.unassign(code(siteId)), text: "×",
        onclick: () => void this.act(() => unassignSite(this.api, user.id, siteId)) })));
    const others = this.sites.filter((s) => !served.includes(s.id));
    if (!others.length) return chips.length ? chips : [el("span", { class: "muted", text: t("accounts.serves_none") })];
    const choice = el("select", { "data-field": "serve-site", "aria-label": t("accounts.serve_site") },
      others.map((s) => el("option", { value: s.id, text: s.code })));
    return [
      ...(chips.length ? chips : [el("span", { class: "muted", text: t("accounts.serves_none") })]),
      el("span", { class: "serve-new" }, choice, el("button", { type: "button", "data-action": "assign", text: t("accounts.assign"),
        onclick: () => void this.act(async () => void (await assignSite(this.api, user.id, choice.value))) })),
    ];
  }

  /** The person's sessions and tokens, each with its button. @param {User} user @param {HTMLElement} cell */
  async fillDetail(user, cell) {
    let sessions;
    let tokens;
    try {
      [sessions, tokens] = await Promise.all([listSessions(this.api, user.id), listTokens(this.api, user.id)]);
    } catch (err) {
      showError(this.error, asError(err));
      return;
    }
    const again = () => void this.fillDetail(user, cell);
    /** @param {string} text @param {string} label @param {() => Promise<unknown>} end */
    const item = (text, label, end) => el("li", {}, el("span", { text }), el("button", { type: "button", text: label,
      onclick: () => void end().then(again, (err) => showError(this.error, asError(err))) }));
    cell.replaceChildren(
      el("h3", { text: t("accounts.sessions") }),
      el("ul", { "data-testid": "user-sessions" }, sessions.length ? sessions.map((s) =>
        item(TEXT.session(s), t("accounts.end"), () => revokeSession(this.api, s.id))) : el("li", { text: t("accounts.none") })),
      el("h3", { text: t("accounts.tokens") }),
      el("ul", { "data-testid": "user-tokens" }, tokens.length ? tokens.map((k) =>
        item(TEXT.token(k), t("accounts.revoke"), () => revokeToken(this.api, k.id))) : el("li", { text: t("accounts.none") })));
  }
}

/** @param {string} value */
function roleSelect(value) {
  const select = el("select", { name: "role", "data-field": "role", "aria-label": t("accounts.role") },
    ...ROLES.map((r) => el("option", { value: r, text: roleLabel(r) })));
  select.value = value;
  return select;
}

/** @param {Site[]} sites */
function siteOptions(sites) {
  return [el("option", { value: "", text: t("accounts.no_site") }), ...sites.map((s) => el("option", { value: s.id, text: `${s.code} · ${s.name}` }))];
}
