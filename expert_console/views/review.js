// @ts-check
// The trainer's review page (#/recordings/<id>): the recording plays with the expert's marks and pointer replayed
// on top in step with the picture (the overlay is redrawn for each presented frame, from the timeline's state at
// that frame's media time), a timeline bar of captures, chat, QC alerts and freezes to jump to, the stills, the QC
// panel and the scoring form. Test hooks on the overlay canvas: data-marks (ids shown) and data-media-time.
// The player (views/reviewplayer.js) plays the segments on one session clock; the panels here are filled once
// the recording and its timelines are in.

import { DicomWeb, TAG, text } from "../dicomweb.js";
import { clockTime } from "../queue.js";
import { lineChart } from "../charts.js";
import { alertsOf, capturesOf, formatClock, linkSamples, linkSummary, sessionClock } from "../replay.js";
import { getRecording, getScheme, getSessionQc, getTeachingExport, getTimeline, mediaStatus, mediaUrl, recordingReviews,
  saveReview, startTeachingExport, teachingFileUrl, teachingStillUrl } from "../review.js";
import { errorText, has, personName, t } from "../i18n.js";
import { asError, el, setText, showError } from "./dom.js";
import { examLabel, recordingStateLabel } from "./labels.js";
import { ReviewPlayer } from "./reviewplayer.js";
import { createReviewForm, scoreView } from "./reviewform.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../review.js").Recording} Recording
 * @typedef {import("../review.js").Timeline} Timeline
 * @typedef {import("../review.js").SessionQc} SessionQc
 * @typedef {import("../review.js").Review} Review
 * @typedef {import("../review.js").TimelineEvent} TimelineEvent
 * @typedef {{api: Api, user: User, recordingId: string, navigate: (hash: string) => void}} Context
 * @typedef {ReturnType<typeof reviewPage>} ReviewPage
 * @typedef {{stopped: boolean}} Life whether the page is gone (answers arriving after that are dropped)
 */

/**
 * @param {HTMLElement} root
 * @param {Context} context
 * @returns {() => void} cleanup
 */
export function mountReview(root, context) {
  const { api, recordingId } = context;
  /** @type {Life} */
  const life = { stopped: false };
  const page = reviewPage(context.navigate);
  const player = new ReviewPlayer({ video: page.video, canvas: page.canvas, clock: page.clock, bar: page.bar,
    mediaUrl: (segment) => mediaUrl(api, recordingId, segment) });
  const teaching = new TeachingExport(api, recordingId, page.teaching, life);
  root.append(page.element);
  void loadReview(context, page, player, teaching, life);
  return () => {
    life.stopped = true;
    teaching.dispose();
    player.dispose();
  };
}

/** @param {(hash: string) => void} navigate */
function reviewPage(navigate) {
  const video = el("video", { "data-testid": "review-video", controls: true, muted: true, playsinline: true, preload: "auto" });
  video.muted = true;
  const canvas = el("canvas", { "data-testid": "overlay", "data-marks": "" });
  const page = {
    title: el("h2", { class: "case-title", "data-testid": "recording-title", text: t("review.recording") }),
    meta: el("span", { class: "muted", "data-testid": "recording-meta" }),
    error: el("p", { class: "error", "data-testid": "recording-error", role: "alert", hidden: true }),
    waiting: el("p", { class: "muted", "data-testid": "media-waiting", role: "status", hidden: true }),
    video,
    canvas,
    clock: el("span", { class: "review-clock", "data-testid": "review-clock", text: "00:00" }),
    bar: el("div", { class: "timeline-bar", "data-testid": "timeline-bar", role: "group", "aria-label": t("review.timeline") }),
    stills: el("ul", { class: "capture-strip review-stills", "data-testid": "review-stills" }),
    qcPanel: el("section", { class: "panel qc-panel", "data-testid": "qc-panel" }, el("h2", { text: t("qc.dashboard") }),
      el("p", { class: "muted", text: t("common.loading") })),
    reviewSlot: el("div", { class: "review-slot" }),
    others: el("section", { class: "panel", "data-testid": "other-reviews", hidden: true }),
    teaching: el("section", { class: "panel", "data-testid": "teaching-export", hidden: true }),
  };
  const element = el("div", { class: "review" },
    el("header", { class: "live-head" },
      el("button", { "data-action": "back", text: t("review.back"), onclick: () => navigate("#/recordings") }),
      el("div", { class: "case" }, page.title), page.meta),
    page.error,
    page.waiting,
    el("div", { class: "review-body" },
      el("section", { class: "review-stage-column" },
        el("div", { class: "stage review-stage" }, video, canvas),
        el("div", { class: "timeline-row" }, page.clock, page.bar),
        el("h3", { text: t("review.stills") }), page.stills),
      el("aside", { class: "side review-side" }, page.qcPanel, page.reviewSlot, page.others, page.teaching)));
  return { ...page, element };
}

