// @ts-check
// The registrar's page (#/patients): the open possible matches, each pair side by side (name, birth date, sex, each
// site's identifiers, the regional IDs, why they were proposed) with Confirm (link them) and Reject (different
// people, kept apart for good); below, the links made, with Unlink. A refusal shows its message and stable code
// (e.g. kept_apart). Everyone else is refused by the server (403) and sees its message.

import { has, personName, t } from "../i18n.js";
import { when } from "../accounts.js";
import { confirmMatch, dicomDate, identifierLines, listLinks, listMatches, movedCounts, patientsOf, readPatient,
  rejectMatch, unlink } from "../registry.js";
import { asError, decide, el, showCodedError as showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../registry.js").Match} Match
 * @typedef {import("../registry.js").Link} Link
 * @typedef {import("../registry.js").Patient} Patient
 */

/** The page's words that depend on data (the others are asked where they are used). */
const TEXT = {
  reason: (/** @type {string} */ reason) => (has(`patients.reasons.${reason}`) ? t(`patients.reasons.${reason}`) : reason),
  linkReason: (/** @type {string} */ reason) =>
    (has(`patients.link_reasons.${reason}`) ? t(`patients.link_reasons.${reason}`) : reason),
  state: (/** @type {string} */ state) => (has(`patients.states.${state}`) ? t(`patients.states.${state}`) : state),
  proposed: (/** @type {string} */ at) => t("patients.proposed", { at }),
  moved: (/** @type {{identifiers: number, studies: number}} */ n) =>
    t("patients.moved", { identifiers: t("patients.identifiers_count", { count: n.identifiers }),
      studies: t("patients.studies_count", { count: n.studies }) }),
  linkColumns: () => ["when", "kept", "linked", "how", "moved", "state"].map((c) => t(`patients.col.${c}`)).concat([""]),
  confirmLink: (/** @type {string} */ a, /** @type {string} */ b) => t("patients.confirm_link", { a, b }),
  confirmReject: (/** @type {string} */ a, /** @type {string} */ b) => t("patients.confirm_reject", { a, b }),
};

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User}} context
 * @returns {() => void} cleanup
 */
export function mountPatients(root, { api }) {
  const page = new PatientsPage(api);
  root.append(page.element);
  void page.refresh();
  return () => {
    page.stopped = true;
  };
}

