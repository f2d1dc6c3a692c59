// @ts-check
// Orders over /api/v1/orders (signaling_server/orders/routes.py, docs/ORDERS.md): place, list, cancel. No DOM.

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {"scheduled"|"in_progress"|"completed"|"cancelled"} OrderState
 * @typedef {"routine"|"urgent"|"stat"} OrderPriority
 * @typedef {{id: string, name: string, role: string}} OrderPerson
 * @typedef {{id: string, accession: string, state: OrderState, priority: OrderPriority,
 *   site: {id: string, code: string, name: string}, ordered_by: OrderPerson|null,
 *   patient: {id: string, local_id: string, name: string, birth_date: string, sex: string},
 *   exam: {modality: string, body_part: string, description: string}, reason: string, clinical_info: string,
 *   station_ae: string|null, scheduled_at: string, study_uid: string, created_at: string, started_at: string|null,
 *   completed_at: string|null, cancelled_at: string|null, cancelled_by: OrderPerson|null, cancel_reason: string,
 *   study_id: string|null, report_id: string|null, links: {study?: string, report?: string, report_print?: string}}}
 *   Order
 * @typedef {{patient: {id: string, name: string, birth_date?: string, sex?: string},
 *   exam: {modality: string, body_part?: string, description?: string}, reason: string, clinical_info?: string,
 *   priority?: OrderPriority, accession?: string, scheduled_at?: string, station_ae?: string}} OrderForm
 */

/** Who places and cancels orders (for their own site): community doctors and sonographers. */
export const ORDERING_ROLES = ["doctor", "sonographer"];
export const PRIORITIES = /** @type {const} */ (["routine", "urgent", "stat"]);
export const STATES = /** @type {const} */ (["scheduled", "in_progress", "completed", "cancelled"]);
/** The exams the form offers: modality and body part (the catalog key `orders.exam.<MODALITY>_<PART>` names them). */
export const EXAMS = /** @type {const} */ ([
  ["US", "THYROID"], ["US", "CAROTID"], ["US", "BREAST"], ["US", "ABDOMEN"],
  ["DX", "CHEST"], ["CT", "HEAD"], ["CT", "CHEST"],
]);

/** @param {Api} api @param {string} [state] comma-separated states @returns {Promise<Order[]>} */
export async function listOrders(api, state = "") {
  const query = state ? `?state=${encodeURIComponent(state)}` : "";
  const data = await api.request("GET", `/orders${query}`);
  return data.orders;
}

/** @param {Api} api @param {OrderForm} form @returns {Promise<Order>} */
export function placeOrder(api, form) {
  return api.request("POST", "/orders", form);
}

/** @param {Api} api @param {string} id @param {string} reason @returns {Promise<Order>} */
export function cancelOrder(api, id, reason) {
  return api.request("POST", `/orders/${encodeURIComponent(id)}/cancel`, { reason });
}
