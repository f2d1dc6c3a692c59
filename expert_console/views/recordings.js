// @ts-check
// The recordings page (#/recordings?site=&sonographer=): recorded sessions to review, and the scores of the chosen
// sonographer's reviewed sessions (GET /api/v1/reviews?sonographer=). Filters are kept in the URL.

import { clockTime } from "../queue.js";
import { formatClock } from "../replay.js";
import { listRecordings, listReviews, queryString } from "../review.js";
import { asError, el, setText, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../review.js").Recording} Recording
 * @typedef {import("../review.js").Review} Review
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, query: URLSearchParams, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountRecordings(root, { api, query, navigate }) {
  let filters = { site: query.get("site") ?? "", sonographer: query.get("sonographer") ?? "" };
  let stopped = false;
  let token = 0;
  /** Sites and sonographers seen in any answer (the select keeps them when a filter hides their rows). */
  const sites = new Map();
  const sonographers = new Map();

  const error = el("p", { class: "error", "data-testid": "recordings-error", role: "alert", hidden: true });
  const siteSelect = el("select", { name: "site", "aria-label": "Site" });
  const sonographerSelect = el("select", { name: "sonographer", "aria-label": "Sonographer" });
  siteSelect.addEventListener("change", () => update({ site: siteSelect.value }));
  sonographerSelect.addEventListener("change", () => update({ sonographer: sonographerSelect.value }));
  const recordingRows = el("tbody");
  const scoreRows = el("tbody");
  const scoresTitle = el("h2", { text: "Scores" });
  const scoresNote = el("p", { class: "muted", "data-testid": "scores-note" });

  root.append(el("div", { class: "queue recordings" },
    el("section", { class: "panel wide" },
      el("div", { class: "queue-head" }, el("h2", { text: "Recorded sessions" })),
      el("form", { class: "queue-filters", onsubmit: (/** @type {Event} */ e) => e.preventDefault() },
        el("label", { class: "filter" }, el("span", { text: "Site" }), siteSelect),
        el("label", { class: "filter" }, el("span", { text: "Sonographer" }), sonographerSelect)),
      error,
      el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "recording-list" },
        el("thead", {}, el("tr", {}, ["Started", "Site", "Sonographer", "Exam", "Length", "State", ""]
          .map((h) => el("th", { text: h })))), recordingRows))),
    el("section", { class: "panel wide", "data-testid": "scores" }, scoresTitle, scoresNote,
      el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "score-list" },
        el("thead", {}, el("tr", {}, ["Session", "Site", "Exam", "Trainer", "OSAUS", "Image quality", "Overall",
          "Score"].map((h) => el("th", { text: h })))), scoreRows)))));

  /** @param {Partial<typeof filters>} change */
  function update(change) {
    filters = { ...filters, ...change };
    history.replaceState(null, "", `#/recordings${queryString(filters)}`);
    void refresh();
  }

  function fillSelects() {
    siteSelect.replaceChildren(el("option", { value: "", text: "All sites" }),
      ...[...sites.values()].map((s) => el("option", { value: s.code, text: s.name })));
    sonographerSelect.replaceChildren(el("option", { value: "", text: "All sonographers" }),
      ...[...sonographers.values()].map((s) => el("option", { value: s.id, text: s.name })));
    if (filters.site && !sites.has(filters.site)) siteSelect.append(el("option", { value: filters.site, text: filters.site }));
    if (filters.sonographer && !sonographers.has(filters.sonographer)) {
      sonographerSelect.append(el("option", { value: filters.sonographer, text: filters.sonographer }));
    }
    siteSelect.value = filters.site;
    sonographerSelect.value = filters.sonographer;
  }

  async function refresh() {
    const mine = ++token;
    showError(error, null);
    let recordings;
    let reviews;
    try {
      [recordings, reviews] = await Promise.all([listRecordings(api, filters), listReviews(api, filters)]);
    } catch (err) {
      if (!stopped && mine === token) showError(error, asError(err));
      return;
    }
    if (stopped || mine !== token) return;
    for (const r of recordings) {
      sites.set(r.site.code, r.site);
      if (r.sonographer) sonographers.set(r.sonographer.id, r.sonographer);
    }
    fillSelects();
    recordingRows.replaceChildren(...recordings.map(recordingRow));
    if (!recordings.length) recordingRows.append(emptyRow(7, "No recorded sessions match."));
    const who = filters.sonographer ? sonographers.get(filters.sonographer)?.name ?? "this sonographer" : "";
    setText(scoresTitle, who ? `Scores of ${who}` : "Scores");
    setText(scoresNote, reviews.length ? `${reviews.length} review${reviews.length === 1 ? "" : "s"}` : "");
    scoreRows.replaceChildren(...reviews.map(scoreRow));
    if (!reviews.length) scoreRows.append(emptyRow(8, "No reviewed sessions yet."));
  }

  /** @param {Recording} r */
  function recordingRow(r) {
    const open = () => navigate(`#/recordings/${encodeURIComponent(r.id)}`);
    const row = el("tr", { class: "study-row", "data-recording-id": r.id, tabindex: 0 },
      el("td", { text: clockTime(r.started_at) }),
      el("td", { text: r.site.name }),
      el("td", { text: r.sonographer?.name ?? "—" }),
      el("td", { text: r.exam_type }),
      el("td", { class: "numeric", text: r.duration_seconds === null ? "—" : formatClock(r.duration_seconds) }),
      el("td", { class: `state recording-state-${r.state}`, text: r.state }),
      el("td", { class: "actions" }, el("button", { "data-action": "open", text: "Review", onclick: open })));
    row.addEventListener("click", (event) => {
      if (!(/** @type {HTMLElement} */ (event.target)).closest("button")) open();
    });
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === row) open();
    });
    return row;
  }

  /** @param {Review} r */
  function scoreRow(r) {
    const number = (/** @type {number|null|undefined} */ v, digits = 1) => (v === null || v === undefined ? "—" : v.toFixed(digits));
    const row = el("tr", { class: "study-row", "data-review-id": r.id, "data-recording-id": r.recording_id },
      el("td", { text: clockTime(r.recording_started_at) }),
      el("td", { text: r.site.name }),
      el("td", { text: r.exam_type }),
      el("td", { text: r.trainer.name }),
      el("td", { class: "numeric", "data-field": "osaus", text: number(r.score.osaus_mean) }),
      el("td", { class: "numeric", "data-field": "image-quality", text: number(r.score.image_quality_mean) }),
      el("td", { class: "numeric", "data-field": "overall", text: number(r.score.overall, 0) }),
      el("td", { class: "numeric", "data-field": "total",
        text: r.score.total === null ? "—" : (r.score.total * 100).toFixed(1) }));
    row.addEventListener("click", () => navigate(`#/recordings/${encodeURIComponent(r.recording_id)}`));
    return row;
  }

  fillSelects();
  void refresh();
  return () => {
    stopped = true;
  };
}

/**
 * @param {number} columns
 * @param {string} message
 */
function emptyRow(columns, message) {
  return el("tr", { class: "empty" }, el("td", { colspan: columns, text: message }));
}
