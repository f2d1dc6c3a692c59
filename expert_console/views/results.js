// @ts-check
// #/results: the community's exams with their state (已登记 / 已检查 / 已匹配 / 已报告 / 已审核), refreshed when the
// server tells of a change (the `queue` notices; never polled); an approved report opens, prints and downloads, the
// images download as DICOM or JPEG. #/results/<report id>: the approved report as printed, read-only, with the same
// actions. Every word from the `results` catalog (docs/RESULTS.md).

import { has, initialLanguage, language, onLanguageChange, personName, setLanguage, t, formatDateTime } from "../i18n.js";
import { RESULT_STATES, dicomDate, imagesUrl, listResults, pdfUrl, printedPageUrl, readReport } from "../results.js";
import { asError, el, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../results.js").Result} Result
 * @typedef {import("../results.js").ResultState} ResultState
 */

/** The catalogs, when the page was opened before anything loaded them. */
async function catalogReady() {
  if (!has("results.title")) await setLanguage(initialLanguage());
}

/**
 * @param {string} href
 * @param {string} label
 * @param {string} testid
 * @param {boolean} [download]
 */
function link(href, label, testid, download = false) {
  return el("a", { href, class: "button", "data-testid": testid, download: download ? "" : null, text: label });
}

/**
 * @param {Result} result
 * @param {(hash: string) => void} navigate
 */
function actions(result, navigate) {
  const cell = el("td", { class: "result-actions" });
  const report = result.report;
  if (report) {
    cell.append(
      el("button", {
        type: "button",
        "data-testid": "result-open",
        text: t("results.open"),
        onclick: () => navigate(`#/results/${encodeURIComponent(report.id)}`),
      }),
      link(pdfUrl(report.id, language()), t("results.pdf"), "result-pdf", true),
    );
  } else {
    cell.append(el("span", { class: "muted", text: t("results.waiting") }));
  }
  if (result.instance_count > 0) {
    cell.append(
      link(imagesUrl(result.study_id, "dicom"), t("results.dicom_zip"), "result-dicom", true),
      link(imagesUrl(result.study_id, "jpeg"), t("results.jpeg_zip"), "result-jpeg", true),
    );
  }
  return cell;
}

/**
 * @param {Result} result
 * @param {(hash: string) => void} navigate
 */
function row(result, navigate) {
  const exam = [result.modality, result.description].filter(Boolean).join(" · ");
  return el(
    "tr",
    { "data-study": result.study_id, "data-state": result.state, "data-accession": result.accession },
    el("td", { text: personName(result.patient.name) }),
    el("td", { text: exam }),
    el("td", { text: result.accession }),
    el("td", { text: dicomDate(result.study_date) }),
    el("td", {}, el("span", { class: `result-state state-${result.state}`, "data-testid": "result-state",
      text: t(`results.state.${result.state}`) })),
    actions(result, navigate),
  );
}

/**
 * The list of exams.
 * @param {HTMLElement} container
 * @param {{api: Api, user: User, events: import("../events.js").ChangeFeed, query: URLSearchParams,
 *   navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountResults(container, { api, events, query, navigate }) {
  let stopped = false;
  const wanted = RESULT_STATES.find((s) => s === query.get("state"));
  const title = el("h1");
  const intro = el("p", { class: "muted" });
  const filter = el("select", { "data-testid": "results-filter", onchange: () => {
    const value = /** @type {HTMLSelectElement} */ (filter).value;
    navigate(value ? `#/results?state=${encodeURIComponent(value)}` : "#/results");
  } });
  const filterLabel = el("label", {}, el("span"), filter);
  const error = el("p", { class: "error", role: "alert", "data-testid": "result-error", hidden: true });
  const body = el("tbody");
  const head = el("tr");
  const empty = el("p", { class: "muted", "data-testid": "results-empty", hidden: true });
  const updated = el("p", { class: "muted small", "data-testid": "results-updated" });
  const table = el("table", { class: "results", "data-testid": "results-table" }, el("thead", {}, head), body);
  container.replaceChildren(el("section", { class: "results-page" }, title, intro, filterLabel, error, table, empty,
    updated));
  /** @type {Result[]} */
  let shown = [];

  function labels() {
    title.textContent = t("results.title");
    /** @type {HTMLElement} */ (filterLabel.firstChild).textContent = t("results.filter.state");
    filter.replaceChildren(
      el("option", { value: "", text: t("results.filter.all") }),
      ...RESULT_STATES.map((s) => el("option", { value: s, text: t(`results.state.${s}`), selected: s === wanted })),
    );
    head.replaceChildren(...["patient", "exam", "accession", "date", "state", "actions"].map(
      (c) => el("th", { text: t(`results.column.${c}`) })));
    empty.textContent = t("results.empty");
    render();
  }

  function render() {
    const site = shown[0]?.site.name ?? "";
    intro.textContent = site ? t("results.intro", { site }) : "";
    intro.hidden = !site;
    body.replaceChildren(...shown.map((r) => row(r, navigate)));
    empty.hidden = shown.length > 0;
    table.hidden = shown.length === 0;
  }

  async function refresh() {
    try {
      const results = await listResults(api, wanted ? [wanted] : []);
      if (stopped) return;
      shown = results;
      showError(error, null);
      updated.textContent = t("results.updated", { time: formatDateTime(new Date(), { seconds: true }) });
      render();
    } catch (err) {
      if (!stopped) showError(error, asError(err));
    }
  }

  const stopLanguage = onLanguageChange(() => labels());
  let unsubscribe = () => {};
  void catalogReady().then(() => {
    if (stopped) return;
    labels();
    void refresh(); // the stream may be open already (another page subscribed): it says nothing until a change
    unsubscribe = events.subscribe(["queue"], refresh); // a report approved, a study arrived: asked again
  });
  return () => {
    stopped = true;
    unsubscribe();
    stopLanguage();
  };
}

