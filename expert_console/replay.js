// @ts-check
// The pure logic of the review page, no DOM: what the guidance overlay showed at any moment of a recording
// (replayed from the timeline's mark, clear and pointer events), the markers of the timeline bar, link quality and
// freezes per page from the timeline's per-second link events (the rules of qc/link.py), QC alerts, the media clock.

import { has, personName, t } from "./i18n.js";

/**
 * @typedef {import("./review.js").TimelineEvent} TimelineEvent
 * @typedef {import("./review.js").LinkSummary} LinkSummary
 * @typedef {import("./review.js").Alert} Alert
 * @typedef {{kind: "capture"|"chat"|"qc"|"freeze"|"link-lost", t: number, end?: number, label: string, id: string}} Marker
 * @typedef {{id: string, kind: string, points: [number, number][], color?: string, from?: string|null}} ReplayMark
 * @typedef {{x: number|null, y: number|null, visible: boolean, from: string|null, role: string|null}} ReplayPointer
 */

/** A pointer is shown for this long after its last position (the live page sends positions as it moves). */
export const POINTER_HOLD_SECONDS = 0.5;
/** Timeline times are rounded to the millisecond: an event belongs to the frame it was stamped on. */
const EPSILON = 0.001;
/** QC.md §3: a gap between rendered frames over this is a pause, not a freeze. */
const PAUSE_MS = 5000;
const FREEZE_WINDOW = 30;
const FREEZE_MIN_INTERVALS = 5;

// ---- replaying the overlay ---------------------------------------------------------------------------------

/**
 * The number of items with `t` ≤ time (+ε) in a list sorted by t.
 * @param {{t: number}[]} items
 * @param {number} time
 */
