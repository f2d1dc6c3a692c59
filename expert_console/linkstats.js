// @ts-check
// Link quality as pure numerics (QC.md §3): per-second deltas of W3C webrtc-stats, loss, bitrate, freezes from
// rendered-frame intervals, percentiles, the ping clock offset and glass-to-glass latency. No DOM, no WebRTC
// objects: callers pass plain stats dictionaries and times in milliseconds.

/**
 * @typedef {Record<string, any>} StatsEntry one RTCStats dictionary (`type`, `id`, `timestamp`, …)
 *
 * @typedef {object} LinkSummary
 * @property {number|null} fps frames decoded per second over the last interval
 * @property {number|null} width frameWidth of the inbound video
 * @property {number|null} height frameHeight of the inbound video
 * @property {number|null} bitrateMbps inbound video, Mb/s over the last interval
 * @property {number|null} rttMs round-trip time, ms
 * @property {number|null} lossPct inbound video loss over the last interval, % (0–100)
 * @property {number} framesDecoded cumulative
 * @property {number|null} browserFreezeCount the browser's own `freezeCount`, when it reports one
 * @property {number|null} browserFreezeMs the browser's own `totalFreezesDuration` in ms
 * @property {number} inboundAudioEnergy cumulative `totalAudioEnergy` of inbound audio (0 when silent or absent)
 */

/** The interval that counts as a pause rather than a freeze (QC.md §3). */
export const PAUSE_MS = 5000;
/** Frames over which the average frame interval is taken (W3C webrtc-stats `freezeCount`). */
export const FREEZE_WINDOW = 30;
/** Intervals needed before any freeze is declared. */
export const FREEZE_MIN_SAMPLES = 5;

/**
 * Packet loss over an interval, in percent: Δlost / (Δlost + Δreceived). Range 0–100, lower is better;
 * null when no packets were expected. Negative Δlost (duplicates reported late) counts as 0.
 * @param {number} deltaLost
 * @param {number} deltaReceived
 * @returns {number|null}
 */
export function lossPercent(deltaLost, deltaReceived) {
  const lost = Math.max(0, deltaLost || 0);
  const received = Math.max(0, deltaReceived || 0);
  const expected = lost + received;
  return expected > 0 ? (100 * lost) / expected : null;
}

/**
 * Bits per second from a byte counter delta, in Mb/s.
 * @param {number} deltaBytes
 * @param {number} deltaMs
 * @returns {number|null}
 */
export function bitrateMbps(deltaBytes, deltaMs) {
  if (!(deltaMs > 0) || !(deltaBytes >= 0)) return null;
  return (deltaBytes * 8) / (deltaMs * 1000);
}

/**
 * A per-second rate from a counter delta.
 * @param {number} delta
 * @param {number} deltaMs
 * @returns {number|null}
 */
export function ratePerSecond(delta, deltaMs) {
  if (!(deltaMs > 0) || !(delta >= 0)) return null;
  return (delta * 1000) / deltaMs;
}

/**
 * The p-th percentile (0–100) with linear interpolation between closest ranks (like numpy's default);
 * null for no values.
 * @param {number[]} values
 * @param {number} p
 * @returns {number|null}
 */
export function percentile(values, p) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

/**
 * @param {StatsEntry[]} entries
 * @param {"video"|"audio"} kind
 * @returns {StatsEntry|undefined} the inbound RTP stream of that kind carrying the most bytes
 */
function inbound(entries, kind) {
  let best;
  for (const e of entries) {
    if (e.type !== "inbound-rtp" || (e.kind ?? e.mediaType) !== kind) continue;
    if (!best || (e.bytesReceived ?? 0) > (best.bytesReceived ?? 0)) best = e;
  }
  return best;
}

/**
 * Round-trip time in ms: remote-inbound-rtp `roundTripTime` when present, else the selected candidate pair's
 * `currentRoundTripTime`.
 * @param {StatsEntry[]} entries
 * @returns {number|null}
 */
export function roundTripMs(entries) {
  for (const e of entries) {
    if (e.type === "remote-inbound-rtp" && typeof e.roundTripTime === "number" && e.roundTripTime > 0) {
      return e.roundTripTime * 1000;
    }
  }
  const transport = entries.find((e) => e.type === "transport" && e.selectedCandidatePairId);
  let pair = transport && entries.find((e) => e.id === transport.selectedCandidatePairId);
  if (!pair) {
    pair = entries.find((e) => e.type === "candidate-pair" && (e.selected || (e.nominated && e.state === "succeeded")));
  }
  return pair && typeof pair.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : null;
}

/**
 * One second's link summary from two consecutive `getStats()` reports (as arrays of dictionaries).
 * With no previous report, the rates are null and the cumulative values are filled in.
 * @param {StatsEntry[]|null} previous
 * @param {StatsEntry[]} current
 * @returns {LinkSummary}
 */
