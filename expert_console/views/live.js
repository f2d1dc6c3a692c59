// @ts-check
// The live view (#/c/<id>), the same for every role, shaped by the role the server gives in `welcome`:
// the edge's video with the guidance overlay and tools, voice, chat, participants and the link panel.

import { errorText, personName, t } from "../i18n.js";
import { LiveSession } from "../session.js";
import { createCapturePanel } from "./captures.js";
import { createChat } from "./chat.js";
import { createQcPanel } from "./qcpanel.js";
import { asError, el, setText } from "./dom.js";
import { examLabel, roleLabel, stateLabel } from "./labels.js";
import { GuidanceTools } from "./guidancetools.js";
import { createLinkPanel } from "./linkpanel.js";
import { Overlay, ROLE_COLORS } from "./overlay.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {ReturnType<typeof livePage>} LivePage
 * @typedef {import("../session.js").SessionEvents} SessionEvents
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, consultationId: string, observe: boolean, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountLive(root, { api, consultationId, observe, navigate }) {
  const session = new LiveSession({ consultationId, observe, api, location: window.location });
  const teleus = /** @type {import("../app.js").HookedWindow} app.js set the hooks before routing here */ (window).teleus;
  const page = livePage(session, navigate);
  root.append(page.element);
  session.setContentRectProvider(() => {
    const box = page.video.getBoundingClientRect();
    const rect = page.overlay.contentRect();
    return { left: box.left + page.video.clientLeft + rect.x, top: box.top + page.video.clientTop + rect.y,
      width: rect.width, height: rect.height };
  });
  teleus.live = session;
  followSession(session, page);
  bindControls(session, page);
  const stopFrames = watchFrames(session, page);
  void session.start().catch((err) => {
    const refusal = asError(err);
    setText(page.signalStatus, `${errorText(refusal)} (${refusal.code})`);
  });

  return () => {
    page.tools.hidePointer();
    page.captures?.dispose();
    session.close();
    stopFrames();
    page.overlay.dispose();
    page.video.srcObject = null;
    page.audio.srcObject = null;
    delete document.body.dataset.liveRole;
    if (teleus.live === session) teleus.live = null;
  };
}

/**
 * The page's elements and panels.
 * @param {LiveSession} session
 * @param {(hash: string) => void} navigate
 */
function livePage(session, navigate) {
  const video = el("video", { "data-testid": "live-video", muted: true, playsinline: true, autoplay: true });
  video.muted = true;
  const canvas = el("canvas", { "data-testid": "overlay", class: "overlay" });
  const overlay = new Overlay(canvas, video, (peerId) => (peerId && session.participants.get(peerId)?.role) || null);
  const chat = createChat({ onSend: (text) => session.sendChat(text), onEarlier: () => void session.loadEarlierChat() });
  chat.setEnabled(false, t("live.joining"));
  const page = {
    caseTitle: el("h2", { class: "case-title", "data-testid": "case-title", text: t("live.consultation") }),
    stateBadge: el("span", { class: "badge", "data-testid": "consultation-state", text: "…" }),
    // Everyone in the room sees that the session is recorded (site policy: the server says so).
    recordingBadge: el("span", { class: "badge recording", "data-testid": "recording-badge", hidden: true,
      title: t("live.recording_title"), text: t("live.recording_badge") }),
    peerStatus: el("p", { class: "peer-status", "data-testid": "peer-status", "data-state": "connecting", text: t("live.connecting") }),
    muteButton: el("button", { "data-action": "mute", "aria-pressed": "false", text: t("live.mute"), hidden: true }),
    endButton: el("button", { "data-action": "end", class: "danger", text: t("live.end"), hidden: true }),
    soundButton: el("button", { "data-action": "enable-audio", class: "primary", text: t("live.enable_sound"), hidden: true }),
    endedBanner: el("div", { class: "ended-banner", "data-testid": "ended-banner", role: "status", hidden: true,
      text: t("live.ended") }),
    video,
    canvas,
    overlay,
    stageMessage: el("div", { class: "stage-message", "data-testid": "stage-message", text: t("live.connecting") }),
    audio: el("audio", { autoplay: true, "data-testid": "remote-audio" }),
    tools: new GuidanceTools(session, canvas, overlay),
    signalStatus: el("p", { class: "status-line", "data-testid": "signal-status", role: "status" }),
    captureSlot: el("div", { class: "capture-slot" }),
    /** @type {ReturnType<typeof createCapturePanel>|null} */
    captures: null,
    participantsList: el("ul", { class: "participants", "data-testid": "participants" }),
    linkPanel: createLinkPanel(),
    qcPanel: createQcPanel(),
    chat,
  };
  const leaveButton = el("button", { "data-action": "leave", text: t("live.leave"), onclick: () => navigate("#/") });
  const element = el("div", { class: "live" },
    el("header", { class: "live-head" },
      el("div", { class: "case" }, page.caseTitle, page.stateBadge, page.recordingBadge), page.peerStatus,
      el("div", { class: "controls" }, page.soundButton, page.muteButton, page.endButton, leaveButton)),
    page.endedBanner,
    el("div", { class: "live-body" },
      el("div", { class: "stage-column" }, page.tools.toolbar, el("div", { class: "stage" }, video, canvas, page.stageMessage),
        page.signalStatus, page.captureSlot),
      el("aside", { class: "side" },
        el("section", { class: "panel" }, el("h3", { text: t("live.in_the_room") }), page.participantsList),
        page.qcPanel.element, page.linkPanel.element, chat.element)),
    page.audio);
  return { ...page, element };
}

