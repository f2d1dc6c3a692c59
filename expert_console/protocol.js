// @ts-check
// The browser side of the teleus wire protocol (signaling_server/PROTOCOL.md §2 and §3): message encode and
// validated decode, and the signaling WebSocket client. No DOM.

/** Stable codes of a refused incoming message (the same words as the server's). */
export class ProtocolError extends Error {
  /**
   * @param {"bad_json"|"bad_message"|"unknown_type"} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

export const MAX_CHAT_CHARS = 2000;
export const MAX_MARK_ID_CHARS = 64;
export const MAX_FREEHAND_POINTS = 2000;
export const CAPTURE_STATES = ["requested", "captured", "stored", "failed"];
export const MARK_KINDS = /** @type {const} */ (["arrow", "circle", "freehand"]);

/**
 * @typedef {{id: string, role: "edge"|"expert"|"sonographer"|"observer", name: string,
 *   user_id: string|null, device_id: string|null}} Peer
 * @typedef {{candidate: string, sdpMid?: string|null, sdpMLineIndex?: number|null}} IceCandidate
 * @typedef {{type: "chat", id: number|null, from: string|null, name: string, role: string, text: string, at: string}} ChatLine
 * @typedef {{type: "welcome", you: Peer, peers: Peer[], consultation: Record<string, any>}
 *   | {type: "peer-joined", peer: Peer}
 *   | {type: "peer-left", peer_id: string}
 *   | {type: "offer"|"answer", from: string, sdp: string}
 *   | {type: "ice", from: string, candidate: IceCandidate|null}
 *   | ChatLine
 *   | {type: "chat-history", messages: ChatLine[], next_before: number|null}
 *   | {type: "state", consultation: Record<string, any>}
 *   | {type: "capture-status", id: string|null, state: "requested"|"captured"|"stored"|"failed",
 *      sop_uid: string|null, detail: Record<string, any>}
 *   | {type: "error", code: string, message: string, ref: string|null}
 *   | {type: "pong"}} ServerMessage
 * @typedef {[number, number]} Point
 * @typedef {{type: "mark", id: string, kind: "arrow"|"circle"|"freehand", points: Point[], color?: string,
 *   from?: string|null, at?: number|null}} Mark
 * @typedef {Mark | {type: "clear", from?: string|null, at?: number|null} | {type: "marks", marks: Mark[]}
 *   | {type: "qc", alerts: QcAlert[], completeness: Record<string, any>|null}
 *   | {type: "error", code: string, message: string}} GuidanceMessage
 * @typedef {{code: string, text: string, state: string}} QcAlert
 * @typedef {{type: "pointer", x?: number, y?: number, visible: boolean, from: string|null, at: number|null}
 *   | {type: "frame", rtp: number, capture_ms: number}
 *   | {type: "pong", id: any, t: number, edge_ms: number, encoder: string|null}
 *   | {type: "ping", id: any, t: number}} LiveMessage
 */

// ---- small validators -------------------------------------------------------------------------------

/**
 * @param {string} text
 * @returns {Record<string, any>}
 */
function parseObject(text) {
  if (typeof text !== "string") throw new ProtocolError("bad_json", "expected a text message");
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ProtocolError("bad_json", "the message is not JSON");
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ProtocolError("bad_json", "a message is a JSON object");
  }
  if (typeof data.type !== "string") throw new ProtocolError("bad_message", "'type' is missing");
  return data;
}

/**
 * @param {Record<string, any>} data
 * @param {string} key
 * @param {{optional?: boolean, nullable?: boolean, maxLength?: number}} [options]
 */
function str(data, key, { optional = false, nullable = false, maxLength = Infinity } = {}) {
  const value = data[key];
  if ((value === undefined && optional) || (value === null && nullable)) return value ?? null;
  if (typeof value !== "string") throw new ProtocolError("bad_message", `'${key}' must be a string`);
  if (value.length > maxLength) throw new ProtocolError("bad_message", `'${key}' is over ${maxLength} characters`);
  return value;
}

