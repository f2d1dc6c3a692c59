// @ts-check
// The live view (#/c/<id>), the same for every role, shaped by the role the server gives in `welcome`:
// the edge's video with the guidance overlay and tools, voice, chat, participants and the link panel.

import { clampPoint, onImage, simplifyPath, toNormalised } from "../geometry.js";
import { LiveSession } from "../session.js";
import { createCapturePanel } from "./captures.js";
import { createChat } from "./chat.js";
import { createQcPanel } from "./qcpanel.js";
import { asError, el, setText } from "./dom.js";
import { createLinkPanel } from "./linkpanel.js";
import { Overlay, ROLE_COLORS } from "./overlay.js";

const TOOLS = /** @type {const} */ ([
  ["pointer", "Pointer"],
  ["arrow", "Arrow"],
  ["circle", "Circle"],
  ["freehand", "Freehand"],
]);
/** A drag shorter than this (CSS px) is a click, not a mark. */
const MIN_DRAG_PX = 4;
/** Pointer messages go out at most this often (~60 per second): fast enough to track the hand, light on the link. */
const POINTER_INTERVAL_MS = 16;

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {"pointer"|"arrow"|"circle"|"freehand"} Tool
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, consultationId: string, observe: boolean, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountLive(root, { api, consultationId, observe, navigate }) {
  const session = new LiveSession({ consultationId, observe, api, location: window.location });
  const teleus = /** @type {any} */ (window).teleus;

  // ---- the page -------------------------------------------------------------------------------------
  const caseTitle = el("h2", { class: "case-title", "data-testid": "case-title", text: "Consultation" });
  const stateBadge = el("span", { class: "badge", "data-testid": "consultation-state", text: "…" });
  // Everyone in the room sees that the session is recorded (site policy: the server says so).
  const recordingBadge = el("span", { class: "badge recording", "data-testid": "recording-badge", hidden: true,
    title: "This consultation is being recorded", text: "● REC" });
  const peerStatus = el("p", { class: "peer-status", "data-testid": "peer-status", "data-state": "connecting", text: "connecting…" });
  const muteButton = el("button", { "data-action": "mute", "aria-pressed": "false", text: "Mute", hidden: true });
  const endButton = el("button", { "data-action": "end", class: "danger", text: "End consultation", hidden: true });
  const leaveButton = el("button", { "data-action": "leave", text: "Leave", onclick: () => navigate("#/") });
  const soundButton = el("button", { "data-action": "enable-audio", class: "primary", text: "Enable sound", hidden: true });
  const endedBanner = el("div", { class: "ended-banner", "data-testid": "ended-banner", role: "status", hidden: true,
    text: "Consultation ended" });

  const video = el("video", { "data-testid": "live-video", muted: true, playsinline: true, autoplay: true });
  video.muted = true;
  const canvas = el("canvas", { "data-testid": "overlay", class: "overlay" });
  const stageMessage = el("div", { class: "stage-message", "data-testid": "stage-message", text: "connecting…" });
  const stage = el("div", { class: "stage" }, video, canvas, stageMessage);
  const audio = el("audio", { autoplay: true, "data-testid": "remote-audio" });

  /** @type {Record<string, HTMLButtonElement>} */
  const toolButtons = {};
  for (const [tool, label] of TOOLS) {
    toolButtons[tool] = el("button", { "data-tool": tool, "aria-pressed": String(tool === "pointer"), text: label,
      onclick: () => selectTool(tool) });
  }
  const clearButton = el("button", { "data-action": "clear", text: "Clear marks", onclick: () => session.sendClear() });
  const toolbar = el("div", { class: "toolbar", role: "toolbar", "aria-label": "Guidance tools", hidden: true },
    Object.values(toolButtons), clearButton);
  const signalStatus = el("p", { class: "status-line", "data-testid": "signal-status", role: "status" });
  const captureSlot = el("div", { class: "capture-slot" });
  /** @type {ReturnType<typeof createCapturePanel>|null} */
  let captures = null;

  const participantsList = el("ul", { class: "participants", "data-testid": "participants" });
  const linkPanel = createLinkPanel();
  const qcPanel = createQcPanel();
  const chat = createChat({ onSend: (text) => session.sendChat(text) });
  chat.setEnabled(false, "Joining…");

  root.append(
    el("div", { class: "live" },
      el("header", { class: "live-head" },
        el("div", { class: "case" }, caseTitle, stateBadge, recordingBadge), peerStatus,
        el("div", { class: "controls" }, soundButton, muteButton, endButton, leaveButton)),
      endedBanner,
      el("div", { class: "live-body" },
        el("div", { class: "stage-column" }, toolbar, stage, signalStatus, captureSlot),
        el("aside", { class: "side" },
          el("section", { class: "panel" }, el("h3", { text: "In the room" }), participantsList),
          qcPanel.element, linkPanel.element, chat.element)),
      audio),
  );

  const overlay = new Overlay(canvas, video, (peerId) => (peerId && session.participants.get(peerId)?.role) || null);
  session.setContentRectProvider(() => {
    const box = video.getBoundingClientRect();
    const rect = overlay.contentRect();
    return { left: box.left + video.clientLeft + rect.x, top: box.top + video.clientTop + rect.y, width: rect.width, height: rect.height };
  });
  teleus.live = session;

  // ---- session → page -----------------------------------------------------------------------------------
  /**
   * @param {string} type
   * @param {(detail: any) => void} handler
   */
  const on = (type, handler) => session.addEventListener(type, (e) => handler(/** @type {CustomEvent} */ (e).detail));

  on("welcome", () => {
    const speaking = session.canSpeak;
    toolbar.hidden = !session.canDraw;
    for (const b of [...Object.values(toolButtons), clearButton]) b.disabled = !session.canDraw;
    canvas.classList.toggle("drawable", session.canDraw);
    muteButton.hidden = !speaking;
    endButton.hidden = !session.canEnd;
    chat.setEnabled(session.canChat, "Observers follow view-only");
    document.body.dataset.liveRole = session.role ?? "";
    if (!captures && session.canDraw) {
      const c = session.consultation ?? {};
      captures = createCapturePanel({ session, exam: c.exam_type ?? "", studyUid: c.study_uid ?? null });
      captureSlot.append(captures.element);
      void captures.loadStored();
    }
    captures?.setEnabled(session.canCapture);
  });
  on("capture", (message) => captures?.handleStatus(message));
  on("qc", (qc) => qcPanel.show(qc));
  on("consultation", ({ consultation }) => {
    showConsultation(consultation);
    captures?.setEnabled(session.canCapture);
  });
  on("participants", (peers) => showParticipants(peers));
  on("edge", ({ connected }) => {
    showPeerStatus();
    if (connected && signalStatus.dataset.level === "info") setText(signalStatus, "");
  });
  on("track", ({ kind, track }) => attachTrack(kind, track));
  on("connection", () => {
    // never leave the last frame of a closed call on screen: it would look live
    video.srcObject = null;
    audio.srcObject = null;
  });
  on("marks", (marks) => overlay.setMarks(marks));
  on("pointers", (pointers) => overlay.setPointers(pointers));
  on("chat", (lines) => chat.render(lines));
  on("stats", ({ stats }) => {
    linkPanel.update(stats);
    showPeerStatus();
  });
  on("muted", ({ muted }) => {
    muteButton.setAttribute("aria-pressed", String(muted));
    setText(muteButton, muted ? "Unmute" : "Mute");
  });
  on("status", ({ text, level }) => {
    setText(signalStatus, text);
    signalStatus.dataset.level = level;
  });
  on("ended", ({ consultation }) => {
    if (consultation?.state === "cancelled") setText(endedBanner, "Consultation cancelled");
    endedBanner.hidden = false;
    toolbar.hidden = true;
    endButton.hidden = true;
    muteButton.hidden = true;
    chat.setEnabled(false, "The consultation has ended");
    video.srcObject = null;
    audio.srcObject = null;
    showPeerStatus();
  });
  on("fatal", ({ code, message }) => {
    setText(signalStatus, `${message} (${code})`);
    signalStatus.dataset.level = "error";
    setText(peerStatus, "Cannot join this consultation");
    peerStatus.dataset.state = "refused";
    setText(stageMessage, `${message}`);
  });

  /** @param {Record<string, any>} c */
  function showConsultation(c) {
    const exam = c.exam_type ? c.exam_type[0].toUpperCase() + c.exam_type.slice(1) : "";
    const parts = [c.patient?.name, c.patient?.id && `ID ${c.patient.id}`, exam, c.site?.name].filter(Boolean);
    setText(caseTitle, parts.join(" · ") || "Consultation");
    setText(stateBadge, c.state ?? "");
    stateBadge.className = `badge state-${c.state}`;
    recordingBadge.hidden = !(c.recording && c.state === "live");
    // before an expert has joined, the sonographer withdraws the request rather than ending a call
    setText(endButton, c.state === "requested" && session.role === "sonographer" ? "Cancel request" : "End consultation");
  }

  /** @param {import("../protocol.js").Peer[]} peers */
  function showParticipants(peers) {
    participantsList.replaceChildren(...peers.map((p) =>
      el("li", { "data-peer-id": p.id, "data-role": p.role },
        el("span", { class: "dot", style: `background:${ROLE_COLORS[p.role] ?? "#888"}` }),
        el("span", { class: "peer-name", text: p.name || p.role }),
        el("span", { class: "peer-role", text: p.id === session.peerId ? `${p.role} · you` : p.role }))));
    overlay.schedule();
  }

  function showPeerStatus() {
    /** @type {[string, string]} */
    let status;
    if (session.ended) status = ["ended", session.consultationState === "cancelled" ? "Consultation cancelled" : "Consultation ended"];
    else if (session.edgeConnected) status = ["connected", "edge connected"];
    else if (!session.edgePeer) status = ["waiting", "waiting for the edge"];
    else if (["failed", "disconnected"].includes(session.iceState)) status = ["interrupted", `link interrupted (${session.iceState})`];
    else status = ["connecting", "connecting to the edge…"];
    if (peerStatus.dataset.state === "refused") return;
    peerStatus.dataset.state = status[0];
    setText(peerStatus, status[1]);
    stageMessage.hidden = status[0] === "connected";
    setText(stageMessage, status[1]);
  }

  /**
   * @param {string} kind
   * @param {MediaStreamTrack} track
   */
  function attachTrack(kind, track) {
    if (kind === "video") {
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => {});
    } else if (kind === "audio") {
      audio.srcObject = new MediaStream([track]);
      audio.play().then(() => (soundButton.hidden = true), () => (soundButton.hidden = false));
    }
  }
  soundButton.addEventListener("click", () => {
    audio.play().then(() => (soundButton.hidden = true), () => {});
  });
  muteButton.addEventListener("click", () => session.setMuted(!session.muted));
  endButton.addEventListener("click", async () => {
    endButton.disabled = true;
    const cancelling = session.consultationState === "requested" && session.role === "sonographer";
    try {
      await (cancelling ? session.cancel() : session.end());
    } catch (err) {
      const { code, message } = asError(err);
      setText(signalStatus, `Could not ${cancelling ? "cancel" : "end"}: ${message} (${code})`);
      signalStatus.dataset.level = "error";
    } finally {
      endButton.disabled = false;
    }
  });

  // ---- frames, sizes ------------------------------------------------------------------------------------
  let frameHandle = 0;
  /** @type {VideoFrameRequestCallback} */
  const onFrame = (now, metadata) => {
    session.frameRendered(now, metadata);
    frameHandle = video.requestVideoFrameCallback(onFrame);
  };
  if ("requestVideoFrameCallback" in video) frameHandle = video.requestVideoFrameCallback(onFrame);
  const resizeObserver = new ResizeObserver(() => overlay.draw());
  resizeObserver.observe(video);
  video.addEventListener("resize", () => overlay.draw());
  video.addEventListener("loadedmetadata", () => overlay.draw());

  // ---- guidance input -----------------------------------------------------------------------------------
  /** @type {Tool} */
  let tool = "pointer";
  /** @type {{kind: Exclude<Tool, "pointer">, points: [number, number][], startX: number, startY: number, pointerId: number}|null} */
  let drag = null;
  /** @type {[number, number]|null} the latest position waiting for the next animation frame */
  let pendingPointer = null;
  /** setTimeout handle of the trailing send, 0 when none is due */
  let pointerTimer = 0;
  /** performance.now() of the last pointer sent */
  let pointerSentAt = -Infinity;
  let pointerShown = false;

  /** @param {Tool} next */
  function selectTool(next) {
    if (tool === "pointer" && next !== "pointer") hidePointer();
    tool = next;
    for (const [name, button] of Object.entries(toolButtons)) button.setAttribute("aria-pressed", String(name === next));
    canvas.dataset.tool = next;
  }
  canvas.dataset.tool = tool;

  /**
   * The normalised image point under a mouse event.
   * @param {PointerEvent} event
   * @returns {[number, number]}
   */
  function imagePoint(event) {
    const box = canvas.getBoundingClientRect();
    return toNormalised(overlay.contentRect(), event.clientX - box.left, event.clientY - box.top);
  }

  function flushPointer() {
    pointerTimer = 0;
    if (!pendingPointer) return;
    const [x, y] = pendingPointer;
    pendingPointer = null;
    pointerSentAt = performance.now();
    if (session.sendPointer(x, y)) pointerShown = true;
  }

  function hidePointer() {
    pendingPointer = null;
    if (pointerTimer) clearTimeout(pointerTimer);
    pointerTimer = 0;
    if (pointerShown) session.sendPointer(null);
    pointerShown = false;
  }

  /** @param {PointerEvent} event */
  function onPointerMove(event) {
    if (!session.canDraw) return;
    const point = imagePoint(event);
    if (drag && event.pointerId === drag.pointerId) {
      const p = clampPoint(point);
      if (drag.kind === "freehand") {
        const last = drag.points[drag.points.length - 1];
        if (!last || last[0] !== p[0] || last[1] !== p[1]) drag.points.push(p);
      } else {
        drag.points[1] = p;
      }
      overlay.setPreview({ kind: drag.kind, points: drag.points, color: myColor() });
      return;
    }
    if (tool !== "pointer") return;
    if (!onImage(point)) {
      hidePointer();
      return;
    }
    // Sent as the mouse moves, at most one message per POINTER_INTERVAL_MS, the last position always sent:
    // waiting for the next animation frame cost up to a frame (and more on a busy page) on every move.
    pendingPointer = point;
    if (pointerTimer) return;
    const wait = pointerSentAt + POINTER_INTERVAL_MS - performance.now();
    if (wait <= 0) flushPointer();
    else pointerTimer = window.setTimeout(flushPointer, wait);
  }

  /** @param {PointerEvent} event */
  function onPointerDown(event) {
    if (!session.canDraw || tool === "pointer" || event.button !== 0) return;
    const point = imagePoint(event);
    if (!onImage(point)) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drag = { kind: tool, points: [point, point], startX: event.clientX, startY: event.clientY, pointerId: event.pointerId };
    if (tool === "freehand") drag.points = [point];
  }

  /** @param {PointerEvent} event */
  function onPointerUp(event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const finished = drag;
    drag = null;
    overlay.setPreview(null);
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    if (Math.hypot(event.clientX - finished.startX, event.clientY - finished.startY) < MIN_DRAG_PX && finished.kind !== "freehand") return;
    const points = finished.kind === "freehand" ? simplifyPath(finished.points, 2000) : finished.points;
    if (points.length < 2) return;
    session.sendMark({ kind: finished.kind, points, color: myColor() });
  }

  function myColor() {
    return ROLE_COLORS[session.role ?? ""] ?? "#ffffff";
  }

  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", () => {
    drag = null;
    overlay.setPreview(null);
  });
  canvas.addEventListener("pointerleave", () => {
    if (!drag) hidePointer();
  });

  void session.start().catch((err) => {
    const { code, message } = asError(err);
    setText(signalStatus, `${message} (${code})`);
  });

  return () => {
    hidePointer();
    captures?.dispose();
    session.close();
    if (frameHandle && "cancelVideoFrameCallback" in video) video.cancelVideoFrameCallback(frameHandle);
    resizeObserver.disconnect();
    overlay.dispose();
    video.srcObject = null;
    audio.srcObject = null;
    delete document.body.dataset.liveRole;
    if (teleus.live === session) teleus.live = null;
  };
}
