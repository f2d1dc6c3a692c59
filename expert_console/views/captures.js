// The capture panel of the live view: labels (side, structure, plane, mode, Doppler angle), the still and clip
// buttons with their keys, and the strip of this consultation's captures as they are requested, taken and stored.
// Keys: C captures a still, Shift+C a clip; F8 (what a USB foot switch usually sends) captures a still too.

import { el, setText } from "./dom.js";

/** The structures of each exam (the edge's label vocabulary, qc/labels.py). */
export const STRUCTURES = {
  thyroid: ["thyroid right lobe", "thyroid left lobe", "thyroid isthmus"],
  carotid: ["CCA", "bulb", "ICA", "ECA", "vertebral"],
};
export const MODES = [
  ["b_mode", "B-mode"],
  ["colour_doppler", "Colour Doppler"],
  ["power_doppler", "Power Doppler"],
  ["pw_doppler", "PW Doppler"],
  ["triplex", "Triplex"],
];
export const CLIP_SECONDS = 3;

/**
 * The labels the form shows, as the edge takes them. A thyroid lobe implies its side; the isthmus has none.
 * @param {{exam: string, side: string, structure: string, plane: string, mode: string, angle: string}} form
 * @returns {Record<string, any>}
 */
export function labelsFrom(form) {
  /** @type {Record<string, any>} */
  const labels = { mode: form.mode || "b_mode" };
  if (form.structure) labels.structure = form.structure;
  if (form.plane) labels.plane = form.plane;
  let side = form.side || "none";
  if (form.structure === "thyroid right lobe") side = "R";
  else if (form.structure === "thyroid left lobe") side = "L";
  else if (form.structure === "thyroid isthmus") side = "none";
  labels.side = side;
  const angle = Number.parseFloat(form.angle);
  if (form.mode !== "b_mode" && Number.isFinite(angle)) labels.doppler_angle = angle;
  return labels;
}

/**
 * @param {{session: import("../session.js").LiveSession, exam: string, studyUid: string|null}} options
 */
