// @ts-check
// The consultation chat: the log of lines and the input (Enter or the button sends).

import { el } from "./dom.js";

/**
 * @typedef {import("../session.js").ChatLine} ChatLine
 */

/**
 * @param {{onSend: (text: string) => boolean}} options onSend returns whether the line went out
 * @returns {{element: HTMLElement, render: (lines: ChatLine[]) => void, setEnabled: (enabled: boolean, why?: string) => void}}
 */
export function createChat({ onSend }) {
  const log = el("div", { class: "chat-log", "data-testid": "chat-log", role: "log", "aria-live": "polite" });
  const input = el("input", {
    class: "chat-input",
    "data-testid": "chat-input",
    maxlength: 2000,
    autocomplete: "off",
    placeholder: "Message",
    "aria-label": "Chat message",
  });
  const send = el("button", { type: "submit", "data-testid": "chat-send", text: "Send" });
  const form = el("form", { class: "chat-form" }, input, send);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (onSend(text)) input.value = "";
  });
  /** @type {ChatLine[]} */
  let shown = [];

  /** @param {ChatLine[]} lines */
  function render(lines) {
    const stuckToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    // lines usually only grow at the end; when history lands in between, draw the log again
    const grows = lines.length >= shown.length && shown.every((line, i) => lines[i] === line);
    if (!grows) log.replaceChildren();
    for (const line of grows ? lines.slice(shown.length) : lines) log.append(lineElement(line));
    shown = lines.slice();
    if (stuckToBottom || !grows) log.scrollTop = log.scrollHeight;
  }

  /**
   * @param {boolean} enabled
   * @param {string} [why]
   */
  function setEnabled(enabled, why) {
    input.disabled = !enabled;
    send.disabled = !enabled;
    input.placeholder = enabled ? "Message" : why ?? "Chat unavailable";
  }

  return { element: el("section", { class: "panel chat" }, el("h3", { text: "Chat" }), log, form), render, setEnabled };
}

/** @param {ChatLine} line */
function lineElement(line) {
  const time = line.at ? new Date(line.at) : null;
  const clock = time && !Number.isNaN(time.getTime())
    ? time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : "";
  return el("div", { class: "chat-line", "data-testid": "chat-line", "data-role": line.role || null },
    el("span", { class: "chat-name", text: line.name || "?" }),
    line.role ? el("span", { class: "chat-role", text: line.role }) : null,
    clock ? el("time", { class: "chat-time", text: clock, datetime: line.at }) : null,
    el("span", { class: "chat-text", text: line.text }));
}
