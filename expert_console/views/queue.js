// @ts-check
// The reading queue (#/queue?site=&modality=&state=&priority=&overdue=1): studies with live countdowns on the
// server's clock, overdue rows escalated, lock holders, filters kept in the URL, claim and release.

import {
  MODALITIES, PRIORITIES, STATES, apiQuery, claimStudy, clockOffset, escalation, filtersFromQuery, formatCountdown,
  heldBy, listSites, listStudies, queueHash, releaseStudy, secondsLeft, targetSeconds,
} from "../queue.js";
import { errorText, personName, t } from "../i18n.js";
import { asError, el, setText, showError } from "./dom.js";
import { priorityLabel, studyStateLabel } from "./labels.js";

/** The modality chips shown; any other modality in the URL is kept and shown too. */
const COMMON_MODALITIES = ["CR", "DX", "CT", "US", "MR", "MG"];
const SHOWN_STATES = ["examined", "matched", "reported", "approved"];


/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../events.js").ChangeFeed} ChangeFeed
 * @typedef {import("../queue.js").Study} Study
 * @typedef {import("../queue.js").Filters} Filters
 * @typedef {{row: HTMLTableRowElement, cells: Record<string, HTMLElement>, actions: HTMLElement, study: Study,
 *   actionKey: string}} Row
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, events: ChangeFeed, query: URLSearchParams, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountQueue(root, context) {
  const page = new QueuePage(context);
  root.append(page.element);
  void page.filters.loadSites(context.api, () => page.stopped);
  void page.refresh();
  const unsubscribe = context.events.subscribe(["queue"], () => page.refresh());
  const clock = setInterval(() => page.table.tick(), 1000);
  return () => {
    page.stopped = true;
    unsubscribe();
    clearInterval(clock);
  };
}

/** The queue's head, filters and table, refreshed from the server. */
class QueuePage {
  /** @param {{api: Api, user: User, query: URLSearchParams, navigate: (hash: string) => void}} context */
  constructor({ api, user, query, navigate }) {
    this.api = api;
    this.stopped = false;
    this.refreshToken = 0;
    this.filters = new QueueFilters(filtersFromQuery(query), () => {
      // the URL keeps the filters (reload, bookmark, share) without re-mounting the page
      history.replaceState(null, "", queueHash(this.filters.value));
      void this.refresh();
    });
    this.table = new StudyTable(user, navigate,
      (action, id) => void this.act(() => (action === "claim" ? claimStudy(api, id) : releaseStudy(api, id))));
    this.counts = el("p", { class: "queue-counts", "data-testid": "queue-counts", text: "" });
    this.message = el("p", { class: "error", "data-testid": "queue-error", role: "alert", hidden: true });
    this.status = el("p", { class: "status-line", "data-testid": "queue-status", hidden: true });
    this.element = el("div", { class: "queue" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("queue.title") }), this.counts),
        this.filters.element, this.message, el("div", { class: "list-wrap" }, this.table.element), this.status));
  }

  async refresh() {
    const token = ++this.refreshToken;
    const filters = this.filters.value;
    let queue;
    try {
      queue = await listStudies(this.api, filters);
    } catch (err) {
      if (this.stopped || token !== this.refreshToken) return;
      this.status.hidden = false;
      setText(this.status, t("queue.refresh_failed", { reason: errorText(asError(err)) }));
      return;
    }
    if (this.stopped || token !== this.refreshToken) return;
    this.table.offsetMs = clockOffset(queue.now);
    this.status.hidden = true;
    setText(this.counts, t("queue.counts", { open: queue.counts.open, overdue: queue.counts.overdue }));
    this.counts.dataset.overdue = String(queue.counts.overdue);
    this.table.render(queue.studies, apiQuery(filters) ? t("queue.none_match") : t("queue.empty"));
  }

  /** @param {() => Promise<unknown>} call a claim or a release, then a refresh */
  async act(call) {
    showError(this.message, null);
    try {
      await call();
    } catch (err) {
      showError(this.message, asError(err)); // 409 study_locked: "the study is being read by …"
    }
    await this.refresh();
  }
}

