// @ts-check
// The QC dashboard (#/qc?site=&sonographer=&from=&to=&by=sonographer|site): per sonographer or per site over time,
// SVG charts of session scores, completeness, the trainers' OSAUS and image-quality items and link quality, one point
// per session (click a point to open its review); then RADPEER peer review of X-ray and CT reports.

import { lineChart } from "../charts.js";
import { getDashboard, groupSeries, queryString } from "../review.js";
import { has, personName, t } from "../i18n.js";
import { asError, el, showError } from "./dom.js";

import { createPeerReview } from "./peerreview.js";

/** A metric's name in the reader's words (the dashboard's keys are stable); one the catalogs lack keeps the
 * server's. @param {string} key @param {string} fallback */
function metricLabel(key, fallback) {
  return has(`qc.metric.${key}`) ? t(`qc.metric.${key}`) : fallback;
}

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {{key: string, label: string, range: [number, number]|null}} Metric
 */

/** The charts: fixed metrics, and two whose metric is chosen from a list. */
const CHARTS = [
  { id: "score", choices: ["score"] },
  { id: "completeness", choices: ["completeness"] },
  { id: "osaus", choices: ["osaus"] },
  { id: "image-quality", choices: ["image_quality.overall", "image_quality.gain", "image_quality.tgc",
    "image_quality.depth", "image_quality.colour_doppler", "image_quality.key_information"] },
  { id: "link", choices: ["link.value", "link.loss_pct", "link.rtt_p95_ms", "link.freeze_ratio"] },
];

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, query: URLSearchParams, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountDashboard(root, { api, user, query, navigate }) {
  const board = new Dashboard(api, navigate, {
    site: query.get("site") ?? "",
    sonographer: query.get("sonographer") ?? "",
    from: query.get("from") ?? "",
    to: query.get("to") ?? "",
    by: query.get("by") === "site" ? "site" : "sonographer",
  });
  const peer = createPeerReview({ api, user, navigate });
  root.append(el("div", { class: "queue dashboard" }, board.element, peer.element));
  board.fillSelects();
  void board.refresh();
  return () => {
    board.stopped = true;
    peer.stop();
  };
}

/**
 * @typedef {{site: string, sonographer: string, from: string, to: string, by: "site"|"sonographer"}} Filters
 * @typedef {import("../review.js").Dashboard} Answer
 */

/** The filters and the charts of the QC dashboard. */
class Dashboard {
  /**
   * @param {Api} api
   * @param {(hash: string) => void} navigate
   * @param {Filters} filters from the URL
   */
  constructor(api, navigate, filters) {
    this.api = api;
    this.navigate = navigate;
    this.filters = filters;
    this.stopped = false;
    this.token = 0;
    /** @type {Answer|null} */ this.data = null;
    /** @type {Record<string, string>} chart id → chosen metric */
    this.chosen = Object.fromEntries(CHARTS.map((c) => [c.id, c.choices[0]]));
    /** @type {Map<string, import("../review.js").Site>} */ this.knownSites = new Map();
    /** @type {Map<string, import("../review.js").Person>} */ this.knownSonographers = new Map();
    this.error = el("p", { class: "error", "data-testid": "dashboard-error", role: "alert", hidden: true });
    this.summary = el("p", { class: "muted", "data-testid": "dashboard-summary" });
    this.charts = el("div", { class: "chart-grid", "data-testid": "qc-charts" });
    this.controls = this.filterControls();
    const { site, sonographer, from, to, by } = this.controls;
    this.element = el("section", { class: "panel wide" },
      el("div", { class: "queue-head" }, el("h2", { text: t("qc.dashboard") }), this.summary),
      el("form", { class: "queue-filters", onsubmit: (e) => e.preventDefault() },
        el("label", { class: "filter" }, el("span", { text: t("recordings.site") }), site),
        el("label", { class: "filter" }, el("span", { text: t("recordings.sonographer") }), sonographer),
        el("label", { class: "filter" }, el("span", { text: t("qc.from") }), from),
        el("label", { class: "filter" }, el("span", { text: t("qc.to") }), to),
        el("label", { class: "filter" }, el("span", { text: t("qc.lines") }), by)),
      this.error, this.charts);
  }

  filterControls() {
    const filters = this.filters;
    const site = el("select", { name: "site", "aria-label": t("recordings.site") });
    const sonographer = el("select", { name: "sonographer", "aria-label": t("recordings.sonographer") });
    const from = el("input", { type: "date", name: "from", "aria-label": t("qc.from"), value: filters.from });
    const to = el("input", { type: "date", name: "to", "aria-label": t("qc.to"), value: filters.to });
    const by = el("select", { name: "by", "aria-label": t("qc.group_by") },
      el("option", { value: "sonographer", text: t("qc.per_sonographer") }), el("option", { value: "site", text: t("qc.per_site") }));
    by.value = filters.by;
    site.addEventListener("change", () => this.update({ site: site.value }));
    sonographer.addEventListener("change", () => this.update({ sonographer: sonographer.value }));
    from.addEventListener("change", () => this.update({ from: from.value }));
    to.addEventListener("change", () => this.update({ to: to.value }));
    by.addEventListener("change", () => this.update({ by: by.value === "site" ? "site" : "sonographer" }, false));
    return { site, sonographer, from, to, by };
  }

