// @ts-check
// One image of the viewer with its tools: zoom (wheel, buttons), pan, window centre/width for CT and X-ray
// (drag or inputs → a rendered frame with `?window=`), cine at the clip's FrameTime, and the caliper measuring
// between two clicked pixels with the instance's US Region Calibration, drawn over the image.

import { TAG, describeMeasurement, frameCount,

 frameIntervalMs, measure, number, storedWindow, text, usRegions }
  from "../dicomweb.js";
import { errorText, t } from "../i18n.js";
import { asError, el, setText } from "./dom.js";

const MIN_DRAG_PX = 4;
const MIN_SCALE = 0.05;
const MAX_SCALE = 32;
/** While dragging the window, a new rendered frame is asked for at most this often. */
const WINDOW_THROTTLE_MS = 150;
/** Modalities whose rendering is a grey window over stored values (CT, X-ray, …); ultrasound arrives rendered. */
const NOT_WINDOWED = new Set(["US", "OT", "XC", "SC", "SR", "PR", "KO", "ES"]);
const MAX_PRELOADED_FRAMES = 600;
const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * @typedef {import("../dicomweb.js").DicomWeb} DicomWeb
 * @typedef {import("../dicomweb.js").InstanceRef} InstanceRef
 * @typedef {import("../dicomweb.js").Point} Point
 * @typedef {import("../dicomweb.js").DicomJson} DicomJson
 * @typedef {"pan"|"window"|"caliper"} Tool
 */

/**
 * @param {string} tag
 * @param {Record<string, string|number>} [attributes]
 */
function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** One image with its tools; the study page has two (the study's and a prior's). */
export class ImagePane {
  /**
   * @param {{dicomweb: DicomWeb, name: string, title: string}} options
   */
  constructor({ dicomweb, name, title }) {
    this.dicomweb = dicomweb;
    this.name = name;
    /** @type {InstanceRef|null} */
    this.ref = null;
    /** @type {DicomJson|null} */
    this.meta = null;
    this.columns = 0;
    this.rows = 0;
    this.frames = 1;
    this.frame = 1;
    this.intervalMs = 1000 / 30;
    /** @type {{center: number, width: number}|null} */
    this.window = null;
    this.windowed = false;
    /** @type {import("../dicomweb.js").UsRegion[]} */
    this.regions = [];
    /** @type {Point[]} */
    this.points = [];
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.fitted = true;
    /** @type {Tool} */
    this.tool = "pan";
    this.token = 0;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.playTimer = null;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.windowTimer = null;
    /** @type {Map<string, HTMLImageElement>} */
    this.preloaded = new Map();

    this.title = el("span", { class: "pane-title", "data-testid": `${name}-title`, text: title });
    /** @type {Record<Tool, HTMLButtonElement>} */
    this.toolButtons = {
      pan: el("button", { type: "button", "data-tool": "pan", "aria-pressed": "true", text: t("viewer.pan"),
        onclick: () => this.selectTool("pan") }),
      window: el("button", { type: "button", "data-tool": "window", "aria-pressed": "false", text: t("viewer.window"), hidden: true,
        onclick: () => this.selectTool("window") }),
      caliper: el("button", { type: "button", "data-tool": "caliper", "aria-pressed": "false", text: t("viewer.caliper"),
        onclick: () => this.selectTool("caliper") }),
    };
    this.zoomLabel = el("span", { class: "zoom-label", "data-testid": "zoom", text: "100 %" });
    this.centerInput = el("input", { type: "number", name: "window_center", step: "any", class: "short",
      "aria-label": t("viewer.window_centre") });
    this.widthInput = el("input", { type: "number", name: "window_width", step: "any", min: 1, class: "short",
      "aria-label": t("viewer.window_width") });
    const onWindowInput = () => {
      const center = Number(this.centerInput.value);
      const width = Number(this.widthInput.value);
      if (this.centerInput.value !== "" && this.widthInput.value !== "" && Number.isFinite(center) && width >= 1) {
        this.setWindow({ center, width }, true);
      }
    };
    this.centerInput.addEventListener("change", onWindowInput);
    this.widthInput.addEventListener("change", onWindowInput);
    this.windowControls = el("span", { class: "window-controls", hidden: true },
      el("label", {}, t("viewer.window_c"), " ", this.centerInput), el("label", {}, t("viewer.window_w"), " ", this.widthInput));
    this.playButton = el("button", { type: "button", "data-action": "play", text: t("viewer.play"), onclick: () => this.togglePlay() });
    this.frameSlider = el("input", { type: "range", name: "frame", min: 1, max: 1, value: 1, "aria-label": t("viewer.frame") });
    this.frameSlider.addEventListener("input", () => {
      this.stop();
      this.showFrame(Number(this.frameSlider.value));
    });
    this.frameLabel = el("span", { class: "frame-label", "data-testid": "frame-label", text: "" });
    this.cineControls = el("span", { class: "cine-controls", hidden: true },
      this.playButton, this.frameSlider, this.frameLabel);
    const toolbar = el("div", { class: "toolbar pane-toolbar", role: "toolbar" },
      Object.values(this.toolButtons),
      el("button", { type: "button", "data-action": "zoom-out", text: "−", title: t("viewer.zoom_out"),
        onclick: () => this.zoomBy(1 / 1.25) }),
      el("button", { type: "button", "data-action": "zoom-in", text: "+", title: t("viewer.zoom_in"),
        onclick: () => this.zoomBy(1.25) }),
      el("button", { type: "button", "data-action": "fit", text: t("viewer.fit"), onclick: () => this.fit() }),
      this.zoomLabel, this.windowControls, this.cineControls);

    this.image = el("img", { class: "pane-image", "data-testid": `${name}-image`, alt: "", draggable: "false" });
    this.image.addEventListener("load", () => this.onImageLoad());
    this.image.addEventListener("error", () => this.say(t("viewer.not_rendered")));
    this.layer = el("div", { class: "pane-layer" }, this.image);
    this.overlay = /** @type {SVGSVGElement} */ (svg("svg", { class: "pane-overlay", "data-testid": `${name}-overlay` }));
    this.message = el("div", { class: "stage-message", text: "" });
    this.viewport = el("div", { class: "viewport", "data-testid": `${name}-viewport`, "data-tool": "pan" },
      this.layer, this.overlay, this.message);
    this.readout = el("output", { class: "caliper-readout", "data-testid": "caliper-readout", text: "" });
    this.info = el("span", { class: "pane-info muted", "data-testid": "pane-info", text: "" });
    this.element = el("div", { class: "pane", "data-pane": name },
      el("div", { class: "pane-head" }, this.title, toolbar), this.viewport,
      el("div", { class: "pane-foot" }, this.readout, this.info));

    this.bindPointer();
    this.resizeObserver = new ResizeObserver(() => {
      if (this.fitted) this.fit();
      else this.drawOverlay();
    });
    this.resizeObserver.observe(this.viewport);
  }