export function createCapturePanel({ session, exam, studyUid }) {
  /** @param {string} name @param {[string, string][]} options */
  const select = (name, options) =>
    el("select", { name, "data-label": name }, options.map(([value, text]) => el("option", { value, text })));
  const structure = select("structure", [["", "—"], ...(STRUCTURES[/** @type {"thyroid"|"carotid"} */ (exam)] ?? [])
    .map((s) => /** @type {[string, string]} */ ([s, s]))]);
  const side = select("side", [["none", "—"], ["R", "Right"], ["L", "Left"]]);
  const plane = select("plane", [["", "—"], ["transverse", "Transverse"], ["longitudinal", "Longitudinal"]]);
  const mode = select("mode", /** @type {[string, string][]} */ (MODES));
  const angle = el("input", { name: "angle", "data-label": "angle", type: "number", min: "0", max: "90", step: "1",
    placeholder: "°", class: "angle" });
  const stillButton = el("button", { "data-action": "capture-still", class: "primary", text: "Capture still (C)",
    onclick: () => void take("still") });
  const clipButton = el("button", { "data-action": "capture-clip", text: `Clip ${CLIP_SECONDS} s (Shift+C)`,
    onclick: () => void take("clip") });
  const status = el("p", { class: "status-line", "data-testid": "capture-status", role: "status" });
  const strip = el("ol", { class: "capture-strip", "data-testid": "capture-strip" });
  const element = el("section", { class: "panel captures", "data-testid": "capture-panel" },
    el("h3", { text: "Captures" }),
    el("div", { class: "capture-labels" },
      el("label", {}, "Structure ", structure), el("label", {}, "Side ", side), el("label", {}, "Plane ", plane),
      el("label", {}, "Mode ", mode), el("label", {}, "Angle ", angle)),
    el("div", { class: "capture-buttons" }, stillButton, clipButton), status, strip);

  /** @type {Map<string, HTMLLIElement>} capture id or SOP Instance UID → strip tile */
  const tiles = new Map();

  function currentLabels() {
    return labelsFrom({ exam, side: side.value, structure: structure.value, plane: plane.value, mode: mode.value,
      angle: angle.value });
  }

  /** @param {"still"|"clip"} kind */
  async function take(kind) {
    if (!session.canCapture) return;
    const labels = currentLabels();
    try {
      const accepted = await session.capture(kind, labels, CLIP_SECONDS);
      tileFor(accepted.id, kind, labels).dataset.state ||= "requested";
    } catch (err) {
      const { code, message } = /** @type {any} */ (err);
      setText(status, `${message ?? err} (${code ?? "error"})`);
      status.dataset.level = "error";
    }
  }

  /**
   * @param {string} key
   * @param {string} kind
   * @param {Record<string, any>} [labels]
   */
  function tileFor(key, kind, labels) {
    let tile = tiles.get(key);
    if (!tile) {
      const caption = labels ? [labels.structure, labels.plane, labels.side !== "none" ? labels.side : ""]
        .filter(Boolean).join(" · ") : "";
      tile = el("li", { class: "capture-tile", "data-kind": kind },
        el("span", { class: "capture-state", text: "…" }), el("span", { class: "capture-caption", text: caption || kind }));
      tiles.set(key, tile);
      strip.prepend(tile);
    }
    return tile;
  }

  /** @param {HTMLLIElement} tile @param {string} state @param {string} text */
  function setTileState(tile, state, text) {
    tile.dataset.state = state;
    setText(/** @type {HTMLElement} */ (tile.querySelector(".capture-state")), text);
  }

  /**
   * @param {HTMLLIElement} tile
   * @param {string} study @param {string} series @param {string} sop
   */
  function showThumbnail(tile, study, series, sop) {
    if (tile.querySelector("img")) return;
    const src = `/dicomweb/studies/${study}/series/${series}/instances/${sop}/rendered?viewport=160,120`;
    tile.prepend(el("img", { src, alt: "capture", "data-sop": sop, loading: "eager" }));
    tile.dataset.sop = sop;
  }

  /** @param {Extract<import("../protocol.js").ServerMessage, {type: "capture-status"}>} message */
  function handleStatus(message) {
    const key = message.id ?? message.sop_uid ?? "";
    let tile = tiles.get(key) ?? (message.sop_uid ? tiles.get(message.sop_uid) : undefined);
    if (!tile) tile = tileFor(key, String(message.detail.kind ?? "still"));
    if (message.sop_uid) tiles.set(message.sop_uid, tile);
    if (message.state === "requested") setTileState(tile, "requested", `requested by ${message.detail.by ?? "?"}`);
    else if (message.state === "captured") {
      if (tile.dataset.state !== "stored") setTileState(tile, "captured", "uploading…");
    } else if (message.state === "stored") {
      setTileState(tile, "stored", message.detail.frames > 1 ? `clip · ${message.detail.frames} frames` : "stored");
      const { study_uid: study, series_uid: series } = message.detail;
      if (study && series && message.sop_uid) showThumbnail(tile, study, series, message.sop_uid);
    } else if (message.state === "failed") {
      setTileState(tile, "failed", `failed: ${message.detail.message ?? message.detail.code ?? ""}`);
    }
  }

  /** The captures already stored for this consultation (a page that joins late, or reloads). */
  async function loadStored() {
    if (!studyUid) return;
    try {
      const response = await fetch(`/dicomweb/studies/${studyUid}/instances?Modality=US`, {
        headers: { Accept: "application/dicom+json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const text = await response.text();
      /** @type {any[]} */
      const instances = text ? JSON.parse(text) : [];
      for (const item of instances) {
        const sop = item["00080018"]?.Value?.[0];
        const series = item["0020000E"]?.Value?.[0];
        if (!sop || !series || tiles.has(sop)) continue;
        const frames = Number(item["00280008"]?.Value?.[0] ?? 1);
        const tile = tileFor(sop, frames > 1 ? "clip" : "still");
        setTileState(tile, "stored", frames > 1 ? `clip · ${frames} frames` : "stored");
        showThumbnail(tile, studyUid, series, sop);
      }
    } catch {
      // the strip fills from live messages anyway
    }
  }

  /** @param {KeyboardEvent} event */
  function onKey(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
    if (event.key === "F8") {
      event.preventDefault();
      void take("still");
    } else if ((event.key === "c" || event.key === "C") && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      void take(event.shiftKey ? "clip" : "still");
    }
  }
  document.addEventListener("keydown", onKey);

  /** @param {boolean} enabled */
  function setEnabled(enabled) {
    element.hidden = !enabled;
    stillButton.disabled = clipButton.disabled = !enabled;
  }

  return {
    element,
    handleStatus,
    loadStored,
    setEnabled,
    dispose: () => document.removeEventListener("keydown", onKey),
  };
}