/**
 * One approved report, as printed, read-only.
 * @param {HTMLElement} container
 * @param {{api: Api, user: User, reportId: string, navigate: (hash: string) => void}} context
 * @returns {() => void} cleanup
 */
export function mountResult(container, { api, reportId, navigate }) {
  let stopped = false;
  const back = el("button", { type: "button", "data-testid": "result-back", onclick: () => navigate("#/results") });
  const bar = el("div", { class: "result-bar" });
  const error = el("p", { class: "error", role: "alert", "data-testid": "result-error", hidden: true });
  const frame = el("iframe", { class: "printed-report", "data-testid": "printed-report",
    sandbox: "allow-same-origin allow-modals" }); // i18n: data (the sandbox tokens, not words)
  container.replaceChildren(el("section", { class: "result-page" }, el("div", { class: "result-bar" }, back), bar,
    error, frame));
  /** @type {{id: string, study_id: string}|null} */
  let report = null;

  function draw() {
    back.textContent = t("results.back");
    frame.title = t("results.report.title");
    if (!report) return;
    const print = el("button", { type: "button", "data-testid": "result-print", text: t("results.print"),
      onclick: () => frame.contentWindow?.print() });
    bar.replaceChildren(
      print,
      link(pdfUrl(report.id, language()), t("results.pdf"), "result-pdf", true),
      link(imagesUrl(report.study_id, "dicom"), t("results.dicom_zip"), "result-dicom", true),
      link(imagesUrl(report.study_id, "jpeg"), t("results.jpeg_zip"), "result-jpeg", true),
    );
    frame.src = printedPageUrl(report.id, language());
  }

  const stopLanguage = onLanguageChange(() => draw());
  void catalogReady()
    .then(() => readReport(api, reportId))
    .then((found) => {
      if (stopped) return;
      report = found;
      draw();
    })
    .catch((err) => {
      if (stopped) return;
      draw();
      showError(error, asError(err));
    });
  return () => {
    stopped = true;
    stopLanguage();
  };
}
