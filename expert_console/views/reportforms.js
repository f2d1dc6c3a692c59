// @ts-check
// The report editor's forms, one per kind: thyroid (per nodule the five categories, the foci, three diameters, and
// the computed points, level and advice, in the site's system: ACR TI-RADS or C-TIRADS), carotid (per side, with
// the grade and its flags) and free text. Each holds its state in the plain `form` object it is given and says what
// the server's content is. Every word comes from the catalogs: `report.*` for the form, `clinical.*` for the
// rules' words and the coded notes, flags and warnings the server computes (signaling_server/reports/wording.py).

import {
  CAROTID, CAROTID_NUMBERS, DIAMETERS, SIDES, TIRADS, carotidContent, emptyNodule, parseNumber, thyroidContent,
} from "../reports.js";
import { formatNumber, t } from "../i18n.js";
import { el } from "./dom.js";

/**
 * @typedef {{content: Record<string, any>, apply: (computed: Record<string, any>) => void}} PreviewRequest
 *   what to ask POST /reports/preview, and where its answer goes
 * @typedef {{element: HTMLElement, content: () => Record<string, any>, preview: (() => PreviewRequest|null)|null,
 *   showComputed: (computed: Record<string, any>) => void}} KindEditor
 * @typedef {{code: string, params?: Record<string, string>}} Message a coded note of the rules
 * @typedef {{id: string, code: string, params?: Record<string, string>, confirmed: boolean}} Warning
 *   a likely slip the reader confirms before signing
 * @typedef {"acr_tirads"|"c_tirads"} ThyroidSystem
 * @typedef {{confirmed: string[], editable: boolean, onInput: () => void}} Shared what every structured form shares:
 *   the warning ids the reader confirmed (sent as `confirmed_warnings`), whether it is editable, and what a change calls
 */

/**
 * A coded message of the rules in the reader's language; a `<name>_term` parameter is a clinical word to translate.
 * @param {Message} message
 */
export function clinicalText(message) {
  /** @type {Record<string, string>} */
  const params = {};
  for (const [name, value] of Object.entries(message.params ?? {})) {
    if (name.endsWith("_term")) params[name.slice(0, -5)] = t(`clinical.${value}`);
    else params[name] = value;
  }
  const count = Number(params.count);
  return t(`clinical.${message.code}`, Number.isInteger(count) ? { ...params, count } : params);
}

// ---- form pieces ---------------------------------------------------------------------------------------------------

/**
 * @param {string} label
 * @param {HTMLElement} control
 */
function field(label, control) {
  return el("label", { class: "field" }, el("span", { text: label }), control);
}

/**
 * @param {string} name
 * @param {{value: string, text: string}[]} options
 * @param {string} value
 * @param {boolean} disabled
 * @param {(value: string) => void} onChange
 */
function choice(name, options, value, disabled, onChange) {
  const select = el("select", { name, disabled },
    el("option", { value: "", text: t("report.choose") }),
    options.map((o) => el("option", { value: o.value, text: o.text })));
  select.value = value;
  select.addEventListener("change", () => onChange(select.value));
  return select;
}

/**
 * @param {string} name
 * @param {string} value
 * @param {boolean} disabled
 * @param {(value: string) => void} onChange
 */
function numberInput(name, value, disabled, onChange) {
  const input = el("input", { name, type: "number", step: "any", min: 0, inputmode: "decimal", disabled, class: "short" });
  input.value = value;
  input.addEventListener("input", () => onChange(input.value));
  return input;
}

/** @param {any} result a computed nodule or side: its coded `messages` */
function noteList(result) {
  const messages = Array.isArray(result?.messages) ? result.messages : [];
  return el("ul", { class: "notes", "data-field": "notes" },
    messages.map((/** @type {Message} */ m) => el("li", { "data-code": m.code, text: clinicalText(m) })));
}

/** @param {string[]} flags */
function flagList(flags) {
  return el("div", { class: "flags", hidden: !flags.length }, flags.map((f) =>
    el("span", { class: `flag flag-${f}`, "data-flag": f, text: t(`clinical.flag.${f}`) })));
}

