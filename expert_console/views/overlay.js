// @ts-check
// The guidance overlay: a canvas exactly over the video, drawing marks, remote pointers and the stroke being
// drawn, in normalised image coordinates mapped through the video's content rectangle (letterbox-aware).

import { roleLabel } from "./labels.js";
import { contentRect, toElement } from "../geometry.js";

/**
 * @typedef {{kind: string, points: [number, number][], color?: string, from?: string|null}} Mark what is drawn of a
 *   mark: a live guidance mark (protocol.js) or one replayed from a timeline (replay.js)
 * @typedef {{x: number|null, y: number|null, visible: boolean, from: string|null, role: string|null}} Pointer a live
 *   pointer (guidance.js) or a replayed one
 * @typedef {{kind: "arrow"|"circle"|"freehand", points: [number, number][], color: string}} Stroke
 */

export const ROLE_COLORS = /** @type {Record<string, string>} */ ({
  expert: "#ffd166",
  sonographer: "#4cc9f0",
  observer: "#c0c0c0",
  edge: "#c0c0c0",
});
const FALLBACK_COLOR = "#f4f4f4";

export class Overlay {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLVideoElement} video
   * @param {(peerId: string|null|undefined) => string|null} roleOf the role of a peer, for colours and labels
   */
  constructor(canvas, video, roleOf) {
    this.canvas = canvas;
    this.video = video;
    this.roleOf = roleOf;
    /** @type {Mark[]} */ this.marks = [];
    /** @type {Pointer[]} */ this.pointers = [];
    /** @type {Stroke|null} */ this.preview = null;
    this._frame = 0;
  }

  /** The picture's rectangle inside the video element, CSS pixels relative to the element. */
  contentRect() {
    const v = this.video;
    return contentRect(v.clientWidth, v.clientHeight, v.videoWidth, v.videoHeight);
  }

  /** @param {Mark[]} marks */
  setMarks(marks) {
    this.marks = marks;
    this.schedule();
  }

  /** @param {Pointer[]} pointers */
  setPointers(pointers) {
    this.pointers = pointers;
    this.schedule();
  }

  /** @param {Stroke|null} stroke */
  setPreview(stroke) {
    this.preview = stroke;
    this.schedule();
  }

  /** Redraw at the next animation frame (many updates in one frame draw once). */
  schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this.draw();
    });
  }

  dispose() {
    if (this._frame) cancelAnimationFrame(this._frame);
    this._frame = 0;
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = this.video.clientWidth;
    const height = this.video.clientHeight;
    const pixelWidth = Math.round(width * ratio);
    const pixelHeight = Math.round(height * ratio);
    if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
      canvas.width = pixelWidth;
      canvas.height = pixelHeight;
    }
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const rect = this.contentRect();
    if (!(rect.width > 0 && rect.height > 0)) return;
    const line = Math.max(2, Math.min(rect.width, rect.height) / 220);
    ctx.save();
    ctx.beginPath();
    ctx.rect(rect.x, rect.y, rect.width, rect.height);
    ctx.clip();
    for (const mark of this.marks) {
      const color = mark.color ?? ROLE_COLORS[this.roleOf(mark.from) ?? ""] ?? FALLBACK_COLOR;
      drawShape(ctx, rect, mark.kind, mark.points, color, line, false);
    }
    if (this.preview) drawShape(ctx, rect, this.preview.kind, this.preview.points, this.preview.color, line, true);
    for (const pointer of this.pointers) {
      if (pointer.visible && pointer.x !== null && pointer.y !== null) {
        const role = pointer.role ?? this.roleOf(pointer.from);
        drawPointer(ctx, rect, [pointer.x, pointer.y], role, line);
      }
    }
    ctx.restore();
  }
}

/**
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("../geometry.js").Rect} rect
 * @param {string} kind
 * @param {[number, number][]} points
 * @param {string} color
 * @param {number} line
 * @param {boolean} preview a stroke still being drawn (dashed: not yet confirmed by the edge)
 */
function drawShape(ctx, rect, kind, points, color, line, preview) {
  if (points.length < 2) return;
  const px = points.map((p) => toElement(rect, p));
  ctx.save();
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = line;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.shadowColor = "rgba(0, 0, 0, 0.8)";
  ctx.shadowBlur = 3;
  if (preview) {
    ctx.setLineDash([line * 3, line * 2]);
    ctx.globalAlpha = 0.7;
  }
  ctx.beginPath();
  if (kind === "circle") {
    const [[cx, cy], [rx, ry]] = px;
    ctx.arc(cx, cy, Math.hypot(rx - cx, ry - cy), 0, 2 * Math.PI);
    ctx.stroke();
  } else if (kind === "arrow") {
    const [[tx, ty], [hx, hy]] = px;
    ctx.moveTo(tx, ty);
    ctx.lineTo(hx, hy);
    ctx.stroke();
    const angle = Math.atan2(hy - ty, hx - tx);
    const head = Math.max(16, line * 7);
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.moveTo(hx, hy);
    ctx.lineTo(hx - head * Math.cos(angle - Math.PI / 7), hy - head * Math.sin(angle - Math.PI / 7));
    ctx.lineTo(hx - head * Math.cos(angle + Math.PI / 7), hy - head * Math.sin(angle + Math.PI / 7));
    ctx.closePath();
    ctx.fill();
  } else {
    ctx.moveTo(px[0][0], px[0][1]);
    for (let i = 1; i < px.length; i++) ctx.lineTo(px[i][0], px[i][1]);
    ctx.stroke();
  }
  ctx.restore();
}

/**
 * Someone else's pointer: a ring with a crosshair gap and the drawer's role beside it.
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("../geometry.js").Rect} rect
 * @param {[number, number]} point
 * @param {string|null} role
 * @param {number} line
 */
function drawPointer(ctx, rect, point, role, line) {
  const [x, y] = toElement(rect, point);
  const color = ROLE_COLORS[role ?? ""] ?? FALLBACK_COLOR;
  const r = Math.max(9, line * 4);
  ctx.save();
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = Math.max(1.5, line * 0.75);
  ctx.shadowColor = "rgba(0, 0, 0, 0.9)";
  ctx.shadowBlur = 3;
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.beginPath();
  for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
    ctx.moveTo(x + dx * r * 0.45, y + dy * r * 0.45);
    ctx.lineTo(x + dx * r * 1.6, y + dy * r * 1.6);
  }
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(x, y, Math.max(1.5, line * 0.6), 0, 2 * Math.PI);
  ctx.fill();
  if (role) {
    ctx.font = `600 ${Math.max(11, Math.round(line * 5))}px system-ui, sans-serif`;
    ctx.textBaseline = "bottom";
    ctx.fillText(roleLabel(role), x + r * 1.2, y - r * 1.1);
  }
  ctx.restore();
}
