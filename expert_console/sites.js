// @ts-check
// Sites and their edge devices over /api/v1 (signaling_server/api/admin_routes.py, reading/site_targets.py): the
// admin's calls. No DOM.

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {"community"|"regional"|"hospital"} SiteKind
 * @typedef {Record<string, number|Record<string, number>>} Turnaround minutes by modality (and priority)
 * @typedef {"acr_tirads"|"c_tirads"} ThyroidSystem
 * @typedef {{id: string, code: string, name: string, kind: SiteKind, recording_enabled: boolean,
 *   turnaround: Turnaround, thyroid_system: ThyroidSystem, ae_titles?: string[]}} AdminSite
 * @typedef {{site_id: string, code: string, name: string, address: string, phone: string, logo: boolean}} Header
 *   what a site's printed reports carry at the top (docs/RESULTS.md)
 * @typedef {{id: string, site_id: string, name: string, revoked: boolean, created_at: string,
 *   last_seen_at: string|null}} Device
 */

/** @type {readonly ThyroidSystem[]} */
export const THYROID_SYSTEMS = ["acr_tirads", "c_tirads"];
/** @type {readonly SiteKind[]} */
export const SITE_KINDS = ["community", "regional", "hospital"];
/** The modalities and priorities the targets grid offers (CLINICAL.md §4); others stay settable over the API. */
export const TARGET_MODALITIES = ["CR", "DX", "CT", "US"];
export const PRIORITIES = ["routine", "urgent", "stat"];

const id = encodeURIComponent;

/** @param {Api} api @returns {Promise<AdminSite[]>} */
export async function listSites(api) {
  return (await api.request("GET", "/sites")).sites;
}

/** @param {Api} api @param {{code: string, name: string, kind: SiteKind}} site @returns {Promise<AdminSite>} */
export function createSite(api, site) {
  return api.request("POST", "/sites", site);
}

/** @param {Api} api @param {string} siteId @param {SiteKind} kind @returns {Promise<AdminSite>} */
export function setKind(api, siteId, kind) {
  return api.request("POST", `/sites/${id(siteId)}/kind`, { kind });
}

/** @param {Api} api @param {string} siteId @param {boolean} enabled @returns {Promise<AdminSite>} */
export function setRecording(api, siteId, enabled) {
  return api.request("POST", `/sites/${id(siteId)}/recording`, { enabled });
}

/** @param {Api} api @param {string} siteId @param {Turnaround} turnaround @returns {Promise<AdminSite>} */
export function setTurnaround(api, siteId, turnaround) {
  return api.request("POST", `/sites/${id(siteId)}/turnaround`, { turnaround });
}

/**
 * The targets grid's inputs as the API's object: a modality with every priority empty is left out (the server's
 * targets hold); a value that is not a whole positive number is kept as typed, for the server to refuse.
 * @param {Record<string, Record<string, string>>} grid modality → priority → the input's text
 * @returns {Turnaround}
 */
export function turnaroundFromGrid(grid) {
  /** @type {Turnaround} */
  const out = {};
  for (const [modality, row] of Object.entries(grid)) {
    /** @type {Record<string, number>} */
    const given = {};
    for (const [priority, text] of Object.entries(row)) {
      if (text.trim() === "") continue;
      given[priority] = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : /** @type {any} */ (text.trim());
    }
    if (Object.keys(given).length) out[modality] = given;
  }
  return out;
}

/**
 * A site's own target for a modality and priority, as the grid shows it ("" when the server's holds).
 * @param {Turnaround} turnaround @param {string} modality @param {string} priority
 */
export function ownTarget(turnaround, modality, priority) {
  const row = turnaround[modality];
  if (row === undefined) return "";
  if (typeof row === "number") return String(row);
  return row[priority] === undefined ? "" : String(row[priority]);
}

/** @param {Api} api @param {string} siteId @param {ThyroidSystem} system @returns {Promise<AdminSite>} */
export function setThyroidSystem(api, siteId, system) {
  return api.request("POST", `/sites/${id(siteId)}/thyroid-system`, { system });
}

/** @param {Api} api @param {string} siteId @returns {Promise<Header>} */
export function getHeader(api, siteId) {
  return api.request("GET", `/sites/${id(siteId)}/header`);
}

/** @param {Api} api @param {string} siteId @param {{name: string, address: string, phone: string}} header
 * @returns {Promise<Header>} */
export function setHeader(api, siteId, header) {
  return api.request("PUT", `/sites/${id(siteId)}/header`, header);
}

/** @param {Api} api @param {string} siteId @param {File} image a PNG or JPEG @returns {Promise<Header>} */
export function setLogo(api, siteId, image) {
  return api.request("PUT", `/sites/${id(siteId)}/logo`, image);
}

/** @param {Api} api @param {string} siteId @returns {Promise<Header>} */
export function removeLogo(api, siteId) {
  return api.request("DELETE", `/sites/${id(siteId)}/logo`);
}

/** The logo's address (the server checks who asks). @param {string} siteId @param {number} [version] */
export function logoUrl(siteId, version = 0) {
  return `/api/v1/sites/${id(siteId)}/logo?v=${version}`;
}

/** @param {Api} api @returns {Promise<Device[]>} */
export async function listDevices(api) {
  return (await api.request("GET", "/devices")).devices;
}

/** @param {Api} api @param {string} siteId @param {string} name @returns {Promise<{device: Device, credential: string}>} */
export function registerDevice(api, siteId, name) {
  return api.request("POST", "/devices", { site_id: siteId, name });
}

/** @param {Api} api @param {string} deviceId @returns {Promise<{device: Device, credential: string}>} */
export function rotateDevice(api, deviceId) {
  return api.request("POST", `/devices/${id(deviceId)}/rotate`);
}

/** @param {Api} api @param {string} deviceId @returns {Promise<Device>} */
export function revokeDevice(api, deviceId) {
  return api.request("POST", `/devices/${id(deviceId)}/revoke`);
}
