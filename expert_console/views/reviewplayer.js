// @ts-check
// The review page's player: a recording's segments played one after the other on one session clock
// (replay.js sessionClock), the expert's marks and pointers replayed over each presented frame, the clock and
// the timeline bar of markers to jump to.

import { Replay, formatClock, segmentAt, timelineMarkers } from "../replay.js";
import { el, setText } from "./dom.js";
import { Overlay } from "./overlay.js";

/**
 * @typedef {import("../review.js").Timeline} Timeline
 * @typedef {{video: HTMLVideoElement, canvas: HTMLCanvasElement, clock: HTMLElement, bar: HTMLElement,
 *   mediaUrl: (segment: number) => string}} PlayerParts
 */

const hasFrameCallback = "requestVideoFrameCallback" in HTMLVideoElement.prototype;

export class ReviewPlayer {
  /** @param {PlayerParts} parts */
  constructor({ video, canvas, clock, bar, mediaUrl }) {
    this.video = video;
    this.canvas = canvas;
    this.clock = clock;
    this.bar = bar;
    this.mediaUrl = mediaUrl;
    this.playhead = el("div", { class: "timeline-playhead" });
    /** @type {Replay|null} */ this.replay = null;
    this.overlay = new Overlay(canvas, video, (peer) => this.replay?.roles.get(peer)?.role ?? null);
    this.shownKey = "";
    this.duration = 0;
    this.recordingDuration = 0;
    /** @type {Timeline|null} */ this.timeline = null;
    /** @type {{start: number, end: number}[]|undefined} the server's freezes, once its QC arrived */ this.freezes = undefined;
    /** @type {{setTime: (t: number) => void}|null} the scoring form, told the time shown */ this.form = null;
    /** @type {number[]} */ this.segments = [0];
    /** @type {number[]} */ this.offsets = [0];
    this.current = 0; // the index of the segment in the <video>
    /** @type {{local: number, play: boolean}|null} where to go once the segment's metadata is in */ this.pending = null;
    this.stopped = false;
    this.frameRequest = 0;
    this.resize = new ResizeObserver(() => this.redraw());
    this.listen();
  }

  listen() {
    const video = this.video;
    /** @type {VideoFrameRequestCallback} */
    const onFrame = (_now, metadata) => {
      if (this.stopped) return;
      this.show(metadata.mediaTime);
      this.frameRequest = video.requestVideoFrameCallback(onFrame);
    };
    if (hasFrameCallback) this.frameRequest = video.requestVideoFrameCallback(onFrame);
    else video.addEventListener("timeupdate", () => this.show(video.currentTime));
    video.addEventListener("seeked", () => {
      if (!hasFrameCallback || video.paused) this.show(video.currentTime);
    });
    video.addEventListener("loadedmetadata", () => this.onMetadata());
    video.addEventListener("ended", () => {
      if (this.current + 1 < this.segments.length) this.playSegment(this.current + 1, 0, true);
    });
    this.resize.observe(video);
    this.bar.addEventListener("click", (event) => {
      if (event.target !== this.bar || !this.duration) return;
      const box = this.bar.getBoundingClientRect();
      this.seek(((event.clientX - box.left) / box.width) * this.duration);
    });
  }

  /**
   * Start on the recording: its segments, their offsets on the session clock and the merged timeline.
   * @param {number[]} segments
   * @param {number[]} offsets
   * @param {Timeline} timeline
   * @param {number} recordingDuration the server's figure, 0 when unknown
   */
  open(segments, offsets, timeline, recordingDuration) {
    this.segments = segments;
    this.offsets = offsets;
    this.timeline = timeline;
    this.replay = new Replay(timeline.events);
    this.recordingDuration = recordingDuration;
    const video = this.video;
    video.src = this.mediaUrl(segments[0]);
    const lastEvent = timeline.events.reduce((most, e) => Math.max(most, e.t), 0);
    if (segments.length === 1) this.setDuration(recordingDuration || (Number.isFinite(video.duration) ? video.duration : 0) || lastEvent);
    else this.setDuration(Math.max(lastEvent, offsets[offsets.length - 1]));
    if (segments.length > 1) void this.lastSegmentEnd();
    this.redraw();
  }

