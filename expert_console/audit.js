// @ts-check
// The audit trail over /api/v1/audit (signaling_server/audit/routes.py, docs/SECURITY.md §6): a page of rows for
// the page's filters, the CSV export's address for the same filters, and the words a row is shown with. No DOM.

import { has, t } from "./i18n.js";
import { queryString } from "./review.js";


/**
 * One row of the trail: who, from where, what, the result (signaling_server/audit/search.py `event_json`).
 * @typedef {{seq: number, at: string, actor_kind: string, actor_id: string|null, actor_name: string|null,
 *   actor_role: string|null, site_id: string|null, client: string|null, action: string, method: string,
 *   route: string, object_kind: string|null, object_id: string|null, study_id: string|null,
 *   patient_id: string|null, detail: Record<string, unknown>, status: number, outcome: string,
 *   row_hash: string}} AuditEvent
 * @typedef {{events: AuditEvent[], next: number|null}} AuditPage `next`: the `before` of the next (older) page
 * @typedef {Record<FilterKey, string>} AuditFilters
 * @typedef {typeof FILTER_KEYS[number]} FilterKey
 */

/** The filters the server knows, in the order the page shows them. */
export const FILTER_KEYS = /** @type {const} */ ([
  "user", "patient", "study", "kind", "action", "result", "from", "to",
]);
/** coverage.py's actions. */
export const ACTIONS = ["read", "search", "join", "print", "export", "write", "store", "send", "associate"];
export const PAGE_SIZE = 50;

/**
 * The page's filters from its URL (unknown keys are dropped, missing ones are "").
 * @param {URLSearchParams} query
 * @returns {AuditFilters}
 */
export function filtersFrom(query) {
  const filters = /** @type {AuditFilters} */ ({});
  for (const key of FILTER_KEYS) filters[key] = (query.get(key) ?? "").trim();
  return filters;
}

/**
 * One page of rows, newest first; `before` is the previous page's `next` (null: the newest page).
 * @param {import("./api.js").Api} api
 * @param {AuditFilters} filters
 * @param {number|null} [before]
 * @returns {Promise<AuditPage>}
 */
export function auditPage(api, filters, before = null) {
  const paging = { before: before === null ? "" : String(before), limit: String(PAGE_SIZE) };
  return api.request("GET", `/audit${queryString({ ...filters, ...paging })}`);
}

/**
 * The CSV export of every row matching `filters` (a link: the browser downloads it with the session cookie).
 * @param {import("./api.js").Api} api
 * @param {AuditFilters} filters
 */
export function csvUrl(api, filters) {
  return `${api.base}/audit.csv${queryString(filters)}`;
}

/**
 * Who acted, in words: a user's name and role, a device, a DICOM peer's AE title, the server, or nobody known.
 * @param {AuditEvent} e
 */
export function actorText(e) {
  if (e.actor_kind === "anonymous") return t("audit.anonymous");
  const role = e.actor_role ? ` (${has(`nav.role.${e.actor_role}`) ? t(`nav.role.${e.actor_role}`) : e.actor_role})` : "";
  return `${e.actor_name ?? e.actor_id ?? e.actor_kind}${role}`;
}

/**
 * The object a row names: "report 1f2e…", or the route's collection.
 * @param {AuditEvent} e
 */
export function objectText(e) {
  return e.object_id ? `${e.object_kind ?? ""} ${e.object_id}`.trim() : e.object_kind ?? "";
}

/**
 * What else the row keeps (the query of a search, the other path parts, the instances a STOW stored), compact.
 * @param {AuditEvent} e
 */
export function detailText(e) {
  return Object.keys(e.detail).length ? JSON.stringify(e.detail) : "";
}

/**
 * The result: "200 ok", "404 not_found".
 * @param {AuditEvent} e
 */
export function resultText(e) {
  return `${e.status} ${e.outcome}`;
}
