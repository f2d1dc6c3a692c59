// @ts-check
// The study page (#/studies/<id>): header with deadline and lock (claimed, renewed every minute while open,
// released on leaving), series thumbnails from QIDO-RS, the image viewer (views/imagepane.js), a prior study from
// any site side by side, the report editor and critical findings.

import { DicomWeb, TAG, instanceRef, number, text } from "../dicomweb.js";
import {
  claimStudy, clockOffset, clockTime, escalation, formatCountdown, getStudy, heldBy, releaseStudy, secondsLeft,
  targetSeconds,
} from "../queue.js";
import { errorText, personName, t } from "../i18n.js";
import { asError, el, setText, showError } from "./dom.js";
import { priorityLabel, studyStateLabel } from "./labels.js";
import { createStudyFindings } from "./findings.js";
import { ImagePane } from "./imagepane.js";
import { createReportEditor } from "./report.js";
import { createReportImages } from "./reportimages.js";

/** The lock lasts 10 min by default (TELEUS_LOCK_MINUTES); renewing every minute leaves a wide margin. */
const RENEW_MS = 60_000;

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../queue.js").StudyDetail} StudyDetail
 * @typedef {import("../queue.js").Study} Study
 * @typedef {import("../dicomweb.js").InstanceRef} InstanceRef
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, events: import("../events.js").ChangeFeed, studyId: string,
 *   navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountStudy(root, context) {
  const page = new StudyPage(context);
  root.append(page.element);
  void page.load();
  // the study, its lock and reports (queue) and its findings' acknowledgements (findings) change elsewhere
  const unsubscribe = context.events.subscribe(["queue", "findings"], () => page.load());
  const clock = setInterval(() => page.tick(), 1000);
  return () => {
    unsubscribe();
    clearInterval(clock);
    page.dispose();
  };
}

/** The header's elements; the claim and release buttons call back into the page. @param {StudyPage} page */
function studyHeader(page) {
  return {
    title: el("h2", { class: "case-title", "data-testid": "study-title", text: t("viewer.study") }),
    meta: el("span", { class: "muted", "data-testid": "study-meta" }),
    priority: el("span", { class: "badge", "data-testid": "study-priority" }),
    state: el("span", { class: "badge", "data-testid": "study-state" }),
    due: el("span", { class: "study-due", "data-testid": "study-due" }),
    lockStatus: el("span", { class: "lock-status", "data-testid": "lock-status", text: "" }),
    claimButton: el("button", { "data-action": "claim", class: "primary", text: t("queue.claim"), hidden: true,
      onclick: () => void page.claim() }),
    releaseButton: el("button", { "data-action": "release", text: t("queue.release"), hidden: true,
      onclick: () => void page.release() }),
    error: el("p", { class: "error", "data-testid": "study-error", role: "alert", hidden: true }),
  };
}

/** The study, its lock and deadline, and the panels around the images. */
class StudyPage {
  /** @param {{api: Api, user: User, studyId: string, navigate: (hash: string) => void}} context */
  constructor({ api, user, studyId, navigate }) {
    this.api = api;
    this.user = user;
    this.studyId = studyId;
    /** @type {StudyDetail|null} */ this.study = null;
    this.offsetMs = 0;
    this.holding = false;
    this.stopped = false;
    /** @type {ReturnType<typeof setInterval>|null} */ this.renewTimer = null;
    const dicomweb = new DicomWeb({ onUnauthenticated: (error) => api.onUnauthenticated(error) });
    this.head = studyHeader(this);
    this.main = new ImagePane({ dicomweb, name: "main", title: "" });
    this.series = new SeriesList(dicomweb, this.main, () => this.stopped);
    this.priors = new PriorCompare(dicomweb, this.main, () => this.study?.priors ?? []);
    this.findings = createStudyFindings({ api, user, studyId });
    this.report = createReportEditor({ api, user, studyId, onChanged: () => void this.load() });
    const main = this.main;
    this.reportImages = createReportImages({ api, user, studyId, shown: () => main }); // docs/RESULTS.md
    const h = this.head;
    this.element = el("div", { class: "study" },
      el("header", { class: "live-head study-head" },
        el("button", { "data-action": "back", text: t("viewer.back"), onclick: () => navigate("#/queue") }),
        el("div", { class: "case" }, h.title, h.priority, h.state), h.meta, h.due,
        el("div", { class: "controls" }, h.lockStatus, h.claimButton, h.releaseButton)),
      h.error,
      el("div", { class: "study-body" },
        el("aside", { class: "series-column" }, el("h3", { text: t("viewer.series") }), this.series.element),
        el("section", { class: "viewer-column" }, this.priors.bar, this.priors.panes),
        el("aside", { class: "side study-side" }, this.report.element, this.reportImages.element,
          this.findings.element)));
  }

