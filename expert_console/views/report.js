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
const ARCHIVING_POLL_MS = 5000; // while the shown report is archiving, look again this often
const KIND_LABELS = Object.fromEntries(KINDS);

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../reports.js").Report} Report
 * @typedef {import("../reports.js").ReportKind} ReportKind
 * @typedef {import("../queue.js").StudyDetail} StudyDetail
 * @typedef {import("./reportforms.js").KindEditor} KindEditor
 * @typedef {{kind: "thyroid", form: ReturnType<typeof thyroidForm>} | {kind: "carotid", form: ReturnType<typeof carotidForm>}
 *   | {kind: "free_text", form: ReturnType<typeof freeTextForm>}} Draft a kind and the form's state for it
 */

/**
 * @param {{api: Api, user: User, studyId: string, onChanged: () => void}} context
 */
export function createReportEditor(context) {
  const editor = new ReportEditor(context);
  return {
    element: editor.parts.element,
    /** @param {StudyDetail} data */
    load: (data) => editor.load(data),
    /** @param {boolean} held */
    setLock(held) {
      editor.lockHeld = held;
      editor.render();
    },
    lockHeld: () => editor.lockHeld,
    destroy: () => editor.destroy(),
  };
}

/**
 * The editor's elements; the buttons call back into the editor.
 * @param {ReportEditor} editor
 */
function editorParts(editor) {
  const kindSelect = el("select", { name: "kind", "aria-label": "Report kind" },
    KINDS.map(([value, label]) => el("option", { value, text: label })));
  kindSelect.addEventListener("change", () => editor.chooseKind(/** @type {ReportKind} the options are KINDS */ (kindSelect.value)));
  const parts = {
    kindSelect,
    kindLabel: el("span", { class: "report-kind", "data-testid": "report-kind" }),
    status: el("p", { class: "report-status", "data-testid": "report-status", text: "Loading…" }),
    hint: el("p", { class: "notice", "data-testid": "report-hint", hidden: true }),
    versions: el("ol", { class: "report-versions", "data-testid": "report-versions" }),
    formSlot: el("div", { class: "report-form" }),
    previewStatus: el("p", { class: "status-line", "data-testid": "preview-status" }),
    error: el("p", { class: "error", "data-testid": "report-error", role: "alert", hidden: true }),
    saveButton: el("button", { "data-action": "save-report", hidden: true, text: "Save draft", onclick: () => void editor.run(() => editor.save()) }),
    signButton: el("button", { "data-action": "sign-report", class: "primary", hidden: true, text: "Sign",
      onclick: () => void editor.run(() => editor.sign()) }),
    approveButton: el("button", { "data-action": "approve-report", class: "primary", hidden: true, text: "Approve",
      onclick: () => void editor.run(() => editor.approve()) }),
    addendumButton: el("button", { "data-action": "addendum", hidden: true, text: "Write addendum", onclick: () => editor.startAddendum() }),
    cancelButton: el("button", { "data-action": "cancel-addendum", hidden: true, text: "Cancel addendum", onclick: () => editor.cancelAddendum() }),
    printLink: el("a", { class: "print-link", "data-testid": "print-link", target: "_blank", rel: "noopener", hidden: true,
      text: "Printable report" }),
  };
  // every action stays hidden until the reports are loaded (renderButtons): a click before then would do nothing
  const buttons = el("div", { class: "report-buttons" }, parts.saveButton, parts.signButton, parts.approveButton,
    parts.addendumButton, parts.cancelButton, parts.printLink);
  const element = el("section", { class: "panel report-editor", "data-testid": "report-editor" },
    el("div", { class: "report-head" }, el("h3", { text: "Report" }), parts.kindLabel, kindSelect),
    parts.status, parts.hint, parts.formSlot, parts.previewStatus, buttons, parts.error,
    el("h3", { text: "Versions" }), parts.versions);
  return { ...parts, element };
}

class ReportEditor {
  /** @param {{api: Api, user: User, studyId: string, onChanged: () => void}} context */
  constructor({ api, user, studyId, onChanged }) {
    this.api = api;
    this.user = user;
    this.studyId = studyId;
    this.onChanged = onChanged;
    /** @type {StudyDetail|null} */ this.study = null;
    /** @type {Report[]} */ this.reports = [];
    /** "new": writing a first report or an addendum, not saved yet; "draft": my saved draft; "view": read only. */
    this.mode = /** @type {"new"|"draft"|"view"} */ ("view");
    /** @type {Report|null} the version shown (view), or edited (draft) */ this.current = null;
    /** @type {Report|null} the final report an unsaved addendum amends */ this.amends = null;
    /** @type {ReportKind|null} */ this.examKind = null;
    /** @type {Draft|null} the kind and its form's state */ this.draft = null;
    this.lockHeld = false;
    this.loaded = false;
    this.destroyed = false;
    /** @type {ReturnType<typeof setTimeout>|null} */ this.previewTimer = null;
    /** @type {ReturnType<typeof setTimeout>|null} */ this.archivingTimer = null;
    this.previewToken = 0;
    /** @type {KindEditor|null} */ this.editor = null;
    this.parts = editorParts(this);
  }

