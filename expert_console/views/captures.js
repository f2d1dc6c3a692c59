// @ts-check
// The capture panel of the live view: labels (side, structure, plane, mode, Doppler angle), the still and clip
// buttons with their keys, and the strip of this consultation's captures as they are requested, taken and stored.
// Keys: C captures a still, Shift+C a clip; F8 (what a USB foot switch usually sends) captures a still too.

import { errorText, has, personName, t } from "../i18n.js";
import { asError, el, setText } from "./dom.js";

/** A label value in the reader's words (`capture.<kind>.<value>`), the value itself when the catalogs lack it. */
const labelText = (/** @type {string} */ kind, /** @type {string} */ value) =>
  (has(`capture.${kind}.${value}`) ? t(`capture.${kind}.${value}`) : value);

/** The structures of each exam (the edge's label vocabulary, qc/labels.py; their words: capture.structure.*). */
export const STRUCTURES = {
  thyroid: ["thyroid right lobe", "thyroid left lobe", "thyroid isthmus"], // i18n: data (the edge's vocabulary)
  carotid: ["CCA", "bulb", "ICA", "ECA", "vertebral"],
};
/** The modes (their words: capture.mode.*). */
export const MODES = ["b_mode", "colour_doppler", "power_doppler", "pw_doppler", "triplex"];
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
 * @typedef {import("../session.js").LiveSession} LiveSession
 * @typedef {Extract<import("../protocol.js").ServerMessage, {type: "capture-status"}>} CaptureStatus
 */

/**
 * @param {{session: LiveSession, exam: string, studyUid: string|null}} options
 */
export function createCapturePanel(options) {
  const panel = new CapturePanel(options);
  const onKey = (/** @type {KeyboardEvent} */ event) => panel.onKey(event);
  document.addEventListener("keydown", onKey);
  return {
    element: panel.element,
    /** @param {CaptureStatus} message */
    handleStatus: (message) => panel.handleStatus(message),
    loadStored: () => panel.loadStored(),
    /** @param {boolean} enabled */
    setEnabled: (enabled) => panel.setEnabled(enabled),
    dispose: () => document.removeEventListener("keydown", onKey),
  };
}

/**
 * The label controls, as the exam offers them.
 * @param {string} exam
 */
function labelControls(exam) {
  /** @param {string} name @param {[string, string][]} options */
  const select = (name, options) =>
    el("select", { name, "data-label": name }, options.map(([value, text]) => el("option", { value, text })));
  const structures = STRUCTURES[/** @type {"thyroid"|"carotid"} other exams have no list: ?? [] */ (exam)] ?? [];
  return {
    structure: select("structure", [["", "—"], ...structures.map((s) => /** @type {[string, string]} */ ([s, labelText("structure", s)]))]),
    side: select("side", [["none", "—"], ["R", labelText("side", "R")], ["L", labelText("side", "L")]]),
    plane: select("plane", [["", "—"], ["transverse", labelText("plane", "transverse")],
      ["longitudinal", labelText("plane", "longitudinal")]]),
    mode: select("mode", MODES.map((m) => /** @type {[string, string]} */ ([m, labelText("mode", m)]))),
    angle: el("input", { name: "angle", "data-label": "angle", type: "number", min: "0", max: "90", step: "1",
      placeholder: "°", class: "angle" }),
  };
}

class CapturePanel {
  /** @param {{session: LiveSession, exam: string, studyUid: string|null}} options */
  constructor({ session, exam, studyUid }) {
    this.session = session;
    this.exam = exam;
    this.studyUid = studyUid;
    this.labels = labelControls(exam);
    this.stillButton = el("button", { "data-action": "capture-still", class: "primary", text: t("capture.still"),
      onclick: () => void this.take("still") });
    this.clipButton = el("button", { "data-action": "capture-clip", text: t("capture.clip", { seconds: CLIP_SECONDS }),
      onclick: () => void this.take("clip") });
    this.status = el("p", { class: "status-line", "data-testid": "capture-status", role: "status" });
    this.strip = el("ol", { class: "capture-strip", "data-testid": "capture-strip" });
    const { structure, side, plane, mode, angle } = this.labels;
    this.element = el("section", { class: "panel captures", "data-testid": "capture-panel" },
      el("h3", { text: t("capture.title") }),
      el("div", { class: "capture-labels" },
        el("label", {}, t("capture.structure"), " ", structure), el("label", {}, t("capture.side"), " ", side),
        el("label", {}, t("capture.plane"), " ", plane), el("label", {}, t("capture.mode"), " ", mode),
        el("label", {}, t("capture.angle"), " ", angle)),
      el("div", { class: "capture-buttons" }, this.stillButton, this.clipButton), this.status, this.strip);
    /** @type {Map<string, HTMLLIElement>} capture id or SOP Instance UID → strip tile */
    this.tiles = new Map();
  }

  currentLabels() {
    const { side, structure, plane, mode, angle } = this.labels;
    return labelsFrom({ exam: this.exam, side: side.value, structure: structure.value, plane: plane.value,
      mode: mode.value, angle: angle.value });
  }

