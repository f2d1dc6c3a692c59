// @ts-check
// The header's bell: for an expert, on duty or not (the server's roster, alerts.js); for anyone who is alerted
// (experts on duty, a referring centre's staff told of critical findings), the one click that lets the browser
// show notifications (a browser asks only from a click).

import { currentPermission } from "../alerts.js";
import { formatTime, t } from "../i18n.js";
import { el } from "./dom.js";

/**
 * @param {HTMLElement} container the header's slot (kept across routes)
 * @param {import("../alerts.js").DutyAlerts|null} alerts an expert's duty alerts; null: the permission alone
 * @returns {() => void} cleanup
 */
export function mountAlertsBell(container, alerts) {
  const status = el("span", { class: "duty-status", "data-testid": "duty-status", hidden: !alerts });
  const allow = el("button", { type: "button", class: "link", "data-action": "allow-notifications",
    text: t("notify.allow"), hidden: true });
  container.replaceChildren(status, allow);
  container.hidden = false;
  /** @param {boolean} wanted whether this person is alerted now */
  const showPermission = (wanted) => {
    const permission = currentPermission();
    allow.hidden = !wanted || permission !== "default";
    const blocked = permission === "denied";
    container.title = blocked ? t("notify.blocked") : "";
  };
  allow.addEventListener("click", async () => {
    if (typeof Notification === "undefined") return;
    await Notification.requestPermission();
    if (alerts) alerts.setState({ permission: currentPermission() });
    else showPermission(true);
  });
  if (!alerts) {
    showPermission(true);
    return () => {
      container.replaceChildren();
      container.hidden = true;
    };
  }
  const stop = alerts.onState((state) => {
    status.textContent = state.onDuty
      ? t("notify.on_duty", { until: formatTime(state.until) })
      : t("notify.off_duty");
    status.dataset.onDuty = String(state.onDuty);
    showPermission(state.onDuty);
  });
  return () => {
    stop();
    container.replaceChildren();
    container.hidden = true;
  };
}