export function summarise(previous, current) {
  const video = inbound(current, "video");
  const audio = inbound(current, "audio");
  const before = previous ? inbound(previous, "video") : undefined;
  /** @type {LinkSummary} */
  const summary = {
    fps: null,
    width: video?.frameWidth ?? null,
    height: video?.frameHeight ?? null,
    bitrateMbps: null,
    rttMs: roundTripMs(current),
    lossPct: null,
    framesDecoded: video?.framesDecoded ?? 0,
    browserFreezeCount: typeof video?.freezeCount === "number" ? video.freezeCount : null,
    browserFreezeMs: typeof video?.totalFreezesDuration === "number" ? video.totalFreezesDuration * 1000 : null,
    inboundAudioEnergy: audio?.totalAudioEnergy ?? 0,
  };
  // Counters restart with a new RTCPeerConnection: only a same-stream, forward-moving pair gives deltas.
  if (video && before && before.id === video.id && video.timestamp > before.timestamp) {
    const dt = video.timestamp - before.timestamp;
    summary.fps = ratePerSecond((video.framesDecoded ?? 0) - (before.framesDecoded ?? 0), dt);
    summary.bitrateMbps = bitrateMbps((video.bytesReceived ?? 0) - (before.bytesReceived ?? 0), dt);
    summary.lossPct = lossPercent(
      (video.packetsLost ?? 0) - (before.packetsLost ?? 0),
      (video.packetsReceived ?? 0) - (before.packetsReceived ?? 0),
    );
  }
  return summary;
}

/**
 * Freezes from the times frames were rendered (QC.md §3, W3C webrtc-stats `freezeCount`): an interval between
 * two rendered frames is a freeze when it is ≥ max(3 × average, average + 150 ms), the average taken over the
 * previous 30 intervals; an interval over 5 s is a pause, not a freeze.
 */
export class FreezeDetector {
  constructor() {
    /** @type {number[]} the last 30 frame intervals, ms */
    this.intervals = [];
    /** @type {number|null} */
    this.lastFrameMs = null;
    this.freezeCount = 0;
    this.freezeMs = 0;
    this.pauseCount = 0;
    this.pauseMs = 0;
  }

  /** Start a new stream (a new connection): the gap before its first frame is neither freeze nor pause. */
  restart() {
    this.intervals = [];
    this.lastFrameMs = null;
  }

  /**
   * The average of the last 30 intervals, or null while there are too few.
   * @returns {number|null}
   */
  averageMs() {
    if (this.intervals.length < FREEZE_MIN_SAMPLES) return null;
    return this.intervals.reduce((a, b) => a + b, 0) / this.intervals.length;
  }

  /**
   * Record a rendered frame, or `count` frames rendered evenly since the last one (a frame callback may skip
   * frames that were shown: `requestVideoFrameCallback`'s `presentedFrames` says how many).
   * @param {number} renderedMs when it was rendered (any monotonic clock, ms)
   * @param {number} [count] frames presented since the last call (≥ 1)
   * @returns {"frame"|"freeze"|"pause"} the worst interval seen
   */
  frame(renderedMs, count = 1) {
    const last = this.lastFrameMs;
    this.lastFrameMs = renderedMs;
    if (last === null) return "frame";
    const total = renderedMs - last;
    if (!(total >= 0)) return "frame";
    const n = Number.isInteger(count) && count > 1 ? count : 1;
    /** @type {"frame"|"freeze"|"pause"} */
    let worst = "frame";
    for (let i = 0; i < n; i++) {
      const kind = this._interval(total / n);
      if (kind === "pause" || (kind === "freeze" && worst === "frame")) worst = kind;
    }
    return worst;
  }

  /**
   * @param {number} interval
   * @returns {"frame"|"freeze"|"pause"}
   */
  _interval(interval) {
    if (interval > PAUSE_MS) {
      this.pauseCount += 1;
      this.pauseMs += interval;
      return "pause";
    }
    const average = this.averageMs();
    const freeze = average !== null && isFreeze(interval, average);
    if (freeze) {
      this.freezeCount += 1;
      this.freezeMs += interval;
    }
    this.intervals.push(interval);
    if (this.intervals.length > FREEZE_WINDOW) this.intervals.shift();
    return freeze ? "freeze" : "frame";
  }
}

/**
 * @param {number} intervalMs
 * @param {number} averageMs
 * @returns {boolean} whether a frame interval counts as a freeze given the recent average
 */
export function isFreeze(intervalMs, averageMs) {
  return intervalMs >= Math.max(3 * averageMs, averageMs + 150);
}

/**
 * @typedef {{t: number, received: number, edgeMs: number}} PingSample
 *   `t` page clock when sent, `received` page clock when the pong arrived, `edgeMs` edge clock in the pong
 */

/**
 * The clock offset (edge clock − page clock, ms) from the ping with the smallest round trip among those
 * answered in the last `windowMs`: offset = edge_ms − (t + t_received) / 2 (PROTOCOL.md §3). Null when none.
 * @param {PingSample[]} samples
 * @param {number} nowMs page clock
 * @param {number} [windowMs]
 * @returns {{offsetMs: number, rttMs: number}|null}
 */