  async load() {
    let data;
    try {
      data = await getStudy(this.api, this.studyId);
    } catch (err) {
      if (!this.stopped) showError(this.head.error, asError(err));
      return;
    }
    if (this.stopped) return;
    const first = this.study === null;
    this.offsetMs = clockOffset(data.now);
    this.apply(data);
    void this.findings.refresh(); // acknowledgements arrive from the referring centre meanwhile
    void this.reportImages.refresh(); // a draft saved, signed or approved since
    if (first) {
      void this.series.load(data);
      void this.report.load(data);
      this.priors.fill(data.priors ?? []);
    }
  }

  /** @param {StudyDetail} data */
  apply(data) {
    const h = this.head;
    this.study = data;
    this.series.modality = data.modality;
    setText(h.title, personName(data.patient?.name) || t("viewer.study"));
    setText(h.meta, [data.site?.name, data.modality, data.accession, data.description, data.patient?.local_id]
      .filter(Boolean).join(" · "));
    setText(h.priority, priorityLabel(data.priority));
    h.priority.className = `badge priority-${data.priority}`;
    setText(h.state, studyStateLabel(data.state));
    h.state.className = `badge state study-state-${data.state}`;
    this.main.title.textContent = [data.modality, data.accession].filter(Boolean).join(" · ");
    this.applyLock(data);
    this.tick();
  }

  /** @param {StudyDetail} data */
  applyLock(data) {
    const { head: h, user } = this;
    const wasHolding = this.holding;
    const holding = heldBy(data, user.id);
    this.holding = holding;
    if (data.lock) {
      setText(h.lockStatus, holding
        ? t("viewer.read_by_you", { until: clockTime(data.lock.expires_at) })
        : t("viewer.read_by", { name: personName(data.lock.holder.name) }));
    } else {
      setText(h.lockStatus, t("viewer.not_claimed"));
    }
    h.lockStatus.dataset.lock = data.lock ? (holding ? "mine" : "other") : "none";
    h.claimButton.hidden = user.role !== "expert" || holding || data.state === "registered";
    h.releaseButton.hidden = !(holding || (user.role === "admin" && data.lock));
    if (holding && !this.renewTimer) this.renewTimer = setInterval(() => void this.renew(), RENEW_MS);
    if (!holding && this.renewTimer) {
      clearInterval(this.renewTimer);
      this.renewTimer = null;
    }
    if (holding !== wasHolding || this.report.lockHeld() !== holding) this.report.setLock(holding);
  }

  tick() {
    if (!this.study) return;
    const left = secondsLeft(this.study, this.offsetMs);
    const level = escalation(left, targetSeconds(this.study));
    setText(this.head.due, formatCountdown(left));
    this.head.due.dataset.escalation = level;
  }

  async claim() {
    showError(this.head.error, null);
    try {
      const claimed = await claimStudy(this.api, this.studyId);
      if (this.study) this.apply({ ...this.study, ...claimed });
    } catch (err) {
      showError(this.head.error, asError(err)); // study_locked names the holder
      await this.load();
    }
  }

  async renew() {
    try {
      const renewed = await claimStudy(this.api, this.studyId);
      if (!this.stopped && this.study) this.apply({ ...this.study, ...renewed });
    } catch (err) {
      if (this.stopped) return;
      const refusal = asError(err);
      showError(this.head.error, { code: refusal.code, text: t("viewer.lock_not_renewed", { reason: errorText(refusal) }) });
      await this.load();
    }
  }

  async release() {
    showError(this.head.error, null);
    try {
      const released = await releaseStudy(this.api, this.studyId);
      if (this.study) this.apply({ ...this.study, ...released });
    } catch (err) {
      showError(this.head.error, asError(err));
    }
  }

  dispose() {
    this.stopped = true;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.main.destroy();
    this.priors.pane.destroy();
    this.report.destroy();
    this.reportImages.destroy();
    // Leaving the page gives the study back. A closed browser cannot (no CSRF header on a beacon): the lock
    // then lapses on its own after TELEUS_LOCK_MINUTES.
    if (this.holding) void releaseStudy(this.api, this.studyId).catch(() => {});
  }
}

/** The series column: thumbnails from QIDO-RS; the first image opens in the main pane. */
class SeriesList {
  /**
   * @param {DicomWeb} dicomweb
   * @param {ImagePane} main
   * @param {() => boolean} stopped whether the page is gone
   */
  constructor(dicomweb, main, stopped) {
    this.dicomweb = dicomweb;
    this.main = main;
    this.stopped = stopped;
    /** @type {string|undefined} the study's, for the pane's display defaults */ this.modality = undefined;
    this.element = el("div", { class: "series-list", "data-testid": "series-list" },
      el("p", { class: "muted", text: t("viewer.loading_images") }));
  }

