// @ts-check
// The QC dashboard (#/qc?site=&sonographer=&from=&to=&by=sonographer|site): per sonographer or per site over time,
// SVG charts of session scores, completeness, the trainers' OSAUS and image-quality items and link quality, one point
// per session (click a point to open its review); then RADPEER peer review of X-ray and CT reports.

import { lineChart } from "../charts.js";
import { getDashboard, groupSeries, queryString } from "../review.js";
import { asError, el, showError } from "./dom.js";
import { createPeerReview } from "./peerreview.js";

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
  let filters = {
    site: query.get("site") ?? "",
    sonographer: query.get("sonographer") ?? "",
    from: query.get("from") ?? "",
    to: query.get("to") ?? "",
    by: query.get("by") === "site" ? "site" : "sonographer",
  };
  let stopped = false;
  let token = 0;
  /** @type {any} */
  let data = null;
  /** @type {Record<string, string>} chart id → chosen metric */
  const chosen = Object.fromEntries(CHARTS.map((c) => [c.id, c.choices[0]]));
  const knownSites = new Map();
  const knownSonographers = new Map();

  const error = el("p", { class: "error", "data-testid": "dashboard-error", role: "alert", hidden: true });
  const summary = el("p", { class: "muted", "data-testid": "dashboard-summary" });
  const site = el("select", { name: "site", "aria-label": "Site" });
  const sonographer = el("select", { name: "sonographer", "aria-label": "Sonographer" });
  const from = el("input", { type: "date", name: "from", "aria-label": "From", value: filters.from });
  const to = el("input", { type: "date", name: "to", "aria-label": "To", value: filters.to });
  const by = el("select", { name: "by", "aria-label": "Group by" },
    el("option", { value: "sonographer", text: "per sonographer" }), el("option", { value: "site", text: "per site" }));
  by.value = filters.by;
  site.addEventListener("change", () => update({ site: site.value }));
  sonographer.addEventListener("change", () => update({ sonographer: sonographer.value }));
  from.addEventListener("change", () => update({ from: from.value }));
  to.addEventListener("change", () => update({ to: to.value }));
  by.addEventListener("change", () => update({ by: by.value === "site" ? "site" : "sonographer" }, false));
  const charts = el("div", { class: "chart-grid", "data-testid": "qc-charts" });
  const peer = createPeerReview({ api, user, navigate });

  root.append(el("div", { class: "queue dashboard" },
    el("section", { class: "panel wide" },
      el("div", { class: "queue-head" }, el("h2", { text: "Quality control" }), summary),
      el("form", { class: "queue-filters", onsubmit: (/** @type {Event} */ e) => e.preventDefault() },
        el("label", { class: "filter" }, el("span", { text: "Site" }), site),
        el("label", { class: "filter" }, el("span", { text: "Sonographer" }), sonographer),
        el("label", { class: "filter" }, el("span", { text: "From" }), from),
        el("label", { class: "filter" }, el("span", { text: "To" }), to),
        el("label", { class: "filter" }, el("span", { text: "Lines" }), by)),
      error, charts),
    peer.element));

  /**
   * @param {Partial<typeof filters>} change
   * @param {boolean} [reload] false: only the grouping changed, redraw what is loaded
   */
  function update(change, reload = true) {
    filters = { ...filters, ...change };
    const { by: grouping, ...rest } = filters;
    history.replaceState(null, "", `#/qc${queryString({ ...rest, by: grouping === "site" ? "site" : "" })}`);
    if (reload) void refresh();
    else draw();
  }

  function fillSelects() {
    site.replaceChildren(el("option", { value: "", text: "All sites" }),
      ...[...knownSites.values()].map((s) => el("option", { value: s.code, text: s.name })));
    sonographer.replaceChildren(el("option", { value: "", text: "All sonographers" }),
      ...[...knownSonographers.values()].map((s) => el("option", { value: s.id, text: s.name })));
    for (const [select, value] of /** @type {[HTMLSelectElement, string][]} */ ([[site, filters.site], [sonographer, filters.sonographer]])) {
      if (value && ![...select.options].some((o) => o.value === value)) select.append(el("option", { value, text: value }));
      select.value = value;
    }
  }

  async function refresh() {
    const mine = ++token;
    showError(error, null);
    try {
      const { by: _grouping, ...wanted } = filters;
      data = await getDashboard(api, wanted);
    } catch (err) {
      if (!stopped && mine === token) showError(error, asError(err));
      return;
    }
    if (stopped || mine !== token) return;
    for (const s of data.sites) knownSites.set(s.code, s);
    for (const s of data.sonographers) knownSonographers.set(s.id, s);
    fillSelects();
    const reviewed = data.sessions.filter((/** @type {any} */ s) => s.reviews > 0).length;
    summary.textContent = `${data.sessions.length} session${data.sessions.length === 1 ? "" : "s"} · ${reviewed} reviewed`;
    draw();
  }

  function draw() {
    if (!data) return;
    /** @type {Map<string, Metric>} */
    const metrics = new Map(data.metrics.map((/** @type {Metric} */ m) => [m.key, m]));
    const names = new Map(filters.by === "site"
      ? data.sites.map((/** @type {any} */ s) => [s.id, s.name])
      : data.sonographers.map((/** @type {any} */ s) => [s.id, s.name]));
    const weights = Object.entries(data.weights).map(([k, w]) => `${k.replace("_", " ")} ${Math.round(Number(w) * 100)} %`);
    charts.replaceChildren(...CHARTS.map((chart) => {
      const key = chosen[chart.id];
      const metric = metrics.get(key) ?? { key, label: key, range: null };
      const series = groupSeries(data.series[key] ?? [], /** @type {"sonographer"|"site"} */ (filters.by), names);
      const picture = lineChart({ key, title: metric.label, series, yRange: metric.range, empty: "No sessions with this measure" });
      picture.addEventListener("click", (event) => {
        const point = /** @type {Element} */ (event.target).closest("[data-point]");
        const id = point?.getAttribute("data-id");
        if (id) navigate(`#/recordings/${encodeURIComponent(id)}`);
      });
      const head = chart.choices.length > 1
        ? chooser(chart.id, chart.choices.map((c) => [c, metrics.get(c)?.label ?? c]))
        : el("h3", { text: metric.label });
      return el("figure", { class: "chart-card", "data-chart-card": chart.id }, head, picture,
        chart.id === "score" ? el("figcaption", { class: "muted small", text: `Weights: ${weights.join(" · ")}` }) : null);
    }));
  }

  /**
   * @param {string} chartId
   * @param {[string, string][]} options
   */
  function chooser(chartId, options) {
    const select = el("select", { "aria-label": "Measure", "data-chooser": chartId },
      options.map(([value, label]) => el("option", { value, text: label })));
    select.value = chosen[chartId];
    select.addEventListener("change", () => {
      chosen[chartId] = select.value;
      draw();
    });
    return select;
  }

  fillSelects();
  void refresh();
  return () => {
    stopped = true;
    peer.stop();
  };
}