  /** @returns {ReportKind|null} */
  get kind() {
    return this.draft?.kind ?? null;
  }

  /** @param {StudyDetail} data */
  async load(data) {
    this.study = data;
    let examType = null;
    if (data.modality === "US" && data.consultation_id) {
      try {
        examType = (await this.api.consultation(data.consultation_id)).exam_type;
      } catch {
        examType = null; // the reader chooses
      }
    }
    this.examKind = defaultKind(data.modality, examType);
    await this.reload();
  }

  async reload() {
    try {
      this.reports = await listReports(this.api, this.studyId);
    } catch (err) {
      if (!this.destroyed) showError(this.parts.error, asError(err));
      return;
    }
    if (this.destroyed) return;
    this.loaded = true;
    const last = latest(this.reports);
    if (last && this.mode === "new" && this.amends?.id === last.id) {
      this.render(); // an addendum being written to the still-latest version survives a refresh (claiming the study)
      return;
    }
    this.amends = null;
    if (last) {
      this.show(last);
      return;
    }
    this.mode = "new";
    this.current = null;
    this.draft = emptyForm(this.examKind ?? this.kind ?? "thyroid");
    this.render();
  }

  /** @param {ReportKind} kind the reader's choice for a new ultrasound report */
  chooseKind(kind) {
    this.draft = emptyForm(kind);
    this.renderForm();
  }

  /** Show a version: my own draft opens for editing, anything else read only. @param {Report} report */
  show(report) {
    this.current = report;
    this.amends = null;
    this.mode = report.state === "draft" && report.author.id === this.user.id ? "draft" : "view";
    this.draft = formFrom(report.kind, report.content);
    this.render();
  }

  startAddendum() {
    const last = latest(this.reports);
    if (!last || last.state !== "final") return;
    showError(this.parts.error, null);
    this.mode = "new";
    this.amends = last;
    this.current = null;
    this.draft = formFrom(last.kind, last.content); // the addendum is a whole new version, starting from the final text
    this.render();
  }

  cancelAddendum() {
    const last = latest(this.reports);
    if (last) this.show(last);
  }

  editable() {
    return (this.mode === "new" || this.mode === "draft") && this.lockHeld && this.user.role === "expert";
  }

  render() {
    if (!this.loaded) return;
    const { mode, current, amends, kind, user, reports } = this;
    const { kindSelect, kindLabel, status, hint } = this.parts;
    kindSelect.hidden = !(mode === "new" && !amends && this.study?.modality === "US" && !reports.length && this.examKind === null);
    kindSelect.value = kind ?? "thyroid";
    setText(kindLabel, KIND_LABELS[kind ?? "free_text"] ?? "");
    kindLabel.hidden = !kindSelect.hidden;
    setText(status, this.statusText());
    status.dataset.state = mode === "new" ? "new" : current?.state ?? "";
    const wantsLock = (mode === "new" || mode === "draft") && user.role === "expert" && !this.lockHeld;
    hint.hidden = !wantsLock && user.role === "expert";
    setText(hint, user.role !== "expert" ? "Reports are read only for your role." :
      "Claim the study to write or edit its report.");
    this.renderButtons();
    this.renderVersions();
    this.renderForm();
    this.watchArchiving();
  }

  /** An approved report whose SR is not stored yet becomes final by itself: look again until it has. */
  watchArchiving() {
    if (this.archivingTimer) clearTimeout(this.archivingTimer);
    this.archivingTimer = null;
    if (this.destroyed || !this.reports.some((r) => r.state === "archiving")) return;
    this.archivingTimer = setTimeout(() => {
      this.archivingTimer = null;
      if (this.mode === "view") void this.reload(); // the study is approved already: only the report changes
    }, ARCHIVING_POLL_MS);
  }

  renderButtons() {
    const { mode, current, amends, user } = this;
    const { saveButton, signButton, approveButton, addendumButton, cancelButton, printLink } = this.parts;
    const viewingLatest = !current || current.id === latest(this.reports)?.id;
    const canEdit = this.editable();
    saveButton.hidden = !canEdit;
    signButton.hidden = !canEdit;
    approveButton.hidden = !(mode === "view" && viewingLatest && current?.state === "preliminary" &&
      user.role === "expert" && current.author.id !== user.id);
    addendumButton.hidden = !(mode === "view" && viewingLatest && current?.state === "final" && user.role === "expert");
    cancelButton.hidden = !(mode === "new" && amends);
    printLink.hidden = !(current && mode !== "new");
    if (current) printLink.href = printUrl(current.id);
  }