/** The filter bar: site, modality, state and priority chips, overdue only. */
class QueueFilters {
  /**
   * @param {Filters} filters from the URL
   * @param {() => void} onChange
   */
  constructor(filters, onChange) {
    this.value = filters;
    this.onChange = onChange;
    this.siteSelect = el("select", { name: "site", "aria-label": t("queue.site") }, el("option", { value: "", text: t("queue.all_sites") }));
    if (filters.site) this.siteSelect.append(el("option", { value: filters.site, text: filters.site }));
    this.siteSelect.value = filters.site;
    this.siteSelect.addEventListener("change", () => this.update({ site: this.siteSelect.value }));
    this.overdueBox = el("input", { type: "checkbox", name: "overdue" });
    this.overdueBox.checked = filters.overdue;
    this.overdueBox.addEventListener("change", () => this.update({ overdue: this.overdueBox.checked }));
    const modalities = [...new Set([...COMMON_MODALITIES, ...filters.modality])].filter((m) => MODALITIES.includes(m));
    this.element = el("form", { class: "queue-filters", "data-testid": "queue-filters", onsubmit: (e) => e.preventDefault() },
      el("label", { class: "filter" }, el("span", { text: t("queue.site") }), this.siteSelect),
      this.chips("modality", modalities, (m) => m),
      this.chips("state", SHOWN_STATES.filter((s) => STATES.includes(s)), studyStateLabel),
      this.chips("priority", PRIORITIES, priorityLabel),
      el("label", { class: "filter check" }, this.overdueBox, el("span", { text: t("queue.overdue_only") })),
      el("button", { type: "button", "data-action": "clear-filters", text: t("queue.clear"),
        onclick: () => this.update({ site: "", modality: [], state: [], priority: [], overdue: false }) }));
  }

  /**
   * @param {"modality"|"state"|"priority"} key
   * @param {string[]} choices
   * @param {(value: string) => string} label
   */
  chips(key, choices, label) {
    const group = el("div", { class: "chips", role: "group", "aria-label": t(`queue.filter.${key}`), "data-filter": key });
    for (const value of choices) {
      const button = el("button", { type: "button", class: "chip", "data-value": value, text: label(value),
        "aria-pressed": String(this.value[key].includes(value)) });
      button.addEventListener("click", () => {
        const chosen = this.value[key];
        this.update({ [key]: chosen.includes(value) ? chosen.filter((v) => v !== value) : [...chosen, value] });
      });
      group.append(button);
    }
    return group;
  }

  /** @param {Partial<Filters>} change */
  update(change) {
    this.value = { ...this.value, ...change };
    this.sync();
    this.onChange();
  }

  sync() {
    const filters = this.value;
    this.siteSelect.value = filters.site;
    this.overdueBox.checked = filters.overdue;
    for (const group of this.element.querySelectorAll("[data-filter]")) {
      const key = /** @type {"modality"|"state"|"priority"} chips() sets it */ (/** @type {HTMLElement} */ (group).dataset.filter);
      for (const button of group.querySelectorAll("button")) {
        button.setAttribute("aria-pressed", String(filters[key].includes(button.dataset.value ?? "")));
      }
    }
  }

  /**
   * The site list, by name (a site in the URL that is not known is kept).
   * @param {Api} api
   * @param {() => boolean} stopped
   */
  async loadSites(api, stopped) {
    let sites;
    try {
      sites = await listSites(api);
    } catch {
      return; // the list keeps the site from the URL
    }
    if (stopped()) return;
    const chosen = this.value.site;
    const select = this.siteSelect;
    select.replaceChildren(el("option", { value: "", text: t("queue.all_sites") }));
    for (const site of sites) select.append(el("option", { value: site.code, text: site.name }));
    const known = sites.find((site) => site.code === chosen || site.id === chosen);
    if (chosen && !known) select.append(el("option", { value: chosen, text: chosen }));
    select.value = known ? known.code : chosen;
  }
}

/** The studies, one row each, kept in the server's order; due times count down every second. */
class StudyTable {
  /**
   * @param {User} user
   * @param {(hash: string) => void} navigate
   * @param {(action: "claim"|"release", studyId: string) => void} act
   */
  constructor(user, navigate, act) {
    this.user = user;
    this.navigate = navigate;
    this.act = act;
    this.offsetMs = 0;
    /** @type {Map<string, Row>} */ this.rows = new Map();
    this.body = el("tbody");
    this.empty = el("tr", { class: "empty" }, el("td", { colspan: 9, text: t("common.loading") }));
    this.body.append(this.empty);
    const header = ["priority", "site", "patient", "modality", "study", "state", "due", "lock"].map((c) => t(`queue.col.${c}`));
    header.push("");
    this.element = el("table", { class: "studies", "data-testid": "study-list" },
      el("thead", {}, el("tr", {}, header.map((h) => el("th", { text: h })))), this.body);
  }

