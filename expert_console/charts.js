// @ts-check
// Pure SVG chart builders for the QC pages: each returns a new <svg> element built with createElementNS, with text
// set through textContent (never markup). Scales and ticks are plain functions, testable without a page.
// Points carry data-* attributes (series, id, x, y) so a page can open what a point stands for.

import { formatDate, formatDateTime, t } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";
/** Distinct on the dark theme; series take them in order. */
export const PALETTE = ["#4cc9f0", "#ffd166", "#5bd48a", "#ef6461", "#b392f0", "#f29e4c", "#7bdff2", "#e6e9ee"];
const DAY_MS = 86_400_000;

/**
 * @typedef {{x: number, y: number, id?: string, label?: string}} Point x: ms since the epoch (or any number)
 * @typedef {{key: string, name: string, points: Point[], color?: string}} Series
 * @typedef {{top: number, right: number, bottom: number, left: number}} Margin
 */

/**
 * An SVG element with attributes and children; `text` sets textContent.
 * @param {string} tag
 * @param {Record<string, string|number|null|undefined>} [attributes]
 * @param {...(Node|null|undefined|false)} children
 * @returns {SVGElement}
 */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) if (child) node.appendChild(child);
  return /** @type {SVGElement} */ (node);
}

/**
 * A linear map from a domain onto a range (a zero-width domain maps to the range's middle).
 * @param {[number, number]} domain
 * @param {[number, number]} range
 * @returns {(value: number) => number}
 */
export function scale([d0, d1], [r0, r1]) {
  if (d1 === d0) return () => (r0 + r1) / 2;
  return (value) => r0 + ((value - d0) / (d1 - d0)) * (r1 - r0);
}

/**
 * About `count` round tick values covering [min, max] (steps of 1, 2 or 5 × 10^k).
 * @param {number} min
 * @param {number} max
 * @param {number} [count]
 * @returns {number[]}
 */
export function niceTicks(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max === min) return [min];
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  // the round step whose number of intervals is nearest the wanted count
  const step = [1, 2, 5, 10].map((m) => m * power)
    .reduce((best, s) => (Math.abs((max - min) / s - count) < Math.abs((max - min) / best - count) ? s : best));
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

/**
 * The y domain: the fixed range when given (widened to fit values outside it), else the data's, padded.
 * @param {number[]} values
 * @param {[number, number]|null|undefined} fixed
 * @returns {[number, number]}
 */
export function yDomain(values, fixed) {
  if (!values.length) return fixed ?? [0, 1];
  const low = Math.min(...values);
  const high = Math.max(...values);
  if (fixed) return [Math.min(fixed[0], low), Math.max(fixed[1], high)];
  if (low === high) return [low === 0 ? 0 : low - Math.abs(low) * 0.1, high === 0 ? 1 : high + Math.abs(high) * 0.1];
  const pad = (high - low) * 0.08;
  return [low >= 0 && low - pad < 0 ? 0 : low - pad, high + pad];
}

/** @param {number} ms */
function dateLabel(ms) {
  return formatDate(ms); // YYYY-MM-DD in every language (docs/I18N.md)
}

/** @param {number} ms */
function dateTimeLabel(ms) {
  return formatDateTime(ms);
}

/**
 * Labels for a time axis: dates when it spans days, dates with the time of day when it spans less.
 * @param {number} span ms
 */
export function timeFormat(span) {
  return span >= 2 * DAY_MS ? dateLabel : dateTimeLabel;
}

/**
 * A line chart over time: one polyline and one circle per point for each series, axes with round ticks, a legend.
 * @param {{series: Series[], title?: string, key?: string, width?: number, height?: number,
 *   yRange?: [number, number]|null, yFormat?: (v: number) => string, xFormat?: (v: number) => string,
 *   margin?: Margin, empty?: string}} options `xFormat` defaults to dates (with the time of day under 2 days)
 * @returns {SVGSVGElement}
 */