/**
 * Session events → the page.
 * @param {LiveSession} session
 * @param {LivePage} page
 */
function followSession(session, page) {
  /**
   * @template {keyof SessionEvents} K
   * @param {K} type
   * @param {(detail: SessionEvents[K]) => void} handler
   */
  const on = (type, handler) => session.addEventListener(type,
    (e) => handler(/** @type {CustomEvent<SessionEvents[K]>} the session sends only these (its _emit) */ (e).detail));

  on("welcome", () => showWelcome(session, page));
  on("capture", (message) => page.captures?.handleStatus(message));
  on("qc", (qc) => page.qcPanel.show(qc));
  on("consultation", ({ consultation }) => {
    showConsultation(session, page, consultation);
    page.captures?.setEnabled(session.canCapture);
  });
  on("participants", (peers) => showParticipants(session, page, peers));
  on("edge", ({ connected }) => {
    showPeerStatus(session, page);
    if (connected && page.signalStatus.dataset.level === "info") setText(page.signalStatus, "");
  });
  on("track", ({ kind, track }) => attachTrack(page, kind, track));
  on("connection", () => {
    // never leave the last frame of a closed call on screen: it would look live
    page.video.srcObject = null;
    page.audio.srcObject = null;
  });
  on("marks", (marks) => page.overlay.setMarks(marks));
  on("pointers", (pointers) => page.overlay.setPointers(pointers));
  on("chat", (lines) => page.chat.render(lines, session.hasEarlierChat));
  on("stats", ({ stats }) => {
    page.linkPanel.update(stats);
    showPeerStatus(session, page);
  });
  on("muted", ({ muted }) => {
    page.muteButton.setAttribute("aria-pressed", String(muted));
    setText(page.muteButton, muted ? t("live.unmute") : t("live.mute"));
  });
  on("status", ({ text, level }) => {
    setText(page.signalStatus, text);
    page.signalStatus.dataset.level = level;
  });
  on("ended", ({ consultation }) => showEnded(session, page, consultation));
  on("fatal", ({ code, message }) => {
    const text = errorText({ code, message });
    setText(page.signalStatus, `${text} (${code})`);
    page.signalStatus.dataset.level = "error";
    setText(page.peerStatus, t("live.cannot_join"));
    page.peerStatus.dataset.state = "refused";
    setText(page.stageMessage, text);
  });
}

/**
 * The server said who we are: the controls this role has.
 * @param {LiveSession} session
 * @param {LivePage} page
 */
function showWelcome(session, page) {
  page.tools.update();
  page.muteButton.hidden = !session.canSpeak;
  page.endButton.hidden = !session.canEnd;
  page.chat.setEnabled(session.canChat, t("live.observers_view_only"));
  document.body.dataset.liveRole = session.role ?? "";
  if (!page.captures && session.canDraw) {
    const c = session.consultation ?? {};
    page.captures = createCapturePanel({ session, exam: c.exam_type ?? "", studyUid: c.study_uid ?? null });
    page.captureSlot.append(page.captures.element);
    void page.captures.loadStored();
  }
  page.captures?.setEnabled(session.canCapture);
}

/**
 * @param {LiveSession} session
 * @param {LivePage} page
 * @param {Record<string, any>} consultation
 */
