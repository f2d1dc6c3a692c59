// @ts-check
// The REST client of /api/v1 (signaling_server/PROTOCOL.md §1): JSON in and out, the session cookie, the CSRF
// header on every state-changing call, errors as ApiError with the server's stable code. No DOM.

/**
 * A refused or failed call. `code` is the server's stable code (`bad_credentials`, `not_found`, …), or
 * `network` when the server could not be reached, or `http_<status>` when the answer carried no code.
 */
export class ApiError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} status HTTP status, 0 for network failures
   * @param {number} [retryAfter] seconds to wait before trying again (429 `too_many_attempts`, 503 `server_busy`)
   */
  constructor(code, message, status, retryAfter = 0) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * @typedef {{id: string, username: string, name: string, role: "sonographer"|"doctor"|"expert"|"trainer"|"admin"|"registrar",
 *   site_id: string|null, active?: boolean, must_change_password?: boolean, totp?: boolean,
 *   language?: "zh-CN"|"en"|null}} User
 * @typedef {"password_change_required"|"totp_enrolment_required"|null} Restriction what the account must do
 *   before anything else (PROTOCOL.md §1 Authentication)
 * @typedef {{id: string, role: string, name: string, user_id: string|null, device_id: string|null}} Peer
 * @typedef {{id: string, state: string, exam_type: string, site: {id: string, code: string, name: string},
 *   device_id: string|null, patient: {id: string, name: string, sex: string, birth_date: string},
 *   accession: string|null, study_uid: string|null, requested_by: {id: string, name: string}, expert: {id: string, name: string}|null,
 *   requested_at: string, started_at: string|null, ended_at: string|null, waiting_seconds: number,
 *   participants: Peer[], recording: boolean}} Consultation
 * @typedef {{id: number, from: string|null, name: string, role: string, text: string, at: string}} ChatLine
 * @typedef {{messages: ChatLine[], next_before: number|null}} ChatPage one page of the chat, oldest line first;
 *   `next_before` asks for the page before it (null: there is none)
 */

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** 401 codes that mean the session is gone (a wrong password, a missing TOTP code… do not). */
const SESSION_ENDED = new Set(["unauthenticated", "account_disabled", "token_expired"]);
/** 403 codes that mean the account must do something first. */
const RESTRICTIONS = new Set(["password_change_required", "totp_enrolment_required"]);

export class Api {
  /** @param {{base?: string, fetch?: typeof fetch}} [options] */
  constructor({ base = "/api/v1", fetch: fetchImpl } = {}) {
    this.base = base;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
    /** @type {string|null} */
    this.csrfToken = null;
    /** @type {User|null} */
    this.user = null;
    /** @type {Restriction} */
    this.restriction = null;
    /** Called on a 401 that means the session is gone. @type {(error: ApiError) => void} */
    this.onUnauthenticated = () => {};
    /** Called on a 403 that means the account must change its password or enrol TOTP first.
     * @type {(error: ApiError) => void} */
    this.onRestricted = () => {};
  }