export function lineChart({ series, title = "", key = "", width = 560, height = 220, yRange = null,
  yFormat = (v) => String(Math.round(v * 100) / 100), xFormat,
  margin = { top: 12, right: 14, bottom: 42, left: 46 }, empty = t("qc.no_data") }) {

  const root = /** @type {SVGSVGElement} */ (svg("svg", {
    class: "chart line-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": title, "data-chart": key || null,
  }));
  if (title) root.appendChild(svg("title", { text: title }));
  const points = series.flatMap((s) => s.points);
  const plot = { x0: margin.left, x1: width - margin.right, y0: height - margin.bottom, y1: margin.top };
  root.appendChild(svg("rect", { class: "chart-frame", x: plot.x0, y: plot.y1, width: plot.x1 - plot.x0,
    height: plot.y0 - plot.y1 }));
  if (!points.length) {
    root.appendChild(svg("text", { class: "chart-empty", x: width / 2, y: height / 2, "text-anchor": "middle",
      text: empty }));
    return root;
  }
  let [xMin, xMax] = [Math.min(...points.map((p) => p.x)), Math.max(...points.map((p) => p.x))];
  if (xMin === xMax) [xMin, xMax] = [xMin - DAY_MS / 2, xMax + DAY_MS / 2];
  const formatX = xFormat ?? timeFormat(xMax - xMin);
  const [yMin, yMax] = yDomain(points.map((p) => p.y), yRange);
  const x = scale([xMin, xMax], [plot.x0 + 6, plot.x1 - 6]);
  const y = scale([yMin, yMax], [plot.y0, plot.y1]);

  const grid = svg("g", { class: "chart-gridlines" });
  for (const tick of niceTicks(yMin, yMax, 4)) {
    grid.appendChild(svg("line", { x1: plot.x0, x2: plot.x1, y1: y(tick), y2: y(tick) }));
    grid.appendChild(svg("text", { class: "chart-tick", x: plot.x0 - 6, y: y(tick) + 4, "text-anchor": "end",
      text: yFormat(tick) }));
  }
  const labelWidth = formatX(xMin).length * 6.5 + 16;
  const xTicks = timeTicks(xMin, xMax, Math.max(2, Math.floor((plot.x1 - plot.x0) / Math.max(90, labelWidth))));
  for (const tick of xTicks) {
    grid.appendChild(svg("text", { class: "chart-tick", x: x(tick), y: plot.y0 + 16, "text-anchor": "middle",
      text: formatX(tick) }));
  }
  root.appendChild(grid);

  const legend = svg("g", { class: "chart-legend" });
  let legendX = plot.x0;
  series.forEach((s, index) => {
    const color = s.color ?? PALETTE[index % PALETTE.length];
    const ordered = [...s.points].sort((a, b) => a.x - b.x);
    const group = svg("g", { class: "chart-series", "data-series": s.key });
    if (ordered.length > 1) {
      group.appendChild(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2,
        points: ordered.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ") }));
    }
    for (const p of ordered) {
      group.appendChild(svg("circle", { cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: 4, fill: color,
        "data-point": "", "data-series": s.key, "data-id": p.id ?? null, "data-x": p.x, "data-y": p.y },
      svg("title", { text: p.label ?? `${s.name}: ${yFormat(p.y)} (${formatX(p.x)})` })));
    }
    root.appendChild(group);
    const item = svg("g", { transform: `translate(${legendX},${height - 10})` },
      svg("rect", { x: 0, y: -9, width: 10, height: 10, fill: color }),
      svg("text", { x: 14, y: 0, text: s.name }));
    legend.appendChild(item);
    legendX += 24 + Math.min(180, s.name.length * 7);
  });
  root.appendChild(legend);
  return root;
}

/**
 * Round times for the x axis: whole days when the span is days long, else evenly spaced.
 * @param {number} min ms
 * @param {number} max ms
 * @param {number} count
 */
export function timeTicks(min, max, count) {
  const span = max - min;
  if (span >= 2 * DAY_MS) {
    const step = Math.max(1, Math.ceil(span / DAY_MS / count)) * DAY_MS;
    const first = Math.ceil(min / DAY_MS) * DAY_MS;
    const ticks = [];
    for (let t = first; t <= max; t += step) ticks.push(t);
    return ticks;
  }
  return Array.from({ length: count }, (_, k) => min + (span * (k + 0.5)) / count);
}

/**
 * Horizontal stacked bars, one row per item and one segment per category, with the row's total at its end.
 * @param {{rows: {key: string, label: string, values: Record<string, number>, note?: string}[],
 *   categories: {key: string, label: string, color: string}[], title?: string, key?: string, width?: number,
 *   rowHeight?: number, labelWidth?: number}} options
 * @returns {SVGSVGElement}
 */
export function stackedBars({ rows, categories, title = "", key = "", width = 560, rowHeight = 26, labelWidth = 130 }) {
  const legendHeight = 24;
  const height = Math.max(1, rows.length) * rowHeight + legendHeight + 8;
  const root = /** @type {SVGSVGElement} */ (svg("svg", {
    class: "chart bar-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title,
    "data-chart": key || null,
  }));
  if (title) root.appendChild(svg("title", { text: title }));
  const totals = rows.map((r) => categories.reduce((sum, c) => sum + (r.values[c.key] ?? 0), 0));
  const most = Math.max(1, ...totals);
  const barWidth = scale([0, most], [0, width - labelWidth - 90]);
  rows.forEach((row, index) => {
    const top = index * rowHeight + 4;
    const group = svg("g", { class: "bar-row", "data-row": row.key },
      svg("text", { class: "chart-label", x: labelWidth - 8, y: top + rowHeight / 2 + 1, "text-anchor": "end",
        text: row.label }));
    let left = labelWidth;
    for (const category of categories) {
      const n = row.values[category.key] ?? 0;
      if (!n) continue;
      const w = barWidth(n);
      group.appendChild(svg("rect", { x: left.toFixed(1), y: top, width: Math.max(1, w).toFixed(1),
        height: rowHeight - 8, fill: category.color, "data-category": category.key, "data-value": n },
      svg("title", { text: `${row.label}: ${n} × ${category.label}` })));
      left += w;
    }
    group.appendChild(svg("text", { class: "chart-tick", x: left + 6, y: top + rowHeight / 2 + 1,
      text: row.note ?? String(totals[index]) }));
    root.appendChild(group);
  });
  const legend = svg("g", { class: "chart-legend" });
  categories.forEach((category, index) => {
    legend.appendChild(svg("g", { transform: `translate(${labelWidth + index * 70},${height - 8})` },
      svg("rect", { x: 0, y: -9, width: 10, height: 10, fill: category.color }),
      svg("text", { x: 14, y: 0, text: category.label })));
  });
  root.appendChild(legend);
  return root;
}