  /** @param {"still"|"clip"} kind */
  async take(kind) {
    if (!this.session.canCapture) return;
    const labels = this.currentLabels();
    try {
      const accepted = await this.session.capture(kind, labels, CLIP_SECONDS);
      this.tileFor(accepted.id, kind, labels).dataset.state ||= "requested";
    } catch (err) {
      const refusal = asError(err);
      setText(this.status, `${errorText(refusal)} (${refusal.code})`);
      this.status.dataset.level = "error";
    }
  }

  /**
   * @param {string} key
   * @param {string} kind
   * @param {Record<string, any>} [labels]
   */
  tileFor(key, kind, labels) {
    let tile = this.tiles.get(key);
    if (!tile) {
      const caption = labels ? [labels.structure && labelText("structure", labels.structure),
        labels.plane && labelText("plane", labels.plane), labels.side !== "none" ? labelText("side", labels.side) : ""]
        .filter(Boolean).join(" · ") : "";
      tile = el("li", { class: "capture-tile", "data-kind": kind },
        el("span", { class: "capture-state", text: "…" }),
        el("span", { class: "capture-caption", text: caption || labelText("kind", kind) }));
      this.tiles.set(key, tile);
      this.strip.prepend(tile);
    }
    return tile;
  }

  /** @param {CaptureStatus} message */
  handleStatus(message) {
    const { tiles } = this;
    const key = message.id ?? message.sop_uid ?? "";
    let tile = tiles.get(key) ?? (message.sop_uid ? tiles.get(message.sop_uid) : undefined);
    if (!tile) tile = this.tileFor(key, String(message.detail.kind ?? "still"));
    if (message.sop_uid) tiles.set(message.sop_uid, tile);
    if (message.state === "requested") setTileState(tile, "requested", t("capture.requested_by", { name: personName(message.detail.by) || "?" }));
    else if (message.state === "captured") {
      if (tile.dataset.state !== "stored") setTileState(tile, "captured", t("capture.uploading"));
    } else if (message.state === "stored") {
      setTileState(tile, "stored", storedText(message.detail.frames));
      const { study_uid: study, series_uid: series } = message.detail;
      if (study && series && message.sop_uid) showThumbnail(tile, study, series, message.sop_uid);
    } else if (message.state === "failed") {
      const { code = "error", message: text = "" } = message.detail;
      setTileState(tile, "failed", t("capture.failed", { reason: errorText({ code, message: text }) }));
    }
  }

  /** The captures already stored for this consultation (a page that joins late, or reloads). */
  async loadStored() {
    const studyUid = this.studyUid;
    if (!studyUid) return;
    try {
      const response = await fetch(`/dicomweb/studies/${studyUid}/instances?Modality=US`, {
        headers: { Accept: "application/dicom+json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const text = await response.text();
      /** @type {import("../dicomweb.js").DicomJson[]} */
      const instances = text ? JSON.parse(text) : [];
      for (const item of instances) {
        const sop = item["00080018"]?.Value?.[0];
        const series = item["0020000E"]?.Value?.[0];
        if (!sop || !series || this.tiles.has(sop)) continue;
        const frames = Number(item["00280008"]?.Value?.[0] ?? 1);
        const tile = this.tileFor(sop, frames > 1 ? "clip" : "still");
        setTileState(tile, "stored", storedText(frames));
        showThumbnail(tile, studyUid, series, sop);
      }
    } catch {
      // the strip fills from live messages anyway
    }
  }

  /** @param {KeyboardEvent} event */
  onKey(event) {
    const target = /** @type {HTMLElement} keydown reaches the document from an element */ (event.target);
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
    if (event.key === "F8") {
      event.preventDefault();
      void this.take("still");
    } else if ((event.key === "c" || event.key === "C") && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      void this.take(event.shiftKey ? "clip" : "still");
    }
  }

  /** @param {boolean} enabled */
  setEnabled(enabled) {
    this.element.hidden = !enabled;
    this.stillButton.disabled = this.clipButton.disabled = !enabled;
  }
}

/** @param {number} frames */
const storedText = (frames) => (frames > 1 ? t("capture.clip_frames", { count: frames }) : t("capture.stored"));

/** @param {HTMLLIElement} tile @param {string} state @param {string} text */
function setTileState(tile, state, text) {
  tile.dataset.state = state;
  setText(/** @type {HTMLElement} every tile has its state span (tileFor) */ (tile.querySelector(".capture-state")), text);
}

/**
 * @param {HTMLLIElement} tile
 * @param {string} study @param {string} series @param {string} sop
 */
function showThumbnail(tile, study, series, sop) {
  if (tile.querySelector("img")) return;
  const src = `/dicomweb/studies/${study}/series/${series}/instances/${sop}/rendered?viewport=160,120`;
  tile.prepend(el("img", { src, alt: t("capture.thumbnail"), "data-sop": sop, loading: "eager" }));

  tile.dataset.sop = sop;
}
