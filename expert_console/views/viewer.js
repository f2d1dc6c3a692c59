// @ts-check
// The study page (#/studies/<id>): header with deadline and lock (claimed, renewed every minute while open,
// released on leaving), series thumbnails from QIDO-RS, the image viewer (views/imagepane.js), a prior study from
// any site side by side, the report editor and critical findings.

import { DicomWeb, TAG, instanceRef, number, text } from "../dicomweb.js";
import {
  claimStudy, clockOffset, clockTime, escalation, formatCountdown, getStudy, heldBy, releaseStudy, secondsLeft,
  targetSeconds,
} from "../queue.js";
import { asError, el, setText, showError } from "./dom.js";
import { createStudyFindings } from "./findings.js";
import { ImagePane } from "./imagepane.js";
import { createReportEditor } from "./report.js";

/** The lock lasts 10 min by default (TELEUS_LOCK_MINUTES); renewing every minute leaves a wide margin. */
const RENEW_MS = 60_000;
const REFRESH_MS = 10_000;

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../queue.js").StudyDetail} StudyDetail
 * @typedef {import("../queue.js").Study} Study
 * @typedef {import("../dicomweb.js").InstanceRef} InstanceRef
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, studyId: string, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountStudy(root, { api, user, studyId, navigate }) {
  const dicomweb = new DicomWeb({ onUnauthenticated: (error) => api.onUnauthenticated(error) });
  /** @type {StudyDetail|null} */
  let study = null;
  let offsetMs = 0;
  let holding = false;
  let stopped = false;
  /** @type {ReturnType<typeof setInterval>|null} */
  let renewTimer = null;

  // ---- header ----
  const title = el("h2", { class: "case-title", "data-testid": "study-title", text: "Study" });
  const meta = el("span", { class: "muted", "data-testid": "study-meta" });
  const priority = el("span", { class: "badge", "data-testid": "study-priority" });
  const state = el("span", { class: "badge", "data-testid": "study-state" });
  const due = el("span", { class: "study-due", "data-testid": "study-due" });
  const lockStatus = el("span", { class: "lock-status", "data-testid": "lock-status", text: "" });
  const claimButton = el("button", { "data-action": "claim", class: "primary", text: "Claim", hidden: true,
    onclick: () => void claim() });
  const releaseButton = el("button", { "data-action": "release", text: "Release", hidden: true,
    onclick: () => void release() });
  const error = el("p", { class: "error", "data-testid": "study-error", role: "alert", hidden: true });

  // ---- images ----
  const seriesList = el("div", { class: "series-list", "data-testid": "series-list" },
    el("p", { class: "muted", text: "Loading images…" }));
  const main = new ImagePane({ dicomweb, name: "main", title: "" });
  const prior = new ImagePane({ dicomweb, name: "prior", title: "Prior" });
  prior.element.hidden = true;
  const priorSelect = el("select", { name: "prior", "data-testid": "prior-select", "aria-label": "Compare with a prior study" },
    el("option", { value: "", text: "Compare with a prior…" }));
  priorSelect.addEventListener("change", () => void showPrior(priorSelect.value));
  const priorError = el("span", { class: "error", "data-testid": "prior-error", hidden: true });
  const panes = el("div", { class: "panes" }, main.element, prior.element);

  // ---- side ----
  const findings = createStudyFindings({ api, user, studyId });
  const report = createReportEditor({ api, user, studyId, onChanged: () => void load() });

  root.append(el("div", { class: "study" },
    el("header", { class: "live-head study-head" },
      el("button", { "data-action": "back", text: "← Queue", onclick: () => navigate("#/queue") }),
      el("div", { class: "case" }, title, priority, state), meta, due,
      el("div", { class: "controls" }, lockStatus, claimButton, releaseButton)),
    error,
    el("div", { class: "study-body" },
      el("aside", { class: "series-column" }, el("h3", { text: "Series" }), seriesList),
      el("section", { class: "viewer-column" },
        el("div", { class: "priors-bar" }, priorSelect, priorError), panes),
      el("aside", { class: "side study-side" }, report.element, findings.element))));

  async function load() {
    let data;
    try {
      data = await getStudy(api, studyId);
    } catch (err) {
      if (!stopped) showError(error, asError(err));
      return;
    }
    if (stopped) return;
    const first = study === null;
    offsetMs = clockOffset(data.now);
    apply(data);
    void findings.refresh(); // acknowledgements arrive from the referring centre meanwhile
    if (first) {
      void loadImages(data);
      void report.load(data);
      fillPriors(data.priors ?? []);
    }
  }

  /** @param {StudyDetail} data */
  function apply(data) {
    study = data;
    setText(title, data.patient?.name || "Study");
    setText(meta, [data.site?.name, data.modality, data.accession, data.description, data.patient?.local_id]
      .filter(Boolean).join(" · "));
    setText(priority, data.priority === "stat" ? "STAT" : data.priority);
    priority.className = `badge priority-${data.priority}`;
    setText(state, data.state);
    state.className = `badge state study-state-${data.state}`;
    main.title.textContent = [data.modality, data.accession].filter(Boolean).join(" · ");
    const wasHolding = holding;
    holding = heldBy(data, user.id);
    if (data.lock) {
      setText(lockStatus, holding
        ? `Read by you until ${clockTime(data.lock.expires_at)}` : `Being read by ${data.lock.holder.name}`);
    } else {
      setText(lockStatus, "Not claimed");
    }
    lockStatus.dataset.lock = data.lock ? (holding ? "mine" : "other") : "none";
    claimButton.hidden = user.role !== "expert" || holding || data.state === "registered";
    releaseButton.hidden = !(holding || (user.role === "admin" && data.lock));
    if (holding && !renewTimer) renewTimer = setInterval(() => void renew(), RENEW_MS);
    if (!holding && renewTimer) {
      clearInterval(renewTimer);
      renewTimer = null;
    }
    if (holding !== wasHolding || report.lockHeld() !== holding) report.setLock(holding);
    tick();
  }

  function tick() {
    if (!study) return;
    const left = secondsLeft(study, offsetMs);
    const level = escalation(left, targetSeconds(study));
    setText(due, formatCountdown(left));
    due.dataset.escalation = level;
  }

  async function claim() {
    showError(error, null);
    try {
      const claimed = await claimStudy(api, studyId);
      if (study) apply({ ...study, ...claimed });
    } catch (err) {
      showError(error, asError(err)); // study_locked names the holder
      await load();
    }
  }

  async function renew() {
    try {
      const renewed = await claimStudy(api, studyId);
      if (!stopped && study) apply({ ...study, ...renewed });
    } catch (err) {
      if (stopped) return;
      showError(error, { code: asError(err).code, message: `The lock could not be renewed: ${asError(err).message}` });
      await load();
    }
  }

  async function release() {
    showError(error, null);
    try {
      const released = await releaseStudy(api, studyId);
      if (study) apply({ ...study, ...released });
    } catch (err) {
      showError(error, asError(err));
    }
  }

  /** @param {StudyDetail} data */
  async function loadImages(data) {
    let series;
    try {
      series = await dicomweb.series(data.study_uid);
    } catch (err) {
      if (stopped) return;
      seriesList.replaceChildren(el("p", { class: "muted", "data-testid": "images-error",
        text: `No images: ${asError(err).message}` }));
      main.say("The images could not be listed.");
      return;
    }
    if (stopped) return;
    seriesList.replaceChildren();
    if (!series.length) {
      seriesList.append(el("p", { class: "muted", "data-testid": "images-error",
        text: "No images stored for this study yet." }));
      main.say("No images stored for this study yet.");
      return;
    }
    let opened = false;
    for (const item of series) {
      const seriesUid = text(item, TAG.SeriesInstanceUID);
      const group = el("div", { class: "series", "data-series-uid": seriesUid },
        el("div", { class: "series-label", text: [
          `#${text(item, TAG.SeriesNumber) || "?"}`, text(item, TAG.Modality), text(item, TAG.SeriesDescription),
        ].filter(Boolean).join(" · ") }));
      seriesList.append(group);
      let instances;
      try {
        instances = await dicomweb.instances(data.study_uid, seriesUid);
      } catch (err) {
        group.append(el("p", { class: "muted", text: asError(err).message }));
        continue;
      }
      if (stopped) return;
      for (const instance of instances) {
        const ref = instanceRef(instance, data.study_uid, seriesUid);
        const frames = number(instance, TAG.NumberOfFrames) ?? 1;
        const thumb = el("button", { type: "button", class: "thumb", "data-sop-uid": ref.sopUid, "data-testid": "thumbnail",
          title: frames > 1 ? `clip, ${frames} frames` : "image" },
        el("img", { src: dicomweb.renderedUrl(ref, { frame: frames > 1 ? 1 : undefined }), alt: "", loading: "lazy" }),
        frames > 1 ? el("span", { class: "thumb-badge", text: `▶ ${frames}` }) : null);
        thumb.addEventListener("click", () => open(ref, frames, thumb));
        group.append(thumb);
        if (!opened) {
          opened = true;
          open(ref, frames, thumb);
        }
      }
    }
  }

  /**
   * @param {InstanceRef} ref
   * @param {number} frames
   * @param {HTMLElement} thumb
   */
  function open(ref, frames, thumb) {
    for (const other of seriesList.querySelectorAll(".thumb[aria-current]")) other.removeAttribute("aria-current");
    thumb.setAttribute("aria-current", "true");
    void main.show(ref, { modality: study?.modality, frames });
  }

  /** @param {Study[]} priors */
  function fillPriors(priors) {
    priorSelect.hidden = priors.length === 0;
    for (const p of priors) {
      const when = p.study_date ? `${p.study_date.slice(0, 4)}-${p.study_date.slice(4, 6)}-${p.study_date.slice(6, 8)}`
        : clockTime(p.examined_at ?? p.registered_at);
      const label = [when, p.modality, p.site?.name, p.accession].filter(Boolean).join(" · ");
      priorSelect.append(el("option", { value: p.id, text: label }));
    }
  }

  /** @param {string} priorId */
  async function showPrior(priorId) {
    showError(priorError, null);
    const chosen = study?.priors?.find((p) => p.id === priorId);
    prior.element.hidden = !chosen;
    panes.classList.toggle("two", Boolean(chosen));
    if (!chosen) {
      prior.stop();
      return;
    }
    prior.title.textContent = ["Prior", chosen.site?.name, chosen.modality, chosen.accession].filter(Boolean).join(" · ");
    try {
      const [firstSeries] = await dicomweb.series(chosen.study_uid);
      if (!firstSeries) throw new Error("the prior study has no images stored");
      const seriesUid = text(firstSeries, TAG.SeriesInstanceUID);
      const [firstInstance] = await dicomweb.instances(chosen.study_uid, seriesUid);
      if (!firstInstance) throw new Error("the prior study has no images stored");
      await prior.show(instanceRef(firstInstance, chosen.study_uid, seriesUid), { modality: chosen.modality });
    } catch (err) {
      showError(priorError, asError(err));
    }
  }

  void load();
  const timers = [setInterval(() => void load(), REFRESH_MS), setInterval(tick, 1000)];
  return () => {
    stopped = true;
    for (const timer of timers) clearInterval(timer);
    if (renewTimer) clearInterval(renewTimer);
    main.destroy();
    prior.destroy();
    report.destroy();
    // Leaving the page gives the study back. A closed browser cannot (no CSRF header on a beacon): the lock
    // then lapses on its own after TELEUS_LOCK_MINUTES.
    if (holding) void releaseStudy(api, studyId).catch(() => {});
  };
}
