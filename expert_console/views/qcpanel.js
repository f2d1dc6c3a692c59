// @ts-check
// The live QC panel, on both the expert's and the sonographer's screen: the edge's image-quality alerts ("image
// frozen", "gain saturated", "no contact") and the exam's completeness checklist, updated as captures are labelled.

import { has, t } from "../i18n.js";
import { el, setText } from "./dom.js";

/** An edge alert or a checklist item in the reader's words, by its stable code (the server's text otherwise). */
const qcText = (/** @type {string} */ key, /** @type {string} */ fallback) => (has(`qc.${key}`) ? t(`qc.${key}`) : fallback);

export function createQcPanel() {
  const alerts = el("ul", { class: "qc-alerts", "data-testid": "qc-alerts", "aria-live": "polite" });
  const value = el("span", { class: "qc-completeness-value", "data-testid": "qc-completeness", text: "–" });
  const checklist = el("ul", { class: "qc-checklist", "data-testid": "qc-checklist" });
  const element = el("section", { class: "panel qc", "data-testid": "qc-panel" },
    el("h3", { text: t("qc.title") }), alerts,
    el("p", { class: "qc-completeness" }, t("qc.completeness"), " ", value), checklist);

  /** @param {{alerts: {code: string, text: string, state: string}[], completeness: Record<string, any>|null}} qc */
  function show(qc) {
    const active = qc.alerts.filter((a) => a.state !== "cleared");
    alerts.replaceChildren(...(active.length ? active.map((a) =>
      el("li", { class: "qc-alert", "data-code": a.code, role: "alert", text: qcText(`alert.${a.code}`, a.text) }))
      : [el("li", { class: "qc-ok", text: t("qc.image_ok") })]));
    const c = qc.completeness;
    if (!c) return;
    setText(value, `${Math.round(Number(c.value ?? 0) * 100)} %`);
    const items = Array.isArray(c.items) ? c.items : [];
    checklist.replaceChildren(...items.map((/** @type {any} */ item) =>
      el("li", { "data-key": String(item.key ?? ""), "data-done": String(Boolean(item.done)),
        class: item.done ? "done" : "todo",
        text: `${item.done ? "✓" : "○"} ${qcText(`item.${item.key}`, item.label ?? item.key)}` })));

  }

  return { element, show };
}
