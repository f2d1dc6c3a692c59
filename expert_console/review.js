// @ts-check
// Session recordings, trainer reviews, the QC dashboard and RADPEER peer review over /api/v1 (recordings/
// review_routes.py, signaling_server/reports/peer_routes.py), and the small pure helpers of those pages (query
// strings, the dashboard's series). The replay logic of the review page is in replay.js. No DOM.

import { ApiError } from "./api.js";

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {{id: string, code: string, name: string}} Site
 * @typedef {{id: string, name: string}} Person
 * @typedef {{name: string, offset: number, complete: boolean, size: number|null}} RecordingFile
 * @typedef {{id: string, consultation_id: string, study_uid: string|null, exam_type: string, state: string,
 *   site: Site, sonographer: Person|null, expert: Person|null, started_at: string, ended_at: string|null,
 *   duration_seconds: number|null, segments: number[], files: RecordingFile[]}} Recording
 * @typedef {{type: string, t: number, [key: string]: any}} TimelineEvent
 * @typedef {{type: "header", consultation_id: string, started_at_ms: number, width: number, height: number,
 *   fps: number, segment?: number}} TimelineHeader
 * @typedef {{header: TimelineHeader, events: TimelineEvent[], torn_tail?: boolean}} Timeline
 * @typedef {{t: number|null, text: string}} Comment
 * @typedef {{total: number|null, weights: Record<string, number>, weights_used: Record<string, number>,
 *   parts: Record<string, {value: number, [key: string]: any}|null>, image_source: "trainer"|"qc"|null,
 *   osaus_mean?: number|null, image_quality_mean?: number|null, overall?: number|null}} Score
 *   qc.score's session score: total and part values 0–1 (higher is better), the weights configured and used
 * @typedef {{id: string, recording_id: string, consultation_id: string, exam_type: string,
 *   recording_started_at: string, duration_seconds: number|null, site: Site, sonographer: Person|null,
 *   trainer: Person, osaus: Record<string, number>, image_quality: Record<string, number|null>,
 *   comments: Comment[], score: Score, created_at: string, updated_at: string}} Review
 * @typedef {{key: string, label: string, nullable?: boolean}} Item
 * @typedef {{scale: [number, number], osaus: Item[], image_quality: Item[], weights: Record<string, number>,
 *   components: Record<string, string>, max_comments: number}} Scheme
 * @typedef {{seconds: number, loss_pct: number|null, rtt_p95_ms: number|null, freeze_ratio: number|null,
 *   drop_pct: number|null, freeze_count?: number, value: number|null}} LinkSummary
 * @typedef {{code: string, text: string, raised_at: number, cleared_at: number|null}} Alert
 * @typedef {{source: string, completeness: {protocol: string, value: number,
 *   items: {key: string, label: string, done: boolean}[]}|null,
 *   image: Record<string, {score: number, metrics?: Record<string, number>}|null>|null,
 *   link: LinkSummary|null, alerts: Alert[], freezes: {start: number, end: number}[]}} SessionQc
 */

const id = encodeURIComponent;

/** The parts of the session score (qc/score.py), in the order the page shows them. */
/** The parts of a session's score, in the order shown (their words: review.part.<part>). */
export const SCORE_PARTS = /** @type {const} */ (["osaus", "image", "completeness", "link"]);


// ---- calls ---------------------------------------------------------------------------------------------

/**
 * @param {Record<string, string|undefined|null>} params
 * @returns {string} "?a=1&b=2", or "" without any value
 */
