// @ts-check
// Tiny DOM builders for the views: text always goes in through textContent, never as markup.

import { errorText } from "../i18n.js";

/**
 * @typedef {{onclick?: (event: MouseEvent) => void, onsubmit?: (event: SubmitEvent) => void,
 *   onchange?: (event: Event) => void, oninput?: (event: Event) => void, onkeydown?: (event: KeyboardEvent) => void}
 *   & Record<string, string|number|boolean|null|undefined|((event: never) => void)>} Attributes
 *   `text` sets textContent, `on<event>` adds a listener, `class`, `data-*`, `aria-*` and the rest become
 *   attributes (false/null/undefined leave them out, true sets them empty).
 * @typedef {Node|string|null|undefined|false} Child
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes} [attributes]
 * @param {...(Child|Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), /** @type {EventListener} typed above for its own event */ (value));
    }
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

/**
 * @param {Node} parent
 * @param {(Child|Child[])[]} children
 */
function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/**
 * Set an element's text only when it changed (keeps the DOM quiet for periodic refreshes).
 * @param {Element} node
 * @param {string} text
 */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Show a refusal: the reader's words for its stable code (errorText; the server's message when the catalog has
 * none), or the page's own words (`text`, from the catalog) for a refusal the page makes itself; the code in
 * `data-code`.
 * @param {HTMLElement} node
 * @param {{code?: string, message?: string, text?: string}|null} error null clears it
 */
export function showError(node, error) {
  if (!error) {
    node.textContent = "";
    node.removeAttribute("data-code");
    node.hidden = true;
    return;
  }
  node.textContent = error.text ?? errorText(error);
  node.setAttribute("data-code", error.code ?? "error");
  node.hidden = false;
}

/**
 * mm:ss (minutes run past 59).
 * @param {number} seconds
 */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** @param {unknown} err */
export function asError(err) {
  if (err && typeof err === "object" && "message" in err) {
    const code = "code" in err && typeof err.code === "string" ? err.code : "error";
    return { code, message: String(err.message) };
  }
  return { code: "error", message: String(err) };
}

/**
 * Show a refusal with its stable code in words too ("… (kept_apart)"), for the pages whose users quote it.
 * @param {HTMLElement} node
 * @param {{code?: string, message?: string, text?: string}|null} error null clears it
 */
export function showCodedError(node, error) {
  showError(node, error);
  if (error?.code && error.code !== "error") node.textContent = `${error.text ?? errorText(error)} (${error.code})`;
}

/**
 * Run one of a page's actions: clear the last refusal, show the new one if it fails, then reload what the page
 * shows either way.
 * @param {{error: HTMLElement, refresh: () => Promise<void>}} page
 * @param {() => Promise<unknown>} action
 */
export async function attempt(page, action) {
  showError(page.error, null);
  try {
    await action();
  } catch (err) {
    showError(page.error, asError(err));
  }
  await page.refresh();
}

/**
 * Run one of a page's decisions: clear the last message, show the refusal (with its code) or `done`, then reload
 * what the page shows either way (another person may have decided meanwhile).
 * @param {{error: HTMLElement, notice: HTMLElement, refresh: () => Promise<void>}} page
 * @param {() => Promise<unknown>} action
 * @param {string} done
 */
export async function decide(page, action, done) {
  showCodedError(page.error, null);
  page.notice.hidden = true;
  try {
    await action();
    page.notice.textContent = done;
    page.notice.hidden = false;
  } catch (err) {
    showCodedError(page.error, asError(err));
  }
  await page.refresh();
}