  /**
   * Show an instance (frame 1): metadata first, for its size, frames, window and calibration.
   * @param {InstanceRef} ref
   * @param {{modality?: string|undefined, frames?: number}} [hints] from the study and QIDO, used when metadata is missing
   */
  async show(ref, hints = {}) {
    const token = ++this.token;
    this.stop();
    this.ref = ref;
    this.points = [];
    this.drawOverlay();
    this.preloaded.clear();
    setText(this.readout, "");
    this.readout.removeAttribute("data-status");
    this.readout.removeAttribute("data-mm");
    this.say(t("common.loading"));
    /** @type {DicomJson|null} */
    let meta = null;
    try {
      meta = await this.dicomweb.metadata(ref);
    } catch (err) {
      if (token !== this.token) return;
      setText(this.info, t("viewer.no_metadata", { reason: errorText(asError(err)) }));
    }
    if (token !== this.token) return;
    this.meta = meta;
    this.columns = number(meta, TAG.Columns) ?? 0;
    this.rows = number(meta, TAG.Rows) ?? 0;
    this.frames = meta ? frameCount(meta) : Math.max(1, hints.frames ?? 1);
    this.intervalMs = meta ? frameIntervalMs(meta) : 1000 / 30;
    this.regions = meta ? usRegions(meta) : [];
    const modality = text(meta, TAG.Modality) || hints.modality || "";
    this.windowed = !NOT_WINDOWED.has(modality);
    this.window = this.windowed && meta ? storedWindow(meta) : null;
    this.toolButtons.window.hidden = !this.windowed;
    this.windowControls.hidden = !this.windowed;
    if (!this.windowed && this.tool === "window") this.selectTool("pan");
    this.syncWindowInputs();
    this.cineControls.hidden = this.frames < 2;
    this.frameSlider.max = String(this.frames);
    this.fitted = true;
    this.frame = 1;
    this.showFrame(1);
    this.updateInfo();
  }

  /** The rendered URL of a frame with the current window. @param {number} frame */
  frameUrl(frame) {
    if (!this.ref) return "";
    return this.dicomweb.renderedUrl(this.ref, { frame: this.frames > 1 ? frame : undefined, window: this.window });
  }

  /** @param {number} frame from 1 */
  showFrame(frame) {
    this.frame = Math.min(Math.max(1, Math.round(frame)), this.frames);
    const url = this.frameUrl(this.frame);
    if (this.image.getAttribute("src") !== url) this.image.src = url;
    this.frameSlider.value = String(this.frame);
    setText(this.frameLabel, `${this.frame} / ${this.frames}`);
  }