/**
 * Fetch the recording, its scheme, reviews and timelines, then fill the page.
 * @param {Context} context
 * @param {ReviewPage} page
 * @param {ReviewPlayer} player
 * @param {TeachingExport} teaching
 * @param {Life} life
 */
async function loadReview({ api, user, recordingId }, page, player, teaching, life) {
  let recording;
  let scheme;
  let reviews;
  /** @type {Timeline[]} */
  let timelines;
  /** @type {number[]} */
  let segments;
  try {
    [recording, scheme, reviews] = await Promise.all([
      getRecording(api, recordingId), getScheme(api), recordingReviews(api, recordingId),
    ]);
    segments = recording.segments.length ? [...recording.segments].sort((a, b) => a - b) : [0];
    timelines = await Promise.all(segments.map((segment) => getTimeline(api, recordingId, segment)));
  } catch (err) {
    if (!life.stopped) showError(page.error, asError(err));
    return;
  }
  if (life.stopped) return;
  const session = sessionClock(timelines);
  const timeline = { header: timelines[0].header, events: session.events };
  setText(page.title, `${examLabel(recording.exam_type)} · ${personName(recording.sonographer?.name) || t("review.unknown_sonographer")}`);
  setText(page.meta, [recording.site.name, clockTime(recording.started_at),
    recording.expert ? t("review.expert", { name: personName(recording.expert.name) }) : "",
    recordingStateLabel(recording.state)].filter(Boolean).join(" · "));
  void openWhenReady(api, recordingId, segments, page, life,
    () => player.open(segments, session.offsets, timeline, recording.duration_seconds ?? 0));

  const mine = reviews.find((r) => r.trainer.id === user.id) ?? null;
  if (user.role === "trainer") {
    const form = createReviewForm({ scheme, review: mine, currentTime: () => player.sessionTime(), seek: (t) => player.seek(t),
      save: (body) => saveReview(api, recordingId, body) });
    player.form = form;
    page.reviewSlot.replaceChildren(form.element);
  }
  showOthers(page.others, user, reviews.filter((r) => r !== mine || user.role !== "trainer"), player);
  if ((user.role === "trainer" || user.role === "admin") && recording.state === "complete") teaching.offer();
  void loadQc(api, recordingId, timeline, page.qcPanel, player, life);
  void loadStills(api, user, recording, timeline, page.stills, player, life);
}

/**
 * Open the player once the media can be played (mediaReady); a refusal meanwhile is shown as the page's error.
 * @param {Api} api
 * @param {string} recordingId
 * @param {number[]} segments
 * @param {ReviewPage} page
 * @param {Life} life
 * @param {() => void} open
 */
async function openWhenReady(api, recordingId, segments, page, life, open) {
  try {
    if (await mediaReady(api, recordingId, segments, page.waiting, life)) open();
  } catch (err) {
    page.waiting.hidden = true;
    if (!life.stopped) showError(page.error, asError(err));
  }
}

/**
 * Wait until every segment's media can be played: a trainer's review copy (banner masked) is made on their first
 * ask, and the server says when to ask again. Shows the waiting message meanwhile.
 * @param {Api} api
 * @param {string} recordingId
 * @param {number[]} segments
 * @param {HTMLElement} waiting
 * @param {Life} life
 * @returns {Promise<boolean>} false when the page went away first
 */
