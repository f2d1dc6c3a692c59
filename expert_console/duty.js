// @ts-check
// The on-duty roster over the public API (signaling_server/duty/routes.py). No DOM.

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {{id: string, user: {id: string, name: string}, starts_at: string, ends_at: string, note: string,
 *   created_by: string, created_at: string}} Shift
 * @typedef {{on_duty: {user: {id: string, name: string}, until: string}[],
 *   me: {on_duty: boolean, until: string|null}}} OnDutyNow
 */

/**
 * The shifts overlapping [from, to) (the server's default: the coming 7 days).
 * @param {Api} api
 * @param {Date} [from]
 * @param {Date} [to]
 * @returns {Promise<Shift[]>}
 */
export async function listShifts(api, from, to) {
  const query = new URLSearchParams();
  if (from) query.set("from", from.toISOString());
  if (to) query.set("to", to.toISOString());
  const data = await api.request("GET", `/duty${query.size ? `?${query}` : ""}`);
  return data.shifts;
}

/**
 * @param {Api} api
 * @param {string} [siteId] only the experts serving this site
 * @returns {Promise<OnDutyNow>}
 */
export function onDutyNow(api, siteId) {
  return api.request("GET", `/duty/now${siteId ? `?site_id=${encodeURIComponent(siteId)}` : ""}`);
}

/**
 * @param {Api} api
 * @param {{user_id: string, starts_at: Date, ends_at: Date, note: string}} shift
 * @returns {Promise<Shift>}
 */
export function addShift(api, shift) {
  return api.request("POST", "/duty", {
    user_id: shift.user_id, starts_at: shift.starts_at.toISOString(), ends_at: shift.ends_at.toISOString(),
    note: shift.note,
  });
}

/**
 * @param {Api} api
 * @param {string} shiftId
 */
export function removeShift(api, shiftId) {
  return api.request("DELETE", `/duty/${encodeURIComponent(shiftId)}`);
}
