// @ts-check
// One page's part in a live consultation: the signaling socket, the RTCPeerConnection the edge offers (a new
// one for every offer), the two data channels, the guidance state, voice, clock sync and link statistics.
// No DOM: the live view listens to the events below and feeds rendered frames in.
//
// Events (CustomEvent, `detail` as noted):
//   welcome {role, peerId, consultation} · participants [Peer] · consultation {consultation}
//   edge {connected, iceState, present} · track {kind, track} · marks [Mark] · pointers [Pointer]
//   chat [ChatLine] · stats {stats, audio} · channels {guidance, live} · muted {muted}
//   connection {open: false} (the call with the edge closed) · status {text, level} · ended {consultation}
//   fatal {code, message}

import { ApiError } from "./api.js";
import { errorText as refusalText, t } from "./i18n.js";
import {
  decodeGuidance,
  decodeLive,
  encodeClear,
  encodeMark,
  encodePing,
  encodePointer,
  ProtocolError,
  SignalingClient,
  signalingUrl,
} from "./protocol.js";
import { GuidanceBoard } from "./guidance.js";
import { FreezeDetector, LatencyTracker, summarise } from "./linkstats.js";
import { Microphone } from "./microphone.js";

/**
 * @typedef {import("./protocol.js").Peer} Peer
 * @typedef {import("./protocol.js").Mark} Mark
 * @typedef {import("./protocol.js").ServerMessage} ServerMessage
 * @typedef {import("./guidance.js").Pointer} Pointer
 * @typedef {{from: string|null, name: string, role: string, text: string, at: string, id?: number|null|undefined}} ChatLine
 * @typedef {{fps: number|null, width: number|null, height: number|null, bitrateMbps: number|null,
 *   rttMs: number|null, lossPct: number|null, freezeCount: number, freezeMs: number,
 *   browserFreezeCount: number|null, browserFreezeMs: number|null, pauseCount: number,
 *   latencyP50: number|null, latencyP95: number|null, latencySamples: number, encoder: string|null}} LiveStats
 * @typedef {{alerts: import("./protocol.js").QcAlert[], completeness: Record<string, any>|null}} LiveQc
 * @typedef {{
 *   welcome: {role: string|null, peerId: string|null, consultation: Record<string, any>|null},
 *   participants: Peer[], consultation: {consultation: Record<string, any>},
 *   capture: Extract<ServerMessage, {type: "capture-status"}>, qc: LiveQc,
 *   edge: {connected: boolean, iceState: string, present: boolean},
 *   track: {kind: string, track: MediaStreamTrack}, marks: Mark[], pointers: Pointer[], chat: ChatLine[],
 *   stats: {stats: LiveStats, audio: {inboundEnergy: number}}, channels: {guidance: boolean, live: boolean},
 *   muted: {muted: boolean}, connection: {open: boolean}, status: {text: string, level: string},
 *   ended: {consultation: Record<string, any>}, fatal: {code: string, message: string}}} SessionEvents
 *   each event's `detail`, by type
 */

const CLOSED_STATES = new Set(["ended", "cancelled"]);
const SPEAKING_ROLES = new Set(["expert", "sonographer"]);
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 5000];
/** While the consultation is live someone is watching: try again at once, then every second. */
const LIVE_RECONNECT_DELAYS_MS = [100, 500, 1000];
/** An attempt to open the socket that has not opened by then is abandoned and made afresh (a new connection):
 * after a cut link, the browser's own connection retries back off to tens of seconds. */
const CONNECT_TIMEOUT_MS = 3000;
/** How long an answer waits for the microphone (a permission prompt): the picture must not wait for the voice. */
const MICROPHONE_WAIT_MS = 3000;
const ICE_REFRESH_BEFORE_MS = 30 * 60 * 1000; // a fresh TURN credential this long before the one held ends
const ICE_RETRY_MS = 60 * 1000;
/**
 * The `live` channel drops what it cannot deliver at once (a late pointer position is worthless), so on a saturated
 * link or edge a burst of moves can lose its last one. The last position (or "left the image") is sent again this
 * long after the mouse stopped, so the other screens never keep the pointer where it no longer is.
 */
