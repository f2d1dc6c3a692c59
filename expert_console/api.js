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
   */
  constructor(code, message, status) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
  }
}

/**
 * @typedef {{id: string, username: string, name: string, role: "sonographer"|"expert"|"trainer"|"admin",
 *   site_id: string|null}} User
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

export class Api {
  /** @param {{base?: string, fetch?: typeof fetch}} [options] */
  constructor({ base = "/api/v1", fetch: fetchImpl } = {}) {
    this.base = base;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
    /** @type {string|null} */
    this.csrfToken = null;
    /** @type {User|null} */
    this.user = null;
    /** Called on any 401 except a refused login: the session is gone. @type {(error: ApiError) => void} */
    this.onUnauthenticated = () => {};
  }

  /**
   * @param {string} method
   * @param {string} path below the base, starting with /
   * @param {any} [body] sent as JSON
   * @returns {Promise<any>} the decoded JSON answer, or null for 204
   */
  async request(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (UNSAFE.has(method) && this.csrfToken) headers["X-CSRF-Token"] = this.csrfToken;
    let response;
    try {
      response = await this.fetch(this.base + path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? null : JSON.stringify(body),
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
      const error = new ApiError(code, message, response.status);
      if (response.status === 401 && code !== "bad_credentials") this.onUnauthenticated(error);
      throw error;
    }
    if (data === null) throw new ApiError("bad_answer", "the server's answer was not JSON", response.status);
    return data;
  }

  /**
   * @param {string} username
   * @param {string} password
   * @returns {Promise<User>}
   */
  async login(username, password) {
    const data = await this.request("POST", "/auth/login", { username, password });
    this.user = data.user;
    this.csrfToken = data.csrf_token;
    return data.user;
  }

  /** @returns {Promise<User>} who is signed in (and the CSRF token of the session) */
  async me() {
    const data = await this.request("GET", "/auth/me");
    this.user = data.user;
    this.csrfToken = data.csrf_token ?? null;
    return data.user;
  }

  async logout() {
    try {
      await this.request("POST", "/auth/logout");
    } finally {
      this.user = null;
      this.csrfToken = null;
    }
  }

  /** @returns {Promise<RTCIceServer[]>} */
  async iceServers() {
    const data = await this.request("GET", "/config");
    return Array.isArray(data.ice_servers) ? data.ice_servers : [];
  }

  /**
   * @param {string[]} states
   * @returns {Promise<Consultation[]>}
   */
  async consultations(states) {
    const data = await this.request("GET", `/consultations?state=${states.map(encodeURIComponent).join(",")}`);
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
