// @ts-check
// The live link panel: what the link does right now (QC.md §3), one line per measure, coloured by level.

import { t } from "../i18n.js";
import { el, setText } from "./dom.js";

/** @typedef {import("../session.js").LiveStats} LiveStats */

/**
 * Levels at a glance: [warn, bad] limits; `higher` says which direction is worse.
 * @type {Record<string, {warn: number, bad: number, higherIsWorse: boolean}>}
 */
export const LEVELS = {
  fps: { warn: 20, bad: 10, higherIsWorse: false },
  rtt: { warn: 150, bad: 300, higherIsWorse: true },
  loss: { warn: 1, bad: 5, higherIsWorse: true },
  latency: { warn: 200, bad: 400, higherIsWorse: true },
};

/** The measures, each labelled by `link.<measure>` in the catalogs. */
const ROWS = /** @type {const} */ (["fps", "resolution", "bitrate", "rtt", "loss", "freezes", "latency", "encoder"]);

/**
 * @param {number|null|undefined} value
 * @param {keyof typeof LEVELS} measure
 * @returns {"good"|"warn"|"bad"|"none"}
 */
export function level(value, measure) {
  if (value === null || value === undefined || Number.isNaN(value)) return "none";
  const { warn, bad, higherIsWorse } = LEVELS[measure];
  if (higherIsWorse) return value >= bad ? "bad" : value >= warn ? "warn" : "good";
  return value <= bad ? "bad" : value <= warn ? "warn" : "good";
}

/**
 * @param {number|null|undefined} value
 * @param {number} digits
 */
function fixed(value, digits) {
  return value === null || value === undefined || Number.isNaN(value) ? null : value.toFixed(digits);
}

/** @returns {{element: HTMLElement, update: (stats: LiveStats) => void}} */
export function createLinkPanel() {
  /** @type {Record<string, HTMLElement>} */
  const values = {};
  const list = el("dl", { class: "link-stats" });
  for (const key of ROWS) {
    values[key] = el("dd", { "data-stat": key, "data-level": "none", text: "—" });
    list.append(el("div", { class: "stat" }, el("dt", { text: t(`link.${key}`) }), values[key]));
  }

  /**
   * @param {string} key
   * @param {string|null} text
   * @param {string} [lvl]
   */
  const show = (key, text, lvl = "none") => {
    setText(values[key], text ?? "—");
    values[key].dataset.level = text === null ? "none" : lvl;
  };

  /** @param {LiveStats} s */
  function update(s) {
    const fps = fixed(s.fps, 1);
    show("fps", fps && `${fps} fps`, level(s.fps, "fps"));
    show("resolution", s.width && s.height ? `${s.width}×${s.height}` : null);
    const mbps = fixed(s.bitrateMbps, 2);
    show("bitrate", mbps && `${mbps} Mb/s`);
    const rtt = fixed(s.rttMs, 0);
    show("rtt", rtt && `${rtt} ms`, level(s.rttMs, "rtt"));
    const loss = fixed(s.lossPct, 1);
    show("loss", loss && `${loss} %`, level(s.lossPct, "loss"));
    let freezes = `${s.freezeCount} · ${(s.freezeMs / 1000).toFixed(2)} s`;
    if (s.browserFreezeCount !== null) freezes += ` ${t("link.browser_freezes", { count: s.browserFreezeCount })}`;
    show("freezes", freezes, s.freezeCount > 0 ? "warn" : "good");
    const p50 = fixed(s.latencyP50, 0);
    const p95 = fixed(s.latencyP95, 0);
    show("latency", p50 && p95 ? `p50 ${p50} ms · p95 ${p95} ms` : null, level(s.latencyP95, "latency"));
    values.latency.title = t("link.latency_samples", { count: s.latencySamples });
    show("encoder", s.encoder);
  }

  return { element: el("section", { class: "panel link-panel", "data-testid": "link-panel" }, el("h3", { text: t("link.title") }), list), update };

}
