// @ts-check
// The report editor of the study page: the kind by modality (ultrasound: thyroid or carotid by the consultation's
// exam, or the reader's choice; X-ray and CT: free text), structured forms with the rules' results live from
// POST /reports/preview (a thyroid report in its site's system: ACR TI-RADS or C-TIRADS), warnings the reader
// confirms before signing, save / sign / approve (another expert) / addendum, the versions and their printable view.
// Every word from the catalogs (`report.*`, `clinical.*`); dates YYYY-MM-DD HH:MM; names as people write them.

import {
  errorText, formatDateTime, has, initialLanguage, language, onLanguageChange, personName, setLanguage, t,
} from "../i18n.js";
import {
  KINDS, addAddendum, approveReport, carotidForm, createReport, defaultKind, editReport, emptyNodule, emptySide,
  freeTextForm, latest, listReports, previewReport, printUrl, signReport, thyroidForm,
} from "../reports.js";
import { asError, el, setText } from "./dom.js";
import { carotidEditor, freeTextEditor, thyroidEditor } from "./reportforms.js";

const PREVIEW_DEBOUNCE_MS = 350;
const ARCHIVING_POLL_MS = 5000; // while the shown report is archiving, look again this often

/**
 * A refusal in the reader's words (the catalog's text for its stable code), its code kept on the element.
 * @param {HTMLElement} node
 * @param {{code: string, message: string}|null} error
 */
function showError(node, error) {
  node.hidden = !error;
  node.textContent = error ? errorText(error) : "";
  if (error) node.setAttribute("data-code", error.code);
  else node.removeAttribute("data-code");
}