  /**
   * @param {Partial<Filters>} change
   * @param {boolean} [reload] false: only the grouping changed, redraw what is loaded
   */
  update(change, reload = true) {
    this.filters = { ...this.filters, ...change };
    const { by: grouping, ...rest } = this.filters;
    history.replaceState(null, "", `#/qc${queryString({ ...rest, by: grouping === "site" ? "site" : "" })}`);
    if (reload) void this.refresh();
    else this.draw();
  }

  fillSelects() {
    const { site, sonographer } = this.controls;
    site.replaceChildren(el("option", { value: "", text: t("recordings.all_sites") }),
      ...[...this.knownSites.values()].map((s) => el("option", { value: s.code, text: s.name })));
    sonographer.replaceChildren(el("option", { value: "", text: t("recordings.all_sonographers") }),
      ...[...this.knownSonographers.values()].map((s) => el("option", { value: s.id, text: personName(s.name) })));
    /** @type {[HTMLSelectElement, string][]} */
    const chosen = [[site, this.filters.site], [sonographer, this.filters.sonographer]];
    for (const [select, value] of chosen) {
      if (value && ![...select.options].some((o) => o.value === value)) select.append(el("option", { value, text: value }));
      select.value = value;
    }
  }

  async refresh() {
    const mine = ++this.token;
    showError(this.error, null);
    let data;
    try {
      const { by: _grouping, ...wanted } = this.filters;
      data = await getDashboard(this.api, wanted);
      this.data = data;
    } catch (err) {
      if (!this.stopped && mine === this.token) showError(this.error, asError(err));
      return;
    }
    if (this.stopped || mine !== this.token) return;
    for (const s of data.sites) this.knownSites.set(s.code, s);
    for (const s of data.sonographers) this.knownSonographers.set(s.id, s);
    this.fillSelects();
    const reviewed = data.sessions.filter((s) => s.reviews > 0).length;
    this.summary.textContent = t("qc.summary", { sessions: t("qc.sessions", { count: data.sessions.length }), reviewed });
    this.draw();
  }

  draw() {
    const data = this.data;
    if (!data) return;
    /** @type {Map<string, Metric>} */
    const metrics = new Map(data.metrics.map((m) => [m.key, m]));
    const names = new Map((this.filters.by === "site" ? data.sites : data.sonographers)
      .map((s) => [s.id, this.filters.by === "site" ? s.name : personName(s.name)]));
    const weights = Object.entries(data.weights)
      .map(([k, w]) => `${has(`qc.weight.${k}`) ? t(`qc.weight.${k}`) : k.replace("_", " ")} ${Math.round(Number(w) * 100)} %`);
    this.charts.replaceChildren(...CHARTS.map((chart) => {
      const key = this.chosen[chart.id];
      const metric = metrics.get(key) ?? { key, label: key, range: null };
      const title = metricLabel(key, metric.label);
      const series = groupSeries(data.series[key] ?? [], this.filters.by, names);
      const picture = lineChart({ key, title, series, yRange: metric.range, empty: t("qc.no_sessions") });
      picture.addEventListener("click", (event) => {
        const point = /** @type {Element} a click lands on an element of the chart */ (event.target).closest("[data-point]");
        const id = point?.getAttribute("data-id");
        if (id) this.navigate(`#/recordings/${encodeURIComponent(id)}`);
      });
      const head = chart.choices.length > 1
        ? this.chooser(chart.id, chart.choices.map((c) => [c, metricLabel(c, metrics.get(c)?.label ?? c)]))
        : el("h3", { text: title });
      return el("figure", { class: "chart-card", "data-chart-card": chart.id }, head, picture,
        chart.id === "score" ? el("figcaption", { class: "muted small", text: t("qc.weights", { weights: weights.join(" · ") }) }) : null);
    }));
  }

  /**
   * @param {string} chartId
   * @param {[string, string][]} options
   */
  chooser(chartId, options) {
    const select = el("select", { "aria-label": t("qc.measure"), "data-chooser": chartId },

      options.map(([value, label]) => el("option", { value, text: label })));
    select.value = this.chosen[chartId];
    select.addEventListener("change", () => {
      this.chosen[chartId] = select.value;
      this.draw();
    });
    return select;
  }
}
