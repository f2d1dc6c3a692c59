// @ts-check
// The home page (#/), by role: a sonographer requests consultations and returns to their site's open ones;
// experts, trainers and admins see the waiting and live consultations and join or observe.

import { errorText, personName, t } from "../i18n.js";
import { asError, el, formatDuration, setText, showError } from "./dom.js";
import { examLabel, roleLabel, stateLabel } from "./labels.js";


/**
 * @typedef {import("../api.js").Api} Api

 * @typedef {import("../api.js").User} User
 * @typedef {import("../api.js").Consultation} Consultation
 * @typedef {{api: Api, user: User, events: import("../events.js").ChangeFeed, navigate: (hash: string) => void}} Context
 */

/**
 * @param {HTMLElement} root
 * @param {Context} context
 * @returns {() => void} cleanup
 */
export function mountHome(root, context) {
  const { user } = context;
  const list = new ConsultationList(context);
  if (user.role === "sonographer") {
    root.append(
      el("div", { class: "home" }, requestForm(context), el("section", { class: "panel" },
        el("h2", { text: t("home.open_of_site") }), list.element)),
    );
  } else {
    root.append(
      el("div", { class: "home" }, el("section", { class: "panel wide" },
        el("h2", { text: t("home.waiting_and_live") }), list.element)),
    );
  }
  list.start();
  return () => list.stop();
}

/**
 * @param {Context} context
 * @returns {HTMLElement}
 */
function requestForm({ api, navigate }) {
  const error = el("p", { class: "error", "data-testid": "request-error", role: "alert", hidden: true });
  /**
   * @param {string} label
   * @param {HTMLElement} control
   */
  const field = (label, control) => el("label", { class: "field" }, el("span", { text: label }), control);
  const examType = el("select", { name: "exam_type", required: true },
    el("option", { value: "thyroid", text: examLabel("thyroid") }), el("option", { value: "carotid", text: examLabel("carotid") }));
  const patientId = el("input", { name: "patient_id", required: true, maxlength: 64, autocomplete: "off" });
  // one field, the name as people write it (张三); it goes into DICOM as typed, a valid PN of one component
  const patientName = el("input", {
    name: "patient_name", required: true, maxlength: 64, autocomplete: "off", placeholder: t("home.name_example"),
  });
  const sex = el("select", { name: "sex" },
    el("option", { value: "", text: "—" }), el("option", { value: "F", text: t("home.sex.F") }),
    el("option", { value: "M", text: t("home.sex.M") }), el("option", { value: "O", text: t("home.sex.O") }));
  const birthDate = el("input", { name: "birth_date", type: "date" });
  const accession = el("input", { name: "accession", maxlength: 64, autocomplete: "off" });
  const submit = el("button", { type: "submit", class: "primary", text: t("home.request") });
  const form = el("form", { "data-testid": "request-form", class: "request-form", novalidate: true },
    field(t("home.exam"), examType), field(t("home.patient_id"), patientId), field(t("home.patient_name"), patientName),
    field(t("home.sex"), sex), field(t("home.birth_date"), birthDate), field(t("home.accession"), accession), submit, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    if (!patientId.value.trim() || !patientName.value.trim()) {
      showError(error, { code: "invalid_request", text: t("home.id_and_name_needed") });
      return;
    }
    if (/[\\\u0000-\u001f]/.test(patientName.value)) { // a DICOM PN holds no backslash (the value separator) nor controls
      showError(error, { code: "invalid_request", text: t("home.name_invalid") });
      return;
    }

    /** @type {Parameters<Api["requestConsultation"]>[0]} */
    const body = {
      exam_type: examType.value,
      patient: { id: patientId.value.trim(), name: patientName.value.trim(), sex: sex.value, birth_date: birthDate.value },
    };
    if (accession.value.trim()) body.accession = accession.value.trim();
    submit.disabled = true;
    try {
      const consultation = await api.requestConsultation(body);
      navigate(`#/c/${encodeURIComponent(consultation.id)}`);
    } catch (err) {
      showError(error, asError(err));
    } finally {
      submit.disabled = false;
    }
  });
  return el("section", { class: "panel" }, el("h2", { text: t("home.request_title") }), form);
}