/** @param {string} kind */
const kindName = (kind) => t(`report.kind.${kind}`);

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../reports.js").Report} Report
 * @typedef {import("../reports.js").ReportKind} ReportKind
 * @typedef {import("../queue.js").StudyDetail} StudyDetail
 * @typedef {import("./reportforms.js").KindEditor} KindEditor
 * @typedef {import("./reportforms.js").ThyroidSystem} ThyroidSystem
 * @typedef {({kind: "thyroid", form: ReturnType<typeof thyroidForm>} | {kind: "carotid", form: ReturnType<typeof carotidForm>}
 *   | {kind: "free_text", form: ReturnType<typeof freeTextForm>}) & {confirmed: string[]}} Draft a kind, the form's state
 *   for it, and the warning ids the reader confirmed
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
  const kindSelect = el("select", { name: "kind", "aria-label": t("report.kind_label") },
    KINDS.map(([value]) => el("option", { value, text: kindName(value) })));
  kindSelect.addEventListener("change", () => editor.chooseKind(/** @type {ReportKind} the options are KINDS */ (kindSelect.value)));
  const parts = {
    kindSelect,
    kindLabel: el("span", { class: "report-kind", "data-testid": "report-kind" }),
    status: el("p", { class: "report-status", "data-testid": "report-status", text: t("common.loading") }),
    hint: el("p", { class: "notice", "data-testid": "report-hint", hidden: true }),
    versions: el("ol", { class: "report-versions", "data-testid": "report-versions" }),
    formSlot: el("div", { class: "report-form" }),
    previewStatus: el("p", { class: "status-line", "data-testid": "preview-status" }),
    error: el("p", { class: "error", "data-testid": "report-error", role: "alert", hidden: true }),
    saveButton: el("button", { "data-action": "save-report", hidden: true, text: t("report.save"),
      onclick: () => void editor.run(() => editor.save()) }),
    signButton: el("button", { "data-action": "sign-report", class: "primary", hidden: true, text: t("report.sign"),
      onclick: () => void editor.run(() => editor.sign()) }),
    approveButton: el("button", { "data-action": "approve-report", class: "primary", hidden: true, text: t("report.approve"),
      onclick: () => void editor.run(() => editor.approve()) }),
    addendumButton: el("button", { "data-action": "addendum", hidden: true, text: t("report.addendum"),
      onclick: () => editor.startAddendum() }),
    cancelButton: el("button", { "data-action": "cancel-addendum", hidden: true, text: t("report.cancel_addendum"),
      onclick: () => editor.cancelAddendum() }),
    printLink: el("a", { class: "print-link", "data-testid": "print-link", target: "_blank", rel: "noopener", hidden: true,
      text: t("report.print") }),
  };
  // every action stays hidden until the reports are loaded (renderButtons): a click before then would do nothing
  const buttons = el("div", { class: "report-buttons" }, parts.saveButton, parts.signButton, parts.approveButton,
    parts.addendumButton, parts.cancelButton, parts.printLink);
  const element = el("section", { class: "panel report-editor", "data-testid": "report-editor" },
    el("div", { class: "report-head" }, el("h3", { text: t("report.title") }), parts.kindLabel, kindSelect),
    parts.status, parts.hint, parts.formSlot, parts.previewStatus, buttons, parts.error,
    el("h3", { text: t("report.versions") }), parts.versions);
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
    /** @type {ThyroidSystem|null} the thyroid system of the shown report, or (new) the one the site's preview said */
    this.system = null;
    this.parts = editorParts(this);
    // the editor's words are built in the language of the moment: a new language rebuilds them
    this.stopListening = onLanguageChange(() => this.relabel());
  }

  relabel() {
    const fresh = editorParts(this);
    this.parts.element.replaceWith(fresh.element);
    Object.assign(this.parts, fresh);
    this.render();
  }

  /** @returns {ReportKind|null} */
  get kind() {
    return this.draft?.kind ?? null;
  }

  /** @param {StudyDetail} data */
  async load(data) {
    this.study = data;
    // the console shell loads the reader's catalog at start; until every page does, the editor makes sure of its own
    if (!has("report.title")) await setLanguage(initialLanguage()).catch(() => undefined);
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
    this.system = null; // the site's, from the first preview
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
    this.system = systemOf(report.content);
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
    this.system = systemOf(last.content); // an addendum keeps the system of the report it amends
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
    setText(kindLabel, kindName(kind ?? "free_text"));
    kindLabel.hidden = !kindSelect.hidden;
    setText(status, this.statusText());
    status.dataset.state = mode === "new" ? "new" : current?.state ?? "";
    const wantsLock = (mode === "new" || mode === "draft") && user.role === "expert" && !this.lockHeld;
    hint.hidden = !wantsLock && user.role === "expert";
    setText(hint, user.role !== "expert" ? t("report.read_only") : t("report.claim_to_write"));
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
    if (current) printLink.href = printHref(current.id);
  }

  statusText() {
    const { current, amends } = this;
    if (this.mode === "new") return amends ? t("report.status.new_addendum", { version: amends.version }) : t("report.status.new");
    if (!current) return "";
    const who = personName(current.author.name);
    const v = t(current.amends_id ? "report.version_addendum" : "report.version", { version: current.version });
    if (current.state === "draft") return t("report.status.draft", { version: v, author: who, at: formatDateTime(current.created_at) });
    if (current.state === "preliminary") {
      return t("report.status.preliminary", { version: v, author: who, at: formatDateTime(current.signed_at) });
    }
    const approved = { version: v, author: who, approver: personName(current.approver?.name ?? "?"),
      at: formatDateTime(current.approved_at) };
    if (current.state === "archiving") {
      const failed = current.archiving?.last_error;
      return failed ? t("report.status.archiving_retry", { ...approved, error: failed }) : t("report.status.archiving", approved);
    }
    return t("report.status.final", approved);
  }

  renderVersions() {
    const versions = this.parts.versions;
    versions.replaceChildren(...[...this.reports].reverse().map((r) => el("li", {
      "data-version": r.version, "data-state": r.state, "aria-current": this.current?.id === r.id ? "true" : null },
    el("button", { type: "button", class: "link", "data-action": "show-version", onclick: () => this.show(r),
      text: [t("report.version", { version: r.version }), t(`report.state.${r.state}`),
        ...(r.amends_id ? [t("report.addendum_short")] : []), personName(r.author.name),
        ...(r.approver ? [t("report.approved_by", { approver: personName(r.approver.name) })] : [])].join(" · ") }),
    el("a", { href: printHref(r.id), target: "_blank", rel: "noopener", class: "print-link", text: t("report.print_short") }))));
    if (!this.reports.length) versions.append(el("li", { class: "muted", text: t("report.none_yet") }));
  }

  renderForm() {
    const draft = this.draft;
    if (!draft) return;
    const canEdit = this.editable();
    const shared = { confirmed: draft.confirmed, editable: canEdit, onInput: () => this.schedulePreview() };
    const editor = draft.kind === "thyroid"
      ? thyroidEditor(draft.form, this.system ?? "acr_tirads", shared, () => this.renderForm())
      : draft.kind === "carotid" ? carotidEditor(draft.form, shared) : freeTextEditor(draft.form, canEdit);
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
      // a new report is scored with the study's site's system; a saved one keeps its own (the server knows both)
      const system = kind === "thyroid" && this.system ? { system: this.system } : {};
      const answer = await previewReport(this.api, kind, { ...request.content, ...system },
        this.mode === "new" && !this.amends ? this.studyId : undefined);
      if (token !== this.previewToken || this.destroyed) return;
      const scoredWith = answer.computed?.system;
      if (kind === "thyroid" && (scoredWith === "acr_tirads" || scoredWith === "c_tirads") && scoredWith !== this.system) {
        this.system = scoredWith; // the site's choice: the form shows its words and points
        this.renderForm();
        return;
      }
      request.apply(answer.computed ?? {});
      previewStatus.dataset.state = "ok";
      setText(previewStatus, "");
    } catch (err) {
      if (token !== this.previewToken || this.destroyed) return;
      previewStatus.dataset.state = "error";
      setText(previewStatus, t("report.not_computed", { reason: asError(err).message }));
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
    else throw new Error(t("report.no_kind")); // not reached: the buttons show with a form, and a form has a kind
    this.reports = await listReports(api, this.studyId);
    this.show(saved);
    return saved;
  }

  async save() {
    await this.saveContent();
    setText(this.parts.status, t("report.saved", { status: this.statusText() }));
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
    this.stopListening();
    if (this.previewTimer) clearTimeout(this.previewTimer);
    if (this.archivingTimer) clearTimeout(this.archivingTimer);
  }
}