  onImageLoad() {
    this.message.hidden = true;
    // the rendered image is the authority on size when metadata was missing
    if (!this.columns || !this.rows) {
      this.columns = this.image.naturalWidth;
      this.rows = this.image.naturalHeight;
    }
    this.layer.style.width = `${this.columns}px`;
    this.layer.style.height = `${this.rows}px`;
    if (this.fitted) this.fit();
    else this.applyTransform();
  }

  /** @param {string} message */
  say(message) {
    setText(this.message, message);
    this.message.hidden = !message;
  }

  updateInfo() {
    const parts = [];
    if (this.columns && this.rows) parts.push(`${this.columns}×${this.rows}`);
    if (this.frames > 1) parts.push(t("viewer.frames_at", { count: this.frames, fps: Math.round(1000 / this.intervalMs) }));
    parts.push(this.regions.length ? t("viewer.regions", { count: this.regions.length }) : t("viewer.no_calibration"));
    if (this.window) parts.push(`W ${Math.round(this.window.width)} / C ${Math.round(this.window.center)}`);
    setText(this.info, parts.join(" · "));
  }

  // ---- tools --------------------------------------------------------------------------------------------------

  /** @param {Tool} tool */
  selectTool(tool) {
    this.tool = tool;
    this.viewport.dataset.tool = tool;
    for (const [name, button] of Object.entries(this.toolButtons)) button.setAttribute("aria-pressed", String(name === tool));
  }

  fit() {
    const box = this.viewport.getBoundingClientRect();
    if (!this.columns || !this.rows || !box.width || !box.height) return;
    this.scale = Math.min(box.width / this.columns, box.height / this.rows);
    this.tx = (box.width - this.columns * this.scale) / 2;
    this.ty = (box.height - this.rows * this.scale) / 2;
    this.fitted = true;
    this.applyTransform();
  }

  /**
   * @param {number} factor
   * @param {number} [cx] viewport coordinates of the fixed point (the centre by default)
   * @param {number} [cy]
   */
  zoomBy(factor, cx, cy) {
    const box = this.viewport.getBoundingClientRect();
    const x = cx ?? box.width / 2;
    const y = cy ?? box.height / 2;
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    const applied = scale / this.scale;
    this.tx = x - (x - this.tx) * applied;
    this.ty = y - (y - this.ty) * applied;
    this.scale = scale;
    this.fitted = false;
    this.applyTransform();
  }

  applyTransform() {
    this.layer.style.transform = `translate(${this.tx}px, ${this.ty}px) scale(${this.scale})`;
    setText(this.zoomLabel, `${Math.round(this.scale * 100)} %`);
    this.drawOverlay();
  }

  /**
   * The image pixel under a pointer event, or null outside the image.
   * @param {{clientX: number, clientY: number}} event
   * @returns {Point|null}
   */
  pixelAt(event) {
    const box = this.viewport.getBoundingClientRect();
    const x = Math.floor((event.clientX - box.left - this.tx) / this.scale);
    const y = Math.floor((event.clientY - box.top - this.ty) / this.scale);
    if (x < 0 || y < 0 || x >= this.columns || y >= this.rows) return null;
    return { x, y };
  }