/**
 * @param {Record<string, any>} data
 * @param {string} key
 * @returns {number}
 */
function num(data, key) {
  const value = data[key];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new ProtocolError("bad_message", `'${key}' must be a finite number`);
  }
  return value;
}

/**
 * @param {Record<string, any>} data
 * @param {string} key
 * @returns {number|null} null when absent
 */
function optionalNum(data, key) {
  return data[key] === undefined || data[key] === null ? null : num(data, key);
}

/**
 * @param {Record<string, any>} data
 * @param {string} key
 * @returns {Record<string, any>}
 */
function obj(data, key) {
  const value = data[key];
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError("bad_message", `'${key}' must be an object`);
  }
  return value;
}

/**
 * @param {any} value
 * @returns {Peer}
 */
function peer(value) {
  if (value === null || typeof value !== "object") throw new ProtocolError("bad_message", "a peer must be an object");
  const role = str(value, "role");
  if (!["edge", "expert", "sonographer", "observer"].includes(role)) {
    throw new ProtocolError("bad_message", `unknown peer role ${JSON.stringify(role.slice(0, 20))}`);
  }
  return {
    id: str(value, "id"),
    role: /** @type {Peer["role"]} */ (role),
    name: str(value, "name", { optional: true, nullable: true }) ?? "",
    user_id: str(value, "user_id", { optional: true, nullable: true }),
    device_id: str(value, "device_id", { optional: true, nullable: true }),
  };
}

/**
 * @param {Record<string, any>} data
 * @returns {IceCandidate|null}
 */
function candidate(data) {
  const value = data.candidate;
  if (value === null || value === undefined) return null;
  if (typeof value !== "object" || typeof value.candidate !== "string") {
    throw new ProtocolError("bad_message", "'candidate' must be an object with a 'candidate' string, or null");
  }
  const mid = value.sdpMid ?? null;
  const index = value.sdpMLineIndex ?? null;
  if (mid !== null && typeof mid !== "string") throw new ProtocolError("bad_message", "'sdpMid' must be a string");
  if (index !== null && !(Number.isInteger(index) && index >= 0)) {
    throw new ProtocolError("bad_message", "'sdpMLineIndex' must be a non-negative integer");
  }
  return { candidate: value.candidate, sdpMid: mid, sdpMLineIndex: index };
}

// ---- signaling: server → client ----------------------------------------------------------------------

/** @type {Record<string, (data: Record<string, any>) => ServerMessage>} */
const SIGNAL_DECODERS = {
  welcome: (d) => {
    if (!Array.isArray(d.peers)) throw new ProtocolError("bad_message", "'peers' must be a list");
    return { type: "welcome", you: peer(d.you), peers: d.peers.map(peer), consultation: obj(d, "consultation") };
  },
  "peer-joined": (d) => ({ type: "peer-joined", peer: peer(d.peer) }),
  "peer-left": (d) => ({ type: "peer-left", peer_id: str(d, "peer_id") }),
  offer: (d) => ({ type: "offer", from: str(d, "from"), sdp: sdp(d) }),
  answer: (d) => ({ type: "answer", from: str(d, "from"), sdp: sdp(d) }),
  ice: (d) => ({ type: "ice", from: str(d, "from"), candidate: candidate(d) }),
  chat: chatLine,
  "chat-history": (d) => {
    if (!Array.isArray(d.messages)) throw new ProtocolError("bad_message", "'messages' must be a list");
    const next = d.next_before ?? null;
    if (next !== null && !(Number.isInteger(next) && next > 0)) {
      throw new ProtocolError("bad_message", "'next_before' must be a chat line id or null");
    }
    return { type: "chat-history", messages: d.messages.map(chatLine), next_before: next };
  },
  state: (d) => {
    const consultation = obj(d, "consultation");
    str(consultation, "state");
    return { type: "state", consultation };
  },
  pong: () => ({ type: "pong" }),
  "capture-status": (d) => {
    const state = str(d, "state");
    if (!CAPTURE_STATES.includes(state)) throw new ProtocolError("bad_message", `unknown capture state ${state}`);
    return {
      type: "capture-status",
      id: str(d, "id", { optional: true, nullable: true }),
      state: /** @type {"requested"|"captured"|"stored"|"failed"} */ (state),
      sop_uid: str(d, "sop_uid", { optional: true, nullable: true }),
      detail: d.detail && typeof d.detail === "object" && !Array.isArray(d.detail) ? d.detail : {},
    };
  },
  error: (d) => ({
    type: "error",
    code: str(d, "code"),
    message: str(d, "message", { optional: true, nullable: true }) ?? "",
    ref: str(d, "ref", { optional: true, nullable: true }),
  }),
};

