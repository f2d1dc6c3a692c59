// @ts-check
// The recordings page (#/recordings?site=&sonographer=): recorded sessions to review, and the scores of the chosen
// sonographer's reviewed sessions (GET /api/v1/reviews?sonographer=). Filters are kept in the URL.

import { clockTime } from "../queue.js";
import { formatClock } from "../replay.js";
import { listRecordings, listReviews, queryString } from "../review.js";
import { personName, t } from "../i18n.js";
import { asError, el, setText, showError } from "./dom.js";
import { examLabel, recordingStateLabel } from "./labels.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../review.js").Recording} Recording
 * @typedef {import("../review.js").Review} Review
 */

/** The tables' columns, each headed by recordings.col.<column> / recordings.score_col.<column>. */
const RECORDING_COLUMNS = ["started", "site", "sonographer", "exam", "length", "state"];
const SCORE_COLUMNS = ["session", "site", "exam", "trainer", "osaus", "image_quality", "overall", "score"];

/**
 * @param {HTMLElement} root

 * @param {{api: Api, user: User, query: URLSearchParams, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountRecordings(root, { api, query, navigate }) {
  const page = new RecordingsPage(api, navigate, { site: query.get("site") ?? "", sonographer: query.get("sonographer") ?? "" });
  root.append(page.element);
  page.fillSelects();
  void page.refresh();
  return () => {
    page.stopped = true;
  };
}

class RecordingsPage {
  /**
   * @param {Api} api
   * @param {(hash: string) => void} navigate
   * @param {{site: string, sonographer: string}} filters from the URL
   */
  constructor(api, navigate, filters) {
    this.api = api;
    this.navigate = navigate;
    this.filters = filters;
    this.stopped = false;
    this.token = 0;
    /** Sites and sonographers seen in any answer (the select keeps them when a filter hides their rows). */
    /** @type {Map<string, import("../review.js").Site>} */ this.sites = new Map();
    /** @type {Map<string, import("../review.js").Person>} */ this.sonographers = new Map();
    this.error = el("p", { class: "error", "data-testid": "recordings-error", role: "alert", hidden: true });
    this.siteSelect = el("select", { name: "site", "aria-label": t("recordings.site") });
    this.sonographerSelect = el("select", { name: "sonographer", "aria-label": t("recordings.sonographer") });
    this.siteSelect.addEventListener("change", () => this.update({ site: this.siteSelect.value }));
    this.sonographerSelect.addEventListener("change", () => this.update({ sonographer: this.sonographerSelect.value }));
    this.recordingRows = el("tbody");
    this.scoreRows = el("tbody");
    this.scoresTitle = el("h2", { text: t("recordings.scores") });
    this.scoresNote = el("p", { class: "muted", "data-testid": "scores-note" });
    this.element = el("div", { class: "queue recordings" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("recordings.title") })),
        el("form", { class: "queue-filters", onsubmit: (e) => e.preventDefault() },
          el("label", { class: "filter" }, el("span", { text: t("recordings.site") }), this.siteSelect),
          el("label", { class: "filter" }, el("span", { text: t("recordings.sonographer") }), this.sonographerSelect)),
        this.error,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "recording-list" },
          el("thead", {}, el("tr", {}, RECORDING_COLUMNS.map((h) => el("th", { text: t(`recordings.col.${h}`) })),
            el("th"))), this.recordingRows))),
      el("section", { class: "panel wide", "data-testid": "scores" }, this.scoresTitle, this.scoresNote,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "score-list" },
          el("thead", {}, el("tr", {}, SCORE_COLUMNS.map((h) => el("th", { text: t(`recordings.score_col.${h}`) })))),
          this.scoreRows))));
  }

  /** @param {Partial<{site: string, sonographer: string}>} change */
  update(change) {
    this.filters = { ...this.filters, ...change };
    history.replaceState(null, "", `#/recordings${queryString(this.filters)}`);
    void this.refresh();
  }

  fillSelects() {
    const { filters, sites, sonographers, siteSelect, sonographerSelect } = this;
    siteSelect.replaceChildren(el("option", { value: "", text: t("recordings.all_sites") }),
      ...[...sites.values()].map((s) => el("option", { value: s.code, text: s.name })));
    sonographerSelect.replaceChildren(el("option", { value: "", text: t("recordings.all_sonographers") }),
      ...[...sonographers.values()].map((s) => el("option", { value: s.id, text: personName(s.name) })));
    if (filters.site && !sites.has(filters.site)) siteSelect.append(el("option", { value: filters.site, text: filters.site }));
    if (filters.sonographer && !sonographers.has(filters.sonographer)) {
      sonographerSelect.append(el("option", { value: filters.sonographer, text: filters.sonographer }));
    }
    siteSelect.value = filters.site;
    sonographerSelect.value = filters.sonographer;
  }

  async refresh() {
    const mine = ++this.token;
    const { api, filters, navigate } = this;
    showError(this.error, null);
    let recordings;
    let reviews;
    try {
      [recordings, reviews] = await Promise.all([listRecordings(api, filters), listReviews(api, filters)]);
    } catch (err) {
      if (!this.stopped && mine === this.token) showError(this.error, asError(err));
      return;
    }
    if (this.stopped || mine !== this.token) return;
    for (const r of recordings) {
      this.sites.set(r.site.code, r.site);
      if (r.sonographer) this.sonographers.set(r.sonographer.id, r.sonographer);
    }
    this.fillSelects();
    this.recordingRows.replaceChildren(...recordings.map((r) => recordingRow(r, navigate)));
    if (!recordings.length) this.recordingRows.append(emptyRow(7, t("recordings.none")));
    const chosen = filters.sonographer ? this.sonographers.get(filters.sonographer)?.name : undefined;
    const who = filters.sonographer ? (chosen ? personName(chosen) : t("recordings.this_sonographer")) : "";
    setText(this.scoresTitle, who ? t("recordings.scores_of", { who }) : t("recordings.scores"));
    setText(this.scoresNote, reviews.length ? t("recordings.reviews", { count: reviews.length }) : "");
    this.scoreRows.replaceChildren(...reviews.map((r) => scoreRow(r, navigate)));
    if (!reviews.length) this.scoreRows.append(emptyRow(8, t("recordings.no_reviews")));
  }
}

