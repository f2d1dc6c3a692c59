// @ts-check
// The orders page (#/orders, 开单): a community doctor or sonographer orders an exam at the regional centre (patient,
// exam, reason and clinical information, priority, an accession number or one generated) and follows their site's
// orders (scheduled → in progress → completed with its report, or cancelled); a scheduled order is cancelled with a
// reason. The centre's experts see the orders of the sites they serve, without the form. Every word comes from
// the `orders` catalog; the list follows the `orders` change notices.

import { errorText, formatDateTime, has, initialLanguage, onLanguageChange, personName, setLanguage, t }
  from "../i18n.js";
import { EXAMS, ORDERING_ROLES, PRIORITIES, cancelOrder, listOrders, placeOrder } from "../orders.js";
import { asError, el } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../events.js").ChangeFeed} ChangeFeed
 * @typedef {import("../orders.js").Order} Order
 * @typedef {import("../orders.js").OrderForm} OrderForm
 */

const COLUMNS = ["accession", "patient", "exam", "priority", "state", "scheduled", "orderedBy", "result", "actions"];
/** The form's label (`orders.field.<key>`) of each field the server may name in an `invalid_order` refusal. */
const FORM_FIELDS = /** @type {Record<string, string>} */ ({
  "patient.id": "patientId", "patient.name": "patientName", "patient.birth_date": "birthDate", "patient.sex": "sex",
  "exam.modality": "exam", "exam.body_part": "exam", "exam.description": "exam", priority: "priority",
  reason: "reason", clinical_info: "clinicalInfo", accession: "accession",
});
/** The same for cancelling: its only field is the reason for cancelling. */
const CANCEL_FIELDS = /** @type {Record<string, string>} */ ({ reason: "cancelReason" });

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User, events: ChangeFeed}} context
 * @returns {() => void} cleanup
 */
export function mountOrders(root, { api, user, events }) {
  const page = new OrdersPage(api, user);
  let stopped = false;
  /** @type {(() => void)[]} */
  const stops = [];
  const start = () => {
    if (stopped) return;
    root.replaceChildren(page.build());
    stops.push(events.subscribe(["orders"], () => page.refresh()));
    stops.push(onLanguageChange(() => {
      root.replaceChildren(page.build());
      page.draw();
    }));
    void page.refresh();
  };
  // the catalogs are loaded by the app at start; a page opened before that loads them itself
  if (has("orders.title")) start();
  else void setLanguage(initialLanguage()).finally(start);
  return () => {
    stopped = true;
    page.stopped = true;
    for (const stop of stops) stop();
  };
}

class OrdersPage {
  /** @param {Api} api @param {User} user */
  constructor(api, user) {
    this.api = api;
    this.user = user;
    this.stopped = false;
    this.ordering = ORDERING_ROLES.includes(user.role) && Boolean(user.site_id);
    /** @type {Order[]} */ this.orders = [];
    /** The order whose cancel reason is being asked for. @type {string|null} */ this.cancelling = null;
    this.cancelDraft = "";
    this.focusCancel = false;
    this.rows = el("tbody");
    this.error = el("p", { class: "error", role: "alert", "data-testid": "orders-error", hidden: true });
    this.notice = el("p", { class: "notice", role: "status", "data-testid": "orders-notice", hidden: true });
  }

