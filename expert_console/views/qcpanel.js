// @ts-check
// The live QC panel, on both the expert's and the sonographer's screen: the edge's image-quality alerts ("image
// frozen", "gain saturated", "no contact") and the exam's completeness checklist, updated as captures are labelled.

import { el, setText } from "./dom.js";

export function createQcPanel() {
  const alerts = el("ul", { class: "qc-alerts", "data-testid": "qc-alerts", "aria-live": "polite" });
  const value = el("span", { class: "qc-completeness-value", "data-testid": "qc-completeness", text: "–" });
  const checklist = el("ul", { class: "qc-checklist", "data-testid": "qc-checklist" });
  const element = el("section", { class: "panel qc", "data-testid": "qc-panel" },
    el("h3", { text: "Quality" }), alerts,
    el("p", { class: "qc-completeness" }, "Exam completeness: ", value), checklist);

  /** @param {{alerts: {code: string, text: string, state: string}[], completeness: Record<string, any>|null}} qc */
  function show(qc) {
    const active = qc.alerts.filter((a) => a.state !== "cleared");
    alerts.replaceChildren(...(active.length ? active.map((a) =>
      el("li", { class: "qc-alert", "data-code": a.code, role: "alert", text: a.text }))
      : [el("li", { class: "qc-ok", text: "Image OK" })]));
    const c = qc.completeness;
    if (!c) return;
    setText(value, `${Math.round(Number(c.value ?? 0) * 100)} %`);
    const items = Array.isArray(c.items) ? c.items : [];
    checklist.replaceChildren(...items.map((/** @type {any} */ item) =>
      el("li", { "data-key": String(item.key ?? ""), "data-done": String(Boolean(item.done)),
        class: item.done ? "done" : "todo", text: `${item.done ? "✓" : "○"} ${item.label ?? item.key}` })));
  }

  return { element, show };
}