function showEnded(session, page, consultation) {
  if (consultation?.state === "cancelled") setText(page.endedBanner, t("live.cancelled"));
  page.endedBanner.hidden = false;
  page.tools.toolbar.hidden = true;
  page.endButton.hidden = true;
  page.muteButton.hidden = true;
  page.chat.setEnabled(false, t("live.chat_ended"));
  page.video.srcObject = null;
  page.audio.srcObject = null;
  showPeerStatus(session, page);
}

/**
 * @param {LiveSession} session
 * @param {LivePage} page
 * @param {Record<string, any>} c
 */
function showConsultation(session, page, c) {
  const exam = c.exam_type ? examLabel(c.exam_type) : "";
  const parts = [personName(c.patient?.name), c.patient?.id && t("live.patient_id", { id: c.patient.id }), exam, c.site?.name];
  setText(page.caseTitle, parts.filter(Boolean).join(" · ") || t("live.consultation"));
  setText(page.stateBadge, c.state ? stateLabel(c.state) : "");
  page.stateBadge.className = `badge state-${c.state}`;
  page.recordingBadge.hidden = !(c.recording && c.state === "live");
  // before an expert has joined, the sonographer withdraws the request rather than ending a call
  setText(page.endButton, c.state === "requested" && session.role === "sonographer" ? t("live.cancel_request") : t("live.end"));
}

/**
 * @param {LiveSession} session
 * @param {LivePage} page
 * @param {import("../protocol.js").Peer[]} peers
 */
function showParticipants(session, page, peers) {
  page.participantsList.replaceChildren(...peers.map((p) =>
    el("li", { "data-peer-id": p.id, "data-role": p.role },
      el("span", { class: "dot", style: `background:${ROLE_COLORS[p.role] ?? "#888"}` }),
      el("span", { class: "peer-name", text: personName(p.name) || roleLabel(p.role) }),
      el("span", { class: "peer-role", text: p.id === session.peerId ? t("live.role_you", { role: roleLabel(p.role) }) : roleLabel(p.role) }))));
  page.overlay.schedule();
}

/**
 * @param {LiveSession} session
 * @param {LivePage} page
 */
function showPeerStatus(session, page) {
  /** @type {[string, string]} */
  let status;
  if (session.ended) status = ["ended", session.consultationState === "cancelled" ? t("live.cancelled") : t("live.ended")];
  else if (session.edgeConnected) status = ["connected", t("live.edge_connected")];
  else if (!session.edgePeer) status = ["waiting", t("live.edge_waiting")];
  else if (["failed", "disconnected"].includes(session.iceState)) status = ["interrupted", t("live.link_interrupted", { state: session.iceState })];
  else status = ["connecting", t("live.edge_connecting")];
  if (page.peerStatus.dataset.state === "refused") return;
  page.peerStatus.dataset.state = status[0];
  setText(page.peerStatus, status[1]);
  page.stageMessage.hidden = status[0] === "connected";
  setText(page.stageMessage, status[1]);
}

/**
 * @param {LivePage} page
 * @param {string} kind
 * @param {MediaStreamTrack} track
 */
function attachTrack(page, kind, track) {
  if (kind === "video") {
    page.video.srcObject = new MediaStream([track]);
    page.video.play().catch(() => {});
  } else if (kind === "audio") {
    page.audio.srcObject = new MediaStream([track]);
    page.audio.play().then(() => (page.soundButton.hidden = true), () => (page.soundButton.hidden = false));
  }
}

/**
 * The sound, mute and end buttons.
 * @param {LiveSession} session
 * @param {LivePage} page
 */
function bindControls(session, page) {
  const { audio, soundButton, muteButton, endButton, signalStatus } = page;
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
      const refusal = asError(err);
      const reason = `${errorText(refusal)} (${refusal.code})`;
      setText(signalStatus, cancelling ? t("live.cancel_failed", { reason }) : t("live.end_failed", { reason }));

      signalStatus.dataset.level = "error";
    } finally {
      endButton.disabled = false;
    }
  });
}

/**
 * Rendered frames → the session's link statistics; size changes → the overlay.
 * @param {LiveSession} session
 * @param {LivePage} page
 * @returns {() => void} stop
 */
function watchFrames(session, page) {
  const { video, overlay } = page;
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
  return () => {
    if (frameHandle && "cancelVideoFrameCallback" in video) video.cancelVideoFrameCallback(frameHandle);
    resizeObserver.disconnect();
  };
}