  /**
   * @param {Study[]} studies in the server's order
   * @param {string} emptyText what an empty table says
   */
  render(studies, emptyText) {
    const { rows, body, empty } = this;
    const seen = new Set();
    for (const study of studies) {
      seen.add(study.id);
      let row = rows.get(study.id);
      if (!row) {
        row = this.createRow(study);
        rows.set(study.id, row);
      }
      row.study = study;
      this.fill(row);
      body.append(row.row); // re-appending keeps the server's order
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.row.remove();
        rows.delete(id);
      }
    }
    empty.remove();
    if (!rows.size) {
      setText(empty, emptyText);
      body.append(empty);
    }
  }

  /** @param {Study} study */
  createRow(study) {
    const cells = {
      priority: el("td", { "data-field": "priority" }),
      site: el("td", { "data-field": "site" }),
      patient: el("td", { "data-field": "patient" }),
      modality: el("td", { "data-field": "modality" }),
      study: el("td", { "data-field": "study" }),
      state: el("td", { "data-field": "state" }),
      due: el("td", { "data-field": "due", class: "numeric" }),
      lock: el("td", { "data-field": "lock" }),
    };
    const actions = el("td", { class: "actions" });
    const row = el("tr", { "data-study-id": study.id, tabindex: 0, class: "study-row" }, Object.values(cells), actions);
    const open = () => this.navigate(`#/studies/${encodeURIComponent(study.id)}`);
    row.addEventListener("click", (event) => {
      if (!(/** @type {HTMLElement} a click lands on an element of the row */ (event.target)).closest("button, a, input, select")) open();
    });
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === row) open();
    });
    return { row, cells, actions, study, actionKey: "" };
  }

  /** @param {Row} entry */
  fill(entry) {
    const { study: s, cells } = entry;
    cells.priority.replaceChildren(el("span", { class: `badge priority-${s.priority}`, "data-priority": s.priority,
      text: priorityLabel(s.priority) }));
    setText(cells.site, s.site?.name ?? "");
    // a study the reader sees without its patient's identity (a trainer: docs/SECURITY.md §2)
    const name = s.patient?.deidentified ? t("queue.deidentified") : personName(s.patient?.name);
    cells.patient.replaceChildren(el("span", { text: name, class: s.patient?.deidentified ? "muted" : "" }),
      el("span", { class: "muted small", text: s.patient?.local_id ? ` ${s.patient.local_id}` : "" }));
    setText(cells.modality, s.modality);
    setText(cells.study, [s.description, s.accession].filter(Boolean).join(" · ") || "—");
    setText(cells.state, studyStateLabel(s.state));
    cells.state.className = `state study-state-${s.state}`;
    const mine = heldBy(s, this.user.id);
    const holder = s.lock ? personName(s.lock.holder.name) : "";
    setText(cells.lock, s.lock ? (mine ? t("queue.held_by_you", { name: holder }) : holder) : "—");
    entry.row.dataset.locked = s.lock ? (mine ? "mine" : "other") : "no";
    entry.row.dataset.priority = s.priority;
    this.tickRow(entry, Date.now());
    const key = `${s.lock?.holder.id ?? ""}|${s.state}`;
    if (entry.actionKey !== key) {
      entry.actionKey = key;
      entry.actions.replaceChildren(...this.actionsFor(s));
    }
  }

  /** @param {Study} s */
  actionsFor(s) {
    const { user, act } = this;
    /** @type {HTMLElement[]} */
    const buttons = [el("button", { "data-action": "open", text: t("queue.open"),
      onclick: () => this.navigate(`#/studies/${encodeURIComponent(s.id)}`) })];
    if (user.role !== "expert") return buttons;
    if (heldBy(s, user.id)) {
      buttons.unshift(el("button", { "data-action": "release", text: t("queue.release"), onclick: () => act("release", s.id) }));
    } else if (["examined", "matched", "reported", "approved"].includes(s.state)) {
      buttons.unshift(el("button", { "data-action": "claim", class: "primary", text: t("queue.claim"), onclick: () => act("claim", s.id) }));

    }
    return buttons;
  }

  tick() {
    const now = Date.now();
    for (const entry of this.rows.values()) this.tickRow(entry, now);
  }

  /**
   * @param {Row} entry
   * @param {number} now
   */
  tickRow(entry, now) {
    const left = secondsLeft(entry.study, this.offsetMs, now);
    const level = escalation(left, targetSeconds(entry.study));
    setText(entry.cells.due, formatCountdown(left));
    if (entry.row.dataset.escalation !== level) {
      entry.row.dataset.escalation = level;
      entry.row.classList.toggle("overdue", level === "overdue");
      entry.row.classList.toggle("due-soon", level === "due-soon");
    }
  }
}
