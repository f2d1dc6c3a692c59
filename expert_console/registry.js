// @ts-check
// The registrar's regional patient index over /api/v1 (signaling_server/dicomstore/DICOMWEB.md §Patients,
// docs/SECURITY.md §3): the possible matches to decide, the links made (to split back), one identity. No DOM.

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {{site: {id: string, code: string|null}, local_id: string}} SiteIdentifier a site's own patient ID
 * @typedef {{issuer: string, value: string}} RegionalId the region's shared ID
 * @typedef {{id: string, name: string, birth_date: string, sex: string, identifiers: SiteIdentifier[],
 *   regional_ids: RegionalId[], created_at: string}} Patient one regional identity (a registrar sees all of it)
 * @typedef {"regional_id"|"look_alike"|"unlinked"} MatchReason
 * @typedef {{id: string, reason: MatchReason, detail: Record<string, unknown>,
 *   state: "open"|"confirmed"|"rejected", patient: Patient, candidate: Patient, created_at: string,
 *   decided_by: string|null, decided_at: string|null, link_id: string|null}} Match a possible match: `patient`
 *   arrived and looks like `candidate`
 * @typedef {{id: string, kept_id: string, merged_id: string, reason: "regional_id"|"registrar",
 *   state: "linked"|"unlinked", moved: {identifiers?: unknown[], studies?: unknown[]}, by: string|null,
 *   at: string, unlinked_by: string|null, unlinked_at: string|null}} Link `merged_id` linked into `kept_id`
 */

const id = encodeURIComponent;

/**
 * @param {Api} api
 * @param {"open"|"confirmed"|"rejected"} state
 * @returns {Promise<Match[]>}
 */
export async function listMatches(api, state) {
  return (await api.request("GET", `/patient-matches?state=${id(state)}`)).matches;
}

/** The two are one person: linked. @param {Api} api @param {string} matchId @returns {Promise<{match: Match, link: Link}>} */
export function confirmMatch(api, matchId) {
  return api.request("POST", `/patient-matches/${id(matchId)}/confirm`);
}

/** Two different people: kept apart for good. @param {Api} api @param {string} matchId @returns {Promise<Match>} */
export function rejectMatch(api, matchId) {
  return api.request("POST", `/patient-matches/${id(matchId)}/reject`);
}

/** The links made, newest first. @param {Api} api @returns {Promise<Link[]>} */
export async function listLinks(api) {
  return (await api.request("GET", "/patient-links")).links;
}

/** Split a link back (the pair then stays apart). @param {Api} api @param {string} linkId @returns {Promise<Link>} */
export function unlink(api, linkId) {
  return api.request("POST", `/patient-links/${id(linkId)}/unlink`);
}

/** One identity that is not linked into another. @param {Api} api @param {string} patientId @returns {Promise<Patient>} */
export function readPatient(api, patientId) {
  return api.request("GET", `/patients/${id(patientId)}`);
}

/**
 * Every identity the matches show, by id (what the links list names its two sides with).
 * @param {Match[]} matches
 * @returns {Map<string, Patient>}
 */
export function patientsOf(matches) {
  const found = new Map();
  for (const m of matches) {
    found.set(m.patient.id, m.patient);
    found.set(m.candidate.id, m.candidate);
  }
  return found;
}

/**
 * A DICOM date (YYYYMMDD) as YYYY-MM-DD; anything else as it is.
 * @param {string} date
 */
export function dicomDate(date) {
  return /^\d{8}$/.test(date) ? `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6)}` : date;
}

/**
 * Each identifier of an identity as "site: ID" (its sites' own IDs first, then the regional ones as "issuer: ID").
 * @param {Patient} patient
 * @returns {string[]}
 */
export function identifierLines(patient) {
  return [
    ...patient.identifiers.map((i) => `${i.site.code ?? i.site.id}: ${i.local_id}`),
    ...patient.regional_ids.map((r) => `${r.issuer}: ${r.value}`),
  ];
}

/**
 * How many site identifiers and studies a link moved.
 * @param {Link} link
 * @returns {{identifiers: number, studies: number}}
 */
export function movedCounts(link) {
  return { identifiers: link.moved.identifiers?.length ?? 0, studies: link.moved.studies?.length ?? 0 };
}