  build() {
    this.error = el("p", { class: "error", role: "alert", "data-testid": "orders-error", hidden: true });
    this.notice = el("p", { class: "notice", role: "status", "data-testid": "orders-notice", hidden: true });
    this.rows = el("tbody");
    return el("div", { class: "queue orders" },
      this.ordering ? el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("orders.new") })), this.makeForm()) : null,
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("orders.title") })),
        this.notice, this.error,
        el("div", { class: "list-wrap" }, el("table", { class: "studies", "data-testid": "order-list" },
          el("thead", {}, el("tr", {}, COLUMNS.map((c) => el("th", { text: t(`orders.column.${c}`) })))),
          this.rows))));
  }

  makeForm() {
    const field = (/** @type {string} */ key, /** @type {HTMLElement} */ control) =>
      el("label", { class: "field" }, el("span", { text: t(`orders.field.${key}`) }), control);
    const patientId = el("input", { name: "patient_id", required: true, maxlength: 64, autocomplete: "off" });
    const name = el("input", { name: "patient_name", required: true, maxlength: 64, autocomplete: "off" });
    // a text field, not type=date: the browser would show its own system's order (MM/DD/YYYY), not YYYY-MM-DD
    const birth = el("input", { name: "birth_date", inputmode: "numeric", maxlength: 10, autocomplete: "off",
      placeholder: t("orders.datePlaceholder") });
    const sex = el("select", { name: "sex" }, ["", "F", "M", "O"].map((value) => // i18n: data (DICOM sex codes)
      el("option", { value, text: t(`orders.sex.${value || "unknown"}`) })));
    const exam = el("select", { name: "exam" }, EXAMS.map(([modality, part]) =>
      el("option", { value: `${modality}_${part}`, text: t(`orders.exam.${modality}_${part}`) })));
    const priority = el("select", { name: "priority" }, PRIORITIES.map((value) =>
      el("option", { value, text: t(`orders.priority.${value}`) })));
    const reason = el("textarea", { name: "reason", required: true, maxlength: 2000, rows: 2 });
    const clinical = el("textarea", { name: "clinical_info", maxlength: 4000, rows: 3 });
    const accession = el("input", { name: "accession", maxlength: 16, autocomplete: "off",
      placeholder: t("orders.accessionGenerated") });
    const form = el("form", { class: "order-form", "data-testid": "order-form", novalidate: true },
      field("patientId", patientId), field("patientName", name), field("birthDate", birth), field("sex", sex),
      field("exam", exam), field("priority", priority), field("reason", reason), field("clinicalInfo", clinical),
      field("accession", accession),
      el("button", { type: "submit", class: "primary", text: t("orders.place") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const [modality, part] = exam.value.split("_");
      /** @type {OrderForm} */
      const order = {
        patient: { id: patientId.value.trim(), name: name.value.trim(), birth_date: birth.value, sex: sex.value },
        exam: { modality, body_part: part, description: t(`orders.exam.${exam.value}`) },
        reason: reason.value.trim(),
        clinical_info: clinical.value.trim(),
        priority: /** @type {import("../orders.js").OrderPriority} */ (priority.value),
      };
      if (accession.value.trim()) order.accession = accession.value.trim();
      void this.act(async () => {
        const placed = await placeOrder(this.api, order);
        form.reset();
        return t("orders.placed", { accession: placed.accession });
      }, FORM_FIELDS);
    });
    return form;
  }

  /** Run one action: clear the last message, show the refusal (in the reader's words, its code kept) or `done`.
   * @param {() => Promise<string>} action
   * @param {Record<string, string>} fields the labels of the fields an `invalid_order` refusal may name */
  async act(action, fields) {
    this.error.hidden = true;
    this.notice.hidden = true;
    /** @type {string|null} */ let done = null;
    /** @type {{code: string, message: string}|null} */ let refusal = null;
    try {
      done = await action();
    } catch (err) {
      refusal = asError(err);
    }
    await this.refresh(); // the list as it is now, then the outcome: a message never tells of a list not yet shown
    if (refusal) {
      // the server names the first bad field before a colon ("patient.name: …"): say which, in the reader's words
      const field = refusal.code === "invalid_order" ? fields[refusal.message.split(":")[0]] : undefined;
      this.error.textContent = field ? t("orders.checkField", { field: t(`orders.field.${field}`) }) : errorText(refusal);
      this.error.dataset.code = refusal.code;
      this.error.hidden = false;
    } else if (done) {
      this.notice.textContent = done;
      this.notice.hidden = false;
    }
  }

  async refresh() {
    try {
      const orders = await listOrders(this.api);
      if (this.stopped) return;
      this.orders = orders;
      this.draw();
    } catch (err) {
      const refusal = asError(err);
      this.error.textContent = errorText(refusal);
      this.error.dataset.code = refusal.code;
      this.error.hidden = false;
    }
  }

  draw() {
    this.rows.replaceChildren(...(this.orders.length ? this.orders.map((o) => this.row(o))
      : [el("tr", { class: "empty" }, el("td", { colspan: COLUMNS.length, text: t("orders.none") }))]));
  }

  /** @param {Order} o */
  row(o) {
    return el("tr", { "data-order": o.id, "data-accession": o.accession, "data-state": o.state },
      el("td", { "data-field": "accession", text: o.accession }),
      el("td", { "data-field": "patient", text: `${personName(o.patient.name)} · ${o.patient.local_id}` }),
      el("td", { "data-field": "exam", text: o.exam.description }),
      el("td", { "data-field": "priority", "data-priority": o.priority, text: t(`orders.priority.${o.priority}`) }),
      el("td", { "data-field": "state", title: o.cancel_reason || null, text: t(`orders.state.${o.state}`) }),
      el("td", { "data-field": "scheduled", class: "numeric", text: formatDateTime(o.scheduled_at) }),
      el("td", { "data-field": "ordered_by", text: o.ordered_by ? o.ordered_by.name : "" }),
      el("td", { "data-field": "result" }, this.result(o)),
      el("td", { class: o.state === "scheduled" ? "actions" : null }, this.actions(o)));
  }

  /** @param {Order} o */
  result(o) {
    if (o.report_id) {
      return el("a", { href: `/api/v1/reports/${encodeURIComponent(o.report_id)}/print`, target: "_blank",
        rel: "noopener", "data-action": "open-report", text: t("orders.openReport") });
    }
    if (o.state === "cancelled") return el("span", { class: "muted", text: o.cancel_reason });
    return null;
  }

  /** @param {Order} o */
  actions(o) {
    const own = this.ordering && o.site.id === this.user.site_id && o.state === "scheduled";
    if (!own) return [];
    if (this.cancelling !== o.id) {
      return [el("button", { type: "button", "data-action": "cancel", text: t("orders.cancel"),
        onclick: () => {
          this.cancelling = o.id;
          this.cancelDraft = "";
          this.focusCancel = true;
          this.draw();
        } })];
    }
    // kept across redraws (a change notice redraws the list while the reason is being typed)
    const reason = el("input", { name: "cancel_reason", maxlength: 2000, autocomplete: "off",
      "aria-label": t("orders.field.cancelReason"), placeholder: t("orders.field.cancelReason"),
      value: this.cancelDraft, oninput: () => { this.cancelDraft = reason.value; } });
    const confirm = el("button", { type: "button", class: "primary", "data-action": "confirm-cancel",
      text: t("orders.confirmCancel"),
      onclick: () => void this.act(async () => {
        await cancelOrder(this.api, o.id, reason.value.trim());
        this.cancelling = null;
        return t("orders.cancelled", { accession: o.accession });
      }, CANCEL_FIELDS) });
    const back = el("button", { type: "button", "data-action": "keep", text: t("orders.keep"),
      onclick: () => { this.cancelling = null; this.draw(); } });
    if (this.focusCancel) queueMicrotask(() => reason.focus()); // just asked for: the reason is typed next
    this.focusCancel = false;
    return [reason, confirm, back];
  }
}