/**
 * @param {any} d
 * @returns {ChatLine}
 */
function chatLine(d) {
  if (d === null || typeof d !== "object") throw new ProtocolError("bad_message", "a chat line must be an object");
  return {
    type: "chat",
    id: d.id ?? null,
    from: str(d, "from", { optional: true, nullable: true }),
    name: str(d, "name", { optional: true, nullable: true }) ?? "",
    role: str(d, "role", { optional: true, nullable: true }) ?? "",
    text: str(d, "text"),
    at: str(d, "at", { optional: true, nullable: true }) ?? "",
  };
}

/** @param {Record<string, any>} d */
function sdp(d) {
  const value = str(d, "sdp");
  if (!value.startsWith("v=0")) throw new ProtocolError("bad_message", "'sdp' is not a session description");
  return value;
}

/**
 * Decode and validate one signaling message from the server.
 * @param {string} text
 * @returns {ServerMessage}
 * @throws {ProtocolError}
 */
export function decodeSignal(text) {
  const data = parseObject(text);
  const decoder = SIGNAL_DECODERS[data.type];
  if (!decoder) throw new ProtocolError("unknown_type", `unknown message type ${JSON.stringify(data.type.slice(0, 40))}`);
  return decoder(data);
}

// ---- signaling: client → server ----------------------------------------------------------------------

/** @param {{observe?: boolean}} [options] */
export function encodeJoin({ observe = false } = {}) {
  return JSON.stringify(observe ? { type: "join", observe: true } : { type: "join" });
}

/**
 * @param {string} to
 * @param {string} sdpText
 */
export function encodeAnswer(to, sdpText) {
  return JSON.stringify({ type: "answer", to, sdp: sdpText });
}

/**
 * @param {string} to
 * @param {{candidate?: string, sdpMid?: string|null, sdpMLineIndex?: number|null}|null} ice
 *   an RTCIceCandidateInit, or null for the end of candidates
 */
export function encodeIce(to, ice) {
  const value = ice && { candidate: ice.candidate ?? "", sdpMid: ice.sdpMid ?? null, sdpMLineIndex: ice.sdpMLineIndex ?? null };
  return JSON.stringify({ type: "ice", to, candidate: value });
}

/** @param {string} text */
export function encodeChat(text) {
  const trimmed = text.trim();
  if (!trimmed) throw new ProtocolError("bad_message", "a chat line must not be blank");
  if (trimmed.length > MAX_CHAT_CHARS) {
    throw new ProtocolError("bad_message", `a chat line is limited to ${MAX_CHAT_CHARS} characters`);
  }
  return JSON.stringify({ type: "chat", text: trimmed });
}

export function encodeLeave() {
  return JSON.stringify({ type: "leave" });
}

/** The signaling socket's liveness check (the data channel's clock `ping` is `encodePing`). */
export function encodeSignalPing() {
  return JSON.stringify({ type: "ping" });
}

// ---- data channels ----------------------------------------------------------------------------------

/**
 * @param {any} value
 * @returns {Point}
 */
