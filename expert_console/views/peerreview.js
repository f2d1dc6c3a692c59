// @ts-check
// RADPEER peer review on the QC dashboard: per reader, the counts of 1, 2a, 2b, 3a and 3b and the discrepancy rate
// (a stacked bar per reader and a table); for an expert, a random sample of other readers' final X-ray and CT
// reports to score (1 concur, 2 understandable miss, 3 should be made most of the time; a/b clinical significance).

import { stackedBars } from "../charts.js";
import { clockTime } from "../queue.js";
import { peerSample, peerSummary, submitPeerReview } from "../review.js";
import { personName, t } from "../i18n.js";
import { asError, el, setText, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../review.js").PeerSampleItem} PeerSampleItem
 * @typedef {import("../review.js").ReaderRow} ReaderRow
 */

export const CATEGORIES = [
  { key: "1", label: "1", color: "#5bd48a" },
  { key: "2a", label: "2a", color: "#f2d16b" }, // i18n: data (a RADPEER category)
  { key: "2b", label: "2b", color: "#f29e4c" }, // i18n: data (a RADPEER category)
  { key: "3a", label: "3a", color: "#ef8a61" }, // i18n: data (a RADPEER category)
  { key: "3b", label: "3b", color: "#ef4f4f" }, // i18n: data (a RADPEER category)
];
/** The RADPEER scores, each worded by peer.score.<score>. */
const SCORES = ["1", "2", "3"];
/** Clinical significance of a discrepancy: a unlikely, b likely (peer.significance.<value>). */
const SIGNIFICANCE = ["a", "b"];
const SAMPLE_SIZE = 5;

/**
 * @param {{api: Api, user: User, navigate: (hash: string) => void}} context
 * @returns {{element: HTMLElement, refresh: () => Promise<void>, stop: () => void}}
 */
export function createPeerReview({ api, user, navigate }) {
  const panel = new PeerReviewPanel(api, user, navigate);
  void panel.refresh();
  return {
    element: panel.element,
    refresh: () => panel.refresh(),
    stop() {
      panel.stopped = true;
      setText(panel.sample, "");
    },
  };
}

class PeerReviewPanel {
  /**
   * @param {Api} api
   * @param {User} user
   * @param {(hash: string) => void} navigate
   */
  constructor(api, user, navigate) {
    this.api = api;
    this.navigate = navigate;
    this.stopped = false;
    this.error = el("p", { class: "error", "data-testid": "peer-error", role: "alert", hidden: true });
    this.chart = el("div", { class: "peer-chart" });
    this.rows = el("tbody");
    this.sample = el("div", { class: "peer-sample", "data-testid": "peer-sample" });
    this.sampleButton = el("button", { type: "button", class: "primary", "data-action": "peer-sample",
      text: t("peer.sample"), onclick: () => void this.loadSample() });
    this.element = el("section", { class: "panel wide peer-review", "data-testid": "peer-review" },
      el("h2", { text: t("peer.title") }),
      el("p", { class: "muted small", text: t("peer.explanation") }),
      this.error, this.chart,
      el("table", { class: "studies", "data-testid": "peer-summary" },
        el("thead", {}, el("tr", {}, [t("peer.col.reader"), ...CATEGORIES.map((c) => c.label), t("peer.col.reviews"),
          t("peer.col.rate")].map((h) => el("th", { text: h })))), this.rows),
      user.role === "expert" ? el("div", { class: "peer-actions" }, this.sampleButton) : null,
      this.sample);
  }

  async refresh() {
    let answer;
    try {
      answer = await peerSummary(this.api);
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    /** @type {ReaderRow[]} */
    const readers = answer.readers;
    this.chart.replaceChildren(stackedBars({ key: "peer-review", title: t("peer.chart_title"), categories: CATEGORIES,
      rows: readers.map((r) => ({ key: r.reader.id, label: personName(r.reader.name), values: r.counts,
        note: t("peer.discrepant", { rate: percent(r.discrepancy_rate), total: r.total }) })) }));
    this.rows.replaceChildren(...readers.map((r) => el("tr", { "data-reader-id": r.reader.id },
      el("td", { text: personName(r.reader.name) }),
      ...CATEGORIES.map((c) => el("td", { class: "numeric", "data-category": c.key, text: String(r.counts[c.key] ?? 0) })),
      el("td", { class: "numeric", "data-field": "total", text: String(r.total) }),
      el("td", { class: "numeric", "data-field": "rate", text: percent(r.discrepancy_rate) }))));
    if (!readers.length) this.rows.append(el("tr", { class: "empty" }, el("td", { colspan: 8, text: t("peer.none") })));
  }

  async loadSample() {
    showError(this.error, null);
    this.sampleButton.disabled = true;
    try {
      const reports = await peerSample(this.api, SAMPLE_SIZE);
      if (this.stopped) return;
      this.sample.replaceChildren(...(reports.length
        ? reports.map((item) => this.card(item))
        : [el("p", { class: "muted", text: t("peer.nothing_to_review") })]));
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
    } finally {
      this.sampleButton.disabled = false;
    }
  }

  /** @param {PeerSampleItem} item a sampled report with its study */
  card({ report, study }) {
    const form = peerForm(report.id);
    const content = Object.entries(report.content ?? {})
      .filter(([, v]) => typeof v === "string" && v.trim())
      .map(([k, v]) => el("p", {}, el("strong", { text: `${k.replaceAll("_", " ")}: ` }), String(v)));
    const node = el("article", { class: "peer-card", "data-report-id": report.id },
      el("header", { class: "report-head" },
        el("span", { class: "badge", text: study.modality }),
        el("strong", { text: study.description || study.accession || t("viewer.study") }),
        el("span", { class: "muted", text: t("peer.card_meta",
          { site: study.site.name, author: personName(report.author.name), approved: clockTime(report.approved_at) }) }),
        el("button", { type: "button", class: "link", text: t("peer.open_study"),
          onclick: () => this.navigate(`#/studies/${encodeURIComponent(study.id)}`) })),
      el("div", { class: "peer-report" }, content.length ? content : el("p", { class: "muted", text: t("peer.no_text") })),
      form.element);
    form.element.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit(report.id, form, node);
    });
    return node;
  }

  /**
   * @param {string} reportId
   * @param {ReturnType<typeof peerForm>} form
   * @param {HTMLElement} node the report's card
   */
  async submit(reportId, form, node) {
    showError(form.problem, null);
    const chosen = /** @type {HTMLInputElement|null} the selector names radio inputs */ (
      form.element.querySelector(`input[name="score-${reportId}"]:checked`));
    const weight = /** @type {HTMLInputElement|null} the selector names radio inputs */ (
      form.element.querySelector(`input[name="significance-${reportId}"]:checked`));
    const score = chosen ? Number(chosen.value) : 0;
    form.submit.disabled = true;
    try {
      const saved = await submitPeerReview(this.api, reportId, {
        score, significance: score > 1 && weight ? /** @type {"a"|"b"} the radios' values */ (weight.value) : null,
        comment: form.comment.value,
      });
      node.dataset.reviewed = saved.category;
      form.element.replaceWith(el("p", { class: "notice", "data-testid": "peer-done", text: t("peer.reviewed", { category: saved.category }) }));
      await this.refresh();
    } catch (err) {
      showError(form.problem, asError(err));
      form.submit.disabled = false;
    }
  }
}