async function mediaReady(api, recordingId, segments, waiting, life) {
  for (const segment of segments) {
    for (;;) {
      const status = await mediaStatus(api, recordingId, segment);
      if (life.stopped) return false;
      if (status.ready) break;
      setText(waiting, t("review.copy_pending"));
      waiting.hidden = false;
      await new Promise((resolve) => setTimeout(resolve, status.retryAfter * 1000));
      if (life.stopped) return false;
    }
  }
  waiting.hidden = true;
  return true;
}

/**
 * @param {HTMLElement} others
 * @param {User} user
 * @param {Review[]} list
 * @param {ReviewPlayer} player
 */
function showOthers(others, user, list, player) {
  others.hidden = !list.length;
  others.replaceChildren(el("h2", { text: user.role === "trainer" ? t("review.other_reviews") : t("review.reviews") }),
    ...list.map((r) => el("article", { class: "other-review", "data-review-id": r.id },
      el("p", { class: "muted", text: `${personName(r.trainer.name)} · ${clockTime(r.updated_at)}` }),
      ...scoreView(r.score),
      el("ul", { class: "review-comments" }, r.comments.map((c) => commentItem(c, player))))));
}

/**
 * @param {import("../review.js").Comment} comment
 * @param {ReviewPlayer} player
 */
function commentItem({ t: at, text }, player) {
  return el("li", {},
    at === null ? el("span", { class: "muted", text: `${t("review.general")} ` })
      : el("button", { type: "button", class: "link", text: formatClock(at), onclick: () => player.seek(at) }),
    " ", text);
}

// ---- quality control ----------------------------------------------------------------------------------

/**
 * The server's QC record when it has one (its freezes go on the bar), else what the timeline tells.
 * @param {Api} api
 * @param {string} recordingId
 * @param {Timeline} line
 * @param {HTMLElement} panel
 * @param {ReviewPlayer} player
 * @param {Life} life
 */
async function loadQc(api, recordingId, line, panel, player, life) {
  /** @type {SessionQc|null} */
  let qc = null;
  try {
    qc = await getSessionQc(api, recordingId);
  } catch {
    qc = null; // an older server: computed below from the timeline
  }
  if (life.stopped) return;
  if (qc) player.setFreezes(qc.freezes);
  const seek = (/** @type {number} */ t) => player.seek(t);
  const parts = [
    el("h2", { text: t("qc.dashboard") }),
    ...qcCompleteness(qc),
    ...qcImage(qc),
    ...qcLink(qc?.link ?? linkSummary(line.events, line.header.fps), line),
    ...qcAlerts(qc?.alerts ?? alertsOf(line.events), seek),
  ];
  if (qc) parts.push(el("p", { class: "muted small", text: t(qc.source === "qc_results" ? "review.source_results" : "review.source_timeline") }));
  panel.replaceChildren(...parts);
}

/** @param {SessionQc|null} qc */
function qcCompleteness(qc) {
  const heading = el("h3", { text: t("review.completeness") });
  if (!qc?.completeness) return [heading, el("p", { class: "muted", text: t("review.no_checklist") })];
  const { value, protocol, items } = qc.completeness;
  return [heading,
    el("p", { "data-testid": "qc-completeness", text: t("review.completeness_of", { percent: Math.round(value * 100), protocol: examLabel(protocol) }) }),
    el("ul", { class: "checklist" }, items.map((i) => el("li", { "data-done": String(i.done),
      text: `${i.done ? "✓" : "✗"} ${has(`qc.item.${i.key}`) ? t(`qc.item.${i.key}`) : i.label}` })))];
}

/** @param {SessionQc|null} qc */
function qcImage(qc) {
  const items = Object.entries(qc?.image ?? {});
  return [el("h3", { text: t("review.image_automatic") }),
    items.length
      ? statList(items.map(([k, item]) => [k.replaceAll("_", " "), item ? `${item.score.toFixed(1)} / 5` : "—"]), "qc-image")
      : el("p", { class: "muted", text: t("review.no_image_metrics") })];
}