/**
 * How long a row's consultation has waited by now (rows are fetched at different times).
 * @param {{consultation: Consultation, fetchedAt: number}} entry
 * @param {number} now performance.now()
 */
function waited(entry, now) {
  const c = entry.consultation;
  return c.waiting_seconds + (c.state === "requested" ? (now - entry.fetchedAt) / 1000 : 0);
}

/** The open consultations, refetched when the server tells of a change (events.js): only the rows a notice
 * named when it named them, the whole list otherwise; rows kept in place so buttons stay under the mouse; the
 * waiting times tick here every second. */
class ConsultationList {
  /** @param {Context} context */
  constructor(context) {
    this.context = context;
    this.body = el("tbody");
    this.empty = el("tr", { class: "empty" }, el("td", { colspan: 7, text: t("common.loading") }));
    this.body.append(this.empty);
    this.status = el("p", { class: "status-line", "data-testid": "list-status", hidden: true });
    const header = [t("home.col.site"), t("home.col.exam"), t("home.col.patient"), t("home.col.state"),
      t("home.col.waiting"), t("home.col.participants"), ""];
    this.table = el("table", { class: "consultations", "data-testid": "consultation-list" },
      el("thead", {}, el("tr", {}, header.map((h) => el("th", { text: h })))), this.body);
    this.element = el("div", { class: "list-wrap" }, this.table, this.status);
    /** @type {Map<string, {row: HTMLTableRowElement, cells: Record<string, HTMLElement>, buttons: HTMLElement,
     *   consultation: Consultation, fetchedAt: number, state: string}>} */
    this.rows = new Map();
    /** @type {ReturnType<typeof setInterval>[]} */
    this.timers = [];
    /** @type {(() => void)|null} */
    this.unsubscribe = null;
    this.stopped = false;
  }

  start() {
    void this.refresh();
    this.unsubscribe = this.context.events.subscribe(["consultations"], ({ ids }) => this.refresh(ids));
    this.timers.push(setInterval(() => this.tick(), 1000));
  }

  stop() {
    this.stopped = true;
    this.unsubscribe?.();
    for (const timer of this.timers) clearInterval(timer);
  }

  /**
   * Ask for the whole list, or with `ids` for those rows alone (PROTOCOL.md §6): the rows answered replace theirs,
   * a named row not answered has left the open states (or the user's sight) and goes.
   * @param {string[]|null} [ids]
   */
  async refresh(ids = null) {
    if (ids !== null && !ids.length) return;
    let consultations;
    try {
      consultations = await this.context.api.consultations(["requested", "live"], ids ?? undefined);
    } catch (err) {
      if (this.stopped) return;
      this.status.hidden = false;
      setText(this.status, t("home.refresh_failed", { reason: errorText(asError(err)) }));
      if (ids !== null) throw err; // the change feed asks for these rows again (events.js)
      return;
    }
    if (this.stopped) return;
    this.status.hidden = true;
    this.render(consultations, ids);
  }

  /**
   * @param {Consultation[]} consultations the whole list, or the rows of `ids`
   * @param {string[]|null} ids null: `consultations` is the whole list
   */
  render(consultations, ids) {
    const now = performance.now();
    for (const c of consultations) {
      let entry = this.rows.get(c.id);
      if (!entry) {
        entry = this.createRow(c);
        this.rows.set(c.id, entry);
      }
      entry.consultation = c;
      entry.fetchedAt = now;
      this.fill(entry);
    }
    const answered = new Set(consultations.map((c) => c.id));
    for (const id of ids ?? [...this.rows.keys()]) {
      const entry = this.rows.get(id);
      if (entry && !answered.has(id)) {
        entry.row.remove();
        this.rows.delete(id);
      }
    }
    const order = [...this.rows.values()].sort((a, b) => {
      const [x, y] = [a.consultation, b.consultation];
      return x.state === y.state ? waited(b, now) - waited(a, now) : x.state === "requested" ? -1 : 1;
    });
    order.forEach((entry, k) => {
      if (this.body.children[k] !== entry.row) this.body.insertBefore(entry.row, this.body.children[k] ?? null);
    });
    this.empty.remove();
    if (!this.rows.size) {
      setText(this.empty, this.context.user.role === "sonographer" ? t("home.none_open") : t("home.none_waiting"));
      this.body.append(this.empty);
    }
  }

