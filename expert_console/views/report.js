// @ts-check
// The report editor of the study page: the kind by modality (ultrasound: thyroid or carotid by the consultation's
// exam, or the reader's choice; X-ray and CT: free text), structured forms with the rules' results live from
// POST /reports/preview, save / sign / approve (another expert) / addendum, the versions and their printable view.

import { clockTime } from "../queue.js";
import {
  KINDS, addAddendum, approveReport, carotidForm, createReport, defaultKind, editReport, emptyNodule, emptySide,
  freeTextForm, latest, listReports, previewReport, printUrl, signReport, thyroidForm,
} from "../reports.js";
import { asError, el, setText, showError } from "./dom.js";
import { carotidEditor, freeTextEditor, thyroidEditor } from "./reportforms.js";

const PREVIEW_DEBOUNCE_MS = 350;
const KIND_LABELS = Object.fromEntries(KINDS);

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../reports.js").Report} Report
 * @typedef {import("../reports.js").ReportKind} ReportKind
 * @typedef {import("../queue.js").StudyDetail} StudyDetail
 * @typedef {import("./reportforms.js").KindEditor} KindEditor
 */

/**
 * @param {{api: Api, user: User, studyId: string, onChanged: () => void}} context
 */
export function createReportEditor({ api, user, studyId, onChanged }) {
  /** @type {StudyDetail|null} */
  let study = null;
  /** @type {Report[]} */
  let reports = [];
  /** "new": writing a first report or an addendum, not saved yet; "draft": my saved draft; "view": read only. */
  let mode = /** @type {"new"|"draft"|"view"} */ ("view");
  /** @type {Report|null} the version shown (view), or edited (draft) */
  let current = null;
  /** @type {Report|null} the final report an unsaved addendum amends */
  let amends = null;
  /** @type {ReportKind|null} */
  let kind = null;
  /** @type {ReportKind|null} */
  let examKind = null;
  /** @type {any} the form's state for the kind */
  let form = null;
  let lockHeld = false;
  let loaded = false;
  let destroyed = false;
  /** @type {ReturnType<typeof setTimeout>|null} */
  let previewTimer = null;
  let previewToken = 0;
  /** @type {KindEditor|null} */
  let editor = null;

  const kindSelect = el("select", { name: "kind", "aria-label": "Report kind" },
    KINDS.map(([value, label]) => el("option", { value, text: label })));
  kindSelect.addEventListener("change", () => {
    kind = /** @type {ReportKind} */ (kindSelect.value);
    form = emptyForm(kind);
    renderForm();
  });
  const kindLabel = el("span", { class: "report-kind", "data-testid": "report-kind" });
  const status = el("p", { class: "report-status", "data-testid": "report-status", text: "Loading…" });
  const hint = el("p", { class: "notice", "data-testid": "report-hint", hidden: true });
  const versions = el("ol", { class: "report-versions", "data-testid": "report-versions" });
  const formSlot = el("div", { class: "report-form" });
  const previewStatus = el("p", { class: "status-line", "data-testid": "preview-status" });
  const error = el("p", { class: "error", "data-testid": "report-error", role: "alert", hidden: true });
  const saveButton = el("button", { "data-action": "save-report", text: "Save draft", onclick: () => void run(save) });
  const signButton = el("button", { "data-action": "sign-report", class: "primary", text: "Sign",
    onclick: () => void run(sign) });
  const approveButton = el("button", { "data-action": "approve-report", class: "primary", text: "Approve",
    onclick: () => void run(approve) });
  const addendumButton = el("button", { "data-action": "addendum", text: "Write addendum", onclick: startAddendum });
  const cancelButton = el("button", { "data-action": "cancel-addendum", text: "Cancel addendum", onclick: cancelAddendum });
  const printLink = el("a", { class: "print-link", "data-testid": "print-link", target: "_blank", rel: "noopener",
    text: "Printable report" });
  const buttons = el("div", { class: "report-buttons" },
    saveButton, signButton, approveButton, addendumButton, cancelButton, printLink);

  const element = el("section", { class: "panel report-editor", "data-testid": "report-editor" },
    el("div", { class: "report-head" }, el("h3", { text: "Report" }), kindLabel, kindSelect),
    status, hint, formSlot, previewStatus, buttons, error,
    el("h3", { text: "Versions" }), versions);

  /** @param {StudyDetail} data */
  async function load(data) {
    study = data;
    let examType = null;
    if (data.modality === "US" && data.consultation_id) {
      try {
        examType = (await api.consultation(data.consultation_id)).exam_type;
      } catch {
        examType = null; // the reader chooses
      }
    }
    examKind = defaultKind(data.modality, examType);
    await reload();
  }

  async function reload() {
    try {
      reports = await listReports(api, studyId);
    } catch (err) {
      if (!destroyed) showError(error, asError(err));
      return;
    }
    if (destroyed) return;
    loaded = true;
    const last = latest(reports);
    amends = null;
    if (!last) {
      mode = "new";
      current = null;
      kind = examKind ?? kind ?? "thyroid";
      form = emptyForm(kind);
    } else {
      show(last);
      return;
    }
    render();
  }

  /** Show a version: my own draft opens for editing, anything else read only. @param {Report} report */
  function show(report) {
    current = report;
    amends = null;
    kind = report.kind;
    mode = report.state === "draft" && report.author.id === user.id ? "draft" : "view";
    form = formFrom(report.kind, report.content);
    render();
  }

  function startAddendum() {
    const last = latest(reports);
    if (!last || last.state !== "final") return;
    showError(error, null);
    mode = "new";
    amends = last;
    current = null;
    kind = last.kind;
    form = formFrom(last.kind, last.content); // the addendum is a whole new version, starting from the final text
    render();
  }

  function cancelAddendum() {
    const last = latest(reports);
    if (last) show(last);
  }

  function editable() {
    return (mode === "new" || mode === "draft") && lockHeld && user.role === "expert";
  }

  function render() {
    if (!loaded) return;
    const last = latest(reports);
    const viewingLatest = !current || current.id === last?.id;
    kindSelect.hidden = !(mode === "new" && !amends && study?.modality === "US" && !reports.length && examKind === null);
    kindSelect.value = kind ?? "thyroid";
    setText(kindLabel, KIND_LABELS[kind ?? "free_text"] ?? "");
    kindLabel.hidden = !kindSelect.hidden;
    setText(status, statusText());
    status.dataset.state = mode === "new" ? "new" : current?.state ?? "";
    const wantsLock = (mode === "new" || mode === "draft") && user.role === "expert" && !lockHeld;
    hint.hidden = !wantsLock && user.role === "expert";
    setText(hint, user.role !== "expert" ? "Reports are read only for your role." :
      "Claim the study to write or edit its report.");
    const canEdit = editable();
    saveButton.hidden = !canEdit;
    signButton.hidden = !canEdit;
    approveButton.hidden = !(mode === "view" && viewingLatest && current?.state === "preliminary" &&
      user.role === "expert" && current.author.id !== user.id);
    addendumButton.hidden = !(mode === "view" && viewingLatest && current?.state === "final" && user.role === "expert");
    cancelButton.hidden = !(mode === "new" && amends);
    printLink.hidden = !(current && mode !== "new");
    if (current) printLink.href = printUrl(current.id);
    renderVersions();
    renderForm();
  }

  function statusText() {
    if (mode === "new") return amends ? `Addendum to v${amends.version} (not saved yet)` : "New report (not saved yet)";
    if (!current) return "";
    const who = current.author.name;
    const v = `v${current.version}${current.amends_id ? " (addendum)" : ""}`;
    if (current.state === "draft") return `Draft ${v} by ${who}, started ${clockTime(current.created_at)}`;
    if (current.state === "preliminary") {
      return `Preliminary ${v}, signed by ${who} at ${clockTime(current.signed_at)}: awaiting approval by another expert`;
    }
    return `Final ${v} by ${who}, approved by ${current.approver?.name ?? "?"} at ${clockTime(current.approved_at)}`;
  }

  function renderVersions() {
    versions.replaceChildren(...[...reports].reverse().map((r) => el("li", {
      "data-version": r.version, "data-state": r.state, "aria-current": current?.id === r.id ? "true" : null },
    el("button", { type: "button", class: "link", "data-action": "show-version", onclick: () => show(r),
      text: `v${r.version} · ${r.state}${r.amends_id ? " · addendum" : ""} · ${r.author.name}` +
        (r.approver ? ` · approved by ${r.approver.name}` : "") }),
    el("a", { href: printUrl(r.id), target: "_blank", rel: "noopener", class: "print-link", text: "print" }))));
    if (!reports.length) versions.append(el("li", { class: "muted", text: "No report yet." }));
  }

  function renderForm() {
    if (!kind) return;
    const canEdit = editable();
    const onInput = () => {
      schedulePreview();
    };
    editor = kind === "thyroid" ? thyroidEditor(form, canEdit, onInput, () => renderForm())
      : kind === "carotid" ? carotidEditor(form, canEdit, onInput) : freeTextEditor(form, canEdit);
    formSlot.replaceChildren(editor.element);
    setText(previewStatus, "");
    // what the server computed for a stored version is shown as stored; an editable form asks for a preview
    if (canEdit) schedulePreview(0);
    else if (current) editor.showComputed(current.computed ?? {});
  }

  /** @param {number} [delay] */
  function schedulePreview(delay = PREVIEW_DEBOUNCE_MS) {
    if (previewTimer) clearTimeout(previewTimer);
    previewTimer = setTimeout(() => void preview(), delay);
  }

  async function preview() {
    previewTimer = null;
    if (!editor?.preview || !kind) return;
    const token = ++previewToken;
    const request = editor.preview();
    if (!request) return;
    try {
      const answer = await previewReport(api, kind, request.content);
      if (token !== previewToken || destroyed) return;
      request.apply(answer.computed ?? {});
      previewStatus.dataset.state = "ok";
      setText(previewStatus, "");
    } catch (err) {
      if (token !== previewToken || destroyed) return;
      previewStatus.dataset.state = "error";
      setText(previewStatus, `Not computed: ${asError(err).message}`);
    }
  }

  /** @param {() => Promise<void>} action */
  async function run(action) {
    showError(error, null);
    for (const b of [saveButton, signButton, approveButton]) b.disabled = true;
    try {
      await action();
    } catch (err) {
      showError(error, asError(err));
    } finally {
      for (const b of [saveButton, signButton, approveButton]) b.disabled = false;
    }
  }

  async function saveContent() {
    const content = editor ? editor.content() : {};
    /** @type {Report} */
    let saved;
    if (mode === "draft" && current) saved = await editReport(api, current.id, content);
    else if (amends) saved = await addAddendum(api, amends.id, content);
    else saved = await createReport(api, studyId, /** @type {ReportKind} */ (kind), content);
    reports = await listReports(api, studyId);
    show(saved);
    return saved;
  }

  async function save() {
    await saveContent();
    setText(status, `${statusText()} · saved`);
  }

  async function sign() {
    const saved = await saveContent();
    await signReport(api, saved.id); // the server releases the lock on signing
    await reload();
    onChanged();
  }

  async function approve() {
    if (!current) return;
    await approveReport(api, current.id);
    await reload();
    onChanged();
  }

  return {
    element,
    load,
    /** @param {boolean} held */
    setLock(held) {
      lockHeld = held;
      render();
    },
    lockHeld: () => lockHeld,
    destroy() {
      destroyed = true;
      if (previewTimer) clearTimeout(previewTimer);
    },
  };
}

/**
 * @param {ReportKind} kind
 * @returns {any}
 */
function emptyForm(kind) {
  if (kind === "thyroid") return { nodules: [emptyNodule()], comment: "" };
  if (kind === "carotid") return { right: emptySide(), left: emptySide(), comment: "" };
  return freeTextForm(undefined);
}

/**
 * @param {ReportKind} kind
 * @param {Record<string, any>} content
 */
function formFrom(kind, content) {
  if (kind === "thyroid") return thyroidForm(content);
  if (kind === "carotid") return carotidForm(content);
  return freeTextForm(content);
}