  /** @param {number} mediaTime media time of the frame on screen, in the current segment */
  show(mediaTime) {
    const t = this.offsets[this.current] + mediaTime;
    const canvas = this.canvas;
    canvas.dataset.mediaTime = mediaTime.toFixed(6);
    canvas.dataset.sessionTime = t.toFixed(6);
    canvas.dataset.segment = String(this.segments[this.current]);
    if (this.replay) {
      const state = this.replay.at(t);
      if (state.key !== this.shownKey) {
        this.shownKey = state.key;
        this.overlay.marks = state.marks;
        this.overlay.pointers = state.pointers;
        this.overlay.draw(); // now, not at the next animation frame: this frame is being presented
        canvas.dataset.marks = state.marks.map((m) => m.id).join(" ");
      }
    }
    setText(this.clock, formatClock(t));
    this.form?.setTime(t);
    if (this.duration > 0) this.playhead.style.left = `${Math.min(100, (100 * t) / this.duration)}%`;
  }

  redraw() {
    this.shownKey = "";
    this.show(this.video.currentTime);
  }

  onMetadata() {
    const video = this.video;
    if (this.pending) {
      video.currentTime = this.pending.local;
      if (this.pending.play) void video.play().catch(() => {});
      this.pending = null;
    }
    if (Number.isFinite(video.duration)) {
      const end = this.offsets[this.current] + video.duration;
      if (this.segments.length === 1 && !this.recordingDuration) this.setDuration(video.duration);
      else if (this.current === this.segments.length - 1 && end > this.duration) this.setDuration(end);
    }
    this.redraw();
  }

  /**
   * @param {number} index of the segment
   * @param {number} local media time in it
   * @param {boolean} play
   */
  playSegment(index, local, play) {
    this.current = index;
    this.pending = { local, play };
    this.video.src = this.mediaUrl(this.segments[index]);
  }

  /** @param {number} t seconds on the session clock */
  seek(t) {
    const index = segmentAt(this.offsets, Math.max(0, t));
    const local = Math.max(0, t - this.offsets[index]);
    if (index !== this.current) this.playSegment(index, local, !this.video.paused);
    else this.video.currentTime = local;
  }

  /** The session clock's time of the frame on screen. */
  sessionTime() {
    return this.offsets[this.current] + this.video.currentTime;
  }

  /** @param {number} seconds */
  setDuration(seconds) {
    this.duration = seconds;
    if (this.timeline) this.drawBar(this.timeline);
  }

  /** @param {{start: number, end: number}[]} freezes the server's, from its QC record */
  setFreezes(freezes) {
    this.freezes = freezes;
    if (this.timeline) this.drawBar(this.timeline);
  }

  /** @param {Timeline} line */
  drawBar(line) {
    const { bar, duration } = this;
    bar.replaceChildren(this.playhead);
    if (!duration) return;
    for (const marker of timelineMarkers(line.events, this.freezes)) {
      const node = el("button", { type: "button", class: `timeline-marker marker-${marker.kind}`,
        "data-kind": marker.kind, "data-t": String(marker.t), title: `${formatClock(marker.t)} ${marker.label}`,
        "aria-label": `${formatClock(marker.t)} ${marker.label}`, onclick: () => this.seek(marker.t) });
      node.style.left = `${Math.min(100, (100 * marker.t) / duration)}%`;
      if (marker.end !== undefined) node.style.width = `${Math.max(0.5, (100 * (marker.end - marker.t)) / duration)}%`;
      bar.append(node);
    }
  }

  /** The bar spans the whole session: the last segment's length, read from its metadata alone. */
  async lastSegmentEnd() {
    const probe = document.createElement("video");
    probe.preload = "metadata";
    probe.muted = true;
    const seconds = await new Promise((resolve) => {
      probe.addEventListener("loadedmetadata", () => resolve(probe.duration), { once: true });
      probe.addEventListener("error", () => resolve(NaN), { once: true });
      probe.src = this.mediaUrl(this.segments[this.segments.length - 1]);
    });
    probe.removeAttribute("src");
    probe.load();
    const end = this.offsets[this.offsets.length - 1] + Number(seconds);
    if (!this.stopped && Number.isFinite(end) && end > this.duration) this.setDuration(end);
  }

  dispose() {
    this.stopped = true;
    if (hasFrameCallback && this.frameRequest) this.video.cancelVideoFrameCallback(this.frameRequest);
    this.resize.disconnect();
    this.overlay.dispose();
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
  }
}
