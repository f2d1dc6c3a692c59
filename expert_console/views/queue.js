// @ts-check
// The reading queue (#/queue?site=&modality=&state=&priority=&overdue=1): studies with live countdowns on the
// server's clock, overdue rows escalated, lock holders, filters kept in the URL, claim and release.

import {
  MODALITIES, PRIORITIES, STATES, apiQuery, claimStudy, clockOffset, escalation, filtersFromQuery, formatCountdown,
  heldBy, listSites, listStudies, queueHash, releaseStudy, secondsLeft, targetSeconds,
} from "../queue.js";
import { asError, el, setText, showError } from "./dom.js";

const REFRESH_MS = 3000;
/** The modality chips shown; any other modality in the URL is kept and shown too. */
const COMMON_MODALITIES = ["CR", "DX", "CT", "US", "MR", "MG"];
const SHOWN_STATES = ["examined", "matched", "reported", "approved"];

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../queue.js").Study} Study
 * @typedef {import("../queue.js").Filters} Filters
 * @typedef {{row: HTMLTableRowElement, cells: Record<string, HTMLElement>, actions: HTMLElement, study: Study,
 *   actionKey: string}} Row
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, query: URLSearchParams, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountQueue(root, { api, user, query, navigate }) {
  let filters = filtersFromQuery(query);
  let offsetMs = 0;
  let stopped = false;
  let refreshToken = 0;
  /** @type {Map<string, Row>} */
  const rows = new Map();

  const counts = el("p", { class: "queue-counts", "data-testid": "queue-counts", text: "" });
  const message = el("p", { class: "error", "data-testid": "queue-error", role: "alert", hidden: true });
  const status = el("p", { class: "status-line", "data-testid": "queue-status", hidden: true });

  // ---- filters ----
  const siteSelect = el("select", { name: "site", "aria-label": "Site" }, el("option", { value: "", text: "All sites" }));
  if (filters.site) siteSelect.append(el("option", { value: filters.site, text: filters.site }));
  siteSelect.value = filters.site;
  siteSelect.addEventListener("change", () => update({ site: siteSelect.value }));
  const overdueBox = el("input", { type: "checkbox", name: "overdue" });
  overdueBox.checked = filters.overdue;
  overdueBox.addEventListener("change", () => update({ overdue: overdueBox.checked }));

  const modalities = [...new Set([...COMMON_MODALITIES, ...filters.modality])].filter((m) => MODALITIES.includes(m));
  const filterBar = el("form", { class: "queue-filters", "data-testid": "queue-filters", onsubmit: (e) => e.preventDefault() },
    el("label", { class: "filter" }, el("span", { text: "Site" }), siteSelect),
    chips("modality", modalities, (m) => m),
    chips("state", SHOWN_STATES.filter((s) => STATES.includes(s)), (s) => s),
    chips("priority", PRIORITIES, (p) => p.toUpperCase() === "STAT" ? "STAT" : p),
    el("label", { class: "filter check" }, overdueBox, el("span", { text: "Overdue only" })),
    el("button", { type: "button", "data-action": "clear-filters", text: "Clear",
      onclick: () => update({ site: "", modality: [], state: [], priority: [], overdue: false }) }));

  /**
   * @param {"modality"|"state"|"priority"} key
   * @param {string[]} choices
   * @param {(value: string) => string} label
   */
  function chips(key, choices, label) {
    const group = el("div", { class: "chips", role: "group", "aria-label": key, "data-filter": key });
    for (const value of choices) {
      const button = el("button", { type: "button", class: "chip", "data-value": value, text: label(value),
        "aria-pressed": String(filters[key].includes(value)) });
      button.addEventListener("click", () => {
        const on = !filters[key].includes(value);
        update({ [key]: on ? [...filters[key], value] : filters[key].filter((v) => v !== value) });
      });
      group.append(button);
    }
    return group;
  }

  function syncFilterControls() {
    siteSelect.value = filters.site;
    overdueBox.checked = filters.overdue;
    for (const group of filterBar.querySelectorAll("[data-filter]")) {
      const key = /** @type {"modality"|"state"|"priority"} */ (/** @type {HTMLElement} */ (group).dataset.filter);
      for (const button of group.querySelectorAll("button")) {
        button.setAttribute("aria-pressed", String(filters[key].includes(button.dataset.value ?? "")));
      }
    }
  }

  /** @param {Partial<Filters>} change */
  function update(change) {
    filters = { ...filters, ...change };
    syncFilterControls();
    // the URL keeps the filters (reload, bookmark, share) without re-mounting the page
    history.replaceState(null, "", queueHash(filters));
    void refresh();
  }

  // ---- the table ----
  const body = el("tbody");
  const empty = el("tr", { class: "empty" }, el("td", { colspan: 9, text: "Loading…" }));
  body.append(empty);
  const header = ["Priority", "Site", "Patient", "Mod.", "Study", "State", "Due", "Read by", ""];
  const table = el("table", { class: "studies", "data-testid": "study-list" },
    el("thead", {}, el("tr", {}, header.map((h) => el("th", { text: h })))), body);

  root.append(el("div", { class: "queue" },
    el("section", { class: "panel wide" },
      el("div", { class: "queue-head" }, el("h2", { text: "Reading queue" }), counts),
      filterBar, message, el("div", { class: "list-wrap" }, table), status)));

  void listSites(api).then((sites) => {
    if (stopped) return;
    const chosen = filters.site;
    siteSelect.replaceChildren(el("option", { value: "", text: "All sites" }));
    for (const site of sites) siteSelect.append(el("option", { value: site.code, text: site.name }));
    const known = sites.find((site) => site.code === chosen || site.id === chosen);
    if (chosen && !known) siteSelect.append(el("option", { value: chosen, text: chosen }));
    siteSelect.value = known ? known.code : chosen;
  }).catch(() => {});

  async function refresh() {
    const token = ++refreshToken;
    let queue;
    try {
      queue = await listStudies(api, filters);
    } catch (err) {
      if (stopped || token !== refreshToken) return;
      status.hidden = false;
      setText(status, `Could not refresh the queue: ${asError(err).message}`);
      return;
    }
    if (stopped || token !== refreshToken) return;
    offsetMs = clockOffset(queue.now);
    status.hidden = true;
    setText(counts, `${queue.counts.open} open · ${queue.counts.overdue} overdue`);
    counts.dataset.overdue = String(queue.counts.overdue);
    render(queue.studies);
  }

  /** @param {Study[]} studies in the server's order */
  function render(studies) {
    const seen = new Set();
    for (const study of studies) {
      seen.add(study.id);
      let row = rows.get(study.id);
      if (!row) {
        row = createRow(study);
        rows.set(study.id, row);
      }
      row.study = study;
      fill(row);
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
      setText(empty, apiQuery(filters) ? "No studies match these filters." : "The queue is empty.");
      body.append(empty);
    }
  }

  /** @param {Study} study */
  function createRow(study) {
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
    const open = () => navigate(`#/studies/${encodeURIComponent(study.id)}`);
    row.addEventListener("click", (event) => {
      if (!(/** @type {HTMLElement} */ (event.target)).closest("button, a, input, select")) open();
    });
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === row) open();
    });
    return { row, cells, actions, study, actionKey: "" };
  }

  /** @param {Row} entry */
  function fill(entry) {
    const { study: s, cells } = entry;
    cells.priority.replaceChildren(el("span", { class: `badge priority-${s.priority}`, "data-priority": s.priority,
      text: s.priority === "stat" ? "STAT" : s.priority }));
    setText(cells.site, s.site?.name ?? "");
    cells.patient.replaceChildren(el("span", { text: s.patient?.name ?? "" }),
      el("span", { class: "muted small", text: s.patient?.local_id ? ` ${s.patient.local_id}` : "" }));
    setText(cells.modality, s.modality);
    setText(cells.study, [s.description, s.accession].filter(Boolean).join(" · ") || "—");
    setText(cells.state, s.state);
    cells.state.className = `state study-state-${s.state}`;
    const mine = heldBy(s, user.id);
    setText(cells.lock, s.lock ? (mine ? `${s.lock.holder.name} (you)` : s.lock.holder.name) : "—");
    entry.row.dataset.locked = s.lock ? (mine ? "mine" : "other") : "no";
    entry.row.dataset.priority = s.priority;
    tickRow(entry, Date.now());
    const key = `${s.lock?.holder.id ?? ""}|${s.state}`;
    if (entry.actionKey !== key) {
      entry.actionKey = key;
      entry.actions.replaceChildren(...actionsFor(s));
    }
  }

  /** @param {Study} s */
  function actionsFor(s) {
    /** @type {HTMLElement[]} */
    const buttons = [el("button", { "data-action": "open", text: "Open",
      onclick: () => navigate(`#/studies/${encodeURIComponent(s.id)}`) })];
    if (user.role !== "expert") return buttons;
    if (heldBy(s, user.id)) {
      buttons.unshift(el("button", { "data-action": "release", text: "Release",
        onclick: () => act(() => releaseStudy(api, s.id)) }));
    } else if (["examined", "matched", "reported", "approved"].includes(s.state)) {
      buttons.unshift(el("button", { "data-action": "claim", class: "primary", text: "Claim",
        onclick: () => act(() => claimStudy(api, s.id)) }));
    }
    return buttons;
  }

  /** @param {() => Promise<unknown>} call */
  async function act(call) {
    showError(message, null);
    try {
      await call();
    } catch (err) {
      showError(message, asError(err)); // 409 study_locked: "the study is being read by …"
    }
    await refresh();
  }

  function tick() {
    const now = Date.now();
    for (const entry of rows.values()) tickRow(entry, now);
  }

  /**
   * @param {Row} entry
   * @param {number} now
   */
  function tickRow(entry, now) {
    const left = secondsLeft(entry.study, offsetMs, now);
    const level = escalation(left, targetSeconds(entry.study));
    setText(entry.cells.due, formatCountdown(left));
    if (entry.row.dataset.escalation !== level) {
      entry.row.dataset.escalation = level;
      entry.row.classList.toggle("overdue", level === "overdue");
      entry.row.classList.toggle("due-soon", level === "due-soon");
    }
  }

  void refresh();
  const timers = [setInterval(() => void refresh(), REFRESH_MS), setInterval(tick, 1000)];
  return () => {
    stopped = true;
    for (const timer of timers) clearInterval(timer);
  };
}