class PatientsPage {
  /** @param {Api} api */
  constructor(api) {
    this.api = api;
    this.stopped = false;
    this.error = el("p", { class: "error", role: "alert", "data-testid": "patients-error", hidden: true });
    this.notice = el("p", { class: "notice", "data-testid": "patients-notice", role: "status", hidden: true });
    this.matches = el("div", { class: "match-list", "data-testid": "match-list" });
    this.links = el("tbody");
    this.element = el("div", { class: "queue patients" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("patients.title") })),
        this.notice, this.error,
        el("h3", { text: t("patients.matches") }), this.matches,
        el("h3", { text: t("patients.links") }),
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "link-list" },
          el("thead", {}, el("tr", {}, TEXT.linkColumns().map((h) => el("th", { text: h })))), this.links))));
  }

  /** @param {() => Promise<unknown>} action @param {string} done */
  act(action, done) {
    return decide(this, action, done);
  }

  async refresh() {
    let open;
    let confirmed;
    let links;
    try {
      [open, confirmed, links] = await Promise.all([
        listMatches(this.api, "open"), listMatches(this.api, "confirmed"), listLinks(this.api),
      ]);
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    this.matches.replaceChildren(...(open.length ? open.map((m) => this.matchCard(m))
      : [el("p", { class: "muted", text: t("patients.no_matches") })]));
    const known = patientsOf([...open, ...confirmed]);
    // an automatic link has no match: the identity it kept is read (the one linked into it is not readable alone)
    const missing = [...new Set(links.map((l) => l.kept_id))].filter((pid) => !known.has(pid));
    const read = await Promise.all(missing.map((pid) => readPatient(this.api, pid).catch(() => null)));
    for (const p of read) if (p) known.set(p.id, p);
    if (this.stopped) return;
    this.links.replaceChildren(...(links.length ? links.map((l) => this.linkRow(l, known))
      : [el("tr", { class: "empty" }, el("td", { colspan: TEXT.linkColumns().length, text: t("patients.no_links") }))]));
  }

  /** @param {Match} match */
  matchCard(match) {
    const a = label(match.patient);
    const b = label(match.candidate);
    const detail = Object.keys(match.detail).length ? JSON.stringify(match.detail) : "";
    return el("article", { class: "match", "data-match": match.id, "data-reason": match.reason },
      el("p", { class: "match-reason" },
        el("strong", { "data-field": "reason", text: TEXT.reason(match.reason) }),
        el("span", { class: "muted", text: ` · ${TEXT.proposed(when(match.created_at))}` }),
        detail ? el("span", { class: "muted match-detail", text: ` · ${detail}` }) : null),
      el("div", { class: "match-pair" },
        identityCard(t("patients.arrived"), match.patient, "patient"),
        identityCard(t("patients.candidate"), match.candidate, "candidate")),
      el("div", { class: "form-actions" },
        el("button", { type: "button", class: "primary", "data-action": "confirm", text: t("patients.confirm"), onclick: () => {
          if (confirm(TEXT.confirmLink(a, b))) void this.act(() => confirmMatch(this.api, match.id), t("patients.confirmed"));
        } }),
        el("button", { type: "button", "data-action": "reject", text: t("patients.reject"), onclick: () => {
          if (confirm(TEXT.confirmReject(a, b))) void this.act(() => rejectMatch(this.api, match.id), t("patients.rejected"));
        } })));
  }

  /** @param {Link} link @param {Map<string, Patient>} known */
  linkRow(link, known) {
    const side = (/** @type {string} */ pid) => {
      const p = known.get(pid);
      return el("td", { title: pid }, p ? [el("div", { text: label(p) }), el("div", { class: "muted",
        text: identifierLines(p).join(" · ") })] : el("span", { class: "muted", text: pid }));
    };
    return el("tr", { "data-link": link.id, "data-state": link.state },
      el("td", { class: "numeric", text: when(link.at) }),
      side(link.kept_id),
      side(link.merged_id),
      el("td", { text: TEXT.linkReason(link.reason) }),
      el("td", { text: TEXT.moved(movedCounts(link)) }),
      el("td", { "data-field": "state", text: `${TEXT.state(link.state)}${link.unlinked_at ? ` ${when(link.unlinked_at)}` : ""}` }),
      el("td", { class: "actions" }, link.state === "linked"
        ? el("button", { type: "button", "data-action": "unlink", text: t("patients.unlink"), onclick: () => {
          if (confirm(t("patients.confirm_unlink"))) void this.act(() => unlink(this.api, link.id), t("patients.unlinked"));
        } })
        : null));
  }
}

/** "Name (birth date)" of an identity. @param {Patient} p */
function label(p) {
  return `${personName(p.name) || "—"} (${dicomDate(p.birth_date) || "—"})`;
}

/**
 * One side of a pair: its demographics and identifiers, and a link to grant someone access to it.
 * @param {string} heading
 * @param {Patient} p
 * @param {string} side
 */
function identityCard(heading, p, side) {
  /** @param {string} term @param {string} field @param {string|string[]} value */
  const item = (term, field, value) => [el("dt", { text: term }),
    el("dd", { "data-field": field }, Array.isArray(value) ? value.map((v) => el("div", { text: v })) : value || "—")];
  return el("section", { class: "identity", "data-side": side },
    el("h4", { text: heading }),
    el("dl", {},
      item(t("patients.name"), "name", personName(p.name)),
      item(t("patients.birth_date"), "birth_date", dicomDate(p.birth_date)),
      item(t("patients.sex"), "sex", p.sex && has(`home.sex.${p.sex}`) ? t(`home.sex.${p.sex}`) : p.sex),
      item(t("patients.identifiers"), "identifiers", identifierLines(p)),
      item(t("patients.identity"), "id", p.id)),
    el("a", { href: `#/grants?patient=${encodeURIComponent(p.id)}`, "data-action": "grant", text: t("patients.grant") }));
}