export function clockOffset(samples, nowMs, windowMs = 10000) {
  let best = null;
  for (const s of samples) {
    if (nowMs - s.received > windowMs) continue;
    const rtt = s.received - s.t;
    if (rtt < 0) continue;
    if (!best || rtt < best.rttMs) best = { offsetMs: s.edgeMs - (s.t + s.received) / 2, rttMs: rtt };
  }
  return best;
}

/**
 * Glass-to-glass latency: the display time minus the capture time brought onto the page clock.
 * @param {number} displayMs page clock, epoch ms
 * @param {number} captureMs edge clock, epoch ms
 * @param {number} offsetMs edge clock − page clock
 * @returns {number}
 */
export function glassToGlassMs(displayMs, captureMs, offsetMs) {
  return displayMs - (captureMs - offsetMs);
}

/**
 * Matches displayed frames to the edge's `frame {rtp, capture_ms}` messages, whichever arrives first, and keeps
 * the glass-to-glass latencies of the last `windowMs` (page clock) for percentiles. Also keeps the ping samples.
 */
export class LatencyTracker {
  /** @param {{windowMs?: number, maxPending?: number}} [options] */
  constructor({ windowMs = 10000, maxPending = 600 } = {}) {
    this.windowMs = windowMs;
    this.maxPending = maxPending;
    /** @type {Map<number, number>} rtp → capture epoch ms (edge clock) */
    this.captures = new Map();
    /** @type {Map<number, number>} rtp → display epoch ms (page clock), frames shown before their message came */
    this.displays = new Map();
    /** @type {PingSample[]} */
    this.pings = [];
    /** @type {{at: number, ms: number}[]} */
    this.samples = [];
    /** Edge-clock capture time of the newest frame known to be on screen (what a capture should take), or null. */
    this.shownCaptureMs = /** @type {number|null} */ (null);
    this._shownDisplayMs = -Infinity;
  }

  /**
   * @param {number} t
   * @param {number} received
   * @param {number} edgeMs
   */
  addPing(t, received, edgeMs) {
    this.pings.push({ t, received, edgeMs });
    const cutoff = received - this.windowMs;
    while (this.pings.length && this.pings[0].received < cutoff) this.pings.shift();
  }

  /** @param {number} nowMs */
  offset(nowMs) {
    return clockOffset(this.pings, nowMs, this.windowMs);
  }

  /**
   * The edge says frame `rtp` was captured at `captureMs`.
   * @param {number} rtp
   * @param {number} captureMs
   * @param {number} nowMs page clock
   */
  addCapture(rtp, captureMs, nowMs) {
    const key = rtp >>> 0;
    const shown = this.displays.get(key);
    if (shown !== undefined) {
      this.displays.delete(key);
      this._record(shown, captureMs, nowMs);
      return;
    }
    remember(this.captures, key, captureMs, this.maxPending);
  }

  /**
   * Frame `rtp` was (or will be) displayed at `displayMs` (page clock, epoch ms).
   * @param {number} rtp
   * @param {number} displayMs
   * @param {number} nowMs page clock
   */
  addDisplay(rtp, displayMs, nowMs) {
    const key = rtp >>> 0;
    const captured = this.captures.get(key);
    if (captured !== undefined) {
      this.captures.delete(key);
      this._record(displayMs, captured, nowMs);
      return;
    }
    remember(this.displays, key, displayMs, this.maxPending);
  }

  /**
   * @param {number} displayMs
   * @param {number} captureMs
   * @param {number} nowMs
   */
  _record(displayMs, captureMs, nowMs) {
    if (displayMs >= this._shownDisplayMs) {
      this._shownDisplayMs = displayMs;
      this.shownCaptureMs = captureMs;
    }
    const offset = this.offset(nowMs);
    if (!offset) return;
    this.samples.push({ at: nowMs, ms: glassToGlassMs(displayMs, captureMs, offset.offsetMs) });
    this._prune(nowMs);
  }

  /** @param {number} nowMs */
  _prune(nowMs) {
    const cutoff = nowMs - this.windowMs;
    while (this.samples.length && this.samples[0].at < cutoff) this.samples.shift();
  }

  /**
   * @param {number} nowMs
   * @returns {{p50: number|null, p95: number|null, count: number}} over the last window
   */
  summary(nowMs) {
    this._prune(nowMs);
    const values = this.samples.map((s) => s.ms);
    return { p50: percentile(values, 50), p95: percentile(values, 95), count: values.length };
  }

  /** Forget the frames (a new connection brings new RTP timestamps); pings and samples stay. */
  resetFrames() {
    this.captures.clear();
    this.displays.clear();
  }
}

/**
 * Insert into a bounded insertion-ordered map, dropping the oldest entries.
 * @template K, V
 * @param {Map<K, V>} map
 * @param {K} key
 * @param {V} value
 * @param {number} limit
 */
function remember(map, key, value, limit) {
  map.set(key, value);
  while (map.size > limit) map.delete(/** @type {K} */ (map.keys().next().value));
}
