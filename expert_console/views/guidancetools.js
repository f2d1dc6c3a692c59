// @ts-check
// The expert's guidance input on the live view: the tool buttons, and the pointer and drawing gestures on the
// overlay canvas turned into pointer and mark messages (sent through the LiveSession).

import { clampPoint, onImage, simplifyPath, toNormalised } from "../geometry.js";
import { t } from "../i18n.js";
import { el } from "./dom.js";
import { ROLE_COLORS } from "./overlay.js";

/** The tools, each labelled by `live.tool.<tool>` in the catalogs. */
const TOOLS = /** @type {const} */ (["pointer", "arrow", "circle", "freehand"]);
/** A drag shorter than this (CSS px) is a click, not a mark. */
const MIN_DRAG_PX = 4;
/** Pointer messages go out at most this often (~60 per second): fast enough to track the hand, light on the link. */
const POINTER_INTERVAL_MS = 16;

/**
 * @typedef {import("../session.js").LiveSession} LiveSession
 * @typedef {import("./overlay.js").Overlay} Overlay
 * @typedef {"pointer"|"arrow"|"circle"|"freehand"} Tool
 * @typedef {{kind: Exclude<Tool, "pointer">, points: [number, number][], startX: number, startY: number,
 *   pointerId: number}} Drag
 */

export class GuidanceTools {
  /**
   * @param {LiveSession} session
   * @param {HTMLCanvasElement} canvas the overlay canvas the gestures are made on
   * @param {Overlay} overlay
   */
  constructor(session, canvas, overlay) {
    this.session = session;
    this.canvas = canvas;
    this.overlay = overlay;
    /** @type {Tool} */ this.tool = "pointer";
    /** @type {Drag|null} */ this.drag = null;
    /** @type {[number, number]|null} the latest position waiting for its send */ this.pendingPointer = null;
    /** setTimeout handle of the trailing send, 0 when none is due */ this.pointerTimer = 0;
    /** performance.now() of the last pointer sent */ this.pointerSentAt = -Infinity;
    this.pointerShown = false;
    /** @type {Record<string, HTMLButtonElement>} */
    this.toolButtons = {};
    for (const tool of TOOLS) {
      this.toolButtons[tool] = el("button", { "data-tool": tool, "aria-pressed": String(tool === "pointer"), text: t(`live.tool.${tool}`),
        onclick: () => this.selectTool(tool) });
    }
    this.clearButton = el("button", { "data-action": "clear", text: t("live.tool.clear"), onclick: () => session.sendClear() });
    this.toolbar = el("div", { class: "toolbar", role: "toolbar", "aria-label": t("live.tool.toolbar"), hidden: true },

      Object.values(this.toolButtons), this.clearButton);
    canvas.dataset.tool = this.tool;
    this.listen();
  }

  listen() {
    const canvas = this.canvas;
    canvas.addEventListener("pointermove", (event) => this.onPointerMove(event));
    canvas.addEventListener("pointerdown", (event) => this.onPointerDown(event));
    canvas.addEventListener("pointerup", (event) => this.onPointerUp(event));
    canvas.addEventListener("pointercancel", () => {
      this.drag = null;
      this.overlay.setPreview(null);
    });
    canvas.addEventListener("pointerleave", () => {
      if (!this.drag) this.hidePointer();
    });
  }

  /** Show or hide the tools as the session's role allows drawing. */
  update() {
    const canDraw = this.session.canDraw;
    this.toolbar.hidden = !canDraw;
    for (const b of [...Object.values(this.toolButtons), this.clearButton]) b.disabled = !canDraw;
    this.canvas.classList.toggle("drawable", canDraw);
  }

  /** @param {Tool} next */
  selectTool(next) {
    if (this.tool === "pointer" && next !== "pointer") this.hidePointer();
    this.tool = next;
    for (const [name, button] of Object.entries(this.toolButtons)) button.setAttribute("aria-pressed", String(name === next));
    this.canvas.dataset.tool = next;
  }

  /**
   * The normalised image point under a mouse event.
   * @param {PointerEvent} event
   * @returns {[number, number]}
   */
  imagePoint(event) {
    const box = this.canvas.getBoundingClientRect();
    return toNormalised(this.overlay.contentRect(), event.clientX - box.left, event.clientY - box.top);
  }

  flushPointer() {
    this.pointerTimer = 0;
    if (!this.pendingPointer) return;
    const [x, y] = this.pendingPointer;
    this.pendingPointer = null;
    this.pointerSentAt = performance.now();
    if (this.session.sendPointer(x, y)) this.pointerShown = true;
  }

  hidePointer() {
    this.pendingPointer = null;
    if (this.pointerTimer) clearTimeout(this.pointerTimer);
    this.pointerTimer = 0;
    if (this.pointerShown) this.session.sendPointer(null);
    this.pointerShown = false;
  }

  /** @param {PointerEvent} event */
  onPointerMove(event) {
    if (!this.session.canDraw) return;
    const point = this.imagePoint(event);
    if (this.drag && event.pointerId === this.drag.pointerId) {
      this.extendDrag(this.drag, clampPoint(point));
      return;
    }
    if (this.tool !== "pointer") return;
    if (!onImage(point)) {
      this.hidePointer();
      return;
    }
    // Sent as the mouse moves, at most one message per POINTER_INTERVAL_MS, the last position always sent:
    // waiting for the next animation frame cost up to a frame (and more on a busy page) on every move.
    this.pendingPointer = point;
    if (this.pointerTimer) return;
    const wait = this.pointerSentAt + POINTER_INTERVAL_MS - performance.now();
    if (wait <= 0) this.flushPointer();
    else this.pointerTimer = window.setTimeout(() => this.flushPointer(), wait);
  }

  /**
   * @param {Drag} drag
   * @param {[number, number]} p
   */
  extendDrag(drag, p) {
    if (drag.kind === "freehand") {
      const last = drag.points[drag.points.length - 1];
      if (!last || last[0] !== p[0] || last[1] !== p[1]) drag.points.push(p);
    } else {
      drag.points[1] = p;
    }
    this.overlay.setPreview({ kind: drag.kind, points: drag.points, color: this.myColor() });
  }

  /** @param {PointerEvent} event */
  onPointerDown(event) {
    const tool = this.tool;
    if (!this.session.canDraw || tool === "pointer" || event.button !== 0) return;
    const point = this.imagePoint(event);
    if (!onImage(point)) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.drag = { kind: tool, points: [point, point], startX: event.clientX, startY: event.clientY, pointerId: event.pointerId };
    if (tool === "freehand") this.drag.points = [point];
  }

  /** @param {PointerEvent} event */
  onPointerUp(event) {
    if (!this.drag || event.pointerId !== this.drag.pointerId) return;
    const finished = this.drag;
    this.drag = null;
    this.overlay.setPreview(null);
    if (this.canvas.hasPointerCapture(event.pointerId)) this.canvas.releasePointerCapture(event.pointerId);
    if (Math.hypot(event.clientX - finished.startX, event.clientY - finished.startY) < MIN_DRAG_PX && finished.kind !== "freehand") return;
    const points = finished.kind === "freehand" ? simplifyPath(finished.points, 2000) : finished.points;
    if (points.length < 2) return;
    this.session.sendMark({ kind: finished.kind, points, color: this.myColor() });
  }

  myColor() {
    return ROLE_COLORS[this.session.role ?? ""] ?? "#ffffff";
  }
}