const POINTER_REPEAT_MS = [250, 1000];

/** Page clock in ms since the epoch (monotonic within the page). */
export function epochNow() {
  return performance.timeOrigin + performance.now();
}

export class LiveSession extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.consultationId
   * @param {boolean} [options.observe] join view-only
   * @param {import("./api.js").Api} options.api
   * @param {{protocol: string, host: string}} options.location where the server is (the page's location)
   * @param {() => Promise<MediaStream>} [options.getMicrophone]
   */
  constructor({ consultationId, observe = false, api, location, getMicrophone }) {
    super();
    this.consultationId = consultationId;
    this.observe = observe;
    this.api = api;
    this.location = location;
    this.microphone = new Microphone(
      getMicrophone ?? (() => navigator.mediaDevices.getUserMedia({ audio: true, video: false })),
    );
    /** What each new RTCPeerConnection is given (GET /api/v1/config); `expiresAt`: its TURN credential's end (ms). */
    /** @type {{iceServers: RTCIceServer[], iceTransportPolicy: RTCIceTransportPolicy, expiresAt: number|null}} */
    this.ice = { iceServers: [], iceTransportPolicy: "all", expiresAt: null };
    /** @type {ReturnType<typeof setTimeout>|null} */ this._iceTimer = null;
    /** @type {SignalingClient|null} */
    this.signal = null;
    /** @type {string|null} */ this.role = null;
    /** @type {string|null} */ this.peerId = null;
    /** @type {Record<string, any>|null} */ this.consultation = null;
    /** @type {string|null} */ this.consultationState = null;
    /** @type {Map<string, Peer>} */ this.participants = new Map();
    /** @type {RTCPeerConnection|null} */ this.pc = null;
    /** @type {string|null} the peer the current connection is with (the edge) */ this.pcPeer = null;
    this.iceState = "new";
    /** @type {RTCDataChannel|null} */ this.guidance = null;
    /** @type {RTCDataChannel|null} */ this.live = null;
    this.board = new GuidanceBoard();
    /** The edge's live QC: active alerts and the exam's completeness checklist. */
    this.qc = /** @type {{alerts: import("./protocol.js").QcAlert[], completeness: Record<string, any>|null}} */ ({
      alerts: [], completeness: null });
    /** @type {number|null} performance.now() when the last remote pointer message arrived */
    this.pointerReceivedAt = null;
    /** @type {Map<string, ChatLine>} */ this.chatLines = new Map();
    /** @type {number|null} the server's cursor for older chat lines (null: none left) */ this._chatBefore = null;
    this.freezes = new FreezeDetector();
    this.latency = new LatencyTracker();
    /** @type {string|null} the edge's video encoder as its pongs name it ("x264 ultrafast", "VAAPI") */
    this.encoder = null;
    /** @type {import("./linkstats.js").StatsEntry[]|null} */ this.previousStats = null;
    this.framesDecoded = 0;
    this.inboundAudioEnergy = 0;
    /** @type {LiveStats} */ this.stats = this._stats(null);
    this.ended = false;
    this.closed = false;
    this._queue = Promise.resolve();
    this._pingId = 0;
    /** @type {ReturnType<typeof setInterval>|null} */ this._pingTimer = null;
    /** @type {ReturnType<typeof setInterval>|null} */ this._statsTimer = null;
    /** @type {ReturnType<typeof setTimeout>|null} */ this._reconnectTimer = null;
    /** @type {ReturnType<typeof setTimeout>[]} the pointer's last word, sent again (POINTER_REPEAT_MS) */
    this._pointerRepeats = [];
    this._reconnectAttempt = 0;
    this._markPrefix = `m${Math.random().toString(36).slice(2, 10)}-`;
    this._markCounter = 0;
    /** @type {number|null} `presentedFrames` at the last frame callback */
    this._presentedFrames = null;
    /** @type {(() => {left: number, top: number, width: number, height: number}|null)|null} */
    this._contentRectProvider = null;
  }

  // ---- lifecycle -------------------------------------------------------------------------------------

  /** Fetch the ICE configuration and the chat history, open the signaling socket and join. */
  async start() {
    this._statsTimer = setInterval(() => void this._pollStats(), 1000);
    try {
      await this._loadIce();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
    }
    void this._loadChatHistory();
    await this._connect();
  }

  /**
   * Fetch the ICE configuration, and again half an hour before its TURN credential ends, so that a peer connection
   * made later (the edge dropped and came back) can still open a relay with it (signaling_server/ice.py).
   */
  async _loadIce() {
    if (this._iceTimer) clearTimeout(this._iceTimer);
    this._iceTimer = null;
    try {
      this.ice = await this.api.iceConfig();
    } finally {
      if (this.ice.expiresAt !== null && !this.ended) {
        const wait = Math.max(this.ice.expiresAt - Date.now() - ICE_REFRESH_BEFORE_MS, ICE_RETRY_MS);
        this._iceTimer = setTimeout(() => void this._loadIce().catch(() => {}), wait);
      }
    }
  }

  /** The newest page of the chat; `loadEarlierChat` goes back from there, a page at a time. */
  async _loadChatHistory() {
    await this._loadChatPage(null);
  }

  /** Whether older chat lines than those shown are stored on the server. */
  get hasEarlierChat() {
    return this._chatBefore !== null;
  }

  /** Fetch the page of chat lines before the oldest one shown. */
  async loadEarlierChat() {
    if (this._chatBefore !== null) await this._loadChatPage(this._chatBefore);
  }

  /** @param {number|null} before */
  async _loadChatPage(before) {
    try {
      const page = await this.api.chatHistory(this.consultationId, { before });
      for (const line of page.messages) this._addChat(line, false);
      this._chatBefore = page.next_before;
      // a page may come after lines already received live: keep the log in order (line ids grow with time)
      const ordered = [...this.chatLines.entries()].sort((a, b) => chatOrder(a[1], b[1]));
      this.chatLines = new Map(ordered);
      this._emit("chat", this.chat);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) this._status(t("live.status.chat_unavailable", { reason: errorText(err) }), "warn");
    }
  }

  async _connect() {
    if (this.ended || this.closed) return;
    const signal = new SignalingClient(signalingUrl(this.location, this.consultationId));
    this.signal = signal;
    signal.addEventListener("message", (e) => {
      const message = /** @type {CustomEvent<ServerMessage>} */ (e).detail;
      this._queue = this._queue.then(() => this._handle(message)).catch((err) => this._status(errorText(err), "error"));
    });
    signal.addEventListener("invalid", (e) => {
      const err = /** @type {CustomEvent<ProtocolError>} */ (e).detail;
      this._status(t("live.status.ignored_signal", { reason: err.message }), "warn");
    });
    signal.addEventListener("close", (e) => void this._socketClosed(/** @type {CustomEvent} */ (e).detail));
    this._status(t("live.status.connecting_server"), "info");
    try {
      await signal.connect(CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (this.signal === signal) void this._socketClosed({ code: 1006, reason: "" });
      return;
    }
    this._reconnectAttempt = 0;
    signal.join({ observe: this.observe });
  }

  /** @param {{code: number, reason: string}} info */
  async _socketClosed(info) {
    if (this.ended || this.closed) return;
    this.signal = null;
    this._closePeerConnection();
    this._emitEdge();
    // Why did it close? The consultation's state says whether to come back.
    try {
      // On a cut link the answer may never come: after CONNECT_TIMEOUT_MS, reconnect (the socket's refusal, if any,
      // says the rest).
      const consultation = await Promise.race([
        this.api.consultation(this.consultationId),
        new Promise((_, reject) => setTimeout(() => reject(new Error("no answer")), CONNECT_TIMEOUT_MS)),
      ]);
      this.consultation = consultation;
      if (CLOSED_STATES.has(consultation.state)) {
        this._finish(consultation);
        return;
      }
    } catch (err) {
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        if (err.status !== 401) this._emit("fatal", { code: err.code, message: err.message });
        this._shutdown();
        return;
      }
    }
    if (this.ended || this.closed) return;
    const delays = this.consultationState === "live" ? LIVE_RECONNECT_DELAYS_MS : RECONNECT_DELAYS_MS;
    const delay = delays[Math.min(this._reconnectAttempt, delays.length - 1)];
    this._reconnectAttempt += 1;
    this._status(t("live.status.reconnecting", { code: info.code }), "warn");
    this._reconnectTimer = setTimeout(() => void this._connect(), delay);
  }

  /** Leave the consultation (the page goes elsewhere). */
  close() {
    if (this.closed) return;
    this.closed = true;
    this._shutdown();
  }

  /**
   * End the consultation for everyone (expert or requesting sonographer).
   * @returns {Promise<void>}
   */
  async end() {
    const consultation = await this.api.endConsultation(this.consultationId);
    this._finish(consultation);
  }

  /**
   * Withdraw a request no expert has taken yet (the requesting sonographer).
   * @returns {Promise<void>}
   */
  async cancel() {
    const consultation = await this.api.cancelConsultation(this.consultationId);
    this._finish(consultation);
  }

  /** @param {Record<string, any>} consultation */
  _finish(consultation) {
    if (this.ended) return;
    this.ended = true;
    this.consultation = consultation;
    this.consultationState = consultation.state ?? "ended";
    this._shutdown();
    this._emit("consultation", { consultation });
    this._emit("ended", { consultation });
  }

  _shutdown() {
    for (const timer of [this._statsTimer, this._pingTimer]) if (timer) clearInterval(timer);
    for (const timer of [this._reconnectTimer, this._iceTimer, ...this._pointerRepeats]) if (timer) clearTimeout(timer);
    this._pointerRepeats = [];
    this._statsTimer = this._pingTimer = this._reconnectTimer = this._iceTimer = null;
    const signal = this.signal;
    this.signal = null;
    signal?.close();
    this._closePeerConnection();
    this.microphone.stop();
    this._emitEdge();
  }

  // ---- signaling -------------------------------------------------------------------------------------

  /** @param {ServerMessage} message */
  async _handle(message) {
    if (this.ended || this.closed) return;
    switch (message.type) {
      case "welcome":
        return this._welcome(message);
      case "peer-joined":
        this.participants.set(message.peer.id, message.peer);
        this._emit("participants", this.participantList);
        return this._emitEdge();
      case "peer-left":
        return this._peerLeft(message.peer_id);
      case "offer":
        return this._answerOffer(message.from, message.sdp);
      case "ice":
        return this._remoteCandidate(message.from, message.candidate);
      case "answer":
        return; // pages never offer
      case "chat":
        this._addChat(message, true);
        return;
      case "state":
        this.consultation = message.consultation;
        this.consultationState = message.consultation.state;
        if (CLOSED_STATES.has(message.consultation.state)) return this._finish(message.consultation);
        return this._emit("consultation", { consultation: message.consultation });
      case "capture-status":
        return this._emit("capture", message);
      case "error":
        return this._status(`${refusalText(message)} (${message.code})`, "error");
    }
  }

  /**
   * Ask the edge for a still (or a clip of the last `seconds`) of the frame on screen now, with these labels.
   * Progress arrives as "capture" events (requested → captured → stored, or failed).
   * @param {"still"|"clip"} kind
   * @param {Record<string, any>} labels
   * @param {number} [seconds]
   * @returns {Promise<{id: string, state: string}>}
   */
  capture(kind, labels, seconds) {
    const body = { kind, labels, frame_capture_ms: this.latency.shownCaptureMs, ...(kind === "clip" ? { seconds } : {}) };
    return this.api.request("POST", `/consultations/${encodeURIComponent(this.consultationId)}/captures`, body);
  }

  /** @param {Extract<ServerMessage, {type: "welcome"}>} message */
  _welcome(message) {
    this.role = message.you.role;
    this.peerId = message.you.id;
    this.consultation = message.consultation;
    this.consultationState = message.consultation.state ?? null;
    this.participants = new Map([message.you, ...message.peers].map((p) => [p.id, p]));
    if (this.canSpeak && !this.microphone.opening) void this._openMicrophone();
    this._emit("welcome", { role: this.role, peerId: this.peerId, consultation: this.consultation });
    this._emit("participants", this.participantList);
    this._emit("consultation", { consultation: message.consultation });
    this._status("", "info"); // joined: the peer status says the rest
    this._emitEdge();
  }

  /** @param {string} peerId */
  _peerLeft(peerId) {
    this.participants.delete(peerId);
    if (this.board.forget(peerId)) this._emit("pointers", this.board.pointerList);
    // Only the call with that very peer: an edge back on a new socket may already have offered a fresh call
    // before the server noticed its old socket had died.
    if (peerId === this.pcPeer) this._closePeerConnection();
    this._emit("participants", this.participantList);
    this._emitEdge();
  }

  /**
   * Answer the edge's offer on a brand-new RTCPeerConnection (aiortc has no ICE restart: every offer is a new
   * call). The microphone goes on the offered audio transceiver before the answer is made.
   * @param {string} from
   * @param {string} sdp
   */
  async _answerOffer(from, sdp) {
    this._closePeerConnection();
    const { iceServers, iceTransportPolicy } = this.ice;
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy });
    this.pc = pc;
    this.pcPeer = from;
    this.iceState = pc.iceConnectionState;
    this.previousStats = null;
    this.latency.resetFrames();
    this.freezes.restart();
    this._presentedFrames = null;
    const signal = this.signal;
    pc.addEventListener("icecandidate", (e) => {
      if (this.pc === pc) signal?.ice(from, e.candidate ? e.candidate.toJSON() : null);
    });
    pc.addEventListener("track", (e) => {
      if (this.pc === pc) this._emit("track", { kind: e.track.kind, track: e.track });
    });
    pc.addEventListener("datachannel", (e) => {
      if (this.pc === pc) this._attachChannel(pc, e.channel);
    });
    const onState = () => {
      if (this.pc !== pc) return;
      this.iceState = pc.iceConnectionState;
      this._emitEdge();
    };
    pc.addEventListener("iceconnectionstatechange", onState);
    pc.addEventListener("connectionstatechange", onState);

    await pc.setRemoteDescription({ type: "offer", sdp });
    // undefined: still waiting for the permission prompt; null: no microphone (or an observer)
    const mic = this.canSpeak ? await this.microphone.within(MICROPHONE_WAIT_MS) : null;
    if (this.pc !== pc) return; // a newer offer or a departure overtook this one
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.receiver.track.kind === "audio" && mic !== null) {
        // sendrecv even while the prompt is open: the microphone joins later without renegotiation
        await this.microphone.sendOn(transceiver.sender);
        transceiver.direction = "sendrecv";
      } else {
        transceiver.direction = "recvonly";
      }
    }
    if (this.pc !== pc) return;
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.pc !== pc) return;
    signal?.answer(from, /** @type {RTCSessionDescription} */ (pc.localDescription).sdp);
    this._emitEdge();
  }

  /**
   * @param {string} from
   * @param {import("./protocol.js").IceCandidate|null} candidate
   */
  async _remoteCandidate(from, candidate) {
    const pc = this.pc;
    if (!pc || from !== this.pcPeer) return;
    try {
      await pc.addIceCandidate(candidate ?? undefined);
    } catch (err) {
      this._status(t("live.status.ice_refused", { reason: errorText(err) }), "warn");
    }
  }

  _closePeerConnection() {
    const pc = this.pc;
    if (!pc) return;
    this.pc = null;
    this.pcPeer = null;
    void this.microphone.sendOn(null);
    this.iceState = "closed";
    this.framesDecoded = 0;
    this.inboundAudioEnergy = 0;
    this.previousStats = null;
    this.stats = this._stats(null);
    if (this._pingTimer) clearInterval(this._pingTimer);
    this._pingTimer = null;
    this.guidance = null;
    this.live = null;
    pc.close();
    this.board.forgetPointers();
    this._emit("pointers", this.board.pointerList);
    this._emit("channels", { guidance: false, live: false });
    this._emit("connection", { open: false });
  }

  // ---- data channels ---------------------------------------------------------------------------------

  /**
   * @param {RTCPeerConnection} pc
   * @param {RTCDataChannel} channel
   */
  _attachChannel(pc, channel) {
    const opened = () => {
      if (this.pc !== pc) return;
      if (channel.label === "live") this._startPinging(channel);
      this._emit("channels", { guidance: this.guidance?.readyState === "open", live: this.live?.readyState === "open" });
    };
    if (channel.label === "guidance") {
      this.guidance = channel;
      channel.addEventListener("message", (e) => this.pc === pc && this._onGuidance(e.data));
    } else if (channel.label === "live") {
      this.live = channel;
      channel.addEventListener("message", (e) => this.pc === pc && this._onLive(e.data));
    } else {
      return;
    }
    channel.addEventListener("open", opened);
    channel.addEventListener("close", () => this.pc === pc && this._emit("channels", { guidance: false, live: false }));
    if (channel.readyState === "open") opened();
  }

  /** @param {string} text */
  _onGuidance(text) {
    let message;
    try {
      message = decodeGuidance(text);
    } catch (err) {
      this._status(t("live.status.ignored_guidance", { reason: errorText(err) }), "warn");
      return;
    }
    if (message.type === "error") {
      this._status(t("live.status.guidance_refused", { reason: refusalText(message), code: message.code }), "error");
    } else if (message.type === "qc") {
      this.qc = { alerts: message.alerts, completeness: message.completeness };
      this._emit("qc", this.qc);
    } else if (this.board.apply(message)) {
      this._emit("marks", this.markList);
    }
  }

  /** @param {string} text */
  _onLive(text) {
    let message;
    try {
      message = decodeLive(text);
    } catch {
      return; // the live channel is lossy by design; a bad message is dropped silently
    }
    const now = epochNow();
    if (message.type === "pointer") {
      if (message.from !== null && message.from === this.peerId) return;
      this.board.pointer(message, (message.from && this.participants.get(message.from)?.role) || null);
      this.pointerReceivedAt = performance.now();
      this._emit("pointers", this.board.pointerList);
    } else if (message.type === "frame") {
      this.latency.addCapture(message.rtp, message.capture_ms, now);
    } else if (message.type === "pong") {
      this.latency.addPing(message.t, now, message.edge_ms);
      if (message.encoder) this.encoder = message.encoder;
    }
  }

  /** @param {RTCDataChannel} channel */
  _startPinging(channel) {
    if (this._pingTimer) clearInterval(this._pingTimer);
    const ping = () => {
      if (channel.readyState === "open") channel.send(encodePing(++this._pingId, epochNow()));
    };
    ping();
    this._pingTimer = setInterval(ping, 1000);
  }

  // ---- what the page does ------------------------------------------------------------------------------

  get canDraw() {
    return this.role === "expert" || this.role === "sonographer";
  }

  /** The consultation's expert and the sonographer capture stills and clips; observers do not. */
  get canCapture() {
    return this.canDraw && this.consultationState === "live";
  }

  get canSpeak() {
    return this.role !== null && SPEAKING_ROLES.has(this.role);
  }

  get canChat() {
    return this.canSpeak;
  }

  get canEnd() {
    return this.canSpeak;
  }

  /**
   * Send a mark on `guidance`; it is drawn when the edge relays it back.
   * @param {{kind: "arrow"|"circle"|"freehand", points: [number, number][], color?: string}} mark
   * @returns {string|null} the mark's id, or null when it could not be sent
   */
  sendMark(mark) {
    if (!this.canDraw || this.guidance?.readyState !== "open") return null;
    const id = `${this._markPrefix}${++this._markCounter}`;
    this.guidance.send(encodeMark({ id, ...mark }));
    return id;
  }

  /** @returns {boolean} */
  sendClear() {
    if (!this.canDraw || this.guidance?.readyState !== "open") return false;
    this.guidance.send(encodeClear());
    return true;
  }

  /**
   * The mouse position over the image (normalised), or null when it left the image.
   * @param {number|null} x
   * @param {number|null} [y]
   */
  sendPointer(x, y = null) {
    if (!this.canDraw || this.live?.readyState !== "open") return false;
    const message = encodePointer(x, y);
    this.live.send(message);
    for (const timer of this._pointerRepeats) clearTimeout(timer);
    this._pointerRepeats = POINTER_REPEAT_MS.map((delay) =>
      setTimeout(() => {
        if (this.live?.readyState === "open") this.live.send(message);
      }, delay),
    );
    return true;
  }

  /**
   * @param {string} text
   * @returns {boolean} whether the line went out
   */
  sendChat(text) {
    if (!this.canChat || !this.signal) return false;
    try {
      return this.signal.chat(text);
    } catch (err) {
      if (err instanceof ProtocolError) return false;
      throw err;
    }
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.microphone.setMuted(muted);
    this._emit("muted", { muted });
  }

  get muted() {
    return this.microphone.muted;
  }

  async _openMicrophone() {
    const stream = await this.microphone.open();
    if (!stream && this.microphone.error) {
      this._status(t("live.status.no_microphone", { reason: this.microphone.error }), "warn");
    }
  }

  // ---- measurements ------------------------------------------------------------------------------------

  /**
   * The view reports each rendered video frame (`requestVideoFrameCallback`).
   * @param {number} now the callback's `now` (performance clock)
   * @param {{expectedDisplayTime?: number, rtpTimestamp?: number, presentedFrames?: number}} metadata
   */
  frameRendered(now, metadata) {
    const displayed = metadata.expectedDisplayTime ?? now;
    const presented = metadata.presentedFrames;
    let count = 1;
    if (typeof presented === "number") {
      if (this._presentedFrames !== null && presented > this._presentedFrames) count = presented - this._presentedFrames;
      this._presentedFrames = presented;
    }
    this.freezes.frame(displayed, count);
    if (typeof metadata.rtpTimestamp === "number") {
      this.latency.addDisplay(metadata.rtpTimestamp, performance.timeOrigin + displayed, epochNow());
    }
  }

  async _pollStats() {
    const pc = this.pc;
    if (pc) {
      let entries;
      try {
        entries = [...(await pc.getStats()).values()];
      } catch {
        return;
      }
      if (this.pc !== pc) return;
      const summary = summarise(this.previousStats, entries);
      this.previousStats = entries;
      this.framesDecoded = summary.framesDecoded;
      this.inboundAudioEnergy = summary.inboundAudioEnergy;
      this.stats = this._stats(summary);
    } else {
      this.stats = this._stats(null);
    }
    this._emit("stats", { stats: this.stats, audio: { inboundEnergy: this.inboundAudioEnergy } });
  }

  /**
   * @param {import("./linkstats.js").LinkSummary|null} summary
   * @returns {LiveStats}
   */
  _stats(summary) {
    const latency = this.latency.summary(epochNow());
    return {
      fps: summary?.fps ?? null,
      width: summary?.width ?? null,
      height: summary?.height ?? null,
      bitrateMbps: summary?.bitrateMbps ?? null,
      rttMs: summary?.rttMs ?? null,
      lossPct: summary?.lossPct ?? null,
      freezeCount: this.freezes.freezeCount,
      freezeMs: this.freezes.freezeMs,
      browserFreezeCount: summary?.browserFreezeCount ?? null,
      browserFreezeMs: summary?.browserFreezeMs ?? null,
      pauseCount: this.freezes.pauseCount,
      latencyP50: latency.p50,
      latencyP95: latency.p95,
      latencySamples: latency.count,
      encoder: this.encoder,
    };
  }

  // ---- state for views and tests -----------------------------------------------------------------------

  get participantList() {
    return [...this.participants.values()];
  }

  get markList() {
    return this.board.markList;
  }

  /** The last pointer message from someone else, or null. */
  get remotePointer() {
    return this.board.lastPointer;
  }

  get chat() {
    return [...this.chatLines.values()];
  }

  get edgePeer() {
    return this.participantList.find((p) => p.role === "edge") ?? null;
  }

  get edgeConnected() {
    const pc = this.pc;
    if (!pc) return false;
    return pc.connectionState === "connected" || ["connected", "completed"].includes(pc.iceConnectionState);
  }

  /** @param {() => {left: number, top: number, width: number, height: number}|null} provider */
  setContentRectProvider(provider) {
    this._contentRectProvider = provider;
  }

  /** The video's content rectangle in page CSS pixels (client coordinates), as the view measures it. */
  videoContentRect() {
    return this._contentRectProvider ? this._contentRectProvider() : null;
  }

  /** A JSON-able picture of the session (the end-to-end tests read it). */
  snapshot() {
    return JSON.parse(
      JSON.stringify({
        role: this.role,
        peerId: this.peerId,
        consultationState: this.consultationState,
        edgeConnected: this.edgeConnected,
        iceState: this.pc ? this.pc.iceConnectionState : this.iceState,
        framesDecoded: this.framesDecoded,
        marks: this.markList,
        remotePointer: this.remotePointer,
        pointerReceivedAt: this.pointerReceivedAt,
        chat: this.chat.map(({ from, name, role, text, at }) => ({ from, name, role, text, at })),
        participants: this.participantList,
        stats: this.stats,
        audio: { inboundEnergy: this.inboundAudioEnergy },
        muted: this.muted,
        channels: { guidance: this.guidance?.readyState ?? null, live: this.live?.readyState ?? null },
        qc: this.qc,
      }),
    );
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  /**
   * @param {ChatLine} line
   * @param {boolean} notify
   */
  _addChat(line, notify) {
    const key = line.id !== undefined && line.id !== null ? `id:${line.id}` : `n:${this.chatLines.size}`;
    this.chatLines.set(key, { id: line.id, from: line.from, name: line.name, role: line.role, text: line.text, at: line.at });
    if (notify) this._emit("chat", this.chat);
  }

  _emitEdge() {
    this._emit("edge", { connected: this.edgeConnected, iceState: this.pc ? this.pc.iceConnectionState : this.iceState, present: !!this.edgePeer });
  }

  /**
   * @param {string} text
   * @param {"info"|"warn"|"error"} level
   */
  _status(text, level) {
    this._emit("status", { text, level });
  }

  /**
   * @template {keyof SessionEvents} K
   * @param {K} type
   * @param {SessionEvents[K]} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** A failure in the reader's words: a refusal's by its code, anything else as it came. @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) return refusalText(err);
  return err instanceof Error ? err.message : String(err);
}


/**
 * Chat lines in the order they were said: by the server's line id, by time for a line without one.
 * @param {ChatLine} a
 * @param {ChatLine} b
 */
function chatOrder(a, b) {
  if (typeof a.id === "number" && typeof b.id === "number") return a.id - b.id;
  return String(a.at).localeCompare(String(b.at));
}