  bindPointer() {
    /** @type {{x: number, y: number, tx: number, ty: number, window: {center: number, width: number}|null,
     *   moved: boolean}|null} */
    let drag = null;
    this.viewport.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !this.ref) return;
      this.viewport.setPointerCapture(event.pointerId);
      drag = { x: event.clientX, y: event.clientY, tx: this.tx, ty: this.ty,
        window: this.window ?? this.defaultWindow(), moved: false };
    });
    this.viewport.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < MIN_DRAG_PX) return;
      drag.moved = true;
      if (this.tool === "pan") {
        this.tx = drag.tx + dx;
        this.ty = drag.ty + dy;
        this.fitted = false;
        this.applyTransform();
      } else if (this.tool === "window" && drag.window) {
        const step = Math.max(drag.window.width, 1) / 256;
        this.setWindow({ center: drag.window.center - dy * step, width: Math.max(1, drag.window.width + dx * step) }, false);
      }
    });
    const end = (/** @type {PointerEvent} */ event) => {
      if (!drag) return;
      const wasClick = !drag.moved;
      drag = null;
      if (this.tool === "window" && !wasClick) this.setWindow(this.window, true);
      if (this.tool === "caliper" && wasClick && event.type === "pointerup") this.addPoint(event);
    };
    this.viewport.addEventListener("pointerup", end);
    this.viewport.addEventListener("pointercancel", end);
    this.viewport.addEventListener("wheel", (event) => {
      if (!this.ref) return;
      event.preventDefault();
      const box = this.viewport.getBoundingClientRect();
      this.zoomBy(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
  }

  // ---- window / level -----------------------------------------------------------------------------------------

  /** A starting window when the object stores none: the full range of its stored bits. */
  defaultWindow() {
    const bits = number(this.meta, TAG.BitsStored) ?? 8;
    return { center: 2 ** (bits - 1), width: 2 ** bits };
  }

  /**
   * @param {{center: number, width: number}|null} window
   * @param {boolean} now ask for the rendered frame at once (else throttled while dragging)
   */
  setWindow(window, now) {
    if (!this.windowed || !window) return;
    this.window = { center: window.center, width: Math.max(1, window.width) };
    this.syncWindowInputs();
    this.updateInfo();
    if (now) {
      if (this.windowTimer) clearTimeout(this.windowTimer);
      this.windowTimer = null;
      this.preloaded.clear();
      this.showFrame(this.frame);
    } else if (!this.windowTimer) {
      this.windowTimer = setTimeout(() => {
        this.windowTimer = null;
        this.showFrame(this.frame);
      }, WINDOW_THROTTLE_MS);
    }
  }

  syncWindowInputs() {
    this.centerInput.value = this.window ? String(Math.round(this.window.center)) : "";
    this.widthInput.value = this.window ? String(Math.round(this.window.width)) : "";
  }

  // ---- caliper ------------------------------------------------------------------------------------------------

  /** @param {{clientX: number, clientY: number}} event */
  addPoint(event) {
    const point = this.pixelAt(event);
    if (!point) return;
    this.points = this.points.length >= 2 ? [point] : [...this.points, point];
    if (this.points.length === 2) {
      const result = measure(this.regions, this.points[0], this.points[1]);
      setText(this.readout, describeMeasurement(result));
      this.readout.dataset.status = result.status;
      if (result.mm === null) this.readout.removeAttribute("data-mm");
      else this.readout.dataset.mm = result.mm.toFixed(4);
    } else {
      setText(this.readout, t("viewer.second_point"));
      this.readout.removeAttribute("data-status");
      this.readout.removeAttribute("data-mm");
    }
    this.readout.dataset.points = JSON.stringify(this.points);
    this.drawOverlay();
  }

  /** The measurement in viewport coordinates (drawn over the image, redrawn on zoom and pan). */
  drawOverlay() {
    this.overlay.replaceChildren();
    /** @param {Point} p */
    const at = (p) => [this.tx + (p.x + 0.5) * this.scale, this.ty + (p.y + 0.5) * this.scale];
    const ends = this.points.map(at);
    if (ends.length === 2) {
      const [[x1, y1], [x2, y2]] = ends;
      this.overlay.append(svg("line", { x1, y1, x2, y2, class: "caliper-line" }));
    }
    for (const [x, y] of ends) this.overlay.append(svg("circle", { cx: x, cy: y, r: 4, class: "caliper-end" }));
    if (ends.length === 2 && this.readout.textContent) {
      const label = svg("text", { x: ends[1][0] + 8, y: ends[1][1] - 8, class: "caliper-label" });
      label.textContent = this.readout.textContent;
      this.overlay.append(label);
    }
  }

  // ---- cine ---------------------------------------------------------------------------------------------------

  togglePlay() {
    if (this.playTimer) this.stop();
    else this.play();
  }

  play() {
    if (this.frames < 2) return;
    for (let f = 1; f <= Math.min(this.frames, MAX_PRELOADED_FRAMES); f++) this.preload(f);
    this.playButton.textContent = t("viewer.pause");
    this.playButton.setAttribute("aria-pressed", "true");
    const step = () => {
      const next = (this.frame % this.frames) + 1;
      // a frame not decoded yet is waited for rather than skipped: the clip keeps its order
      const ready = this.preload(next);
      if (ready.complete && ready.naturalWidth) this.showFrame(next);
      this.playTimer = setTimeout(step, this.intervalMs);
    };
    this.playTimer = setTimeout(step, this.intervalMs);
  }

  stop() {
    if (this.playTimer) clearTimeout(this.playTimer);
    this.playTimer = null;
    this.playButton.textContent = t("viewer.play");
    this.playButton.setAttribute("aria-pressed", "false");
  }

  /** @param {number} frame */
  preload(frame) {
    const url = this.frameUrl(frame);
    let image = this.preloaded.get(url);
    if (!image) {
      image = new Image();
      image.src = url;
      this.preloaded.set(url, image);
    }
    return image;
  }

  destroy() {
    this.token++;
    this.stop();
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.resizeObserver.disconnect();
    this.preloaded.clear();
  }
}