  /**
   * @param {string} method
   * @param {string} path below the base, starting with /
   * @param {any} [body] sent as JSON; a Blob (a chosen file) is sent as it is, with its own type
   * @returns {Promise<any>} the decoded JSON answer, or null for 204
   */
  async request(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    const raw = body instanceof Blob;
    if (body !== undefined) headers["Content-Type"] = raw ? body.type || "application/octet-stream" : "application/json";
    if (UNSAFE.has(method) && this.csrfToken) headers["X-CSRF-Token"] = this.csrfToken;
    let response;
    try {
      response = await this.fetch(this.base + path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? null : raw ? body : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError("network", `the server could not be reached (${String(err)})`, 0);
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const code = data && typeof data.error === "string" ? data.error : `http_${response.status}`;
      const message = data && typeof data.message === "string" ? data.message : response.statusText || code;
      const retryAfter = data && typeof data.retry_after === "number" ? data.retry_after : 0;
      const error = new ApiError(code, message, response.status, retryAfter);
      if (response.status === 401 && SESSION_ENDED.has(code)) this.onUnauthenticated(error);
      if (response.status === 403 && RESTRICTIONS.has(code)) this.onRestricted(error);
      throw error;
    }
    if (data === null) throw new ApiError("bad_answer", "the server's answer was not JSON", response.status);
    return data;
  }

  /**
   * Sign in; `totp` is the 6-digit code when the account has a second factor (the server answers
   * `totp_required` without it).
   * @param {string} username
   * @param {string} password
   * @param {string} [totp]
   * @returns {Promise<User>}
   */
  async login(username, password, totp) {
    /** @type {{username: string, password: string, totp?: string}} */
    const body = { username, password };
    if (totp) body.totp = totp;
    return this._signedIn(await this.request("POST", "/auth/login", body));
  }

  /** @returns {Promise<User>} who is signed in (and the CSRF token of the session) */
  async me() {
    return this._signedIn(await this.request("GET", "/auth/me"));
  }

  /**
   * Keep the console's language with one's account (null: follow the browser).
   * @param {"zh-CN"|"en"|null} language
   * @returns {Promise<User>}
   */
  async setLanguage(language) {
    return this._signedIn(await this.request("PATCH", "/auth/me", { language }));
  }

  /**
   * Change one's own password; the account's other sessions end.
   * @param {string} currentPassword
   * @param {string} newPassword
   * @returns {Promise<User>}
   */
  async changePassword(currentPassword, newPassword) {
    const data = await this.request("POST", "/auth/password", {
      current_password: currentPassword,
      new_password: newPassword,
    });
    return this._signedIn(data);
  }

  /**
   * @param {{user: User, csrf_token?: string|null, restriction?: Restriction}} data
   * @returns {User}
   */
  _signedIn(data) {
    this.user = data.user;
    this.csrfToken = data.csrf_token ?? null;
    this.restriction = data.restriction ?? null;
    return data.user;
  }

  async logout() {
    try {
      await this.request("POST", "/auth/logout");
    } finally {
      this.user = null;
      this.csrfToken = null;
      this.restriction = null;
    }
  }

  /**
   * The ICE configuration: servers (a TURN credential minted for this person), transport policy, and when the
   * credential expires (ms since the epoch; null without one).
   * @returns {Promise<{iceServers: RTCIceServer[], iceTransportPolicy: RTCIceTransportPolicy, expiresAt: number|null}>}
   */
  async iceConfig() {
    const data = await this.request("GET", "/config");
    return {
      iceServers: Array.isArray(data.ice_servers) ? data.ice_servers : [],
      iceTransportPolicy: data.ice_transport_policy === "relay" ? "relay" : "all",
      expiresAt: typeof data.expires_at === "string" ? Date.parse(data.expires_at) : null,
    };
  }

  /**
   * The consultations in `states` the user sees; with `ids`, only those of them (the rows a change notice named:
   * one that is not answered left those states or the user's sight).
   * @param {string[]} states
   * @param {string[]} [ids]
   * @returns {Promise<Consultation[]>}
   */
  async consultations(states, ids) {
    const only = ids ? `&ids=${ids.map(encodeURIComponent).join(",")}` : "";
    const data = await this.request("GET", `/consultations?state=${states.map(encodeURIComponent).join(",")}${only}`);
    return data.consultations;
  }

  /**
   * @param {{exam_type: string, patient: {id: string, name: string, sex: string, birth_date: string},
   *   accession?: string}} request
   * @returns {Promise<Consultation>}
   */
  requestConsultation(request) {
    return this.request("POST", "/consultations", request);
  }

  /**
   * @param {string} id
   * @returns {Promise<Consultation>}
   */
  consultation(id) {
    return this.request("GET", `/consultations/${encodeURIComponent(id)}`);
  }

  /**
   * @param {string} id
   * @returns {Promise<Consultation>}
   */
  endConsultation(id) {
    return this.request("POST", `/consultations/${encodeURIComponent(id)}/end`);
  }

  /**
   * @param {string} id
   * @returns {Promise<Consultation>}
   */
  cancelConsultation(id) {
    return this.request("POST", `/consultations/${encodeURIComponent(id)}/cancel`);
  }

  /**
   * A page of a consultation's chat: the newest lines older than line `before` (the newest of all when null).
   * @param {string} id
   * @param {{before?: number|null, limit?: number}} [page]
   * @returns {Promise<ChatPage>}
   */
  async chatHistory(id, { before = null, limit } = {}) {
    const query = new URLSearchParams();
    if (before !== null) query.set("before", String(before));
    if (limit !== undefined) query.set("limit", String(limit));
    const suffix = query.toString() ? `?${query}` : "";
    return this.request("GET", `/consultations/${encodeURIComponent(id)}/chat${suffix}`);
  }
}
