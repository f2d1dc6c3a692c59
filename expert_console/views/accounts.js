// @ts-check
// The admin's accounts page (#/accounts): every account with its role, site and state; create one; change role
// and site; disable and re-enable; reset the password (shown once; changed at the next sign-in); remove a lost
// second factor; list and end a person's sessions and API tokens; the sites each expert, admin or registrar serves
// (assign one, stop serving one).

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
import { asError, el, showError } from "./dom.js";

const ROLES = ["sonographer", "doctor", "expert", "trainer", "admin", "registrar"];
const TEXT = {
  title: "Accounts",
  create: "Create account",
  username: "Username",
  name: "Name",
  role: "Role",
  site: "Site",
  noSite: "— none —",
  password: "First password (changed at first sign-in)",
  columns: ["Username", "Name", "Role", "Site", "Serves", "State", ""],
  save: "Save",
  disable: "Disable",
  enable: "Enable",
  reset: "Reset password",
  details: "Sessions & tokens",
  removeTotp: "Remove 2FA",
  revoke: "Revoke",
  end: "End",
  sessions: "Sessions",
  tokens: "API tokens",
  none: "none",
  serveSite: "Site to serve",
  assign: "Assign",
  unassign: (/** @type {string} */ code) => `Stop serving ${code}`,
  servesNone: "no site",
  cross: "×",
  state: { active: "active", disabled: "disabled", mustChange: "must change password", totp: "2FA" },
  confirmDisable: (/** @type {string} */ who) => `Disable ${who}? Their sessions end and their open calls close now.`,
  confirmReset: (/** @type {string} */ who) => `Reset the password of ${who}? Their sessions and tokens end now.`,
  resetDone: (/** @type {string} */ who) => `Temporary password of ${who} (shown once; to be changed at sign-in): `,
  created: (/** @type {string} */ who) => `Account ${who} created; the password is changed at the first sign-in.`,
  session: (/** @type {import("../accounts.js").Session} */ s) =>
    `${s.address ?? "?"} · ${s.user_agent ?? ""} · since ${when(s.created_at)} · seen ${when(s.last_seen_at)}`,
  token: (/** @type {import("../accounts.js").Token} */ t) =>
    `${t.label} (${t.scope}) · made ${when(t.created_at)} · used ${when(t.last_used_at)} · ` +
    `${t.expired ? "expired" : "expires"} ${when(t.expires_at)}`,
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
        el("div", { class: "queue-head" }, el("h2", { text: TEXT.title })),
        this.createForm, this.notice, this.error,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "account-list" },
          el("thead", {}, el("tr", {}, TEXT.columns.map((h) => el("th", { text: h })))), this.rows))));
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
      field(TEXT.username, username), field(TEXT.name, name), field(TEXT.role, role), field(TEXT.site, site),
      field(TEXT.password, password), el("button", { type: "submit", class: "primary", text: TEXT.create }));
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

  /** Run an action, show its refusal, then reload the list. @param {() => Promise<void>} action */
  async act(action) {
    showError(this.error, null);
    try {
      await action();
    } catch (err) {
      showError(this.error, asError(err));
    }
    await this.refresh();
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
    const site = el("select", { "data-field": "site", "aria-label": TEXT.site }, ...siteOptions(this.sites));
    site.value = user.site_id ?? "";
    const detail = el("tr", { class: "detail", hidden: true }, el("td", { colspan: TEXT.columns.length }));
    const button = (/** @type {string} */ action, /** @type {string} */ text, /** @type {() => void} */ onclick) =>
      el("button", { type: "button", "data-action": action, text, onclick });
    const active = user.active !== false;
    const row = el("tr", { class: active ? "account" : "account disabled", "data-username": user.username },
      el("td", { text: user.username }),
      el("td", { text: user.name }),
      el("td", {}, role),
      el("td", {}, site),
      el("td", { "data-field": "serves" }, this.servesCell(user)),
      el("td", { "data-field": "state", text: stateWords(user, TEXT.state) }),
      el("td", { class: "actions" },
        button("save", TEXT.save, () => void this.act(async () => {
          await updateUser(this.api, user.id, { role: role.value, site_id: site.value || null });
        })),
        active
          ? button("disable", TEXT.disable, () => {
            if (confirm(TEXT.confirmDisable(user.username))) void this.act(async () => void (await disableUser(this.api, user.id)));
          })
          : button("enable", TEXT.enable, () => void this.act(async () => void (await enableUser(this.api, user.id)))),
        button("reset-password", TEXT.reset, () => {
          if (!confirm(TEXT.confirmReset(user.username))) return;
          void this.act(async () => {
            const { password } = await resetPassword(this.api, user.id);
            this.say(TEXT.resetDone(user.username), password);
          });
        }),
        user.totp ? button("remove-totp", TEXT.removeTotp, () => void this.act(async () => void (await removeTotp(this.api, user.id)))) : null,
        button("details", TEXT.details, () => {
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
        title: TEXT.unassign(code(siteId)), text: TEXT.cross,
        onclick: () => void this.act(() => unassignSite(this.api, user.id, siteId)) })));
    const others = this.sites.filter((s) => !served.includes(s.id));
    if (!others.length) return chips.length ? chips : [el("span", { class: "muted", text: TEXT.servesNone })];
    const choice = el("select", { "data-field": "serve-site", "aria-label": TEXT.serveSite },
      others.map((s) => el("option", { value: s.id, text: s.code })));
    return [
      ...(chips.length ? chips : [el("span", { class: "muted", text: TEXT.servesNone })]),
      el("span", { class: "serve-new" }, choice, el("button", { type: "button", "data-action": "assign", text: TEXT.assign,
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
      el("h3", { text: TEXT.sessions }),
      el("ul", { "data-testid": "user-sessions" }, sessions.length ? sessions.map((s) =>
        item(TEXT.session(s), TEXT.end, () => revokeSession(this.api, s.id))) : el("li", { text: TEXT.none })),
      el("h3", { text: TEXT.tokens }),
      el("ul", { "data-testid": "user-tokens" }, tokens.length ? tokens.map((t) =>
        item(TEXT.token(t), TEXT.revoke, () => revokeToken(this.api, t.id))) : el("li", { text: TEXT.none })));
  }
}

/** @param {string} value */
function roleSelect(value) {
  const select = el("select", { name: "role", "data-field": "role", "aria-label": TEXT.role },
    ...ROLES.map((r) => el("option", { value: r, text: r })));
  select.value = value;
  return select;
}

/** @param {Site[]} sites */
function siteOptions(sites) {
  return [el("option", { value: "", text: TEXT.noSite }), ...sites.map((s) => el("option", { value: s.id, text: `${s.code} · ${s.name}` }))];
}