/**
 * @param {Recording} r
 * @param {(hash: string) => void} navigate
 */
function recordingRow(r, navigate) {
  const open = () => navigate(`#/recordings/${encodeURIComponent(r.id)}`);
  const row = el("tr", { class: "study-row", "data-recording-id": r.id, tabindex: 0 },
    el("td", { text: clockTime(r.started_at) }),
    el("td", { text: r.site.name }),
    el("td", { text: personName(r.sonographer?.name) || "—" }),
    el("td", { text: examLabel(r.exam_type) }),
    el("td", { class: "numeric", text: r.duration_seconds === null ? "—" : formatClock(r.duration_seconds) }),
    el("td", { class: `state recording-state-${r.state}`, text: recordingStateLabel(r.state) }),
    el("td", { class: "actions" }, el("button", { "data-action": "open", text: t("recordings.review"), onclick: open })));
  row.addEventListener("click", (event) => {
    if (!(/** @type {HTMLElement} a click lands on an element of the row */ (event.target)).closest("button")) open();
  });
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === row) open();
  });
  return row;
}

/**
 * @param {Review} r
 * @param {(hash: string) => void} navigate
 */
function scoreRow(r, navigate) {
  const number = (/** @type {number|null|undefined} */ v, digits = 1) => (v === null || v === undefined ? "—" : v.toFixed(digits));
  const row = el("tr", { class: "study-row", "data-review-id": r.id, "data-recording-id": r.recording_id },
    el("td", { text: clockTime(r.recording_started_at) }),
    el("td", { text: r.site.name }),
    el("td", { text: examLabel(r.exam_type) }),
    el("td", { text: personName(r.trainer.name) }),

    el("td", { class: "numeric", "data-field": "osaus", text: number(r.score.osaus_mean) }),
    el("td", { class: "numeric", "data-field": "image-quality", text: number(r.score.image_quality_mean) }),
    el("td", { class: "numeric", "data-field": "overall", text: number(r.score.overall, 0) }),
    el("td", { class: "numeric", "data-field": "total",
      text: r.score.total === null ? "—" : (r.score.total * 100).toFixed(1) }));
  row.addEventListener("click", () => navigate(`#/recordings/${encodeURIComponent(r.recording_id)}`));
  return row;
}

/**
 * @param {number} columns
 * @param {string} message
 */
function emptyRow(columns, message) {
  return el("tr", { class: "empty" }, el("td", { colspan: columns, text: message }));
}