/**
 * @param {import("../review.js").LinkSummary|null} link
 * @param {Timeline} line
 */
function qcLink(link, line) {
  const heading = el("h3", { text: t("link.title") });
  if (!link) return [heading, el("p", { class: "muted", text: t("review.no_link_stats") })];
  const samples = linkSamples(line.events);
  return [heading,
    statList([
      [t("link.loss"), link.loss_pct === null ? "—" : `${link.loss_pct.toFixed(1)} %`],
      [t("review.rtt_p95"), link.rtt_p95_ms === null ? "—" : `${Math.round(link.rtt_p95_ms)} ms`],
      [t("review.frozen"), link.freeze_ratio === null ? "—"
        : `${(link.freeze_ratio * 100).toFixed(1)} %${link.freeze_count ? ` ${t("review.freezes", { count: link.freeze_count })}` : ""}`],
      [t("review.dropped"), link.drop_pct === null ? "—" : `${link.drop_pct.toFixed(1)} %`],
      [t("review.part.link"), link.value === null ? "—" : `${Math.round(link.value * 100)} %`],
    ], "qc-link"),
    lineChart({ key: "link-fps", title: t("review.fps_received"), width: 320, height: 140,
      xFormat: formatClock, yFormat: (v) => String(Math.round(v)),
      series: [{ key: "fps", name: "fps", points: samples.map((s) => ({ x: s.t, y: s.fps })) }] })];
}

/**
 * @param {import("../review.js").Alert[]} alerts
 * @param {(t: number) => void} seek
 */
function qcAlerts(alerts, seek) {
  return [el("h3", { text: t("review.alerts") }),
    alerts.length
      ? el("ul", { class: "qc-alerts", "data-testid": "qc-alerts" }, alerts.map((a) => el("li", {},
        el("button", { type: "button", class: "link", text: formatClock(a.raised_at), onclick: () => seek(a.raised_at) }),
        ` ${has(`qc.alert.${a.code}`) ? t(`qc.alert.${a.code}`) : a.text || a.code}${a.cleared_at === null ? ""
          : ` ${t("review.cleared_at", { at: formatClock(a.cleared_at) })}`}`)))
      : el("p", { class: "muted", text: t("review.no_alerts") })];
}

/**
 * @param {[string, string][]} rows
 * @param {string} [testid]
 */
function statList(rows, testid) {
  return el("dl", { class: "link-stats", "data-testid": testid ?? null },
    rows.map(([label, value]) => el("div", { class: "stat" }, el("dt", { text: label }), el("dd", { text: value }))));
}

// ---- stills ---------------------------------------------------------------------------------------------

/**
 * The stills captured in the session, with their pictures when the study is stored.
 * @param {Api} api
 * @param {User} user
 * @param {Recording} recording
 * @param {Timeline} line
 * @param {HTMLElement} strip
 * @param {ReviewPlayer} player
 * @param {Life} life
 */
