// @ts-check
// Accounts over /api/v1 (signaling_server/PROTOCOL.md §1): an admin's calls on people's accounts, and everyone's
// calls on their own (password, second factor, sessions, API tokens). No DOM.

import { formatDateTime } from "./i18n.js";

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {import("./api.js").User} User
 * @typedef {{id: string, code: string, name: string}} Site
 * @typedef {{id: string, label: string, scope: "read"|"write", created_at: string, last_used_at: string|null,
 *   expires_at: string, expired: boolean, revoked: boolean}} Token an API token, never its secret
 * @typedef {{id: string, created_at: string, last_seen_at: string|null, expires_at: string, address: string|null,
 *   user_agent: string|null, current: boolean}} Session a browser session
 * @typedef {{secret: string, uri: string, qr_svg: string}} TotpEnrolment a second factor waiting for its first code
 * @typedef {{username: string, name: string, role: string, site_id?: string, password: string,
 *   must_change_password?: boolean}} NewUser
 */

const id = encodeURIComponent;

/** @param {Api} api @returns {Promise<User[]>} */
export async function listUsers(api) {
  return (await api.request("GET", "/users")).users;
}

/** @param {Api} api @returns {Promise<Site[]>} */
export async function listSites(api) {
  return (await api.request("GET", "/sites")).sites;
}

/** @param {Api} api @param {NewUser} user @returns {Promise<User>} */
export function createUser(api, user) {
  return api.request("POST", "/users", user);
}

/**
 * @param {Api} api
 * @param {string} userId
 * @param {{name?: string, role?: string, site_id?: string|null}} change
 * @returns {Promise<User>}
 */
export function updateUser(api, userId, change) {
  return api.request("PATCH", `/users/${id(userId)}`, change);
}

/** @param {Api} api @param {string} userId @returns {Promise<User>} */
export function disableUser(api, userId) {
  return api.request("POST", `/users/${id(userId)}/disable`);
}

/** @param {Api} api @param {string} userId @returns {Promise<User>} */
export function enableUser(api, userId) {
  return api.request("POST", `/users/${id(userId)}/enable`);
}

/**
 * A new password made by the server, shown once; the person changes it at their next sign-in.
 * @param {Api} api
 * @param {string} userId
 * @returns {Promise<{user: User, password: string}>}
 */
export function resetPassword(api, userId) {
  return api.request("POST", `/users/${id(userId)}/reset-password`, {});
}

/** @param {Api} api @param {string} userId @returns {Promise<User>} */
export function removeTotp(api, userId) {
  return api.request("POST", `/users/${id(userId)}/totp/remove`);
}

/** @param {Api} api @param {string|null} userId null: the caller's own @returns {Promise<Token[]>} */
export async function listTokens(api, userId) {
  return (await api.request("GET", userId ? `/users/${id(userId)}/tokens` : "/auth/tokens")).tokens;
}

/** @param {Api} api @param {string|null} userId null: the caller's own @returns {Promise<Session[]>} */
export async function listSessions(api, userId) {
  return (await api.request("GET", userId ? `/users/${id(userId)}/sessions` : "/auth/sessions")).sessions;
}

/** @param {Api} api @param {string} tokenId @returns {Promise<Token>} */
export function revokeToken(api, tokenId) {
  return api.request("POST", `/tokens/${id(tokenId)}/revoke`);
}

/** @param {Api} api @param {string} sessionId @returns {Promise<Session>} */
export function revokeSession(api, sessionId) {
  return api.request("POST", `/sessions/${id(sessionId)}/revoke`);
}

/**
 * @param {Api} api
 * @param {{label: string, scope: "read"|"write", days: number}} token
 * @returns {Promise<{token: string, api_token: Token}>} `token`: the secret, shown this once
 */
export function createToken(api, token) {
  return api.request("POST", "/auth/tokens", token);
}

/** @param {Api} api @param {string} password @returns {Promise<TotpEnrolment>} */
export function beginTotp(api, password) {
  return api.request("POST", "/auth/totp", { password });
}

/** @param {Api} api @param {string} code @returns {Promise<User>} */
export async function confirmTotp(api, code) {
  return api._signedIn(await api.request("POST", "/auth/totp/confirm", { code }));
}

/** @param {Api} api @param {string} password @returns {Promise<User>} */
export async function removeOwnTotp(api, password) {
  return api._signedIn(await api.request("POST", "/auth/totp/remove", { password }));
}

/**
 * A short local date and time, or "—".
 * @param {string|null} iso
 */
export function when(iso) {
  if (!iso) return "—";
  return formatDateTime(iso) || iso; // YYYY-MM-DD HH:MM (docs/I18N.md)

}

/**
 * The account's state in a few words: disabled, must change the password, has a second factor.
 * @param {User} user
 * @param {{disabled: string, mustChange: string, totp: string, active: string}} words
 */
export function stateWords(user, words) {
  const parts = [user.active === false ? words.disabled : words.active];
  if (user.must_change_password) parts.push(words.mustChange);
  if (user.totp) parts.push(words.totp);
  return parts.join(" · ");
}

/**
 * Who serves which site (docs/SECURITY.md §2): an expert, admin or registrar sees the patients of the sites they serve.
 * @typedef {{user_id: string, site_id: string, created_at: string}} Assignment
 */

/** Roles that take site assignments (the server refuses the others with 400). */
export const ASSIGNABLE_ROLES = ["expert", "admin", "registrar"];

/** @param {Api} api @param {string} [userId] only this person's; everyone's when left out @returns {Promise<Assignment[]>} */
export async function listAssignments(api, userId) {
  return (await api.request("GET", `/assignments${userId ? `?user_id=${id(userId)}` : ""}`)).assignments;
}

/** The person serves the site from now on. @param {Api} api @param {string} userId @param {string} siteId
 * @returns {Promise<Assignment[]>} the person's assignments */
export async function assignSite(api, userId, siteId) {
  return (await api.request("POST", `/users/${id(userId)}/sites`, { site_id: siteId })).assignments;
}

/** The person no longer serves the site. @param {Api} api @param {string} userId @param {string} siteId */
export async function unassignSite(api, userId, siteId) {
  await api.request("DELETE", `/users/${id(userId)}/sites/${id(siteId)}`);
}
