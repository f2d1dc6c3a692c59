// @ts-check
// The registrar's page (#/patients): the open possible matches, each pair side by side (name, birth date, sex, each
// site's identifiers, the regional IDs, why they were proposed) with Confirm (link them) and Reject (different
// people, kept apart for good); below, the links made, with Unlink. A refusal shows its message and stable code
// (e.g. kept_apart). Everyone else is refused by the server (403) and sees its message.

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

/** Every word of this page (to move to the message catalogs with the rest). */
const TEXT = {
  title: "Patient identities",
  matches: "Possible matches",
  links: "Links",
  noMatches: "No possible match waits for a decision.",
  noLinks: "No links.",
  arrived: "Arrived",
  candidate: "Looks like",
  name: "Name",
  birthDate: "Birth date",
  sex: "Sex",
  identifiers: "Identifiers",
  identity: "Identity",
  none: "—",
  confirm: "Confirm: same person",
  reject: "Reject: different people",
  unlink: "Unlink",
  grant: "Grant access…",
  reasons: /** @type {Record<string, string>} */ ({
    regional_id: "The same regional ID, but the name or birth date differ",
    look_alike: "The same name, birth date and sex",
    unlinked: "Split by a registrar",
    registrar: "Linked by a registrar",
  }),
  linkReasons: /** @type {Record<string, string>} */ ({
    regional_id: "automatic (regional ID, name and birth date agree)",
    registrar: "by a registrar",
  }),
  states: /** @type {Record<string, string>} */ ({ linked: "linked", unlinked: "unlinked" }),
  proposed: (/** @type {string} */ at) => `proposed ${at}`,
  moved: (/** @type {{identifiers: number, studies: number}} */ n) =>
    `${n.identifiers} identifier${n.identifiers === 1 ? "" : "s"}, ${n.studies} stud${n.studies === 1 ? "y" : "ies"}`,
  linkColumns: ["When", "Kept", "Linked into it", "How", "Moved", "State", ""],
  confirmLink: (/** @type {string} */ a, /** @type {string} */ b) =>
    `Link ${a} and ${b} as one person? Their studies and identifiers are joined (a link can be split back).`,
  confirmReject: (/** @type {string} */ a, /** @type {string} */ b) =>
    `Keep ${a} and ${b} apart for good? They will never be linked, automatically or by hand.`,
  confirmUnlink: "Split this link? What moved moves back, and the two stay apart for good.",
  confirmed: "Linked.",
  rejected: "Kept apart.",
  unlinked: "Split back.",
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
        el("div", { class: "queue-head" }, el("h2", { text: TEXT.title })),
        this.notice, this.error,
        el("h3", { text: TEXT.matches }), this.matches,
        el("h3", { text: TEXT.links }),
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "link-list" },
          el("thead", {}, el("tr", {}, TEXT.linkColumns.map((h) => el("th", { text: h })))), this.links))));
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
      : [el("p", { class: "muted", text: TEXT.noMatches })]));
    const known = patientsOf([...open, ...confirmed]);
    // an automatic link has no match: the identity it kept is read (the one linked into it is not readable alone)
    const missing = [...new Set(links.map((l) => l.kept_id))].filter((pid) => !known.has(pid));
    const read = await Promise.all(missing.map((pid) => readPatient(this.api, pid).catch(() => null)));
    for (const p of read) if (p) known.set(p.id, p);
    if (this.stopped) return;
    this.links.replaceChildren(...(links.length ? links.map((l) => this.linkRow(l, known))
      : [el("tr", { class: "empty" }, el("td", { colspan: TEXT.linkColumns.length, text: TEXT.noLinks }))]));
  }

  /** @param {Match} match */
  matchCard(match) {
    const a = label(match.patient);
    const b = label(match.candidate);
    const detail = Object.keys(match.detail).length ? JSON.stringify(match.detail) : "";
    return el("article", { class: "match", "data-match": match.id, "data-reason": match.reason },
      el("p", { class: "match-reason" },
        el("strong", { "data-field": "reason", text: TEXT.reasons[match.reason] ?? match.reason }),
        el("span", { class: "muted", text: ` · ${TEXT.proposed(when(match.created_at))}` }),
        detail ? el("span", { class: "muted match-detail", text: ` · ${detail}` }) : null),
      el("div", { class: "match-pair" },
        identityCard(TEXT.arrived, match.patient, "patient"),
        identityCard(TEXT.candidate, match.candidate, "candidate")),
      el("div", { class: "form-actions" },
        el("button", { type: "button", class: "primary", "data-action": "confirm", text: TEXT.confirm, onclick: () => {
          if (confirm(TEXT.confirmLink(a, b))) void this.act(() => confirmMatch(this.api, match.id), TEXT.confirmed);
        } }),
        el("button", { type: "button", "data-action": "reject", text: TEXT.reject, onclick: () => {
          if (confirm(TEXT.confirmReject(a, b))) void this.act(() => rejectMatch(this.api, match.id), TEXT.rejected);
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
      el("td", { text: TEXT.linkReasons[link.reason] ?? link.reason }),
      el("td", { text: TEXT.moved(movedCounts(link)) }),
      el("td", { "data-field": "state", text: `${TEXT.states[link.state] ?? link.state}${link.unlinked_at ? ` ${when(link.unlinked_at)}` : ""}` }),
      el("td", { class: "actions" }, link.state === "linked"
        ? el("button", { type: "button", "data-action": "unlink", text: TEXT.unlink, onclick: () => {
          if (confirm(TEXT.confirmUnlink)) void this.act(() => unlink(this.api, link.id), TEXT.unlinked);
        } })
        : null));
  }
}

/** "Name (birth date)" of an identity. @param {Patient} p */
function label(p) {
  return `${p.name || TEXT.none} (${dicomDate(p.birth_date) || TEXT.none})`;
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
    el("dd", { "data-field": field }, Array.isArray(value) ? value.map((v) => el("div", { text: v })) : value || TEXT.none)];
  return el("section", { class: "identity", "data-side": side },
    el("h4", { text: heading }),
    el("dl", {},
      item(TEXT.name, "name", p.name),
      item(TEXT.birthDate, "birth_date", dicomDate(p.birth_date)),
      item(TEXT.sex, "sex", p.sex),
      item(TEXT.identifiers, "identifiers", identifierLines(p)),
      item(TEXT.identity, "id", p.id)),
    el("a", { href: `#/grants?patient=${encodeURIComponent(p.id)}`, "data-action": "grant", text: TEXT.grant }));
}