/**
 * The RADPEER form of one report: the score, its clinical significance (not for 1) and a comment.
 * @param {string} reportId
 */
function peerForm(reportId) {
  const problem = el("p", { class: "error", role: "alert", hidden: true });
  const significance = el("fieldset", { class: "score-item", disabled: true, "data-field": "significance" },
    el("legend", { text: t("peer.significance") }),
    el("div", { class: "score-choices" },
      ...SIGNIFICANCE.map((value) => el("label", { class: "score-choice" },
        el("input", { type: "radio", name: `significance-${reportId}`, value }),
        el("span", { text: t(`peer.significance.${value}`) })))));
  const comment = el("textarea", { rows: 2, maxlength: 2000, name: "comment", "aria-label": t("peer.comment") });
  const scores = el("fieldset", { class: "score-item", "data-field": "score" }, el("legend", { text: t("peer.score") }),
    el("div", { class: "score-choices" }, ...SCORES.map((value) => el("label", { class: "score-choice" },
      el("input", { type: "radio", name: `score-${reportId}`, value,
        onchange: () => { significance.disabled = value === "1"; } }),
      el("span", { text: t(`peer.score.${value}`) })))));
  const submit = el("button", { type: "submit", class: "primary", text: t("peer.submit") });
  const element = el("form", { class: "peer-form" }, scores, significance,
    el("label", { class: "field" }, t("peer.comment"), comment),
    el("div", { class: "report-buttons" }, submit), problem);
  return { element, problem, comment, submit };
}

/** @param {number|null} rate 0–1 */
function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${Math.round(rate * 1000) / 10} %`;
}
