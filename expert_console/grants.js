// @ts-check
// Access grants over /api/v1/grants (signaling_server/PROTOCOL.md §1, docs/SECURITY.md §3): who is opened which
// patients, studies, reports or consultations, why and until when; made and revoked by registrars and admins. No DOM.

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {"referral"|"shared_report"|"consultation"} GrantKind
 * @typedef {"patient"|"study"|"report"|"consultation"} ObjectKind
 * @typedef {{kind: ObjectKind, id: string}} GrantObject
 * @typedef {{user_id: string}|{site_id: string}} Grantee
 * @typedef {{id: string, kind: GrantKind, grantee: {user_id: string|null, site_id: string|null},
 *   objects: GrantObject[], valid_from: string, valid_until: string|null, reason: string, created_by: string|null,
 *   created_at: string, revoked_at: string|null, revoked_by: string|null, active: boolean}} Grant
 * @typedef {{kind: GrantKind, grantee: Grantee, objects: GrantObject[], valid_until: string, reason: string}} NewGrant
 * @typedef {{id: string, username: string, name: string, role: string, site_id: string|null, serves: string[]}} Person
 *   someone a grant may name, as the lookup shows them (nothing of their account)
 */

/** The kinds a person makes (a consultation's own grants are made by the server, but one may be made by hand). */
export const GRANT_KINDS = /** @type {const} */ (["referral", "shared_report", "consultation"]);
/** What each kind may open (signaling_server/access/grants.py OPENS). */
export const OPENS = /** @type {Record<GrantKind, ObjectKind[]>} */ ({
  referral: ["patient", "study"],
  shared_report: ["report"],
  consultation: ["consultation", "patient", "study"],
});
/** How long a new grant holds unless changed (days). */
export const DEFAULT_DAYS = 7;

/** The grants in force now (registrars and admins see every one). @param {Api} api @returns {Promise<Grant[]>} */
export async function listActiveGrants(api) {
  return (await api.request("GET", "/grants?active=1")).grants;
}

/** The fewest characters the people lookup takes (the server refuses fewer with `invalid_request`). */
export const LOOKUP_MIN = 2;

/**
 * People whose username or name holds `words` (registrars and admins; at most 20, `truncated` when more matched).
 * @param {Api} api
 * @param {string} words
 * @returns {Promise<{users: Person[], truncated: boolean}>}
 */
export function lookupPeople(api, words) {
  return api.request("GET", `/users/lookup?q=${encodeURIComponent(words.trim())}`);
}

/**
 * The user ID the grantee field names: a person the lookup found, by username (any case) or ID; else the text as
 * typed, taken as a user ID (the server refuses one that names nobody).
 * @param {string} typed
 * @param {Iterable<Person>} found
 * @returns {string}
 */
export function granteeId(typed, found) {
  const text = typed.trim();
  const folded = text.toLowerCase();
  for (const person of found) {
    if (person.username.toLowerCase() === folded || person.id === text) return person.id;
  }
  return text;
}

/** @param {Api} api @param {NewGrant} grant @returns {Promise<Grant>} */
export function createGrant(api, grant) {
  return api.request("POST", "/grants", grant);
}

/** Revoke now. @param {Api} api @param {string} grantId @returns {Promise<Grant>} */
export function revokeGrant(api, grantId) {
  return api.request("POST", `/grants/${encodeURIComponent(grantId)}/revoke`);
}

/**
 * A `datetime-local` input's value (the browser's local time, no zone) as an ISO instant with its zone ("…Z"),
 * or null when it is empty or not a time.
 * @param {string} local
 * @returns {string|null}
 */
export function instantOf(local) {
  if (!local) return null;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * The `datetime-local` value (local time, to the minute) `days` after `now`.
 * @param {Date} now
 * @param {number} days
 */
export function localInput(now, days) {
  const at = new Date(now.getTime() + days * 86_400_000);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/**
 * The objects typed into the form: one "kind id" pair per filled row, ids trimmed.
 * @param {{kind: string, id: string}[]} rows
 * @returns {GrantObject[]}
 */
export function objectsOf(rows) {
  return rows
    .map((r) => ({ kind: /** @type {ObjectKind} */ (r.kind), id: r.id.trim() }))
    .filter((o) => o.id !== "");
}
