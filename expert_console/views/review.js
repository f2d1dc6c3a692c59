// The trainer's review page (#/recordings/<id>): the recording plays with the expert's marks and pointer replayed
// on top in step with the picture (the overlay is redrawn for each presented frame, from the timeline's state at
// that frame's media time), a timeline bar of captures, chat, QC alerts and freezes to jump to, the stills, the QC
// panel and the scoring form. Test hooks on the overlay canvas: data-marks (ids shown) and data-media-time.

import { DicomWeb, TAG, text } from "../dicomweb.js";
import { clockTime } from "../queue.js";
import { lineChart } from "../charts.js";
import { Replay, alertsOf, capturesOf, formatClock, linkSamples, linkSummary, segmentAt, sessionClock,
  timelineMarkers } from "../replay.js";
import { getRecording, getScheme, getSessionQc, getTeachingExport, getTimeline, mediaUrl, recordingReviews, saveReview,
  startTeachingExport, teachingFileUrl, teachingStillUrl } from "../review.js";
import { asError, el, setText, showError } from "./dom.js";
import { Overlay } from "./overlay.js";
import { createReviewForm, scoreView } from "./reviewform.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../review.js").Recording} Recording
 * @typedef {import("../review.js").Timeline} Timeline
 * @typedef {import("../review.js").SessionQc} SessionQc
 * @typedef {import("../review.js").Review} Review
 * @typedef {import("../review.js").TimelineEvent} TimelineEvent
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, recordingId: string, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountReview(root, { api, user, recordingId, navigate }) {
  const dicomweb = new DicomWeb({ onUnauthenticated: (error) => api.onUnauthenticated(error) });
  let stopped = false;
  /** @type {Replay|null} */
  let replay = null;
  let shownKey = "";
  let duration = 0;
  let recordingDuration = 0;
  /** @type {Timeline|null} */
  let timeline = null;
  let frameRequest = 0;
  /** @type {{setTime: (t: number) => void}|null} */
  let form = null;
  // A recording in several segments plays them one after the other on one session clock (replay.js sessionClock)
  /** @type {number[]} */
  let segments = [0];
  /** @type {number[]} */
  let offsets = [0];
  let current = 0; // the index of the segment in the <video>
  /** @type {{local: number, play: boolean}|null} where to go once the segment's metadata is in */
  let pending = null;

  const title = el("h2", { class: "case-title", "data-testid": "recording-title", text: "Recording" });
  const meta = el("span", { class: "muted", "data-testid": "recording-meta" });
  const error = el("p", { class: "error", "data-testid": "recording-error", role: "alert", hidden: true });
  const video = el("video", { "data-testid": "review-video", controls: true, muted: true, playsinline: true,
    preload: "auto" });
  video.muted = true;
  const canvas = el("canvas", { "data-testid": "overlay", "data-marks": "" });
  const overlay = new Overlay(canvas, video, (peer) => replay?.roles.get(peer)?.role ?? null);
  const clock = el("span", { class: "review-clock", "data-testid": "review-clock", text: "00:00" });
  const bar = el("div", { class: "timeline-bar", "data-testid": "timeline-bar", role: "group",
    "aria-label": "Timeline: click to jump" });
  const playhead = el("div", { class: "timeline-playhead" });
  const stills = el("ul", { class: "capture-strip review-stills", "data-testid": "review-stills" });
  const qcPanel = el("section", { class: "panel qc-panel", "data-testid": "qc-panel" }, el("h2", { text: "Quality control" }),
    el("p", { class: "muted", text: "Loading…" }));
  const reviewSlot = el("div", { class: "review-slot" });
  const others = el("section", { class: "panel", "data-testid": "other-reviews", hidden: true });
  const teaching = el("section", { class: "panel", "data-testid": "teaching-export", hidden: true });
  let teachingTimer = 0;

  root.append(el("div", { class: "review" },
    el("header", { class: "live-head" },
      el("button", { "data-action": "back", text: "← Recordings", onclick: () => navigate("#/recordings") }),
      el("div", { class: "case" }, title), meta),
    error,
    el("div", { class: "review-body" },
      el("section", { class: "review-stage-column" },
        el("div", { class: "stage review-stage" }, video, canvas),
        el("div", { class: "timeline-row" }, clock, bar),
        el("h3", { text: "Stills" }), stills),
      el("aside", { class: "side review-side" }, qcPanel, reviewSlot, others, teaching))));

  // ---- replay ----
  /** @param {number} mediaTime media time of the frame on screen, in the current segment */
  function show(mediaTime) {
    const t = offsets[current] + mediaTime;
    canvas.dataset.mediaTime = mediaTime.toFixed(6);
    canvas.dataset.sessionTime = t.toFixed(6);
    canvas.dataset.segment = String(segments[current]);
    if (replay) {
      const state = replay.at(t);
      if (state.key !== shownKey) {
        shownKey = state.key;
        overlay.marks = /** @type {any} */ (state.marks);
        overlay.pointers = /** @type {any} */ (state.pointers);
        overlay.draw(); // now, not at the next animation frame: this frame is being presented
        canvas.dataset.marks = state.marks.map((m) => m.id).join(" ");
      }
    }
    setText(clock, formatClock(t));
    form?.setTime(t);
    if (duration > 0) playhead.style.left = `${Math.min(100, (100 * t) / duration)}%`;
  }

  const hasFrameCallback = "requestVideoFrameCallback" in HTMLVideoElement.prototype;
  /** @type {VideoFrameRequestCallback} */
  const onFrame = (_now, metadata) => {
    if (stopped) return;
    show(metadata.mediaTime);
    frameRequest = video.requestVideoFrameCallback(onFrame);
  };
  if (hasFrameCallback) frameRequest = video.requestVideoFrameCallback(onFrame);
  else video.addEventListener("timeupdate", () => show(video.currentTime));
  video.addEventListener("seeked", () => {
    if (!hasFrameCallback || video.paused) show(video.currentTime);
  });
  const redraw = () => {
    shownKey = "";
    show(video.currentTime);
  };
  video.addEventListener("loadedmetadata", () => {
    if (pending) {
      video.currentTime = pending.local;
      if (pending.play) void video.play().catch(() => {});
      pending = null;
    }
    if (Number.isFinite(video.duration)) {
      if (segments.length === 1 && !recordingDuration) setDuration(video.duration);
      else if (current === segments.length - 1 && offsets[current] + video.duration > duration) setDuration(offsets[current] + video.duration);
    }
    redraw();
  });
  video.addEventListener("ended", () => {
    if (current + 1 < segments.length) playSegment(current + 1, 0, true);
  });
  const resize = new ResizeObserver(redraw);
  resize.observe(video);

  /**
   * @param {number} index of the segment
   * @param {number} local media time in it
   * @param {boolean} play
   */
  function playSegment(index, local, play) {
    current = index;
    pending = { local, play };
    video.src = mediaUrl(api, recordingId, segments[index]);
  }

  /** @param {number} t seconds on the session clock */
  function seek(t) {
    const index = segmentAt(offsets, Math.max(0, t));
    const local = Math.max(0, t - offsets[index]);
    if (index !== current) playSegment(index, local, !video.paused);
    else video.currentTime = local;
  }

  /** The session clock's time of the frame on screen. */
  function sessionTime() {
    return offsets[current] + video.currentTime;
  }
  bar.addEventListener("click", (event) => {
    if (event.target !== bar || !duration) return;
    const box = bar.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * duration);
  });

  /** @param {number} seconds */
  function setDuration(seconds) {
    duration = seconds;
    if (timeline) drawBar(timeline);
  }

  /** @type {{start: number, end: number}[]|undefined} the server's freezes, once its QC arrived */
  let freezes;
  /** @param {Timeline} line */
  function drawBar(line) {
    bar.replaceChildren(playhead);
    if (!duration) return;
    for (const marker of timelineMarkers(line.events, freezes)) {
      const node = el("button", { type: "button", class: `timeline-marker marker-${marker.kind}`,
        "data-kind": marker.kind, "data-t": String(marker.t), title: `${formatClock(marker.t)} ${marker.label}`,
        "aria-label": `${formatClock(marker.t)} ${marker.label}`, onclick: () => seek(marker.t) });
      node.style.left = `${Math.min(100, (100 * marker.t) / duration)}%`;
      if (marker.end !== undefined) node.style.width = `${Math.max(0.5, (100 * (marker.end - marker.t)) / duration)}%`;
      bar.append(node);
    }
  }

  // ---- loading ----
  async function load() {
    let recording;
    let scheme;
    let reviews;
    /** @type {Timeline[]} */
    let timelines;
    try {
      [recording, scheme, reviews] = await Promise.all([
        getRecording(api, recordingId), getScheme(api), recordingReviews(api, recordingId),
      ]);
      segments = recording.segments.length ? [...recording.segments].sort((a, b) => a - b) : [0];
      timelines = await Promise.all(segments.map((segment) => getTimeline(api, recordingId, segment)));
    } catch (err) {
      if (!stopped) showError(error, asError(err));
      return;
    }
    if (stopped) return;
    const session = sessionClock(timelines);
    offsets = session.offsets;
    timeline = { header: timelines[0].header, events: session.events };
    replay = new Replay(timeline.events);
    setText(title, `${recording.exam_type} · ${recording.sonographer?.name ?? "unknown sonographer"}`);
    setText(meta, [recording.site.name, clockTime(recording.started_at), recording.expert ? `expert ${recording.expert.name}` : "",
      recording.state].filter(Boolean).join(" · "));
    recordingDuration = recording.duration_seconds ?? 0;
    video.src = mediaUrl(api, recordingId, segments[0]);
    const lastEvent = timeline.events.reduce((most, e) => Math.max(most, e.t), 0);
    if (segments.length === 1) setDuration(recordingDuration || (Number.isFinite(video.duration) ? video.duration : 0) || lastEvent);
    else setDuration(Math.max(lastEvent, offsets[offsets.length - 1]));
    if (segments.length > 1) void lastSegmentEnd();
    redraw();

    const mine = reviews.find((r) => r.trainer.id === user.id) ?? null;
    if (user.role === "trainer") {
      const created = createReviewForm({ scheme, review: mine, currentTime: sessionTime, seek,
        save: (body) => saveReview(api, recordingId, body) });
      form = created;
      reviewSlot.replaceChildren(created.element);
    }
    showOthers(reviews.filter((r) => r !== mine || user.role !== "trainer"));
    if ((user.role === "trainer" || user.role === "admin") && recording.state === "complete") showTeaching();
    void loadQc(timeline);
    void loadStills(recording, timeline);
  }

  /** The bar spans the whole session: the last segment's length, read from its metadata alone. */
  async function lastSegmentEnd() {
    const probe = document.createElement("video");
    probe.preload = "metadata";
    probe.muted = true;
    const seconds = await new Promise((resolve) => {
      probe.addEventListener("loadedmetadata", () => resolve(probe.duration), { once: true });
      probe.addEventListener("error", () => resolve(NaN), { once: true });
      probe.src = mediaUrl(api, recordingId, segments[segments.length - 1]);
    });
    probe.removeAttribute("src");
    probe.load();
    const end = offsets[offsets.length - 1] + Number(seconds);
    if (!stopped && Number.isFinite(end) && end > duration) setDuration(end);
  }

  /** @param {Review[]} list */
  function showOthers(list) {
    others.hidden = !list.length;
    others.replaceChildren(el("h2", { text: user.role === "trainer" ? "Other reviews" : "Reviews" }),
      ...list.map((r) => el("article", { class: "other-review", "data-review-id": r.id },
        el("p", { class: "muted", text: `${r.trainer.name} · ${clockTime(r.updated_at)}` }),
        ...scoreView(r.score),
        el("ul", { class: "review-comments" }, r.comments.map((c) => el("li", {},
          c.t === null ? el("span", { class: "muted", text: "general " })
            : el("button", { type: "button", class: "link", text: formatClock(c.t), onclick: () => seek(/** @type {number} */ (c.t)) }),
          " ", c.text))))));
  }

  // ---- teaching copy (signaling_server/training/teaching_routes.py): de-identified, banner masked, for teaching ----
  /** @param {HTMLElement[]} body */
  function teachingPanel(...body) {
    teaching.hidden = false;
    teaching.replaceChildren(el("h2", { text: "Teaching copy" }), ...body);
  }

  function showTeaching() {
    teachingPanel(
      el("p", { class: "muted small", text: "A de-identified copy: the patient banner masked in every frame, no voice, no names or chat text in the timeline." }),
      el("button", { type: "button", "data-action": "teaching-export", text: "Make a teaching copy", onclick: () => void exportCopy() }));
  }

  async function exportCopy() {
    teachingPanel(el("p", { "data-testid": "teaching-state", text: "Starting…" }));
    try {
      let job = await startTeachingExport(api, recordingId);
      while (!stopped && job.state === "running") {
        teachingPanel(el("p", { "data-testid": "teaching-state", "data-state": "running",
          text: `Making the copy… ${Math.round((job.progress ?? 0) * 100)} %` }));
        await new Promise((resolve) => { teachingTimer = window.setTimeout(resolve, 1000); });
        job = await getTeachingExport(api, job.id);
      }
      if (stopped) return;
      if (job.state !== "done" || !job.manifest) {
        teachingPanel(el("p", { class: "error", "data-testid": "teaching-state", "data-state": job.state,
          text: `The copy failed: ${job.reason ?? job.state}` }), retryButton());
        return;
      }
      const manifest = job.manifest;
      teachingPanel(
        el("p", { "data-testid": "teaching-state", "data-state": "done", text: "Ready to download:" }),
        el("ul", { class: "teaching-files" }, [...manifest.files.map((f) => f.name), "manifest.json"].map((name) =>
          el("li", {}, el("a", { href: teachingFileUrl(api, job.id, name), download: name, "data-file": name, text: name })))),
        ...manifest.warnings.map((w) => el("p", { class: "warning", "data-testid": "teaching-warning", text: `Check by eye: ${w}` })));
    } catch (err) {
      if (!stopped) teachingPanel(el("p", { class: "error", "data-testid": "teaching-state", "data-state": "failed",
        text: asError(err).message }), retryButton());
    }
  }

  function retryButton() {
    return el("button", { type: "button", "data-action": "teaching-export", text: "Try again", onclick: () => void exportCopy() });
  }

  /** @param {Timeline} line */
  async function loadQc(line) {
    /** @type {SessionQc|null} */
    let qc = null;
    try {
      qc = await getSessionQc(api, recordingId);
    } catch {
      qc = null; // an older server: computed below from the timeline
    }
    if (stopped) return;
    if (qc) {
      freezes = qc.freezes;
      drawBar(line);
    }
    const link = qc?.link ?? linkSummary(line.events, line.header.fps);
    const alerts = qc?.alerts ?? alertsOf(line.events);
    const parts = [el("h2", { text: "Quality control" })];
    parts.push(el("h3", { text: "Completeness" }));
    if (qc?.completeness) {
      parts.push(el("p", { "data-testid": "qc-completeness", text: `${Math.round(qc.completeness.value * 100)} % of the ${qc.completeness.protocol} protocol` }),
        el("ul", { class: "checklist" }, qc.completeness.items.map((i) => el("li", { "data-done": String(i.done),
          text: `${i.done ? "✓" : "✗"} ${i.label}` }))));
    } else {
      parts.push(el("p", { class: "muted", text: "No protocol checklist for this exam." }));
    }
    parts.push(el("h3", { text: "Image quality (automatic)" }));
    const items = Object.entries(qc?.image ?? {});
    parts.push(items.length
      ? statList(items.map(([k, item]) => [k.replaceAll("_", " "), item ? `${item.score.toFixed(1)} / 5` : "—"]), "qc-image")
      : el("p", { class: "muted", text: "No automatic image metrics for this session." }));
    parts.push(el("h3", { text: "Link" }));
    if (link) {
      parts.push(statList([
        ["Packet loss", link.loss_pct === null ? "—" : `${link.loss_pct.toFixed(1)} %`],
        ["Round trip p95", link.rtt_p95_ms === null ? "—" : `${Math.round(link.rtt_p95_ms)} ms`],
        ["Frozen", link.freeze_ratio === null ? "—"
          : `${(link.freeze_ratio * 100).toFixed(1)} %${link.freeze_count ? ` (${link.freeze_count} freezes)` : ""}`],
        ["Frames dropped", link.drop_pct === null ? "—" : `${link.drop_pct.toFixed(1)} %`],
        ["Link quality", link.value === null ? "—" : `${Math.round(link.value * 100)} %`],
      ], "qc-link"));
      const samples = linkSamples(line.events);
      parts.push(lineChart({ key: "link-fps", title: "Frames per second received", width: 320, height: 140,
        xFormat: formatClock, yFormat: (v) => String(Math.round(v)),
        series: [{ key: "fps", name: "fps", points: samples.map((s) => ({ x: s.t, y: s.fps })) }] }));
    } else {
      parts.push(el("p", { class: "muted", text: "No link statistics in this recording." }));
    }
    parts.push(el("h3", { text: "Alerts" }));
    parts.push(alerts.length
      ? el("ul", { class: "qc-alerts", "data-testid": "qc-alerts" }, alerts.map((a) => el("li", {},
        el("button", { type: "button", class: "link", text: formatClock(a.raised_at), onclick: () => seek(a.raised_at) }),
        ` ${a.text || a.code}${a.cleared_at === null ? "" : ` (cleared at ${formatClock(a.cleared_at)})`}`)))
      : el("p", { class: "muted", text: "No QC alerts." }));
    if (qc) parts.push(el("p", { class: "muted small", text: `Source: ${qc.source === "qc_results" ? "QC results" : "the recording's timeline"}` }));
    qcPanel.replaceChildren(...parts);
  }

  /**
   * @param {Recording} recording
   * @param {Timeline} line
   */
  async function loadStills(recording, line) {
    const captures = capturesOf(line.events);
    if (!captures.length) {
      stills.replaceChildren(el("li", { class: "muted", text: "No stills were captured." }));
      return;
    }
    /** @type {Map<string, string>} */
    const seriesOf = new Map();
    let studyUid = "";
    try {
      studyUid = (await api.consultation(recording.consultation_id)).study_uid ?? "";
      if (studyUid) {
        for (const item of await dicomweb.json(`/studies/${encodeURIComponent(studyUid)}/instances`)) {
          seriesOf.set(text(item, TAG.SOPInstanceUID), text(item, TAG.SeriesInstanceUID));
        }
      }
    } catch {
      // the stills' images are optional on this page: the tiles say they are not stored
    }
    if (stopped) return;
    stills.replaceChildren(...captures.map((capture) => {
      const series = seriesOf.get(capture.sop_uid);
      const picture = series
        ? el("img", { alt: `still at ${formatClock(capture.t)}`, loading: "lazy",
          src: dicomweb.renderedUrl({ studyUid, seriesUid: series, sopUid: capture.sop_uid }) })
        : el("span", { class: "muted small", text: "not stored" });
      const labels = capture.labels ?? {};
      return el("li", { class: "capture-tile", "data-sop-uid": capture.sop_uid },
        el("button", { type: "button", class: "thumb", "data-action": "seek", onclick: () => seek(capture.t) }, picture),
        el("span", { text: `${formatClock(capture.t)} ${[labels.structure, labels.plane].filter(Boolean).join(" ")}` }),
        series && user.role !== "sonographer"
          ? el("a", { class: "small", href: teachingStillUrl(api, capture.sop_uid), download: "teaching.dcm",
            "data-action": "teaching-still", text: "de-identified DICOM" })
          : null);
    }));
  }

  void load();
  return () => {
    stopped = true;
    window.clearTimeout(teachingTimer);
    if (hasFrameCallback && frameRequest) video.cancelVideoFrameCallback(frameRequest);
    resize.disconnect();
    overlay.dispose();
    video.pause();
    video.removeAttribute("src");
    video.load();
  };
}

/**
 * @param {[string, string][]} rows
 * @param {string} [testid]
 */
function statList(rows, testid) {
  return el("dl", { class: "link-stats", "data-testid": testid ?? null },
    rows.map(([label, value]) => el("div", { class: "stat" }, el("dt", { text: label }), el("dd", { text: value }))));
}