  statusText() {
    const { current, amends } = this;
    if (this.mode === "new") return amends ? `Addendum to v${amends.version} (not saved yet)` : "New report (not saved yet)";
    if (!current) return "";
    const who = current.author.name;
    const v = `v${current.version}${current.amends_id ? " (addendum)" : ""}`;
    if (current.state === "draft") return `Draft ${v} by ${who}, started ${clockTime(current.created_at)}`;
    if (current.state === "preliminary") {
      return `Preliminary ${v}, signed by ${who} at ${clockTime(current.signed_at)}: awaiting approval by another expert`;
    }
    const approved = `by ${who}, approved by ${current.approver?.name ?? "?"} at ${clockTime(current.approved_at)}`;
    if (current.state === "archiving") {
      const failed = current.archiving?.last_error;
      return `Approved ${v} ${approved}: archiving its DICOM SR` + (failed ? ` (retrying: ${failed})` : "…");
    }
    return `Final ${v} ${approved}`;
  }

  renderVersions() {
    const versions = this.parts.versions;
    versions.replaceChildren(...[...this.reports].reverse().map((r) => el("li", {
      "data-version": r.version, "data-state": r.state, "aria-current": this.current?.id === r.id ? "true" : null },
    el("button", { type: "button", class: "link", "data-action": "show-version", onclick: () => this.show(r),
      text: `v${r.version} · ${r.state}${r.amends_id ? " · addendum" : ""} · ${r.author.name}` +
        (r.approver ? ` · approved by ${r.approver.name}` : "") }),
    el("a", { href: printUrl(r.id), target: "_blank", rel: "noopener", class: "print-link", text: "print" }))));
    if (!this.reports.length) versions.append(el("li", { class: "muted", text: "No report yet." }));
  }

  renderForm() {
    const draft = this.draft;
    if (!draft) return;
    const canEdit = this.editable();
    const onInput = () => {
      this.schedulePreview();
    };
    const editor = draft.kind === "thyroid" ? thyroidEditor(draft.form, canEdit, onInput, () => this.renderForm())
      : draft.kind === "carotid" ? carotidEditor(draft.form, canEdit, onInput) : freeTextEditor(draft.form, canEdit);
    this.editor = editor;
    this.parts.formSlot.replaceChildren(editor.element);
    setText(this.parts.previewStatus, "");
    // what the server computed for a stored version is shown as stored; an editable form asks for a preview
    if (canEdit) this.schedulePreview(0);
    else if (this.current) editor.showComputed(this.current.computed ?? {});
  }

  /** @param {number} [delay] */
  schedulePreview(delay = PREVIEW_DEBOUNCE_MS) {
    if (this.previewTimer) clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => void this.preview(), delay);
  }

  async preview() {
    this.previewTimer = null;
    const { editor, kind } = this;
    if (!editor?.preview || !kind) return;
    const token = ++this.previewToken;
    const request = editor.preview();
    if (!request) return;
    const previewStatus = this.parts.previewStatus;
    try {
      const answer = await previewReport(this.api, kind, request.content);
      if (token !== this.previewToken || this.destroyed) return;
      request.apply(answer.computed ?? {});
      previewStatus.dataset.state = "ok";
      setText(previewStatus, "");
    } catch (err) {
      if (token !== this.previewToken || this.destroyed) return;
      previewStatus.dataset.state = "error";
      setText(previewStatus, `Not computed: ${asError(err).message}`);
    }
  }

  /** @param {() => Promise<void>} action */
  async run(action) {
    const { error, saveButton, signButton, approveButton } = this.parts;
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

  async saveContent() {
    const { api, current, amends } = this;
    const content = this.editor ? this.editor.content() : {};
    /** @type {Report} */
    let saved;
    if (this.mode === "draft" && current) saved = await editReport(api, current.id, content);
    else if (amends) saved = await addAddendum(api, amends.id, content);
    else if (this.draft) saved = await createReport(api, this.studyId, this.draft.kind, content);
    else throw new Error("no report kind chosen"); // not reached: the buttons show with a form, and a form has a kind
    this.reports = await listReports(api, this.studyId);
    this.show(saved);
    return saved;
  }

  async save() {
    await this.saveContent();
    setText(this.parts.status, `${this.statusText()} · saved`);
  }

  async sign() {
    const saved = await this.saveContent();
    await signReport(this.api, saved.id); // the server releases the lock on signing
    await this.reload();
    this.onChanged();
  }

  async approve() {
    if (!this.current) return;
    await approveReport(this.api, this.current.id);
    await this.reload();
    this.onChanged();
  }

  destroy() {
    this.destroyed = true;
    if (this.previewTimer) clearTimeout(this.previewTimer);
    if (this.archivingTimer) clearTimeout(this.archivingTimer);
  }
}

/**
 * @param {ReportKind} kind
 * @returns {Draft}
 */
function emptyForm(kind) {
  if (kind === "thyroid") return { kind, form: { nodules: [emptyNodule()], comment: "" } };
  if (kind === "carotid") return { kind, form: { right: emptySide(), left: emptySide(), comment: "" } };
  return { kind, form: freeTextForm(undefined) };
}

/**
 * @param {ReportKind} kind
 * @param {Record<string, any>} content
 * @returns {Draft}
 */
function formFrom(kind, content) {
  if (kind === "thyroid") return { kind, form: thyroidForm(content) };
  if (kind === "carotid") return { kind, form: carotidForm(content) };
  return { kind, form: freeTextForm(content) };
}