/**
 * The warnings of the whole report, each with the box that confirms it (a confirmed id is sent back to the server).
 * @param {HTMLElement} box
 * @param {Shared} shared
 * @param {Record<string, any>} computed
 */
function showWarnings(box, shared, computed) {
  const warnings = /** @type {Warning[]} */ (Array.isArray(computed.warnings) ? computed.warnings : []);
  box.hidden = !warnings.length;
  box.replaceChildren(...(warnings.length ? [el("p", { class: "muted small", text: t("report.warnings.title") })] : []),
    ...warnings.map((w) => {
      const confirm = el("input", { type: "checkbox", name: "confirm-warning", value: w.id, disabled: !shared.editable });
      confirm.checked = shared.confirmed.includes(w.id);
      confirm.addEventListener("change", () => {
        const others = shared.confirmed.filter((id) => id !== w.id);
        shared.confirmed.splice(0, shared.confirmed.length, ...(confirm.checked ? [...others, w.id] : others));
        shared.onInput();
      });
      return el("div", { class: "warning", "data-warning": w.id, "data-confirmed": String(confirm.checked) },
        el("span", { class: "flag", text: clinicalText(w) }),
        el("label", { class: "check" }, confirm, el("span", { text: t("report.warnings.confirm") })));
    }));
}

// ---- thyroid -------------------------------------------------------------------------------------------------------

const CATEGORIES = /** @type {const} */ (["composition", "echogenicity", "shape", "margin"]);

/**
 * The choices of a category in the system's words: ACR shows each choice's points, C-TIRADS counts features.
 * @param {keyof typeof TIRADS} category
 * @param {ThyroidSystem} system
 */
function tiradsOptions(category, system) {
  return TIRADS[category].map(([value, , points]) => {
    const key = system === "c_tirads" && value === "none_or_comet_tail" ? `${value}.c_tirads` : value;
    const text = t(`clinical.choice.${category}.${key}`);
    return { value, text: system === "acr_tirads" ? t("report.choice_points", { choice: text, points: points ?? 0 }) : text };
  });
}

/**
 * @param {string} category
 * @param {ThyroidSystem} system
 */
function categoryLabel(category, system) {
  return t(system === "c_tirads" && category === "shape" ? "clinical.category.shape.c_tirads" : `clinical.category.${category}`);
}

/**
 * @param {import("../reports.js").NoduleInput} n
 * @param {ThyroidSystem} system
 * @returns {string[]} what is still missing, in words
 */
function missingOfNodule(n, system) {
  const missing = [];
  for (const key of CATEGORIES) if (!n[key]) missing.push(categoryLabel(key, system));
  if (!n.echogenic_foci.length) missing.push(categoryLabel("echogenic_foci", system));
  for (const [key] of DIAMETERS) {
    const value = parseNumber(n[key]);
    if (value === null || value <= 0) missing.push(t(`report.diameter.${key}`));
  }
  return missing;
}

/**
 * @param {{nodules: import("../reports.js").NoduleInput[], comment: string}} form
 * @param {ThyroidSystem} system the site's system (a new report) or the one the report was scored with
 * @param {Shared} shared
 * @param {() => void} rerender
 * @returns {KindEditor}
 */