  /** @param {StudyDetail} data */
  async load(data) {
    let series;
    try {
      series = await this.dicomweb.series(data.study_uid);
    } catch (err) {
      if (this.stopped()) return;
      this.say(t("viewer.no_images", { reason: errorText(asError(err)) }), t("viewer.images_not_listed"));
      return;
    }
    if (this.stopped()) return;
    this.element.replaceChildren();
    if (!series.length) {
      this.say(t("viewer.none_stored"), t("viewer.none_stored"));
      return;
    }
    let opened = false;
    for (const item of series) {
      const seriesUid = text(item, TAG.SeriesInstanceUID);
      const group = el("div", { class: "series", "data-series-uid": seriesUid },
        el("div", { class: "series-label", text: [
          `#${text(item, TAG.SeriesNumber) || "?"}`, text(item, TAG.Modality), text(item, TAG.SeriesDescription),
        ].filter(Boolean).join(" · ") }));
      this.element.append(group);
      let instances;
      try {
        instances = await this.dicomweb.instances(data.study_uid, seriesUid);
      } catch (err) {
        group.append(el("p", { class: "muted", text: asError(err).message }));
        continue;
      }
      if (this.stopped()) return;
      for (const instance of instances) {
        const ref = instanceRef(instance, data.study_uid, seriesUid);
        const frames = number(instance, TAG.NumberOfFrames) ?? 1;
        const thumb = this.thumbnail(ref, frames);
        group.append(thumb);
        if (!opened) {
          opened = true;
          this.open(ref, frames, thumb);
        }
      }
    }
  }

  /**
   * @param {string} listText what the series column says
   * @param {string} paneText what the image pane says
   */
  say(listText, paneText) {
    this.element.replaceChildren(el("p", { class: "muted", "data-testid": "images-error", text: listText }));
    this.main.say(paneText);
  }

  /**
   * @param {InstanceRef} ref
   * @param {number} frames
   */
  thumbnail(ref, frames) {
    const thumb = el("button", { type: "button", class: "thumb", "data-sop-uid": ref.sopUid, "data-testid": "thumbnail",
      title: frames > 1 ? t("viewer.clip_frames", { count: frames }) : t("viewer.image") },
    el("img", { src: this.dicomweb.renderedUrl(ref, { frame: frames > 1 ? 1 : undefined }), alt: "", loading: "lazy" }),
    frames > 1 ? el("span", { class: "thumb-badge", text: `▶ ${frames}` }) : null);
    thumb.addEventListener("click", () => this.open(ref, frames, thumb));
    return thumb;
  }

  /**
   * @param {InstanceRef} ref
   * @param {number} frames
   * @param {HTMLElement} thumb
   */
  open(ref, frames, thumb) {
    for (const other of this.element.querySelectorAll(".thumb[aria-current]")) other.removeAttribute("aria-current");
    thumb.setAttribute("aria-current", "true");
    void this.main.show(ref, { modality: this.modality, frames });
  }
}

/** A prior study from any site, chosen in a list, side by side with the main pane. */
class PriorCompare {
  /**
   * @param {DicomWeb} dicomweb
   * @param {ImagePane} main
   * @param {() => Study[]} priorsNow the priors of the study as last fetched
   */
  constructor(dicomweb, main, priorsNow) {
    this.dicomweb = dicomweb;
    this.priorsNow = priorsNow;
    this.pane = new ImagePane({ dicomweb, name: "prior", title: t("viewer.prior") });
    this.pane.element.hidden = true;
    this.select = el("select", { name: "prior", "data-testid": "prior-select", "aria-label": t("viewer.compare_label") },
      el("option", { value: "", text: t("viewer.compare") }));
    this.select.addEventListener("change", () => void this.show(this.select.value));
    this.error = el("span", { class: "error", "data-testid": "prior-error", hidden: true });
    this.bar = el("div", { class: "priors-bar" }, this.select, this.error);
    this.panes = el("div", { class: "panes" }, main.element, this.pane.element);
  }

  /** @param {Study[]} priors */
  fill(priors) {
    this.select.hidden = priors.length === 0;
    for (const p of priors) {
      const when = p.study_date ? `${p.study_date.slice(0, 4)}-${p.study_date.slice(4, 6)}-${p.study_date.slice(6, 8)}`
        : clockTime(p.examined_at ?? p.registered_at);
      const label = [when, p.modality, p.site?.name, p.accession].filter(Boolean).join(" · ");
      this.select.append(el("option", { value: p.id, text: label }));
    }
  }

  /** @param {string} priorId */
  async show(priorId) {
    showError(this.error, null);
    const chosen = this.priorsNow().find((p) => p.id === priorId);
    this.pane.element.hidden = !chosen;
    this.panes.classList.toggle("two", Boolean(chosen));
    if (!chosen) {
      this.pane.stop();
      return;
    }
    this.pane.title.textContent = [t("viewer.prior"), chosen.site?.name, chosen.modality, chosen.accession].filter(Boolean).join(" · ");

    try {
      const [firstSeries] = await this.dicomweb.series(chosen.study_uid);
      if (!firstSeries) throw new Error("the prior study has no images stored");
      const seriesUid = text(firstSeries, TAG.SeriesInstanceUID);
      const [firstInstance] = await this.dicomweb.instances(chosen.study_uid, seriesUid);
      if (!firstInstance) throw new Error("the prior study has no images stored");
      await this.pane.show(instanceRef(firstInstance, chosen.study_uid, seriesUid), { modality: chosen.modality });
    } catch (err) {
      showError(this.error, asError(err));
    }
  }
}