function point(value) {
  if (!Array.isArray(value) || value.length !== 2) throw new ProtocolError("bad_message", "a point is [x, y]");
  const [x, y] = value;
  if (typeof x !== "number" || typeof y !== "number" || !(x >= 0 && x <= 1 && y >= 0 && y <= 1)) {
    throw new ProtocolError("bad_message", "point coordinates are numbers in [0, 1]");
  }
  return [x, y];
}

/**
 * Validate a mark (as sent or as relayed). `from`/`at` are kept when present.
 * @param {Record<string, any>} d
 * @returns {Mark}
 */
export function validateMark(d) {
  const id = str(d, "id", { maxLength: MAX_MARK_ID_CHARS });
  if (!id) throw new ProtocolError("bad_message", "'id' must not be empty");
  const kind = d.kind;
  if (!MARK_KINDS.includes(kind)) throw new ProtocolError("bad_message", "'kind' must be arrow, circle or freehand");
  if (!Array.isArray(d.points)) throw new ProtocolError("bad_message", "'points' must be a list");
  const points = d.points.map(point);
  if (kind === "freehand" ? points.length < 2 || points.length > MAX_FREEHAND_POINTS : points.length !== 2) {
    throw new ProtocolError(
      "bad_message",
      kind === "freehand" ? `a freehand mark has 2–${MAX_FREEHAND_POINTS} points` : `an ${kind} mark has 2 points`,
    );
  }
  /** @type {Mark} */
  const mark = { type: "mark", id, kind, points };
  if (d.color !== undefined && d.color !== null) {
    if (typeof d.color !== "string" || !/^#[0-9a-fA-F]{6}$/.test(d.color)) {
      throw new ProtocolError("bad_message", "'color' must be #rrggbb");
    }
    mark.color = d.color;
  }
  if ("from" in d) mark.from = str(d, "from", { nullable: true });
  if ("at" in d) mark.at = optionalNum(d, "at");
  return mark;
}

/** @type {Record<string, (data: Record<string, any>) => GuidanceMessage>} */
const GUIDANCE_DECODERS = {
  mark: validateMark,
  clear: (d) => ({
    type: "clear",
    from: str(d, "from", { optional: true, nullable: true }),
    at: optionalNum(d, "at"),
  }),
  marks: (d) => {
    if (!Array.isArray(d.marks)) throw new ProtocolError("bad_message", "'marks' must be a list");
    return { type: "marks", marks: d.marks.map(validateMark) };
  },
  qc: (d) => {
    if (!Array.isArray(d.alerts)) throw new ProtocolError("bad_message", "'alerts' must be a list");
    const alerts = d.alerts.map((/** @type {any} */ a) => ({
      code: str(a, "code"), text: str(a, "text"), state: str(a, "state", { optional: true }) ?? "raised" }));
    const completeness = d.completeness && typeof d.completeness === "object" ? d.completeness : null;
    return { type: "qc", alerts, completeness };
  },
  error: (d) => ({ type: "error", code: str(d, "code"), message: str(d, "message", { optional: true }) ?? "" }),
};

/**
 * Decode a message from the `guidance` channel (edge → page).
 * @param {string} text
 * @returns {GuidanceMessage}
 * @throws {ProtocolError}
 */
export function decodeGuidance(text) {
  const data = parseObject(text);
  const decoder = GUIDANCE_DECODERS[data.type];
  if (!decoder) throw new ProtocolError("unknown_type", `unknown guidance message ${JSON.stringify(data.type.slice(0, 40))}`);
  return decoder(data);
}

