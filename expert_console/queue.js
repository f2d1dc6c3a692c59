// @ts-check
// The reading queue over /api/v1 (PROTOCOL.md §5): studies, claim/renew/release, priority, critical findings,
// and the pure logic the queue and study pages share: countdowns against the server's clock, the escalation
// class of a deadline, and the queue's filters kept in the URL. No DOM.

import { formatDateTime, formatTime, t } from "./i18n.js";

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {{id: string, code: string, name: string}} Site
 * @typedef {{holder: {id: string, name: string}, expires_at: string}} Lock
 * @typedef {{id: string, study_uid: string, site: Site,
 *   patient: {id: string|null, local_id: string, name: string, deidentified?: boolean},
 *   accession: string, modality: string, description: string, study_date?: string, state: string, priority: string,
 *   registered_at: string, examined_at: string|null, due_at: string|null, reported_at?: string|null,
 *   approved_at?: string|null, seconds_left: number|null, overdue: boolean, lock: Lock|null,
 *   instance_count: number, consultation_id: string|null}} Study
 * @typedef {Study & {priors: Study[], now: string}} StudyDetail
 * @typedef {{now: string, counts: {open: number, overdue: number}, studies: Study[]}} Queue
 * @typedef {{id: string, study_id: string, accession: string, site_id: string,
 *   state: "flagged"|"escalated"|"acknowledged", finding: string, found_at: string,
 *   reported_by: string, notified_person: string|null, acknowledged_by: string|null, acknowledged_at: string|null,
 *   method: string, escalation_level: number, next_escalation_at: string|null}} Finding
 * @typedef {{site: string, modality: string[], state: string[], priority: string[], overdue: boolean}} Filters
 * @typedef {"ok"|"due-soon"|"overdue"|"none"} Escalation
 */

export const MODALITIES = ["CR", "DX", "CT", "US", "MR", "MG", "XA", "RF", "NM", "OT"];
export const STATES = ["registered", "examined", "matched", "reported", "approved"];
export const PRIORITIES = ["stat", "urgent", "routine"];
export const FINDING_METHODS = ["in-system", "phone", "in-person"];
/** A deadline is "due soon" when less than this share of its target time is left. */
export const DUE_SOON_SHARE = 0.25;

const id = encodeURIComponent;

// ---- calls ---------------------------------------------------------------------------------------------

/**
 * @param {Api} api
 * @param {Filters} filters
 * @returns {Promise<Queue>}
 */
export function listStudies(api, filters) {
  const query = apiQuery(filters);
  return api.request("GET", `/studies${query ? `?${query}` : ""}`);
}

/**
 * @param {Api} api
 * @param {string} studyId
 * @returns {Promise<StudyDetail>}
 */
export function getStudy(api, studyId) {
  return api.request("GET", `/studies/${id(studyId)}`);
}

/**
 * Take the reader's lock, or renew it when already held (409 `study_locked` names the holder).
 * @param {Api} api
 * @param {string} studyId
 * @returns {Promise<Study>}
 */
export function claimStudy(api, studyId) {
  return api.request("POST", `/studies/${id(studyId)}/claim`);
}

/**
 * @param {Api} api
 * @param {string} studyId
 * @returns {Promise<Study>}
 */
export function releaseStudy(api, studyId) {
  return api.request("POST", `/studies/${id(studyId)}/release`);
}

/**
 * @param {Api} api
 * @param {string} studyId
 * @param {string} priority
 * @returns {Promise<Study>}
 */
export function setPriority(api, studyId, priority) {
  return api.request("POST", `/studies/${id(studyId)}/priority`, { priority });
}

/**
 * @param {Api} api
 * @returns {Promise<Site[]>}
 */
export async function listSites(api) {
  const data = await api.request("GET", "/sites");
  return data.sites;
}

/**
 * The lock holder flags a critical finding; the study's site is notified.
 * @param {Api} api
 * @param {string} studyId
 * @param {{finding: string, method: string, notified_person?: string}} body
 * @returns {Promise<Finding>}
 */
export function flagFinding(api, studyId, body) {
  return api.request("POST", `/studies/${id(studyId)}/findings`, body);
}

/**
 * @param {Api} api
 * @param {string} studyId
 * @returns {Promise<Finding[]>}
 */
export async function studyFindings(api, studyId) {
  const data = await api.request("GET", `/studies/${id(studyId)}/findings`);
  return data.findings;
}

/**
 * The open critical findings the caller may see (a sonographer: their site's).
 * @param {Api} api
 * @returns {Promise<Finding[]>}
 */
export async function openFindings(api) {
  const data = await api.request("GET", "/findings");
  return data.findings;
}

/**
 * @param {Api} api
 * @param {string} findingId
 * @param {string} [notifiedPerson] defaults to the acknowledging user on the server
 * @returns {Promise<Finding>}
 */
export function acknowledgeFinding(api, findingId, notifiedPerson) {
  const body = notifiedPerson ? { notified_person: notifiedPerson } : {};
  return api.request("POST", `/findings/${id(findingId)}/acknowledge`, body);
}

// ---- the server's clock ------------------------------------------------------------------------------------