export function thyroidEditor(form, system, shared, rerender) {
  const { editable, onInput } = shared;
  /** @type {HTMLElement[]} */
  const results = [];
  const examNotes = el("div", { class: "exam-notes", "data-testid": "exam-notes" });
  const warnings = el("div", { class: "report-warnings", "data-testid": "report-warnings", hidden: true });
  const nodules = form.nodules.map((n, i) => {
    const result = el("div", { class: "nodule-result", "data-testid": "nodule-result" });
    results.push(result);
    /** @param {"composition"|"echogenicity"|"shape"|"margin"} key */
    const category = (key) => field(categoryLabel(key, system),
      choice(key, tiradsOptions(key, system), n[key], !editable, (v) => { n[key] = v; onInput(); }));
    const foci = tiradsOptions("echogenic_foci", system).map(({ value, text }) => {
      const box = el("input", { type: "checkbox", name: "echogenic_foci", value, disabled: !editable });
      box.checked = n.echogenic_foci.includes(value);
      box.addEventListener("change", () => {
        // "none" and the foci exclude each other
        if (box.checked && value === "none_or_comet_tail") n.echogenic_foci = [value];
        else if (box.checked) n.echogenic_foci = [...n.echogenic_foci.filter((f) => f !== "none_or_comet_tail"), value];
        else n.echogenic_foci = n.echogenic_foci.filter((f) => f !== value);
        for (const other of focusBoxes) other.checked = n.echogenic_foci.includes(other.value);
        onInput();
      });
      return { box, label: el("label", { class: "check" }, box, el("span", { text })) };
    });
    const focusBoxes = foci.map((f) => f.box);
    const location = el("input", { name: "location", maxlength: 64, disabled: !editable,
      placeholder: t("report.location_placeholder") });
    location.value = n.location;
    location.addEventListener("input", () => { n.location = location.value; onInput(); });
    return el("fieldset", { class: "nodule", "data-nodule": i },
      el("legend", {}, t("report.nodule", { number: i + 1 }), editable ? el("button", { type: "button", class: "link",
        "data-action": "remove-nodule", text: t("report.remove_nodule"),
        onclick: () => { form.nodules.splice(i, 1); rerender(); } }) : null),
      field(t("report.location"), location),
      el("div", { class: "grid-2" }, category("composition"), category("echogenicity"), category("shape"), category("margin")),
      el("fieldset", { class: "foci" }, el("legend", { text: categoryLabel("echogenic_foci", system) }), foci.map((f) => f.label)),
      el("div", { class: "grid-3" }, DIAMETERS.map(([key]) => field(t("report.diameter_mm", { name: t(`report.diameter.${key}`) }),
        numberInput(key, n[key], !editable, (v) => { n[key] = v; onInput(); })))),
      result);
  });
  const comment = el("textarea", { name: "comment", rows: 2, disabled: !editable });
  comment.value = form.comment;
  comment.addEventListener("input", () => { form.comment = comment.value; onInput(); });
  const element = el("div", { class: "thyroid-form", "data-kind": "thyroid", "data-system": system },
    el("p", { class: "report-system", "data-testid": "thyroid-system", "data-system": system,
      text: t("report.system", { system: t(`clinical.system.${system}`) }) }),
    nodules,
    editable ? el("button", { type: "button", "data-action": "add-nodule", text: t("report.add_nodule"),
      onclick: () => { form.nodules.push(emptyNodule()); rerender(); } }) : null,
    field(t("report.comment"), comment), warnings, examNotes);

  /**
   * @param {Record<string, any>} computed
   * @param {number[]} indexOfSent the form index of each nodule sent (computed `number` is 1 + its position)
   */
  function apply(computed, indexOfSent) {
    const scored = Array.isArray(computed.nodules) ? computed.nodules : [];
    results.forEach((result, i) => {
      const missing = missingOfNodule(form.nodules[i], system);
      const score = scored.find((/** @type {any} */ s) => indexOfSent[s.number - 1] === i);
      if (score) result.replaceChildren(...noduleResult(score));
      else if (missing.length && editable) {
        result.replaceChildren(el("span", { class: "muted", "data-field": "incomplete",
          text: t("report.to_score", { missing: missing.join(t("report.list_separator")) }) }));
      } else {
        result.replaceChildren(el("span", { class: "muted", "data-field": "not-reported",
          text: indexOfSent.includes(i) ? t("report.not_reported") : t("report.dash") }));
      }
      result.dataset.level = score?.level ?? "";
    });
    examNotes.replaceChildren(noteList(computed));
    // the warnings name nodules by their number among those sent: only a complete form's are the saved ones
    showWarnings(warnings, shared, indexOfSent.length === form.nodules.length ? computed : {});
  }

  return {
    element,
    content: () => ({ ...thyroidContent(form), confirmed_warnings: [...shared.confirmed] }),
    preview: () => {
      // only complete nodules are scored live; the others say what they still need
      const indexOfSent = form.nodules.flatMap((n, i) => (missingOfNodule(n, system).length ? [] : [i]));
      const sent = thyroidContent({ nodules: indexOfSent.map((i) => form.nodules[i]), comment: form.comment });
      const content = { ...sent, confirmed_warnings: [...shared.confirmed] };
      return { content, apply: (computed) => apply(computed, indexOfSent) };
    },
    showComputed: (computed) => apply(computed, form.nodules.map((_, i) => i)),
  };
}

