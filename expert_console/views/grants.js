// @ts-check
// The grants page (#/grants[?patient=<id>], registrars and admins): the grants in force, each with Revoke; a form to
// make one (kind, a grantee user or site, the objects it opens by kind and id, until when, why). `?patient=` fills
// the first object (the registrar's page links here). Everyone else is refused by the server (403).

import { listSites, listUsers, when } from "../accounts.js";
import { DEFAULT_DAYS, GRANT_KINDS, OPENS, createGrant, instantOf, listActiveGrants, localInput, objectsOf,
  revokeGrant } from "../grants.js";
import { asError, decide, el, showCodedError as showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../accounts.js").Site} Site
 * @typedef {import("../grants.js").Grant} Grant
 * @typedef {import("../grants.js").GrantKind} GrantKind
 */

/** Every word of this page (to move to the message catalogs with the rest). */
const TEXT = {
  title: "Access grants",
  create: "Grant",
  kind: "Kind",
  kinds: /** @type {Record<string, string>} */ ({
    referral: "Referral (patients, studies)",
    shared_report: "Shared report (reports)",
    consultation: "Consultation",
  }),
  granteeKind: "Grantee",
  granteeKinds: [["site", "a site (its staff and those serving it)"], ["user", "a person"]],
  site: "Site",
  user: "Person",
  userId: "Person (user ID)",
  objects: "Opens",
  objectKind: "Object kind",
  objectId: "ID",
  addObject: "Add another object",
  validUntil: "Valid until",
  reason: "Reason",
  columns: ["Kind", "Grantee", "Opens", "From", "Until", "Reason", "Made", ""],
  revoke: "Revoke",
  none: "No grant is in force.",
  noUntil: "until the consultation closes",
  badUntil: "Say until when the grant holds.",
  noObject: "Name at least one object the grant opens.",
  created: "Grant made.",
  revoked: "Grant revoked.",
  confirmRevoke: "Revoke this grant now?",
  userGrantee: (/** @type {string} */ name) => `person ${name}`,
  siteGrantee: (/** @type {string} */ code) => `site ${code}`,
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
    /** Everyone, by id (admins only: a registrar types the person's user ID). @type {Map<string, User>} */
    this.people = new Map();
    this.error = el("p", { class: "error", role: "alert", "data-testid": "grants-error", hidden: true });
    this.notice = el("p", { class: "notice", role: "status", "data-testid": "grants-notice", hidden: true });
    this.rows = el("tbody");
    this.siteSelect = el("select", { name: "grantee_site" });
    this.userSelect = el("select", { name: "grantee_user" });
    this.userInput = el("input", { name: "grantee_user_id", autocomplete: "off", size: 24 });
    this.form = this.makeForm(patient);
    this.element = el("div", { class: "queue grants" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: TEXT.title })),
        this.form, this.notice, this.error,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "grant-list" },
          el("thead", {}, el("tr", {}, TEXT.columns.map((h) => el("th", { text: h })))), this.rows))));
  }

  /** @param {string} patient */
  makeForm(patient) {
    const kind = el("select", { name: "kind" }, GRANT_KINDS.map((k) => el("option", { value: k, text: TEXT.kinds[k] })));
    const granteeKind = el("select", { name: "grantee_kind" },
      TEXT.granteeKinds.map(([value, text]) => el("option", { value, text })));
    const siteField = field(TEXT.site, this.siteSelect);
    const userField = field(this.user.role === "admin" ? TEXT.user : TEXT.userId,
      this.user.role === "admin" ? this.userSelect : this.userInput);
    userField.hidden = true;
    granteeKind.addEventListener("change", () => {
      siteField.hidden = granteeKind.value !== "site";
      userField.hidden = granteeKind.value !== "user";
    });
    const objects = el("div", { class: "grant-objects", "data-testid": "grant-objects" });
    const addObject = (/** @type {string} */ objectKind, /** @type {string} */ objectId) => {
      const select = el("select", { name: "object_kind", "aria-label": TEXT.objectKind });
      const input = el("input", { name: "object_id", "aria-label": TEXT.objectId, autocomplete: "off", size: 34,
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
      field(TEXT.kind, kind), field(TEXT.granteeKind, granteeKind), siteField, userField,
      el("div", { class: "field" }, el("span", { text: TEXT.objects }), objects,
        el("button", { type: "button", "data-action": "add-object", text: TEXT.addObject,
          onclick: () => addObject(OPENS[/** @type {GrantKind} */ (kind.value)][0] ?? "patient", "") })),
      field(TEXT.validUntil, until), field(TEXT.reason, reason),
      el("button", { type: "submit", class: "primary", text: TEXT.create }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = [...objects.querySelectorAll(".grant-object")].map((row) => ({
        kind: /** @type {HTMLSelectElement} */ (row.querySelector("select")).value,
        id: /** @type {HTMLInputElement} */ (row.querySelector("input")).value,
      }));
      const validUntil = instantOf(until.value);
      const opened = objectsOf(chosen);
      if (!validUntil) return this.refuse(TEXT.badUntil);
      if (!opened.length) return this.refuse(TEXT.noObject);
      const grantee = granteeKind.value === "site" ? { site_id: this.siteSelect.value }
        : { user_id: (this.user.role === "admin" ? this.userSelect.value : this.userInput.value).trim() };
      void this.act(async () => {
        await createGrant(this.api, { kind: /** @type {GrantKind} */ (kind.value), grantee, objects: opened,
          valid_until: validUntil, reason: reason.value.trim() });
        reason.value = "";
        for (const input of objects.querySelectorAll("input")) input.value = "";
      }, TEXT.created);
    });
    return form;
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
        this.people = new Map((await listUsers(this.api)).map((u) => [u.id, u]));
      }
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    keepChoice(this.siteSelect, this.sites.map((s) => el("option", { value: s.id, text: `${s.code} · ${s.name}` })));
    if (this.userSelect.options.length === 0) {
      keepChoice(this.userSelect, [...this.people.values()].map((u) =>
        el("option", { value: u.id, text: `${u.username} · ${u.name} (${u.role})` })));
    }
    this.rows.replaceChildren(...(grants.length ? grants.map((g) => this.grantRow(g))
      : [el("tr", { class: "empty" }, el("td", { colspan: TEXT.columns.length, text: TEXT.none }))]));
  }

  /** @param {Grant} grant */
  grantRow(grant) {
    const site = this.sites.find((s) => s.id === grant.grantee.site_id);
    const person = grant.grantee.user_id ? this.people.get(grant.grantee.user_id) : undefined;
    const grantee = grant.grantee.site_id ? TEXT.siteGrantee(site?.code ?? grant.grantee.site_id)
      : TEXT.userGrantee(person?.username ?? grant.grantee.user_id ?? "");
    return el("tr", { "data-grant": grant.id },
      el("td", { "data-field": "kind", text: grant.kind }),
      el("td", { "data-field": "grantee", text: grantee }),
      el("td", { "data-field": "objects" }, grant.objects.map((o) => el("div", { text: `${o.kind} ${o.id}` }))),
      el("td", { class: "numeric", text: when(grant.valid_from) }),
      el("td", { class: "numeric", text: grant.valid_until ? when(grant.valid_until) : TEXT.noUntil }),
      el("td", { "data-field": "reason", text: grant.reason }),
      el("td", { class: "numeric", text: when(grant.created_at) }),
      el("td", { class: "actions" }, el("button", { type: "button", "data-action": "revoke", text: TEXT.revoke,
        onclick: () => {
          if (confirm(TEXT.confirmRevoke)) void this.act(() => revokeGrant(this.api, grant.id), TEXT.revoked);
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
  select.replaceChildren(...kinds.map((k) => el("option", { value: k, text: k })));
  select.value = kinds.includes(/** @type {import("../grants.js").ObjectKind} */ (wanted)) ? wanted : kinds[0] ?? "";
}

/** Replace a select's options, keeping what was chosen. @param {HTMLSelectElement} select @param {HTMLOptionElement[]} options */
function keepChoice(select, options) {
  const chosen = select.value;
  select.replaceChildren(...options);
  if (chosen && options.some((o) => o.value === chosen)) select.value = chosen;
}
