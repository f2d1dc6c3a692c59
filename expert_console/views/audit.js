// @ts-check
// The audit page (#/audit?user=&patient=&study=&kind=&action=&result=&from=&to=, admins): the filters (kept in the
// URL), one page of rows at a time (newest first, "Older" and "Newer"), and the CSV export of every matching row.
// Everyone else is refused by the server (403) and sees its message.

import { formatDateTime, t } from "../i18n.js";
import { ACTIONS, FILTER_KEYS, actorText, auditPage, csvUrl, detailText, filtersFrom, objectText, resultText }
  from "../audit.js";
import { queryString } from "../review.js";
import { asError, el, setText, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../audit.js").AuditEvent} AuditEvent
 * @typedef {import("../audit.js").AuditFilters} AuditFilters
 * @typedef {import("../audit.js").FilterKey} FilterKey
 */

/** The page's words that depend on data (the others are asked where they are used). */
const TEXT = {
  page: (/** @type {number} */ n, /** @type {number} */ count) => t("audit.page", { n, rows: t("audit.rows", { count }) }),
  label: (/** @type {FilterKey} */ key) => t(`audit.filter.${key}`),
  results: () => [["", t("audit.any")], ["ok", t("audit.result_ok")], ["error", t("audit.result_error")]],
  columns: () => ["#", ...["time", "who", "from", "action", "route", "object", "patient", "study", "result", "detail"]
    .map((c) => t(`audit.col.${c}`))],
};

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, query: URLSearchParams, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountAudit(root, { api, query }) {
  const page = new AuditPage(api, filtersFrom(query));
  root.append(page.element);
  void page.load();
  return () => {
    page.stopped = true;
  };
}

class AuditPage {
  /**
   * @param {Api} api
   * @param {AuditFilters} filters
   */
  constructor(api, filters) {
    this.api = api;
    this.filters = filters;
    this.stopped = false;
    this.token = 0;
    /** The `before` of each page shown so far (null: the newest); the last is the current page. */
    /** @type {(number|null)[]} */ this.pages = [null];
    /** @type {number|null} */ this.next = null;
    /** @type {Record<string, HTMLInputElement|HTMLSelectElement>} */ this.inputs = {};
    const fields = FILTER_KEYS.map((key) => this.field(key));
    this.csv = el("a", { class: "csv-link", "data-action": "csv", download: "teleus-audit.csv", text: t("audit.csv") });
    this.error = el("p", { class: "error", role: "alert", "data-testid": "audit-error", hidden: true });
    this.rows = el("tbody");
    this.status = el("span", { class: "muted", "data-testid": "audit-page" });
    this.older = el("button", { type: "button", "data-action": "older", text: t("audit.older"),
      onclick: () => this.move(1) });
    this.newer = el("button", { type: "button", "data-action": "newer", text: t("audit.newer"),
      onclick: () => this.move(-1) });
    const form = el("form", { class: "queue-filters", "data-testid": "audit-filters" }, fields,
      el("button", { type: "submit", class: "primary", text: t("audit.apply") }),
      el("button", { type: "button", text: t("audit.clear"), onclick: () => this.clear() }), this.csv);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply();
    });
    this.element = el("div", { class: "queue audit" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("audit.title") })),
        form, this.error,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "audit-list" },
          el("thead", {}, el("tr", {}, TEXT.columns().map((h) => el("th", { text: h })))), this.rows)),
        el("div", { class: "audit-pager" }, this.newer, this.status, this.older)));
    this.showFilters();
  }

  /** @param {FilterKey} key */
  field(key) {
    /** @type {HTMLInputElement|HTMLSelectElement} */
    let input;
    if (key === "action") {
      input = el("select", { name: key }, el("option", { value: "", text: t("audit.any") }),
        ACTIONS.map((a) => el("option", { value: a, text: a })));
    } else if (key === "result") {
      input = el("select", { name: key }, TEXT.results().map(([value, label]) => el("option", { value, text: label })));
    } else {
      input = el("input", { name: key, type: key === "from" || key === "to" ? "date" : "text", size: 14 });
    }
    this.inputs[key] = input;
    return el("label", { class: "filter" }, el("span", { text: TEXT.label(key) }), input);
  }

  /** @param {FilterKey} key */
  input(key) {
    return /** @type {HTMLInputElement|HTMLSelectElement} every key has its input */ (this.inputs[key]);
  }

  showFilters() {
    for (const key of FILTER_KEYS) {
      const input = this.input(key);
      const value = this.filters[key];
      if (input instanceof HTMLSelectElement && value && ![...input.options].some((o) => o.value === value)) {
        input.append(el("option", { value, text: value })); // a value typed into the URL, e.g. result=not_found
      }
      input.value = value;
    }
    this.csv.setAttribute("href", csvUrl(this.api, this.filters));
  }

  apply() {
    const filters = /** @type {AuditFilters} */ ({});
    for (const key of FILTER_KEYS) filters[key] = this.input(key).value.trim();
    this.filters = filters;
    history.replaceState(null, "", `#/audit${queryString(filters)}`);
    this.showFilters();
    this.pages = [null];
    void this.load();
  }

  clear() {
    for (const input of Object.values(this.inputs)) input.value = "";
    this.apply();
  }

  /** @param {1|-1} step 1: the older page, -1: the newer one */
  move(step) {
    if (step === 1 && this.next !== null) this.pages.push(this.next);
    else if (step === -1 && this.pages.length > 1) this.pages.pop();
    else return;
    void this.load();
  }

  async load() {
    const mine = ++this.token;
    showError(this.error, null);
    let page;
    try {
      page = await auditPage(this.api, this.filters, this.pages[this.pages.length - 1] ?? null);
    } catch (err) {
      if (!this.stopped && mine === this.token) {
        showError(this.error, asError(err));
        this.rows.replaceChildren();
        this.older.disabled = this.newer.disabled = true;
      }
      return;
    }
    if (this.stopped || mine !== this.token) return;
    this.next = page.next;
    this.rows.replaceChildren(...page.events.map(eventRow));
    if (!page.events.length) {
      this.rows.append(el("tr", { class: "empty" }, el("td", { colspan: TEXT.columns().length, text: t("audit.empty") })));
    }
    setText(this.status, TEXT.page(this.pages.length, page.events.length));
    this.older.disabled = page.next === null;
    this.newer.disabled = this.pages.length === 1;
  }
}

/** @param {AuditEvent} e */
function eventRow(e) {
  return el("tr", { "data-seq": e.seq, "data-outcome": e.outcome },
    el("td", { class: "numeric", text: String(e.seq) }),
    el("td", { class: "numeric", title: e.at, text: formatDateTime(e.at, { seconds: true }) }),
    el("td", { "data-field": "who", text: actorText(e) }),
    el("td", { text: e.client ?? "" }),
    el("td", { "data-field": "action", text: e.action }),
    el("td", { "data-field": "route", text: `${e.method} ${e.route}` }),
    el("td", { "data-field": "object", text: objectText(e) }),
    el("td", { "data-field": "patient", text: e.patient_id ?? "" }),
    el("td", { "data-field": "study", text: e.study_id ?? "" }),
    el("td", { "data-field": "result", class: e.outcome === "ok" ? "" : "error", text: resultText(e) }),
    el("td", { "data-field": "detail", class: "muted", text: detailText(e) }));
}