/** @param {any} score one nodule of the computed thyroid result */
function noduleResult(score) {
  const p = score.points ?? {};
  const schedule = score.schedule ? clinicalText(score.schedule) : "";
  const advice = score.fna_recommended ? t("clinical.recommendation.fna")
    : score.follow_up_recommended ? t("clinical.recommendation.follow_up", { schedule }) : t("clinical.recommendation.none");
  const system = /** @type {ThyroidSystem} */ (score.system === "c_tirads" ? "c_tirads" : "acr_tirads");
  const points = CATEGORIES.map((c) => t("report.points_in", { category: categoryLabel(c, system), points: p[c] ?? 0 }))
    .concat(t("report.points_in", { category: categoryLabel("echogenic_foci", system), points: p.echogenic_foci ?? 0 }));
  return [
    el("div", { class: "score-line" },
      el("span", { class: "tr-level", "data-field": "level", "data-level": score.level, text: score.level }),
      el("span", { "data-field": "level-label", text: t(`clinical.level.${score.level}`) }),
      el("span", { "data-field": "total", text: t("clinical.points", { count: score.total }) })),
    el("div", { class: "muted small", "data-field": "points", text: points.join(" · ") }),
    flagList(Array.isArray(score.flags) ? score.flags : []),
    el("div", { class: score.fna_recommended ? "advice fna" : "advice", "data-field": "advice", text: advice }),
    noteList(score),
  ];
}

// ---- carotid -------------------------------------------------------------------------------------------------------

/** @param {string} key one of CAROTID_NUMBERS */
function numberLabel(key) {
  const unit = CAROTID_NUMBERS.find(([k]) => k === key)?.[2] ?? "";
  const name = t(`report.carotid.${key}`);
  return unit ? t("report.with_unit", { name, unit }) : name;
}

/**
 * @param {{right: import("../reports.js").SideInput, left: import("../reports.js").SideInput, comment: string}} form
 * @param {Shared} shared
 * @returns {KindEditor}
 */
