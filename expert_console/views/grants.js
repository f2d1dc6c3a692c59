// @ts-check
// The grants page (#/grants[?patient=<id>], registrars and admins): the grants in force, each with Revoke; a form to
// make one (kind, a grantee user or site, the objects it opens by kind and id, until when, why). A person grantee is
// found by typing part of their username or name (the people lookup feeds a datalist). `?patient=` fills the first
// object (the registrar's page links here). Everyone else is refused by the server (403).

import { personName, t } from "../i18n.js";
import { listSites, listUsers, when } from "../accounts.js";
import { DEFAULT_DAYS, GRANT_KINDS, LOOKUP_MIN, OPENS, createGrant, granteeId, instantOf, listActiveGrants,
  localInput, lookupPeople, objectsOf, revokeGrant } from "../grants.js";
import { asError, decide, el, showCodedError as showError } from "./dom.js";
import { roleLabel } from "./labels.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../accounts.js").Site} Site
 * @typedef {import("../grants.js").Grant} Grant
 * @typedef {import("../grants.js").GrantKind} GrantKind
 * @typedef {import("../grants.js").Person} Person
 */

/** The page's words that depend on data (the others are asked where they are used). */
const TEXT = {
  kind: (/** @type {string} */ kind) => t(`grants.kinds.${kind}`),
  granteeKinds: () => [["site", t("grants.grantee_site")], ["user", t("grants.grantee_user")]],
  chosen: (/** @type {Person} */ p, /** @type {string} */ sites) =>
    [personName(p.name), roleLabel(p.role), sites].filter(Boolean).join(" · "),
  columns: () => ["kind", "grantee", "opens", "from", "until", "reason", "made"].map((c) => t(`grants.col.${c}`)).concat([""]),
  userGrantee: (/** @type {string} */ name) => t("grants.user_grantee", { name }),
  siteGrantee: (/** @type {string} */ code) => t("grants.site_grantee", { code }),
};

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, query: URLSearchParams}} context
 * @returns {() => void} cleanup
 */
export function mountGrants(root, { api, user, query }) {
  const page = new GrantsPage(api, user, query.get("patient") ?? "");
  root.append(page.element);
  void page.refresh();
  return () => {
    page.stopped = true;
  };
}

