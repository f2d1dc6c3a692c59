// @ts-check
// Results back to the community (docs/RESULTS.md): the exams of one's own site in the district's five states, the
// approved report as a printed page or PDF, the images as a DICOM or JPEG zip. The calls and URLs only; no DOM.

/** The community states, in the order an exam goes through them (登记 / 检查 / 匹配 / 报告 / 审核). */
export const RESULT_STATES = /** @type {const} */ (["registered", "examined", "matched", "reported", "approved"]);

/**
 * @typedef {typeof RESULT_STATES[number]} ResultState
 * @typedef {{id: string, version: number, state: string, approved_at: string|null,
 *   approver: {id: string, name: string}|null}} ApprovedReport
 * @typedef {{study_id: string, study_uid: string, site: {id: string, code: string, name: string},
 *   patient: {name: string, local_id: string}, accession: string, modality: string, description: string,
 *   study_date: string, state: ResultState, registered_at: string|null, examined_at: string|null,
 *   reported_at: string|null, approved_at: string|null, instance_count: number,
 *   report: ApprovedReport|null}} Result
 */

/**
 * The exams the caller sees in full, newest first (GET /api/v1/results).
 * @param {import("./api.js").Api} api
 * @param {ResultState[]} [states] none: every state
 * @returns {Promise<Result[]>}
 */
export async function listResults(api, states = []) {
  const query = states.length ? `?state=${encodeURIComponent(states.join(","))}` : "";
  const body = await api.request("GET", `/results${query}`);
  return body.results;
}

/**
 * @param {import("./api.js").Api} api
 * @param {string} reportId
 * @returns {Promise<{id: string, study_id: string, state: string, version: number}>}
 */
export function readReport(api, reportId) {
  return api.request("GET", `/reports/${encodeURIComponent(reportId)}`);
}

/**
 * The printed report as a PDF download, or shown inline (the browser's own viewer prints it).
 * @param {string} reportId
 * @param {string} language zh-CN or en
 * @param {{inline?: boolean}} [options]
 */
export function pdfUrl(reportId, language, { inline = false } = {}) {
  const query = new URLSearchParams({ language });
  if (inline) query.set("inline", "1");
  return `/api/v1/reports/${encodeURIComponent(reportId)}/pdf?${query}`;
}

/**
 * The printed report as an HTML page (no script; the console frames it and prints it).
 * @param {string} reportId
 * @param {string} language
 */
export function printedPageUrl(reportId, language) {
  return `/api/v1/reports/${encodeURIComponent(reportId)}/printed.html?${new URLSearchParams({ language })}`;
}

/**
 * @param {string} studyId
 * @param {"dicom"|"jpeg"} kind
 */
export function imagesUrl(studyId, kind) {
  return `/api/v1/studies/${encodeURIComponent(studyId)}/${kind}.zip`;
}

/**
 * A DICOM date (YYYYMMDD) as 2026-12-07; anything else as it is.
 * @param {string} value
 */
export function dicomDate(value) {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` : value;
}

/** @typedef {{sop_uid: string, frame: number}} ChosenImage an image chosen for a report: its instance and frame */

/**
 * The images chosen for a report (GET /reports/{id}/images).
 * @param {import("./api.js").Api} api
 * @param {string} reportId
 * @returns {Promise<ChosenImage[]>}
 */
export async function reportImages(api, reportId) {
  return (await api.request("GET", `/reports/${encodeURIComponent(reportId)}/images`)).images;
}

/**
 * Replace a draft's images (its author, holding the study's lock).
 * @param {import("./api.js").Api} api
 * @param {string} reportId
 * @param {ChosenImage[]} images
 * @returns {Promise<ChosenImage[]>}
 */
export async function chooseReportImages(api, reportId, images) {
  return (await api.request("PUT", `/reports/${encodeURIComponent(reportId)}/images`, { images })).images;
}