export function carotidEditor(form, shared) {
  const { editable, onInput } = shared;
  /** @type {Record<string, HTMLElement>} */
  const results = {};
  /** @param {"plaque"|"flow"|"vertebral_flow"} key */
  const options = (key) => CAROTID[key].map(([value]) => ({
    value, text: t(`clinical.${key === "vertebral_flow" ? "vertebral" : key}.${value}`) }));
  const sides = SIDES.map(([name]) => {
    const side = form[name];
    const result = el("div", { class: "side-result", "data-testid": "side-result" });
    results[name] = result;
    const examined = el("input", { type: "checkbox", name: "examined", disabled: !editable });
    examined.checked = side.examined;
    const body = el("div", { class: "side-body" },
      el("div", { class: "grid-3" },
        field(t("report.carotid.plaque"), choice("plaque", options("plaque"), side.plaque, !editable,
          (v) => { side.plaque = v; onInput(); })),
        field(t("report.carotid.flow"), choice("flow", options("flow"), side.flow, !editable,
          (v) => { side.flow = v; onInput(); })),
        field(t("report.carotid.vertebral_flow"), choice("vertebral_flow", options("vertebral_flow"), side.vertebral_flow,
          !editable, (v) => { side.vertebral_flow = v; onInput(); }))),
      el("div", { class: "grid-4" }, CAROTID_NUMBERS.map(([key]) => field(numberLabel(key),
        numberInput(key, side[key], !editable, (v) => { side[key] = v; onInput(); })))),
      result);
    body.hidden = !side.examined;
    examined.addEventListener("change", () => {
      side.examined = examined.checked;
      body.hidden = !examined.checked;
      onInput();
    });
    return el("fieldset", { class: "carotid-side", "data-side": name },
      el("legend", {}, el("label", { class: "check" }, examined,
        el("span", { text: t("report.carotid.side", { side: t(`clinical.side.${name}`) }) }))), body);
  });
  const comment = el("textarea", { name: "comment", rows: 2, disabled: !editable });
  comment.value = form.comment;
  comment.addEventListener("input", () => { form.comment = comment.value; onInput(); });
  const warnings = el("div", { class: "report-warnings", "data-testid": "report-warnings", hidden: true });
  const element = el("div", { class: "carotid-form", "data-kind": "carotid" }, sides, field(t("report.comment"), comment),
    warnings);

  /** @param {Record<string, any>} computed */
  function apply(computed) {
    const graded = Array.isArray(computed.sides) ? computed.sides : [];
    for (const [name] of SIDES) {
      const grade = graded.find((/** @type {any} */ g) => g.side === name);
      const result = results[name];
      if (!grade) {
        const side = form[name];
        result.replaceChildren(el("span", { class: "muted", "data-field": "incomplete",
          text: side.examined && editable ? t("report.carotid.to_grade") : t("report.dash") }));
        result.dataset.grade = "";
        continue;
      }
      result.dataset.grade = grade.grade;
      const ratio = typeof grade.ratio_text === "string" ? grade.ratio_text
        : typeof grade.ratio === "number" ? formatNumber(grade.ratio) : null;
      result.replaceChildren(
        el("div", { class: "score-line" },
          el("span", { class: `grade grade-${grade.grade}`, "data-field": "grade", "data-grade": grade.grade,
            text: t(`clinical.grade.${grade.grade}`) }),
          ratio !== null ? el("span", { "data-field": "ratio", text: t("report.carotid.ratio_value", { ratio }) }) : null,
          grade.imt_class ? el("span", { "data-field": "imt",
            text: t("report.carotid.imt_value", { imt: t(`clinical.imt_class.${grade.imt_class}`) }) }) : null),
        flagList(Array.isArray(grade.flags) ? grade.flags : []),
        noteList(grade));
    }
    showWarnings(warnings, shared, computed);
  }

  return {
    element,
    content: () => ({ ...carotidContent(form), confirmed_warnings: [...shared.confirmed] }),
    preview: () => {
      // only sides with plaque and flow chosen are graded live; the others say what they still need
      /** @param {import("../reports.js").SideInput} side */
      const ready = (side) => ({ ...side, examined: side.examined && Boolean(side.plaque && side.flow) });
      const partial = { right: ready(form.right), left: ready(form.left), comment: form.comment };
      if (!partial.right.examined && !partial.left.examined) {
        apply({ sides: [] });
        return null;
      }
      return { content: { ...carotidContent(partial), confirmed_warnings: [...shared.confirmed] }, apply };
    },
    showComputed: apply,
  };
}

// ---- free text -----------------------------------------------------------------------------------------------------

/**
 * @param {{findings: string, impression: string}} form
 * @param {boolean} editable
 * @returns {KindEditor}
 */
export function freeTextEditor(form, editable) {
  const findings = el("textarea", { name: "findings", rows: 8, disabled: !editable });
  findings.value = form.findings;
  findings.addEventListener("input", () => { form.findings = findings.value; });
  const impression = el("textarea", { name: "impression", rows: 3, disabled: !editable });
  impression.value = form.impression;
  impression.addEventListener("input", () => { form.impression = impression.value; });
  return {
    element: el("div", { class: "free-text-form", "data-kind": "free_text" },
      field(t("report.findings"), findings), field(t("report.impression"), impression)),
    content: () => ({ findings: form.findings, impression: form.impression }),
    preview: null,
    showComputed: () => {},
  };
}