class GrantsPage {
  /** @param {Api} api @param {User} user @param {string} patient an identity to fill in as the first object */
  constructor(api, user, patient) {
    this.api = api;
    this.user = user;
    this.stopped = false;
    /** @type {Site[]} */ this.sites = [];
    /** The people known to this page by id: everyone for admins, and whoever a lookup found.
     * @type {Map<string, {username: string, name: string, role: string}>} */
    this.people = new Map();
    /** The people the last lookup found. @type {Person[]} */
    this.found = [];
    this.lookups = 0;
    this.error = el("p", { class: "error", role: "alert", "data-testid": "grants-error", hidden: true });
    this.notice = el("p", { class: "notice", role: "status", "data-testid": "grants-notice", hidden: true });
    this.rows = el("tbody");
    this.siteSelect = el("select", { name: "grantee_site" });
    this.peopleList = el("datalist", { id: "grant-people" });
    this.userInput = el("input", { name: "grantee_user", list: "grant-people", autocomplete: "off", size: 24 });
    this.userHint = el("span", { class: "hint", "data-testid": "grantee-person", "aria-live": "polite" });
    /** @type {ReturnType<typeof setTimeout>|undefined} */ this.lookupTimer = undefined;
    this.userInput.addEventListener("input", () => {
      clearTimeout(this.lookupTimer);
      this.lookupTimer = setTimeout(() => void this.lookUp(), 250);
    });
    this.form = this.makeForm(patient);
    this.element = el("div", { class: "queue grants" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("grants.title") })),
        this.form, this.notice, this.error,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "grant-list" },
          el("thead", {}, el("tr", {}, TEXT.columns().map((h) => el("th", { text: h })))), this.rows))));
  }

  /** @param {string} patient */
  makeForm(patient) {
    const kind = el("select", { name: "kind" }, GRANT_KINDS.map((k) => el("option", { value: k, text: TEXT.kind(k) })));
    const granteeKind = el("select", { name: "grantee_kind" },
      TEXT.granteeKinds().map(([value, text]) => el("option", { value, text })));
    const siteField = field(t("grants.site"), this.siteSelect);
    const userField = el("label", { class: "field" }, el("span", { text: t("grants.user") }), this.userInput,
      this.peopleList, this.userHint);
    userField.hidden = true;
    granteeKind.addEventListener("change", () => {
      siteField.hidden = granteeKind.value !== "site";
      userField.hidden = granteeKind.value !== "user";
    });
    const objects = el("div", { class: "grant-objects", "data-testid": "grant-objects" });
    const addObject = (/** @type {string} */ objectKind, /** @type {string} */ objectId) => {
      const select = el("select", { name: "object_kind", "aria-label": t("grants.object_kind") });
      const input = el("input", { name: "object_id", "aria-label": t("grants.object_id"), autocomplete: "off", size: 34,
        value: objectId });
      objects.append(el("div", { class: "grant-object" }, select, input));
      fillKinds(select, /** @type {GrantKind} */ (kind.value), objectKind);
    };
    addObject("patient", patient);
    kind.addEventListener("change", () => {
      for (const select of objects.querySelectorAll("select")) fillKinds(select, /** @type {GrantKind} */ (kind.value), select.value);
    });
    const until = el("input", { name: "valid_until", type: "datetime-local", value: localInput(new Date(), DEFAULT_DAYS) });
    const reason = el("input", { name: "reason", required: true, maxlength: 2000, autocomplete: "off", size: 40 });
    const form = el("form", { class: "create-grant", "data-testid": "create-grant", novalidate: true },
      field(t("grants.kind"), kind), field(t("grants.grantee_kind"), granteeKind), siteField, userField,
      el("div", { class: "field" }, el("span", { text: t("grants.objects") }), objects,
        el("button", { type: "button", "data-action": "add-object", text: t("grants.add_object"),
          onclick: () => addObject(OPENS[/** @type {GrantKind} */ (kind.value)][0] ?? "patient", "") })),
      field(t("grants.valid_until"), until), field(t("grants.reason"), reason),
      el("button", { type: "submit", class: "primary", text: t("grants.create") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = [...objects.querySelectorAll(".grant-object")].map((row) => ({
        kind: /** @type {HTMLSelectElement} */ (row.querySelector("select")).value,
        id: /** @type {HTMLInputElement} */ (row.querySelector("input")).value,
      }));
      const validUntil = instantOf(until.value);
      const opened = objectsOf(chosen);
      if (!validUntil) return this.refuse(t("grants.bad_until"));
      if (!opened.length) return this.refuse(t("grants.no_object"));
      const grantee = granteeKind.value === "site" ? { site_id: this.siteSelect.value }
        : { user_id: granteeId(this.userInput.value, this.found) };
      void this.act(async () => {
        await createGrant(this.api, { kind: /** @type {GrantKind} */ (kind.value), grantee, objects: opened,
          valid_until: validUntil, reason: reason.value.trim() });
        reason.value = "";
        for (const input of objects.querySelectorAll("input")) input.value = "";
      }, t("grants.created"));
    });
    return form;
  }

  /** Ask who matches what is typed in the person field; fill the datalist and say whom the text names. */
  async lookUp() {
    const typed = this.userInput.value.trim();
    const asked = ++this.lookups;
    if (typed.length < LOOKUP_MIN) {
      this.showFound([], false);
      return;
    }
    try {
      const { users, truncated } = await lookupPeople(this.api, typed);
      if (this.stopped || asked !== this.lookups) return;  // a later lookup is on its way
      for (const p of users) this.people.set(p.id, p);
      this.showFound(users, truncated);
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
    }
  }

  /** @param {Person[]} users @param {boolean} truncated */
  showFound(users, truncated) {
    this.found = users;
    this.peopleList.replaceChildren(...users.map((p) => el("option", { value: p.username, text: this.describe(p) })));
    const typed = this.userInput.value.trim();
    const id = granteeId(typed, users);
    const person = users.find((p) => p.id === id);
    this.userHint.dataset.userId = person ? person.id : "";
    this.userHint.textContent = person ? this.describe(person)
      : typed.length < LOOKUP_MIN ? "" : truncated ? t("grants.more") : users.length ? "" : t("grants.nobody");
  }

  /** @param {Person} person */
  describe(person) {
    const codes = [person.site_id, ...person.serves].filter((id) => id !== null)
      .map((id) => this.sites.find((s) => s.id === id)?.code ?? id);
    return TEXT.chosen(person, [...new Set(codes)].join(", "));
  }

  /** A refusal of the form itself (nothing was sent). @param {string} message */
  refuse(message) {
    showError(this.error, { code: "invalid_request", message });
  }

  /** @param {() => Promise<unknown>} action @param {string} done */
  act(action, done) {
    return decide(this, action, done);
  }

  async refresh() {
    let grants;
    try {
      [grants, this.sites] = await Promise.all([listActiveGrants(this.api), listSites(this.api)]);
      if (this.user.role === "admin" && !this.people.size) {
        for (const u of await listUsers(this.api)) this.people.set(u.id, u);
      }
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    keepChoice(this.siteSelect, this.sites.map((s) => el("option", { value: s.id, text: `${s.code} · ${s.name}` })));
    this.rows.replaceChildren(...(grants.length ? grants.map((g) => this.grantRow(g))
      : [el("tr", { class: "empty" }, el("td", { colspan: TEXT.columns().length, text: t("grants.none") }))]));
  }

  /** @param {Grant} grant */
  grantRow(grant) {
    const site = this.sites.find((s) => s.id === grant.grantee.site_id);
    const person = grant.grantee.user_id ? this.people.get(grant.grantee.user_id) : undefined;
    const grantee = grant.grantee.site_id ? TEXT.siteGrantee(site?.code ?? grant.grantee.site_id)
      : TEXT.userGrantee(person?.username ?? grant.grantee.user_id ?? "");
    return el("tr", { "data-grant": grant.id },
      el("td", { "data-field": "kind", text: t(`grants.kind_short.${grant.kind}`) }),
      el("td", { "data-field": "grantee", text: grantee }),
      el("td", { "data-field": "objects" }, grant.objects.map((o) => el("div", { text: `${t(`grants.object.${o.kind}`)} ${o.id}`
 }))),
      el("td", { class: "numeric", text: when(grant.valid_from) }),
      el("td", { class: "numeric", text: grant.valid_until ? when(grant.valid_until) : t("grants.no_until") }),
      el("td", { "data-field": "reason", text: grant.reason }),
      el("td", { class: "numeric", text: when(grant.created_at) }),
      el("td", { class: "actions" }, el("button", { type: "button", "data-action": "revoke", text: t("grants.revoke"),
        onclick: () => {
          if (confirm(t("grants.confirm_revoke"))) void this.act(() => revokeGrant(this.api, grant.id), t("grants.revoked"));
        } })));
  }
}

/** @param {string} text @param {HTMLElement} control */
function field(text, control) {
  return el("label", { class: "field" }, el("span", { text }), control);
}

/**
 * The object kinds a grant of `kind` opens, keeping `wanted` when it is one of them.
 * @param {HTMLSelectElement} select
 * @param {GrantKind} kind
 * @param {string} wanted
 */
function fillKinds(select, kind, wanted) {
  const kinds = OPENS[kind];
  select.replaceChildren(...kinds.map((k) => el("option", { value: k, text: t(`grants.object.${k}`) })));

  select.value = kinds.includes(/** @type {import("../grants.js").ObjectKind} */ (wanted)) ? wanted : kinds[0] ?? "";
}

/** Replace a select's options, keeping what was chosen. @param {HTMLSelectElement} select @param {HTMLOptionElement[]} options */
function keepChoice(select, options) {
  const chosen = select.value;
  select.replaceChildren(...options);
  if (chosen && options.some((o) => o.value === chosen)) select.value = chosen;
}