  /** @param {Consultation} c */
  createRow(c) {
    const cells = {
      site: el("td", { "data-field": "site" }),
      exam: el("td", { "data-field": "exam_type" }),
      patient: el("td", { "data-field": "patient" }),
      state: el("td", { "data-field": "state" }),
      waiting: el("td", { "data-field": "waiting", class: "numeric" }),
      participants: el("td", { "data-field": "participants" }),
    };
    const buttons = el("td", { class: "actions" });
    const row = el("tr", { "data-consultation-id": c.id }, Object.values(cells), buttons);
    return { row, cells, buttons, consultation: c, fetchedAt: performance.now(), state: "" };
  }

  /** @param {NonNullable<ReturnType<ConsultationList["rows"]["get"]>>} entry */
  fill(entry) {
    const c = entry.consultation;
    const { cells } = entry;
    setText(cells.site, c.site?.name ?? "");
    setText(cells.exam, examLabel(c.exam_type));
    setText(cells.patient, personName(c.patient?.name));
    setText(cells.state, stateLabel(c.state));
    cells.state.className = `state state-${c.state}`;
    const people = (c.participants ?? []).map((p) => t("home.participant", { name: personName(p.name), role: roleLabel(p.role) }));
    setText(cells.participants, people.length ? people.join(t("home.list_separator")) : "—");
    entry.row.dataset.state = c.state;
    this.tickRow(entry, performance.now());
    if (entry.state !== c.state) {
      entry.state = c.state;
      entry.buttons.replaceChildren(...this.actions(c));
    }
  }

  /** @param {Consultation} c */
  actions(c) {
    const { user, navigate, api } = this.context;
    const id = encodeURIComponent(c.id);
    /** @type {HTMLElement[]} */
    const buttons = [];
    if (user.role === "sonographer") {
      buttons.push(el("button", { "data-action": "join", class: "primary", text: t("home.open"), onclick: () => navigate(`#/c/${id}`) }));
      if (c.state === "requested") {
        buttons.push(el("button", {
          "data-action": "cancel",
          text: t("home.cancel"),
          onclick: async () => {
            try {
              await api.cancelConsultation(c.id);
              await this.refresh();
            } catch (err) {
              this.status.hidden = false;
              setText(this.status, t("home.cancel_failed", { reason: errorText(asError(err)) }));
            }
          },
        }));
      }
      return buttons;
    }
    if (user.role === "expert") {
      buttons.push(el("button", { "data-action": "join", class: "primary", text: t("home.join"), onclick: () => navigate(`#/c/${id}`) }));
    }
    if (["expert", "trainer", "admin"].includes(user.role)) {
      buttons.push(el("button", { "data-action": "observe", text: t("home.observe"), onclick: () => navigate(`#/c/${id}?observe=1`) }));
    }
    return buttons;
  }

  tick() {
    const now = performance.now();
    for (const entry of this.rows.values()) this.tickRow(entry, now);
  }

  /**
   * Waiting time: the server's count plus the time since it was fetched, while still requested.
   * @param {NonNullable<ReturnType<ConsultationList["rows"]["get"]>>} entry
   * @param {number} now
   */
  tickRow(entry, now) {
    setText(entry.cells.waiting, formatDuration(waited(entry, now)));
  }
}