/**
 * @param {ReportKind} kind
 * @returns {Draft}
 */
function emptyForm(kind) {
  if (kind === "thyroid") return { kind, form: { nodules: [emptyNodule()], comment: "" }, confirmed: [] };
  if (kind === "carotid") return { kind, form: { right: emptySide(), left: emptySide(), comment: "" }, confirmed: [] };
  return { kind, form: freeTextForm(undefined), confirmed: [] };
}

/**
 * @param {ReportKind} kind
 * @param {Record<string, any>} content
 * @returns {Draft}
 */
function formFrom(kind, content) {
  const confirmed = Array.isArray(content?.confirmed_warnings) ? content.confirmed_warnings.map(String) : [];
  if (kind === "thyroid") return { kind, form: thyroidForm(content), confirmed };
  if (kind === "carotid") return { kind, form: carotidForm(content), confirmed };
  return { kind, form: freeTextForm(content), confirmed };
}

/**
 * The thyroid system a stored report used (reports from before the choice: ACR TI-RADS).
 * @param {Record<string, any>|undefined} content
 * @returns {ThyroidSystem}
 */
function systemOf(content) {
  return content?.system === "c_tirads" ? "c_tirads" : "acr_tirads";
}

/**
 * The printable page in the reader's language.
 * @param {string} reportId
 */
function printHref(reportId) {
  return `${printUrl(reportId)}?language=${encodeURIComponent(language())}`;
}
