// @ts-check
// The on-duty roster (#/duty): the shifts of the coming week, who is on duty now; an admin adds and removes shifts.
// The experts on duty are alerted to the live requests of the sites they serve (alerts.js). Refreshed on a `duty`
// change notice.

import { listUsers } from "../accounts.js";
import { addShift, listShifts, onDutyNow, removeShift } from "../duty.js";
import { formatDateTime, t } from "../i18n.js";
import { asError, attempt, el, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../duty.js").Shift} Shift
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, events: import("../events.js").ChangeFeed}} context
 * @returns {() => void} cleanup
 */
export function mountDuty(root, { api, user, events }) {
  const page = new DutyPage(api, user.role === "admin");
  root.append(page.element);
  const unsubscribe = events.subscribe(["duty"], () => page.refresh());
  void page.start();
  return () => {
    page.stopped = true;
    unsubscribe();
  };
}

/** A `datetime-local` input's value (local time) as a Date; null when empty or not a time. @param {string} value */
function localTime(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** A Date as a `datetime-local` value (local time, minutes). @param {Date} date */
function inputValue(date) {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

class DutyPage {
  /**
   * @param {Api} api
   * @param {boolean} keeps whether this user keeps the roster (admins)
   */
  constructor(api, keeps) {
    this.api = api;
    this.keeps = keeps;
    this.stopped = false;
    this.error = el("p", { class: "error", role: "alert", "data-testid": "duty-error", hidden: true });
    this.now = el("p", { class: "duty-now", "data-testid": "duty-now" });
    this.rows = el("tbody");
    this.expertSelect = el("select", { name: "user_id", required: true, "aria-label": t("notify.roster.expert") });
    const columns = ["expert", "starts", "ends", "note"].map((key) => el("th", { text: t(`notify.roster.${key}`) }));
    if (keeps) columns.push(el("th", {}));
    this.element = el("div", { class: "queue duty" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("notify.roster.title") })),
        this.now, keeps ? this.makeForm() : null, this.error,
        el("div", { class: "list-wrap" },
          el("table", { class: "studies", "data-testid": "duty-list", "aria-label": t("notify.roster.title") },
            el("thead", {}, el("tr", {}, columns)), this.rows))));
  }

  makeForm() {
    const start = new Date();
    start.setMinutes(0, 0, 0);
    const starts = el("input", { name: "starts_at", type: "datetime-local", required: true, value: inputValue(start) });
    const ends = el("input", { name: "ends_at", type: "datetime-local", required: true,
      value: inputValue(new Date(start.getTime() + 12 * 3600_000)) });
    const note = el("input", { name: "note", maxlength: 200, autocomplete: "off" });
    /** @param {string} key @param {HTMLElement} control */
    const field = (key, control) => el("label", { class: "field" }, el("span", { text: t(`notify.roster.${key}`) }), control);
    const form = el("form", { class: "add-shift", "data-testid": "add-shift", novalidate: true },
      field("expert", this.expertSelect), field("starts", starts), field("ends", ends), field("note", note),
      el("button", { type: "submit", class: "primary", text: t("notify.roster.add") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const startsAt = localTime(starts.value);
      const endsAt = localTime(ends.value);
      if (!startsAt || !endsAt) {
        showError(this.error, { code: "invalid_request", message: t("notify.roster.times_needed") });
        return;
      }
      void this.act(() => addShift(this.api, { user_id: this.expertSelect.value, starts_at: startsAt, ends_at: endsAt,
        note: note.value }));
    });
    return form;
  }

  async start() {
    if (this.keeps) {
      try {
        const experts = (await listUsers(this.api)).filter((u) => u.role === "expert" && u.active !== false);
        this.expertSelect.replaceChildren(...experts.map((u) => el("option", { value: u.id, text: u.name })));
      } catch (err) {
        showError(this.error, asError(err));
      }
    }
    await this.refresh();
  }

  /** @param {() => Promise<unknown>} action */
  act(action) {
    return attempt(this, action);
  }

  async refresh() {
    let shifts, now;
    try {
      [shifts, now] = await Promise.all([listShifts(this.api), onDutyNow(this.api)]);
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    this.now.textContent = now.on_duty.length
      ? t("notify.roster.now", { names: now.on_duty.map((row) => row.user.name).join(t("notify.roster.separator")) })
      : t("notify.roster.nobody");
    this.rows.replaceChildren(...shifts.map((shift) => this.row(shift)));
    if (!shifts.length) {
      this.rows.append(el("tr", {}, el("td", { colspan: this.keeps ? 5 : 4, text: t("notify.roster.empty") })));
    }
  }

  /** @param {Shift} shift */
  row(shift) {
    const remove = this.keeps
      ? el("td", {}, el("button", { type: "button", "data-action": "remove-shift", text: t("notify.roster.remove"),
        onclick: () => {
          if (confirm(t("notify.roster.confirm_remove", { name: shift.user.name }))) {
            void this.act(() => removeShift(this.api, shift.id));
          }
        } }))
      : null;
    return el("tr", { "data-shift": shift.id },
      el("td", { text: shift.user.name }), el("td", { text: formatDateTime(shift.starts_at) }),
      el("td", { text: formatDateTime(shift.ends_at) }), el("td", { text: shift.note }), remove);
  }
}