function countUpTo(items, time) {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (items[middle].t <= time + EPSILON) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** What the overlay showed at any moment of a recording, from its timeline's mark, clear and pointer events. */
export class Replay {
  /**
   * @param {TimelineEvent[]} events in file order (sorted by t)
   * @param {{pointerHoldSeconds?: number}} [options]
   */
  constructor(events, { pointerHoldSeconds = POINTER_HOLD_SECONDS } = {}) {
    const sorted = [...events].sort((a, b) => a.t - b.t); // stable: ties keep the file's order
    /** @type {TimelineEvent[]} */
    this.drawing = sorted.filter((e) => e.type === "mark" || e.type === "clear");
    /** @type {TimelineEvent[]} */
    this.pointers = sorted.filter((e) => e.type === "pointer");
    this.hold = pointerHoldSeconds;
    this.roles = peersOf(sorted);
    // lastClear[k]: the index after the last clear among the first k drawing events
    this.lastClear = [0];
    for (let k = 0; k < this.drawing.length; k++) {
      this.lastClear.push(this.drawing[k].type === "clear" ? k + 1 : this.lastClear[k]);
    }
  }

  /**
   * The marks present at `t`: every mark since the last clear up to t (a mark drawn again with the same id replaces
   * the earlier one).
   * @param {number} t seconds on the media clock
   * @returns {ReplayMark[]}
   */
  marksAt(t) {
    const count = countUpTo(this.drawing, t);
    /** @type {Map<string, ReplayMark>} */
    const marks = new Map();
    for (let k = this.lastClear[count]; k < count; k++) {
      const e = this.drawing[k];
      marks.set(e.id, { id: e.id, kind: e.kind, points: e.points, color: e.color, from: e.from ?? null });
    }
    return [...marks.values()];
  }

  /**
   * Each peer's pointer at `t`: its last pointer event, if it was less than the hold time before t and visible.
   * @param {number} t
   * @returns {ReplayPointer[]}
   */
  pointersAt(t) {
    /** @type {Map<string, TimelineEvent>} */
    const latest = new Map();
    for (let k = countUpTo(this.pointers, t) - 1; k >= 0; k--) {
      const e = this.pointers[k];
      if (t - e.t > this.hold) break;
      const peer = e.from ?? "";
      if (!latest.has(peer)) latest.set(peer, e);
    }
    return [...latest.values()]
      .filter((e) => e.visible !== false && typeof e.x === "number" && typeof e.y === "number")
      .map((e) => ({ x: e.x, y: e.y, visible: true, from: e.from ?? null, role: this.roles.get(e.from)?.role ?? null }));
  }

  /**
   * @param {number} t
   * @returns {{marks: ReplayMark[], pointers: ReplayPointer[], key: string}} `key` changes when the picture does
   */
  at(t) {
    const marks = this.marksAt(t);
    const pointers = this.pointersAt(t);
    const key = `${marks.map((m) => m.id).join(",")}|${pointers.map((p) => `${p.from}:${p.x},${p.y}`).join(";")}`;
    return { marks, pointers, key };
  }
}

/**
 * Who was in the room: peer id → role and name, from the join events.
 * @param {TimelineEvent[]} events
 * @returns {Map<string|null|undefined, {role: string, name: string}>}
 */
export function peersOf(events) {
  /** @type {Map<string|null|undefined, {role: string, name: string}>} */
  const peers = new Map();
  for (const e of events) if (e.type === "join") peers.set(e.peer, { role: e.role, name: e.name ?? "" });
  return peers;
}

// ---- the timeline bar ---------------------------------------------------------------------------------------------

/**
 * The moments to jump to: captures, chat lines, QC alerts (raised) and freezes (spans), in time order.
 * @param {TimelineEvent[]} events
 * @param {{start: number, end: number}[]} [freezes] the server's (else found in the timeline's link events)
 * @returns {Marker[]}
 */
export function timelineMarkers(events, freezes) {
  /** @type {Marker[]} */
  const markers = [];
  events.forEach((e, index) => {
    if (e.type === "capture") {
      const what = [e.labels?.structure, e.labels?.plane, e.labels?.side && e.labels.side !== "none" ? e.labels.side : ""]
        .filter(Boolean).join(" ");
      const kind = t(e.kind === "clip" ? "review.marker_clip" : "review.marker_still");
      markers.push({ kind: "capture", t: e.t, label: what ? t("review.marker_with", { kind, what }) : kind,
        id: `capture-${e.id}` });
    } else if (e.type === "chat") {
      markers.push({ kind: "chat", t: e.t, label: t("review.marker_with", { kind: personName(e.name) || e.role || t("chat.title"), what: e.text }),
        id: `chat-${index}` });
    } else if (e.type === "qc" && e.state === "raised") {
      markers.push({ kind: "qc", t: e.t, id: `qc-${index}`,
        label: t("review.marker_qc", { what: has(`qc.alert.${e.code}`) ? t(`qc.alert.${e.code}`) : e.text || e.code }) });
    }
  });
  for (const [k, span] of (freezes ?? freezeSpans(events)).entries()) {
    markers.push({ kind: "freeze", t: span.start, end: span.end,
      label: t("review.marker_frozen", { seconds: (span.end - span.start).toFixed(1) }), id: `freeze-${k}` });
  }
  for (const [k, span] of linkLostSpans(events).entries()) {
    markers.push({ kind: "link-lost", t: span.start, end: span.end,
      label: t("review.marker_link_lost", { seconds: (span.end - span.start).toFixed(1) }), id: `link-lost-${k}` });

  }
  return markers.sort((a, b) => a.t - b.t);
}

/**
 * The spans in which the edge had lost its link to the room (recordings/timeline.py `link_lost`, format version 2):
 * each `start` with the next `end`; a `start` never ended (the recording stopped first) runs to the last event.
 * @param {TimelineEvent[]} events
 * @returns {{start: number, end: number}[]}
 */
export function linkLostSpans(events) {
  /** @type {{start: number, end: number}[]} */
  const spans = [];
  /** @type {number|null} */
  let start = null;
  let last = 0;
  for (const e of [...events].sort((a, b) => a.t - b.t)) {
    last = Math.max(last, e.t);
    if (e.type !== "link_lost") continue;
    if (e.state === "start" && start === null) start = e.t;
    else if (e.state === "end" && start !== null) {
      spans.push({ start, end: Math.max(start, e.t) });
      start = null;
    }
  }
  if (start !== null) spans.push({ start, end: Math.max(start, last) });
  return spans;
}

/**
 * One link sample per second and viewer: the expert's pages when the timeline says who they are, else all.
 * @param {TimelineEvent[]} events
 * @returns {{t: number, peer: string, fps: number, kbps: number|null, rtt_ms: number|null, loss: number|null}[]}
 */
export function linkSamples(events) {
  const experts = new Set([...peersOf(events)].filter(([, p]) => p.role === "expert").map(([peer]) => peer));
  const samples = events.filter((e) => e.type === "link")
    .flatMap((e) => (e.viewers ?? []).map((/** @type {any} */ v) => ({ t: e.t, peer: v.peer, fps: v.fps,
      kbps: v.kbps ?? null, rtt_ms: v.rtt_ms ?? null, loss: v.loss ?? null })));
  const mine = samples.filter((s) => experts.has(s.peer));
  return mine.length ? mine : samples;
}

/**
 * Rendered-frame times (ms) of one page's samples, each second's frames spread evenly over it (qc/link.py).
 * @param {{t: number, fps: number}[]} samples of one page, by time
 */
export function frameTimes(samples) {
  /** @type {number[]} */
  const times = [];
  for (const s of samples) {
    const n = Math.max(0, Math.round(s.fps ?? 0));
    for (let k = 0; k < n; k++) times.push((s.t - 1) * 1000 + (1000 * (k + 1)) / n);
  }
  return times;
}

/**
 * Freezes and pauses among rendered-frame times by the W3C rule of QC.md §3: an interval ≥ max(3 × average,
 * average + 150 ms) over the previous 30 (at least 5) is a freeze; one over 5 s is a pause.
 * @param {number[]} times ms, ascending
 * @returns {{freezeCount: number, frozenMs: number, pausedMs: number, spans: [number, number][]}}
 */
export function detectFreezes(times) {
  /** @type {number[]} */
  const intervals = [];
  /** @type {[number, number][]} */
  const spans = [];
  let freezeCount = 0;
  let frozenMs = 0;
  let pausedMs = 0;
  for (let k = 1; k < times.length; k++) {
    const interval = times[k] - times[k - 1];
    if (interval < 0) continue;
    if (interval > PAUSE_MS) {
      pausedMs += interval;
      spans.push([times[k - 1], times[k]]);
      continue;
    }
    if (intervals.length >= FREEZE_MIN_INTERVALS) {
      const average = intervals.reduce((a, b) => a + b, 0) / intervals.length;
      if (interval >= Math.max(3 * average, average + 150)) {
        freezeCount++;
        frozenMs += interval;
        spans.push([times[k - 1], times[k]]);
      }
    }
    intervals.push(interval);
    if (intervals.length > FREEZE_WINDOW) intervals.shift();
  }
  return { freezeCount, frozenMs, pausedMs, spans };
}

/**
 * The link samples of each page, by time.
 * @param {TimelineEvent[]} events
 */
function samplesByPage(events) {
  /** @type {Map<string, ReturnType<typeof linkSamples>>} */
  const pages = new Map();
  for (const s of linkSamples(events).sort((a, b) => a.t - b.t)) {
    const list = pages.get(s.peer) ?? [];
    list.push(s);
    pages.set(s.peer, list);
  }
  return pages;
}

/**
 * The spans (seconds) in which a page was frozen or paused, touching spans merged.
 * @param {TimelineEvent[]} events
 * @returns {{start: number, end: number}[]}
 */
export function freezeSpans(events) {
  const spans = [...samplesByPage(events).values()]
    .flatMap((page) => detectFreezes(frameTimes(page)).spans)
    .map(([a, b]) => ({ start: a / 1000, end: b / 1000 }))
    .sort((a, b) => a.start - b.start);
  /** @type {{start: number, end: number}[]} */
  const merged = [];
  for (const span of spans) {
    const last = merged[merged.length - 1];
    if (last && span.start <= last.end + 1e-6) last.end = Math.max(last.end, span.end);
    else merged.push({ ...span });
  }
  return merged.map((s) => ({ start: Math.round(s.start * 1000) / 1000, end: Math.round(s.end * 1000) / 1000 }));
}

/**
 * Link quality from the timeline (QC.md §3), for a server that sent no QC of the session: the definitions of
 * qc/link.py, without the 0–1 value (its limits are the server's configuration).
 * @param {TimelineEvent[]} events
 * @param {number} sourceFps
 * @returns {LinkSummary|null}
 */
export function linkSummary(events, sourceFps) {
  const samples = linkSamples(events);
  if (!samples.length) return null;
  const losses = samples.filter((s) => s.loss !== null).map((s) => /** @type {number} */ (s.loss) * 100);
  const rtts = samples.filter((s) => s.rtt_ms !== null).map((s) => /** @type {number} */ (s.rtt_ms));
  const stats = [...samplesByPage(events).values()].map((page) => detectFreezes(frameTimes(page)));
  const frozen = stats.reduce((sum, f) => sum + f.frozenMs + f.pausedMs, 0) / 1000;
  return {
    seconds: samples.length,
    loss_pct: losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : null,
    rtt_p95_ms: rtts.length ? percentile(rtts, 95) : null,
    freeze_ratio: Math.min(1, frozen / samples.length),
    freeze_count: stats.reduce((sum, f) => sum + f.freezeCount, 0),
    drop_pct: 100 * samples.reduce((sum, s) => sum + Math.max(0, 1 - s.fps / sourceFps), 0) / samples.length,
    value: null,
  };
}

/**
 * QC alerts from the timeline: each raised code with the time it was cleared.
 * @param {TimelineEvent[]} events
 * @returns {Alert[]}
 */
export function alertsOf(events) {
  /** @type {Alert[]} */
  const found = [];
  /** @type {Map<string, Alert>} */
  const open = new Map();
  for (const e of events) {
    if (e.type !== "qc") continue;
    if (e.state === "raised" && !open.has(e.code)) {
      const alert = { code: e.code, text: e.text ?? "", raised_at: e.t, cleared_at: null };
      open.set(e.code, alert);
      found.push(alert);
    } else if (e.state === "cleared" && open.has(e.code)) {
      /** @type {Alert} */ (open.get(e.code)).cleared_at = e.t;
      open.delete(e.code);
    }
  }
  return found;
}

/**
 * @param {number[]} values
 * @param {number} q 0–100
 */
export function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q / 100;
  const low = Math.floor(position);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

/**
 * mm:ss on the media clock ("01:23"); h:mm:ss past an hour.
 * @param {number|null|undefined} t seconds
 */
export function formatClock(t) {
  if (t === null || t === undefined || !Number.isFinite(t)) return "--:--";
  const s = Math.max(0, Math.floor(t));
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * The captures of a timeline that name a stored instance.
 * @param {TimelineEvent[]} events
 */
export function capturesOf(events) {
  return events.filter((e) => e.type === "capture" && typeof e.sop_uid === "string");
}


/** A later segment that starts within this many seconds of the previous one's last event continues it (the same
 * edge process: its guidance board, and so the marks, carried on); a later start is a restarted edge, whose board
 * started empty. */
export const CONTINUOUS_SEGMENT_GAP = 1.0;

/**
 * The session clock of a recording made of segments: each segment's offset by the segment rule
 * (recordings/RECORDINGS.md §2 "The session clock"; recordings/session.py segment_offsets is the same rule, and places
 * the stored QC moments), and every event on that clock, a `clear` added where a restarted edge began with an empty
 * board.
 * @param {import("./review.js").Timeline[]} timelines in segment order
 * @returns {{offsets: number[], events: TimelineEvent[]}}
 */
export function sessionClock(timelines) {
  const origin = timelines[0]?.header.started_at_ms ?? 0;
  /** @type {number[]} */
  const offsets = [];
  /** @type {TimelineEvent[]} */
  const events = [];
  let previousEnd = 0;
  timelines.forEach((line, k) => {
    const offset = k === 0 ? 0 : Math.max(previousEnd, (line.header.started_at_ms - origin) / 1000);
    offsets.push(offset);
    if (k > 0 && offset - previousEnd > CONTINUOUS_SEGMENT_GAP) events.push({ type: "clear", t: offset, from: "" });
    for (const event of line.events) events.push({ ...event, t: event.t + offset });
    previousEnd = line.events.reduce((most, e) => Math.max(most, e.t + offset), offset);
  });
  return { offsets, events };
}

/**
 * The index of the segment that plays session time `t` (the last one starting at or before it).
 * @param {number[]} offsets
 * @param {number} t
 */
export function segmentAt(offsets, t) {
  let k = 0;
  while (k + 1 < offsets.length && offsets[k + 1] <= t + EPSILON) k++;
  return k;
}