/**
 * How far the server's clock is ahead of this one (ms): countdowns run on the server's time, so a wrong
 * local clock never shows a study as on time when it is late.
 * @param {string} serverNow ISO time from an answer (`now`)
 * @param {number} [localNow] Date.now() when the answer arrived
 */
export function clockOffset(serverNow, localNow = Date.now()) {
  const server = Date.parse(serverNow);
  return Number.isFinite(server) ? server - localNow : 0;
}

/**
 * Seconds until the study's deadline (negative when overdue), or null when its clock is not running.
 * @param {Pick<Study, "due_at"|"seconds_left">} study
 * @param {number} offsetMs from clockOffset
 * @param {number} [localNow]
 */
export function secondsLeft(study, offsetMs, localNow = Date.now()) {
  if (study.seconds_left === null || study.seconds_left === undefined || !study.due_at) return null;
  const due = Date.parse(study.due_at);
  if (!Number.isFinite(due)) return null;
  return (due - (localNow + offsetMs)) / 1000;
}

/**
 * The study's target time in seconds (due − examined), or null.
 * @param {Pick<Study, "due_at"|"examined_at">} study
 */
export function targetSeconds(study) {
  if (!study.due_at || !study.examined_at) return null;
  const span = (Date.parse(study.due_at) - Date.parse(study.examined_at)) / 1000;
  return Number.isFinite(span) && span > 0 ? span : null;
}

/**
 * ok / due-soon (less than DUE_SOON_SHARE of the target left) / overdue; "none" when no clock runs.
 * @param {number|null} left seconds left
 * @param {number|null} target seconds
 * @returns {Escalation}
 */
export function escalation(left, target) {
  if (left === null) return "none";
  if (left < 0) return "overdue";
  if (target !== null && left < DUE_SOON_SHARE * target) return "due-soon";
  return "ok";
}

/**
 * "12:34 left", "1 h 05 min left", "overdue by 45 s", "overdue by 12 min", "overdue by 2 h 05 min"; "—" without a clock.
 * @param {number|null} left seconds
 */
export function formatCountdown(left) {
  if (left === null || !Number.isFinite(left)) return "—";
  if (left >= 0) {
    const s = Math.floor(left);
    if (s >= 3600) return t("queue.left_hours", { hours: Math.floor(s / 3600), minutes: pad(Math.floor((s % 3600) / 60)) });
    return t("queue.left", { clock: `${pad(Math.floor(s / 60))}:${pad(s % 60)}` });
  }
  const late = Math.floor(-left);
  if (late < 60) return t("queue.overdue_seconds", { seconds: late });
  const minutes = Math.floor(late / 60);
  if (minutes < 60) return t("queue.overdue_minutes", { minutes });
  return t("queue.overdue_hours", { hours: Math.floor(minutes / 60), minutes: pad(minutes % 60) });
}

/** @param {number} n */
function pad(n) {
  return String(n).padStart(2, "0");
}

/**
 * When something happened or ends, for people: the 24-hour clock time today, YYYY-MM-DD and the time otherwise.
 * @param {string|null|undefined} iso
 */
export function clockTime(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  return at.toDateString() === new Date().toDateString() ? formatTime(at) : formatDateTime(at);
}


// ---- filters ↔ URL ------------------------------------------------------------------------------------------

/** @returns {Filters} */
export function noFilters() {
  return { site: "", modality: [], state: [], priority: [], overdue: false };
}

/**
 * Filters from the page's query (`#/queue?site=north&modality=CR,CT&overdue=1`); unknown values are dropped.
 * @param {URLSearchParams} query
 * @returns {Filters}
 */
export function filtersFromQuery(query) {
  /** @param {string} key @param {string[]} allowed */
  const list = (key, allowed) =>
    (query.get(key) ?? "").split(",").map((v) => v.trim()).filter((v) => allowed.includes(v));
  return {
    site: (query.get("site") ?? "").trim(),
    modality: list("modality", MODALITIES),
    state: list("state", STATES),
    priority: list("priority", PRIORITIES),
    overdue: ["1", "true"].includes(query.get("overdue") ?? ""),
  };
}

/**
 * The same query string for the page URL and the API call (commas kept readable); empty filters are left out.
 * @param {Filters} filters
 * @returns {string} without the leading "?"
 */
export function apiQuery(filters) {
  /** @type {string[]} */
  const parts = [];
  if (filters.site) parts.push(`site=${encodeURIComponent(filters.site)}`);
  for (const key of /** @type {const} */ (["modality", "state", "priority"])) {
    if (filters[key].length) parts.push(`${key}=${filters[key].map(encodeURIComponent).join(",")}`);
  }
  if (filters.overdue) parts.push("overdue=1");
  return parts.join("&");
}

/**
 * The page's hash for these filters.
 * @param {Filters} filters
 */
export function queueHash(filters) {
  const query = apiQuery(filters);
  return `#/queue${query ? `?${query}` : ""}`;
}

/**
 * Is the lock live and held by `userId`? (The server leaves out expired locks.)
 * @param {Pick<Study, "lock">} study
 * @param {string} userId
 */
export function heldBy(study, userId) {
  return Boolean(study.lock && study.lock.holder.id === userId);
}
