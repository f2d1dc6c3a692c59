// @ts-check
// The consultation chat: the log of lines, a button for earlier lines, and the input (Enter or the button sends).

import { formatTime, personName, t } from "../i18n.js";

import { el } from "./dom.js";
import { roleLabel } from "./labels.js";


/**
 * @typedef {import("../session.js").ChatLine} ChatLine
 */

/**
 * @param {{onSend: (text: string) => boolean, onEarlier?: () => void}} options onSend returns whether the line
 *   went out; onEarlier asks for the page of lines before the oldest shown
 * @returns {{element: HTMLElement, render: (lines: ChatLine[], hasEarlier?: boolean) => void,
 *   setEnabled: (enabled: boolean, why?: string) => void}}
 */
export function createChat({ onSend, onEarlier = () => {} }) {
  const log = el("div", { class: "chat-log", "data-testid": "chat-log", role: "log", "aria-live": "polite" });
  const input = el("input", {
    class: "chat-input",
    "data-testid": "chat-input",
    maxlength: 2000,
    autocomplete: "off",
    placeholder: t("chat.placeholder"),
    "aria-label": t("chat.label"),
  });
  const send = el("button", { type: "submit", "data-testid": "chat-send", text: t("chat.send") });
  const earlier = el("button", { type: "button", class: "chat-earlier", "data-testid": "chat-earlier", text: t("chat.earlier") });
  earlier.hidden = true;
  earlier.addEventListener("click", () => onEarlier());
  const form = el("form", { class: "chat-form" }, input, send);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (onSend(text)) input.value = "";
  });
  /** @type {ChatLine[]} */
  let shown = [];

  /**
   * @param {ChatLine[]} lines
   * @param {boolean} [hasEarlier] whether older lines are stored on the server
   */
  function render(lines, hasEarlier = false) {
    earlier.hidden = !hasEarlier;
    const fromBottom = log.scrollHeight - log.scrollTop;
    const stuckToBottom = fromBottom - log.clientHeight < 24;
    // lines usually only grow at the end; when a page of history lands before them, draw the log again
    const grows = lines.length >= shown.length && shown.every((line, i) => lines[i] === line);
    if (!grows) log.replaceChildren();
    for (const line of grows ? lines.slice(shown.length) : lines) log.append(lineElement(line));
    shown = lines.slice();
    // at the bottom: stay there; reading older lines: keep them where they were
    if (stuckToBottom) log.scrollTop = log.scrollHeight;
    else if (!grows) log.scrollTop = log.scrollHeight - fromBottom;
  }

  /**
   * @param {boolean} enabled
   * @param {string} [why]
   */
  function setEnabled(enabled, why) {
    input.disabled = !enabled;
    send.disabled = !enabled;
    input.placeholder = enabled ? t("chat.placeholder") : why ?? t("chat.unavailable");
  }

  const element = el("section", { class: "panel chat" }, el("h3", { text: t("chat.title") }), earlier, log, form);
  return { element, render, setEnabled };
}

/** @param {ChatLine} line */
function lineElement(line) {
  const clock = formatTime(line.at);
  return el("div", { class: "chat-line", "data-testid": "chat-line", "data-role": line.role || null },
    el("span", { class: "chat-name", text: personName(line.name) || "?" }),
    line.role ? el("span", { class: "chat-role", text: roleLabel(line.role) }) : null,
    clock ? el("time", { class: "chat-time", text: clock, datetime: line.at }) : null,
    el("span", { class: "chat-text", text: line.text }));
}