async function loadStills(api, user, recording, line, strip, player, life) {
  const captures = capturesOf(line.events);
  if (!captures.length) {
    strip.replaceChildren(el("li", { class: "muted", text: t("review.no_stills") }));
    return;
  }
  const dicomweb = new DicomWeb({ onUnauthenticated: (error) => api.onUnauthenticated(error) });
  /** @type {Map<string, string>} */
  const seriesOf = new Map();
  let studyUid = "";
  try {
    studyUid = recording.study_uid ?? "";
    if (studyUid) {
      for (const item of await dicomweb.json(`/studies/${encodeURIComponent(studyUid)}/instances`)) {
        seriesOf.set(text(item, TAG.SOPInstanceUID), text(item, TAG.SeriesInstanceUID));
      }
    }
  } catch {
    // the stills' images are optional on this page: the tiles say they are not stored
  }
  if (life.stopped) return;
  strip.replaceChildren(...captures.map((capture) => {
    const series = seriesOf.get(capture.sop_uid);
    const picture = series
      ? el("img", { alt: t("review.still_at", { at: formatClock(capture.t) }), loading: "lazy",
        src: dicomweb.renderedUrl({ studyUid, seriesUid: series, sopUid: capture.sop_uid }) })
      : el("span", { class: "muted small", text: t("review.not_stored") });
    const labels = capture.labels ?? {};
    return el("li", { class: "capture-tile", "data-sop-uid": capture.sop_uid },
      el("button", { type: "button", class: "thumb", "data-action": "seek", onclick: () => player.seek(capture.t) }, picture),
      el("span", { text: `${formatClock(capture.t)} ${[labels.structure, labels.plane].filter(Boolean).join(" ")}` }),
      series && user.role !== "sonographer"
        ? el("a", { class: "small", href: teachingStillUrl(api, capture.sop_uid), download: "teaching.dcm",
          "data-action": "teaching-still", text: t("review.deidentified_dicom") })
        : null);
  }));
}

// ---- teaching copy (signaling_server/training/teaching_routes.py): de-identified, banner masked, for teaching ----------

/** The teaching copy's file list ends with its manifest (a file name, not words). */
const MANIFEST = "manifest.json";

class TeachingExport {
  /**
   * @param {Api} api
   * @param {string} recordingId
   * @param {HTMLElement} panel
   * @param {Life} life
   */
  constructor(api, recordingId, panel, life) {
    this.api = api;
    this.recordingId = recordingId;
    this.panel = panel;
    this.life = life;
    this.timer = 0;
  }

  /** @param {HTMLElement[]} body */
  show(...body) {
    this.panel.hidden = false;
    this.panel.replaceChildren(el("h2", { text: t("review.teaching_copy") }), ...body);
  }

  offer() {
    this.show(
      el("p", { class: "muted small", text: t("review.teaching_explained") }),
      el("button", { type: "button", "data-action": "teaching-export", text: t("review.teaching_make"), onclick: () => void this.run() }));
  }

  async run() {
    this.show(el("p", { "data-testid": "teaching-state", text: t("review.starting") }));
    try {
      let job = await startTeachingExport(this.api, this.recordingId);
      while (!this.life.stopped && job.state === "running") {
        this.show(el("p", { "data-testid": "teaching-state", "data-state": "running",
          text: t("review.making", { percent: Math.round((job.progress ?? 0) * 100) }) }));
        await new Promise((resolve) => { this.timer = window.setTimeout(resolve, 1000); });
        job = await getTeachingExport(this.api, job.id);
      }
      if (this.life.stopped) return;
      if (job.state !== "done" || !job.manifest) {
        this.show(el("p", { class: "error", "data-testid": "teaching-state", "data-state": job.state,
          text: t("review.copy_failed", { reason: job.reason ?? job.state }) }), this.retryButton());
        return;
      }
      this.showDone(job.id, job.manifest);
    } catch (err) {
      if (!this.life.stopped) this.show(el("p", { class: "error", "data-testid": "teaching-state", "data-state": "failed",
        text: errorText(asError(err)) }), this.retryButton());
    }
  }

  /**
   * @param {string} jobId
   * @param {import("../review.js").TeachingManifest} manifest
   */
  showDone(jobId, manifest) {
    this.show(
      el("p", { "data-testid": "teaching-state", "data-state": "done", text: t("review.ready") }),
      el("ul", { class: "teaching-files" }, [...manifest.files.map((f) => f.name), MANIFEST].map((name) =>
        el("li", {}, el("a", { href: teachingFileUrl(this.api, jobId, name), download: name, "data-file": name, text: name })))),
      ...manifest.warnings.map((w) => el("p", { class: "warning", "data-testid": "teaching-warning", text: t("review.check_by_eye", { warning: w }) })));
  }

  retryButton() {
    return el("button", { type: "button", "data-action": "teaching-export", text: t("review.try_again"), onclick: () => void this.run() });
  }

  dispose() {
    window.clearTimeout(this.timer);
  }
}
