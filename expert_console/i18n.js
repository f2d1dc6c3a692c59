// @ts-check
// Words and formats for the reader's language. The catalogs are JSON files, one per namespace and language
// (expert_console/locales/<language>/<namespace>.json), served merged by GET /api/v1/i18n/{language}; the server
// prints from the same files. Views never hold user-facing text: they ask `t(key, {params})` with keys `<namespace>.<key>`.
// Dates are YYYY-MM-DD and times 24-hour in both languages (docs/I18N.md); names are shown as people write them.

/** @typedef {"zh-CN"|"en"} Language */
/** @typedef {string|Record<string, string>} Message a text, or plural forms by CLDR category ("one", "other") */

/** @type {readonly Language[]} */
export const LANGUAGES = ["zh-CN", "en"];
const STORAGE_KEY = "teleus.language";

/** @type {Language} */
let current = "zh-CN";
/** @type {Record<string, Message>} */
let messages = {};
/** @type {Set<(language: Language) => void>} */
const listeners = new Set();

/**
 * The language to start in before anyone has signed in: the one this browser chose last, else Chinese for a
 * Chinese browser and English for any other.
 * @returns {Language}
 */
export function initialLanguage() {
  const remembered = localStorage.getItem(STORAGE_KEY);
  if (isLanguage(remembered)) return remembered;
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language];
  return preferred.some((tag) => tag.toLowerCase().startsWith("zh")) || !preferred[0] ? "zh-CN" : "en";
}

/**
 * @param {unknown} value
 * @returns {value is Language}
 */
export function isLanguage(value) {
  return typeof value === "string" && /** @type {readonly string[]} */ (LANGUAGES).includes(value);
}

/** @returns {Language} */
export function language() {
  return current;
}

/**
 * Load a language's catalog and make it current: <html lang> follows, the choice is remembered in this browser,
 * and every listener (the header, the mounted view) redraws.
 * @param {Language} next
 */
export async function setLanguage(next) {
  const response = await fetch(`/api/v1/i18n/${encodeURIComponent(next)}`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`catalog ${next}: HTTP ${response.status}`);
  const body = /** @type {{language: Language, messages: Record<string, Message>}} */ (await response.json());
  messages = body.messages;
  current = body.language;
  document.documentElement.lang = current;
  localStorage.setItem(STORAGE_KEY, current);
  for (const listener of listeners) listener(current);
}

/**
 * Be told when the language changes; returns the function that stops it.
 * @param {(language: Language) => void} listener
 */
export function onLanguageChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * The message for `key` with its `{name}` parameters filled. A `count` parameter picks the plural form. A key the
 * catalog lacks shows as itself (never a blank; tests/expert_console/test_catalogs.py keeps both catalogs whole).
 * @param {string} key
 * @param {Record<string, string|number>} [params]
 */
export function t(key, params = {}) {
  let message = messages[key];
  if (message === undefined) return key;
  if (typeof message !== "string") {
    const count = typeof params.count === "number" ? params.count : NaN;
    const category = Number.isNaN(count) ? "other" : new Intl.PluralRules(current).select(count);
    message = message[category] ?? message.other ?? key;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/**
 * Whether the catalog has `key` (for texts chosen from data, e.g. an error code the console may not know).
 * @param {string} key
 */
export function has(key) {
  return key in messages;
}

/**
 * A refusal's text in the reader's language: the catalog's words for its stable code, else the server's message.
 * @param {{code?: string, message?: string}} error
 */
export function errorText(error) {
  const key = `errors.${error.code ?? "error"}`;
  if (has(key)) return t(key);
  return error.message || t("errors.error");
}

/** @param {number} n */
const pad = (n) => String(n).padStart(2, "0");

/**
 * @param {string|number|Date|null|undefined} value an ISO string, epoch milliseconds or a Date
 * @returns {Date|null}
 */
function asDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * 2026-12-07 (local time), in either language.
 * @param {string|number|Date|null|undefined} value
 */
export function formatDate(value) {
  const date = asDate(value);
  return date ? `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` : "";
}

/**
 * 14:05 (24-hour, local time); with seconds, 14:05:09.
 * @param {string|number|Date|null|undefined} value
 * @param {{seconds?: boolean}} [options]
 */
export function formatTime(value, options = {}) {
  const date = asDate(value);
  if (!date) return "";
  const minutes = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return options.seconds ? `${minutes}:${pad(date.getSeconds())}` : minutes;
}

/**
 * 2026-12-07 14:05 (local time).
 * @param {string|number|Date|null|undefined} value
 * @param {{seconds?: boolean}} [options]
 */
export function formatDateTime(value, options = {}) {
  const date = asDate(value);
  return date ? `${formatDate(date)} ${formatTime(date, options)}` : "";
}

/**
 * A number in the reader's language (grouping, decimals).
 * @param {number} value
 * @param {Intl.NumberFormatOptions} [options]
 */
export function formatNumber(value, options = {}) {
  return new Intl.NumberFormat(current, options).format(value);
}

const HAN = /[\u3400-\u9fff\uf900-\ufaff]/;

/**
 * A person's name as people write it, from a DICOM PN value or a plain name: family name first in both languages,
 * as the district's records write every name (pinyin too: Zhang San). `张^三` → 张三 (no space); `Zhang^San=张^三`
 * → 张三 for a Chinese reader, Zhang San for an English one; a prefix and suffix go before and after. A plain name
 * (no caret) comes back as it was typed.
 * @param {string|null|undefined} value
 * @param {Language} [reader] whose script to prefer; the current language when left out
 */
export function personName(value, reader = current) {
  if (!value) return "";
  if (!value.includes("^") && !value.includes("=")) return value.trim();
  const [alphabetic = "", ideographic = ""] = value.split("=");
  const chosen = reader === "zh-CN" && ideographic.replace(/\^/g, "").trim() ? ideographic : alphabetic || ideographic;
  const [family = "", given = "", middle = "", prefix = "", suffix = ""] = chosen.split("^").map((part) => part.trim());
  if (HAN.test(family + given)) return `${prefix}${family}${given}${middle}${suffix}`;
  return [prefix, family, given, middle, suffix].filter(Boolean).join(" ");
}