export function queryString(params) {
  const parts = Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => `${id(key)}=${id(String(value))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

/**
 * @param {Api} api
 * @param {{site?: string, sonographer?: string, state?: string}} [filters]
 * @returns {Promise<Recording[]>}
 */
export async function listRecordings(api, filters = {}) {
  const data = await api.request("GET", `/recordings${queryString(filters)}`);
  return data.recordings;
}

/**
 * @param {Api} api
 * @param {string} recordingId
 * @returns {Promise<Recording>}
 */
export function getRecording(api, recordingId) {
  return api.request("GET", `/recordings/${id(recordingId)}`);
}

/**
 * @param {Api} api
 * @param {string} recordingId
 * @param {number} [segment]
 * @returns {Promise<Timeline>}
 */
export function getTimeline(api, recordingId, segment = 0) {
  return api.request("GET", `/recordings/${id(recordingId)}/timeline${segment ? `?segment=${segment}` : ""}`);
}

/**
 * The MP4 of a segment, for a <video> (same origin, the session cookie; HTTP Range for seeking).
 * @param {Api} api
 * @param {string} recordingId
 * @param {number} [segment]
 */
export function mediaUrl(api, recordingId, segment = 0) {
  return `${api.base}/recordings/${id(recordingId)}/media${segment ? `?segment=${segment}` : ""}`;
}

/** The longest wait between two asks for a review copy being made, whatever Retry-After says (seconds). */
export const MAX_MEDIA_WAIT = 10;

/**
 * Whether a segment's media can be played now. A de-identified reader (a trainer) is served a review copy with the
 * patient banner masked, made on their first ask: until it is ready the server answers 409
 * `review_copy_pending` with `retry_after` (PROTOCOL.md §1). Asks for the first byte only.
 * @param {Api} api
 * @param {string} recordingId
 * @param {number} [segment]
 * @returns {Promise<{ready: true} | {ready: false, retryAfter: number}>} retryAfter in seconds
 * @throws {ApiError} any other refusal (`review_copy_failed`, `recording_not_complete`, `not_found`, …)
 */
export async function mediaStatus(api, recordingId, segment = 0) {
  let response;
  try {
    response = await api.fetch(mediaUrl(api, recordingId, segment), { headers: { Range: "bytes=0-0" }, credentials: "same-origin" });
  } catch (err) {
    throw new ApiError("network", `the server could not be reached (${String(err)})`, 0);
  }
  if (response.ok) {
    await response.arrayBuffer();
    return { ready: true };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  const code = data && typeof data.error === "string" ? data.error : `http_${response.status}`;
  const retryAfter = data && typeof data.retry_after === "number" ? data.retry_after : 0;
  if (code === "review_copy_pending") return { ready: false, retryAfter: Math.min(MAX_MEDIA_WAIT, Math.max(1, retryAfter)) };
  throw new ApiError(code, data && typeof data.message === "string" ? data.message : response.statusText || code,
    response.status, retryAfter);
}

/**
 * @param {Api} api
 * @param {string} recordingId
 * @returns {Promise<SessionQc>}
 */
export function getSessionQc(api, recordingId) {
  return api.request("GET", `/recordings/${id(recordingId)}/qc`);
}

/**
 * @param {Api} api
 * @returns {Promise<Scheme>}
 */
export function getScheme(api) {
  return api.request("GET", "/reviews/scheme");
}

/**
 * @param {Api} api
 * @param {string} recordingId
 * @returns {Promise<Review[]>}
 */
export async function recordingReviews(api, recordingId) {
  const data = await api.request("GET", `/recordings/${id(recordingId)}/reviews`);
  return data.reviews;
}

/**
 * Save the signed-in trainer's review (created or replaced). 400 `invalid_review` names the bad `field`.
 * @param {Api} api
 * @param {string} recordingId
 * @param {{osaus: Record<string, number|null>, image_quality: Record<string, number|null>, comments: Comment[]}} body
 * @returns {Promise<Review>}
 */
export function saveReview(api, recordingId, body) {
  return api.request("PUT", `/recordings/${id(recordingId)}/review`, body);
}

/**
 * @param {Api} api
 * @param {{sonographer?: string, site?: string, trainer?: string}} [filters]
 * @returns {Promise<Review[]>}
 */
export async function listReviews(api, filters = {}) {
  const data = await api.request("GET", `/reviews${queryString(filters)}`);
  return data.reviews;
}

/**
 * @typedef {{recording_id: string, at: string, site_id: string, sonographer_id: string|null, value: number}} DashboardPoint
 * @typedef {{key: string, label: string, range: [number, number]|null}} DashboardMetric
 * @typedef {{weights: Record<string, number>, metrics: DashboardMetric[],
 *   sessions: ({reviews: number} & Record<string, unknown>)[], series: Record<string, DashboardPoint[]>,
 *   sonographers: Person[], sites: Site[], truncated: boolean}} Dashboard recordings/dashboard.py's answer
 */

/**
 * @param {Api} api
 * @param {{site?: string, sonographer?: string, from?: string, to?: string}} [filters]
 * @returns {Promise<Dashboard>}
 */
export function getDashboard(api, filters = {}) {
  return api.request("GET", `/qc/dashboard${queryString(filters)}`);
}

/**
 * @typedef {{report: {id: string, version: number, kind: string, state: string, content: Record<string, unknown>,
 *   computed: Record<string, unknown>, author: Person, approved_at: string|null, amends_id: string|null},
 *   study: {id: string, study_uid: string, modality: string, description: string|null, accession: string|null,
 *   study_date: string|null, site: Site}}} PeerSampleItem a final report to peer-review, with its study
 * @typedef {{id: string, report_id: string, category: string} & Record<string, unknown>} PeerReview
 * @typedef {{reader: {id: string, name: string}, counts: Record<string, number>, total: number,
 *   discrepancies: number, significant: number, discrepancy_rate: number|null}} ReaderRow
 */

/**
 * A random sample of final X-ray and CT reports by other readers that the signed-in expert has not reviewed.
 * @param {Api} api
 * @param {number} [n]
 * @returns {Promise<PeerSampleItem[]>}
 */
export async function peerSample(api, n = 5) {
  const data = await api.request("GET", `/peer-reviews/sample?n=${n}`);
  return data.reports;
}

/**
 * @param {Api} api
 * @param {string} reportId
 * @param {{score: number, significance: "a"|"b"|null, comment: string}} body
 * @returns {Promise<PeerReview>}
 */
export function submitPeerReview(api, reportId, body) {
  return api.request("POST", `/reports/${id(reportId)}/peer-reviews`, body);
}

/**
 * @param {Api} api
 * @param {{from?: string, to?: string}} [filters]
 * @returns {Promise<{readers: ReaderRow[]}>}
 */
export function peerSummary(api, filters = {}) {
  return api.request("GET", `/peer-reviews/summary${queryString(filters)}`);
}

// ---- the dashboard's series ---------------------------------------------------------------------------------------

/**
 * A dashboard metric's points as chart series, one per sonographer or per site (named from the answer's lists).
 * @param {{recording_id: string, at: string, site_id: string, sonographer_id: string|null, value: number}[]} points
 * @param {"sonographer"|"site"} by
 * @param {Map<string, string>} names id → name
 * @returns {{key: string, name: string, points: {x: number, y: number, id: string}[]}[]}
 */
export function groupSeries(points, by, names) {
  /** @type {Map<string, {x: number, y: number, id: string}[]>} */
  const groups = new Map();
  for (const p of points) {
    const key = (by === "site" ? p.site_id : p.sonographer_id) ?? "";
    const list = groups.get(key) ?? [];
    list.push({ x: Date.parse(p.at), y: p.value, id: p.recording_id });
    groups.set(key, list);
  }
  return [...groups]
    .map(([key, list]) => ({ key, name: names.get(key) ?? (key ? key : "unknown"), points: list }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * @typedef {{name: string, size: number, sha256: string}} ExportedFile
 * @typedef {{kind: string, created_at: string, files: ExportedFile[], removed: string[], warnings: string[]}} TeachingManifest
 * @typedef {{id: string, recording_id: string|null, state: "running"|"done"|"failed", progress: number|null,
 *   reason: string|null, manifest: TeachingManifest|null}} TeachingExport
 */

/**
 * Start a de-identified teaching copy of a complete recording (trainers and admins; 409 `export_busy` while
 * another runs, 409 `recording_not_complete`).
 * @param {Api} api
 * @param {string} recordingId
 * @returns {Promise<TeachingExport>}
 */
export function startTeachingExport(api, recordingId) {
  return api.request("POST", `/recordings/${id(recordingId)}/teaching-export`);
}

/**
 * @param {Api} api
 * @param {string} exportId
 * @returns {Promise<TeachingExport>}
 */
export function getTeachingExport(api, exportId) {
  return api.request("GET", `/teaching-exports/${id(exportId)}`);
}

/**
 * A file of a finished export, for a download link (same origin, the session cookie).
 * @param {Api} api
 * @param {string} exportId
 * @param {string} name
 */
export function teachingFileUrl(api, exportId, name) {
  return `${api.base}/teaching-exports/${id(exportId)}/files/${encodeURIComponent(name)}`;
}

/**
 * A stored image as a de-identified DICOM file, for a download link (experts, trainers and admins).
 * @param {Api} api
 * @param {string} sopUid
 */
export function teachingStillUrl(api, sopUid) {
  return `${api.base}/teaching/instances/${encodeURIComponent(sopUid)}`;
}
