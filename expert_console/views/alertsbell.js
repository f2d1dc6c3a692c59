// @ts-check
// The header's duty bell for experts: on duty or not (the server's roster), and the one click that lets the
// browser show notifications (a browser asks only from a click). The alerts themselves: alerts.js.

import { formatTime, t } from "../i18n.js";
import { el } from "./dom.js";

/**
 * @param {HTMLElement} container the header's slot (kept across routes)
 * @param {import("../alerts.js").DutyAlerts} alerts
 * @returns {() => void} cleanup
 */
export function mountAlertsBell(container, alerts) {
  const status = el("span", { class: "duty-status", "data-testid": "duty-status" });
  const allow = el("button", { type: "button", class: "link", "data-action": "allow-notifications",
    text: t("notify.allow"), hidden: true, onclick: () => void alerts.askPermission() });
  container.replaceChildren(status, allow);
  container.hidden = false;
  const stop = alerts.onState((state) => {
    status.textContent = state.onDuty
      ? t("notify.on_duty", { until: formatTime(state.until) })
      : t("notify.off_duty");
    status.dataset.onDuty = String(state.onDuty);
    allow.hidden = !state.onDuty || state.permission !== "default";
    const blocked = state.permission === "denied";
    status.title = blocked ? t("notify.blocked") : "";
  });
  return () => {
    stop();
    container.replaceChildren();
    container.hidden = true;
  };
}