/** @type {Record<string, (data: Record<string, any>) => LiveMessage>} */
const LIVE_DECODERS = {
  pointer: (d) => {
    const from = str(d, "from", { optional: true, nullable: true });
    const at = optionalNum(d, "at");
    if (d.visible === false) return { type: "pointer", visible: false, from, at };
    if (d.visible !== undefined && d.visible !== true) throw new ProtocolError("bad_message", "'visible' must be a boolean");
    const [x, y] = point([d.x, d.y]);
    return { type: "pointer", x, y, visible: true, from, at };
  },
  frame: (d) => {
    const rtp = num(d, "rtp");
    if (!Number.isInteger(rtp) || rtp < 0 || rtp > 0xffffffff) {
      throw new ProtocolError("bad_message", "'rtp' must be a 32-bit unsigned integer");
    }
    return { type: "frame", rtp, capture_ms: num(d, "capture_ms") };
  },
  pong: (d) => ({
    type: "pong",
    id: d.id ?? null,
    t: num(d, "t"),
    edge_ms: num(d, "edge_ms"),
    encoder: str(d, "encoder", { optional: true, nullable: true, maxLength: 64 }),
  }),
  ping: (d) => ({ type: "ping", id: d.id ?? null, t: num(d, "t") }),
};

/**
 * Decode a message from the `live` channel (edge → page).
 * @param {string} text
 * @returns {LiveMessage}
 * @throws {ProtocolError}
 */
export function decodeLive(text) {
  const data = parseObject(text);
  const decoder = LIVE_DECODERS[data.type];
  if (!decoder) throw new ProtocolError("unknown_type", `unknown live message ${JSON.stringify(data.type.slice(0, 40))}`);
  return decoder(data);
}

/**
 * @param {{id: string, kind: string, points: Point[], color?: string}} mark
 * @returns {string}
 * @throws {ProtocolError} when the mark is not valid
 */
export function encodeMark(mark) {
  const valid = validateMark({ id: mark.id, kind: mark.kind, points: mark.points, color: mark.color });
  /** @type {Record<string, any>} */
  const out = { type: "mark", id: valid.id, kind: valid.kind, points: valid.points };
  if (valid.color) out.color = valid.color;
  return JSON.stringify(out);
}

export function encodeClear() {
  return JSON.stringify({ type: "clear" });
}

/**
 * @param {number|null} x null when the mouse left the image
 * @param {number|null} [y]
 */
export function encodePointer(x, y = null) {
  if (x === null || y === null) return JSON.stringify({ type: "pointer", visible: false });
  const [px, py] = point([x, y]);
  return JSON.stringify({ type: "pointer", x: px, y: py });
}

/**
 * @param {number} id
 * @param {number} t page clock, ms since the epoch
 */
export function encodePing(id, t) {
  return JSON.stringify({ type: "ping", id, t });
}

// ---- the signaling socket ---------------------------------------------------------------------------

/** Liveness: a `ping` after this long without a word from the server… */
export const PING_INTERVAL_MS = 3000;
/** …and the socket taken for dead (closed with `DEAD_SOCKET`) after this long without one: on a cut link the
 * browser itself would wait on TCP's retransmissions, for minutes. */
export const SILENCE_LIMIT_MS = 9000;
export const DEAD_SOCKET = 4000;

/**
 * The signaling WebSocket of one consultation. Emits `open`, `message` (detail: a decoded ServerMessage; `pong`s
 * are kept to itself), `invalid` (detail: a ProtocolError for a refused incoming frame) and `close` (detail:
 * {code, reason, wasClean}; code `DEAD_SOCKET` when the server stopped answering pings).
 */
export class SignalingClient extends EventTarget {
  /** @param {string} url ws:// or wss:// */
  constructor(url) {
    super();
    this.url = url;
    /** @type {WebSocket|null} */
    this.socket = null;
    this._heardAt = 0;
    /** @type {ReturnType<typeof setInterval>|null} */
    this._liveness = null;
  }

  /** Ping the server when it has been quiet, and give the socket up when it stays silent. */
  _watch() {
    this._heardAt = Date.now();
    if (this._liveness) clearInterval(this._liveness);
    this._liveness = setInterval(() => {
      const socket = this.socket;
      if (!socket) return;
      const quiet = Date.now() - this._heardAt;
      if (quiet >= SILENCE_LIMIT_MS) {
        this._giveUp(socket);
      } else if (quiet >= PING_INTERVAL_MS && socket.readyState === WebSocket.OPEN) {
        socket.send(encodeSignalPing());
      }
    }, PING_INTERVAL_MS / 2);
  }

