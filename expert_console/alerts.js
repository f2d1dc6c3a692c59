// @ts-check
// Alerts for the expert on duty: a live request from a site they serve raises a browser notification (the
// Notification API, when the expert allowed it) and a chime, once per request. Whether they are on duty is the
// server's roster (GET /api/v1/duty/now, signaling_server/duty/); a `duty` change notice asks again, and a
// `consultations` notice names the requests to look at (PROTOCOL.md §6). The requests waiting when the page opens
// are not announced: the home list shows them. No view code: the header's bell (views/alertsbell.js) reads the
// state through `onState`.

import { personName, t } from "./i18n.js";
import { listResults } from "./results.js";

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {import("./api.js").Consultation} Consultation
 * @typedef {import("./events.js").ChangeFeed} ChangeFeed
 * @typedef {{onDuty: boolean, until: string|null, permission: NotificationPermission|"unsupported"}} AlertState
 * @typedef {{id: string, at: number, notified: boolean}} Alert one announced request (kept for the test hook)
 */

/** Alerts on duty are for experts (the roster puts only experts on duty). */
export const ALERT_ROLES = ["expert"];

export class DutyAlerts {
  /**
   * @param {Api} api
   * @param {ChangeFeed} events
   * @param {{navigate?: (hash: string) => void, chime?: () => void}} [options]
   */
  constructor(api, events, options = {}) {
    this.api = api;
    this.events = events;
    this.navigate = options.navigate ?? ((hash) => { location.hash = hash; });
    this.chime = options.chime ?? playChime;
    /** @type {AlertState} */
    this.state = { onDuty: false, until: null, permission: currentPermission() };
    /** Requests already known (announced or waiting when the page opened). @type {Set<string>} */
    this.known = new Set();
    /** @type {Alert[]} */
    this.announced = [];
    /** @type {Set<(state: AlertState) => void>} */
    this.listeners = new Set();
    this.primed = false;
    this.stopped = false;
    /** @type {(() => void)|null} */
    this.unsubscribe = null;
  }

  start() {
    this.unsubscribe = this.events.subscribe(["consultations", "duty"], ({ ids }) => this.refresh(ids));
    void this.refresh(null).catch(() => {});
  }

  stop() {
    this.stopped = true;
    this.unsubscribe?.();
    this.listeners.clear();
  }

  /**
   * @param {(state: AlertState) => void} listener called now and on every change
   * @returns {() => void}
   */
  onState(listener) {
    this.listeners.add(listener);
    listener(this.state);
    return () => this.listeners.delete(listener);
  }

  /** @param {Partial<AlertState>} change */
  setState(change) {
    this.state = { ...this.state, ...change };
    for (const listener of this.listeners) listener(this.state);
  }

  /**
   * The roster and the waiting requests again; `ids`: the consultations a notice named (null: any).
   * @param {string[]|null} ids
   */
  async refresh(ids) {
    let duty, waiting;
    try {
      [duty, waiting] = await Promise.all([
        /** @type {Promise<{me: {on_duty: boolean, until: string|null}}>} */ (this.api.request("GET", "/duty/now")),
        this.api.consultations(["requested"], ids ?? undefined),
      ]);
    } catch (err) {
      if (ids === null) return; // the feed's safety refresh asks again
      throw err; // the feed asks for the named requests again (events.js)
    }
    if (this.stopped) return;
    this.setState({ onDuty: duty.me.on_duty, until: duty.me.until, permission: currentPermission() });
    const fresh = waiting.filter((consultation) => !this.known.has(consultation.id));
    for (const consultation of fresh) this.known.add(consultation.id);
    if (!this.primed) {
      this.primed = true; // what waits when the page opens is on the home list already
      return;
    }
    if (this.state.onDuty) for (const consultation of fresh) this.announce(consultation);
  }

  /** @param {Consultation} consultation */
  announce(consultation) {
    const notified = raiseAlert({
      title: t("notify.request_title", { site: consultation.site.name }),
      body: t("notify.request_body", {
        exam: t(`notify.exam.${consultation.exam_type}`),
        patient: personName(consultation.patient.name),
      }),
      tag: `consultation-${consultation.id}`,
      onClick: () => this.navigate(`#/c/${encodeURIComponent(consultation.id)}`),
      chime: this.chime,
    });
    this.announced.push({ id: consultation.id, at: Date.now(), notified });
  }
}

/**
 * Tell the person at this browser: a notification when they allowed them (one per `tag`: a newer one replaces it),
 * and the chime either way. Returns whether a notification was shown.
 * @param {{title: string, body: string, tag: string, onClick?: () => void, chime?: () => void}} alert
 */
export function raiseAlert({ title, body, tag, onClick, chime = playChime }) {
  const notified = currentPermission() === "granted";
  if (notified) {
    const notification = new Notification(title, { body, tag, requireInteraction: true });
    notification.onclick = () => {
      window.focus();
      onClick?.();
      notification.close();
    };
  }
  chime();
  return notified;
}

/** @returns {NotificationPermission|"unsupported"} */
export function currentPermission() {
  return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
}

/** @type {AudioContext|null} */
let audio = null;

/** Two rising tones, 0.6 s: heard over a reading room's noise, not alarming. A browser may keep it silent until the
 * page has had a click (autoplay policy); the notification still shows. */
export function playChime() {
  try {
    audio ??= new AudioContext();
    const start = audio.currentTime + 0.02;
    for (const [offset, frequency] of [[0, 660], [0.25, 880]]) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.3);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.32);
    }
  } catch {
    // no audio device: the notification alone
  }
}

/**
 * Reports ready, for a community centre: each report the centre approves for an exam of the site raises a browser
 * notification and the chime, once (the newest approved exams asked again on every `queue` notice; those approved
 * when the page opened are on the results page, not announced). Clicking opens the report.
 */
export class ReportAlerts {
  /**
   * @param {Api} api
   * @param {ChangeFeed} events
   * @param {{navigate?: (hash: string) => void, chime?: () => void}} [options]
   */
  constructor(api, events, options = {}) {
    this.api = api;
    this.events = events;
    this.navigate = options.navigate ?? ((hash) => { location.hash = hash; });
    this.chime = options.chime ?? playChime;
    /** Report ids already known. @type {Set<string>} */
    this.known = new Set();
    /** @type {Alert[]} */
    this.announced = [];
    this.primed = false;
    this.stopped = false;
    /** @type {(() => void)|null} */
    this.unsubscribe = null;
  }

  start() {
    this.unsubscribe = this.events.subscribe(["queue"], () => this.refresh());
    void this.refresh().catch(() => {});
  }

  stop() {
    this.stopped = true;
    this.unsubscribe?.();
  }

  async refresh() {
    const approved = await listResults(this.api, ["approved"]);
    if (this.stopped) return;
    for (const result of approved) {
      const report = result.report;
      if (!report || this.known.has(report.id)) continue;
      this.known.add(report.id);
      if (!this.primed) continue;
      const notified = raiseAlert({
        title: t("notify.report_ready_title"),
        body: t("notify.report_ready_body", { patient: personName(result.patient.name),
          exam: result.description || result.modality, accession: result.accession || "—" }),
        tag: `report-${report.id}`,
        onClick: () => this.navigate(`#/results/${encodeURIComponent(report.id)}`),
        chime: this.chime,
      });
      this.announced.push({ id: report.id, at: Date.now(), notified });
    }
    this.primed = true;
  }
}