  /** @param {WebSocket} socket a socket that no longer answers: closed now, without waiting for its handshake */
  _giveUp(socket) {
    this._stopWatching();
    this.socket = null;
    socket.close();
    this.dispatchEvent(new CustomEvent("close", { detail: { code: DEAD_SOCKET, reason: "no answer", wasClean: false } }));
  }

  _stopWatching() {
    if (this._liveness) clearInterval(this._liveness);
    this._liveness = null;
  }

  /**
   * Open the socket; resolves once it is open, rejects when it closes first or is not open within `timeoutMs`
   * (then it is closed: a connection attempt on a cut link would otherwise wait on the browser's retries).
   * @param {number} [timeoutMs]
   * @returns {Promise<void>}
   */
  connect(timeoutMs) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      let opened = false;
      const timer = timeoutMs === undefined ? null : setTimeout(() => {
        if (opened) return;
        if (socket === this.socket) this.socket = null;
        socket.close();
        reject(Object.assign(new Error("the signaling socket did not open in time"), { code: 1006, reason: "" }));
      }, timeoutMs);
      socket.addEventListener("open", () => {
        if (timer !== null) clearTimeout(timer);
        if (socket !== this.socket) return; // given up on already
        opened = true;
        this._watch();
        this.dispatchEvent(new CustomEvent("open"));
        resolve();
      });
      socket.addEventListener("message", (event) => {
        if (socket !== this.socket) return;
        this._heardAt = Date.now();
        let message;
        try {
          message = decodeSignal(event.data);
        } catch (err) {
          this.dispatchEvent(new CustomEvent("invalid", { detail: err }));
          return;
        }
        if (message.type !== "pong") this.dispatchEvent(new CustomEvent("message", { detail: message }));
      });
      socket.addEventListener("close", (event) => {
        if (timer !== null) clearTimeout(timer);
        if (opened && socket !== this.socket) return; // given up on (DEAD_SOCKET already said) or closed by us
        this._stopWatching();
        if (socket === this.socket) this.socket = null;
        const detail = { code: event.code, reason: event.reason, wasClean: event.wasClean };
        if (!opened) reject(Object.assign(new Error("the signaling socket could not open"), detail));
        else this.dispatchEvent(new CustomEvent("close", { detail }));
      });
    });
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * @param {string} frame an encoded message
   * @returns {boolean} whether it was sent
   */
  send(frame) {
    if (!this.isOpen) return false;
    /** @type {WebSocket} */ (this.socket).send(frame);
    return true;
  }

  /** @param {{observe?: boolean}} [options] */
  join(options) {
    return this.send(encodeJoin(options));
  }

  /**
   * @param {string} to
   * @param {string} sdpText
   */
  answer(to, sdpText) {
    return this.send(encodeAnswer(to, sdpText));
  }

  /**
   * @param {string} to
   * @param {Parameters<typeof encodeIce>[1]} ice
   */
  ice(to, ice) {
    return this.send(encodeIce(to, ice));
  }

  /** @param {string} text */
  chat(text) {
    return this.send(encodeChat(text));
  }

  /** Leave the room and close the socket without a `close` event. */
  close() {
    const socket = this.socket;
    this.socket = null;
    this._stopWatching();
    if (!socket) return;
    if (socket.readyState === WebSocket.OPEN) socket.send(encodeLeave());
    socket.close(1000, "leaving");
  }
}

/**
 * The signaling URL of a consultation, ws:// or wss:// after the page's scheme.
 * @param {{protocol: string, host: string}} location
 * @param {string} consultationId
 */
export function signalingUrl(location, consultationId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/consultations/${encodeURIComponent(consultationId)}/signal`;
}
