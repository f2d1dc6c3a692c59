// @ts-check
// The report editor's forms, one per kind: thyroid (per nodule the five ACR TI-RADS categories, the foci, three
// diameters, and the computed points, level and advice), carotid (per side, with the grade and its flags) and free
// text. Each holds its state in the plain `form` object it is given and says what the server's content is.

import {
  CAROTID, CAROTID_NUMBERS, CATEGORY_LABELS, DIAMETERS, SIDES, TIRADS, carotidContent, emptyNodule, parseNumber,
  thyroidContent,
} from "../reports.js";
import { el } from "./dom.js";

/**
 * @typedef {{content: Record<string, any>, apply: (computed: Record<string, any>) => void}} PreviewRequest
 *   what to ask POST /reports/preview, and where its answer goes
 * @typedef {{element: HTMLElement, content: () => Record<string, any>, preview: (() => PreviewRequest|null)|null,
 *   showComputed: (computed: Record<string, any>) => void}} KindEditor
 */

const FLAG_LABELS = /** @type {Record<string, string>} */ ({
  angle_over_60: "Doppler angle > 60°: not graded",
  angle_not_recorded: "Doppler angle not recorded",
  psv_missing: "ICA PSV missing: not graded",
  discordant_ratio: "Ratio discordant",
  discordant_edv: "EDV discordant",
  discordant_plaque: "Plaque discordant",
});

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
 * @param {import("../reports.js").Option[]} options
 * @param {string} value
 * @param {boolean} disabled
 * @param {(value: string) => void} onChange
 */
function choice(name, options, value, disabled, onChange) {
  const select = el("select", { name, disabled },
    el("option", { value: "", text: "— choose —" }),
    options.map(([v, label, points]) => el("option", { value: v,
      text: points === undefined ? label : `${label} (${points})` })));
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

/** @param {string[]} notes */
function noteList(notes) {
  return el("ul", { class: "notes", "data-field": "notes" }, notes.map((n) => el("li", { text: n })));
}

// ---- thyroid -------------------------------------------------------------------------------------------------------

/**
 * @param {import("../reports.js").NoduleInput} n
 * @returns {string[]} what is still missing, in words
 */
function missingOfNodule(n) {
  const missing = [];
  for (const key of /** @type {const} */ (["composition", "echogenicity", "shape", "margin"])) {
    if (!n[key]) missing.push(CATEGORY_LABELS[key].toLowerCase());
  }
  if (!n.echogenic_foci.length) missing.push("echogenic foci");
  for (const [key, label] of DIAMETERS) {
    const value = parseNumber(n[key]);
    if (value === null || value <= 0) missing.push(`${label.toLowerCase()} diameter`);
  }
  return missing;
}

/**
 * @param {{nodules: import("../reports.js").NoduleInput[], comment: string}} form
 * @param {boolean} editable
 * @param {() => void} onInput
 * @param {() => void} rerender
 * @returns {KindEditor}
 */
export function thyroidEditor(form, editable, onInput, rerender) {
  /** @type {HTMLElement[]} */
  const results = [];
  const examNotes = el("div", { class: "exam-notes", "data-testid": "exam-notes" });
  const nodules = form.nodules.map((n, i) => {
    const result = el("div", { class: "nodule-result", "data-testid": "nodule-result" });
    results.push(result);
    const change = () => onInput();
    /** @param {"composition"|"echogenicity"|"shape"|"margin"} key */
    const category = (key) => field(CATEGORY_LABELS[key],
      choice(key, TIRADS[key], n[key], !editable, (v) => { n[key] = v; change(); }));
    const foci = TIRADS.echogenic_foci.map(([value, label, points]) => {
      const box = el("input", { type: "checkbox", name: "echogenic_foci", value, disabled: !editable });
      box.checked = n.echogenic_foci.includes(value);
      box.addEventListener("change", () => {
        // "none" and the foci exclude each other
        if (box.checked && value === "none_or_comet_tail") n.echogenic_foci = [value];
        else if (box.checked) n.echogenic_foci = [...n.echogenic_foci.filter((f) => f !== "none_or_comet_tail"), value];
        else n.echogenic_foci = n.echogenic_foci.filter((f) => f !== value);
        for (const other of focusBoxes) other.checked = n.echogenic_foci.includes(other.value);
        change();
      });
      return { box, label: el("label", { class: "check" }, box, el("span", { text: `${label} (${points})` })) };
    });
    const focusBoxes = foci.map((f) => f.box);
    const location = el("input", { name: "location", maxlength: 64, disabled: !editable, placeholder: "e.g. right lobe, mid" });
    location.value = n.location;
    location.addEventListener("input", () => { n.location = location.value; change(); });
    return el("fieldset", { class: "nodule", "data-nodule": i },
      el("legend", {}, `Nodule ${i + 1}`, editable ? el("button", { type: "button", class: "link", "data-action": "remove-nodule",
        text: "remove", onclick: () => { form.nodules.splice(i, 1); rerender(); } }) : null),
      field("Location", location),
      el("div", { class: "grid-2" }, category("composition"), category("echogenicity"), category("shape"), category("margin")),
      el("fieldset", { class: "foci" }, el("legend", { text: CATEGORY_LABELS.echogenic_foci }), foci.map((f) => f.label)),
      el("div", { class: "grid-3" }, DIAMETERS.map(([key, label]) => field(`${label} (mm)`,
        numberInput(key, n[key], !editable, (v) => { n[key] = v; change(); })))),
      result);
  });
  const comment = el("textarea", { name: "comment", rows: 2, disabled: !editable });
  comment.value = form.comment;
  comment.addEventListener("input", () => { form.comment = comment.value; onInput(); });
  const element = el("div", { class: "thyroid-form", "data-kind": "thyroid" }, nodules,
    editable ? el("button", { type: "button", "data-action": "add-nodule", text: "Add nodule",
      onclick: () => { form.nodules.push(emptyNodule()); rerender(); } }) : null,
    field("Comment", comment), examNotes);

  /**
   * @param {Record<string, any>} computed
   * @param {number[]} indexOfSent the form index of each nodule sent (computed `number` is 1 + its position)
   */
  function apply(computed, indexOfSent) {
    const scored = Array.isArray(computed.nodules) ? computed.nodules : [];
    results.forEach((result, i) => {
      const missing = missingOfNodule(form.nodules[i]);
      const score = scored.find((/** @type {any} */ s) => indexOfSent[s.number - 1] === i);
      if (score) result.replaceChildren(...noduleResult(score));
      else if (missing.length && editable) {
        result.replaceChildren(el("span", { class: "muted", "data-field": "incomplete",
          text: `To score: ${missing.join(", ")}` }));
      } else {
        result.replaceChildren(el("span", { class: "muted", "data-field": "not-reported",
          text: indexOfSent.includes(i) ? "Not among the four reported nodules" : "—" }));
      }
      result.dataset.level = score?.level ?? "";
    });
    const notes = Array.isArray(computed.notes) ? computed.notes : [];
    examNotes.replaceChildren(...(notes.length ? [noteList(notes)] : []));
  }

  return {
    element,
    content: () => thyroidContent(form),
    preview: () => {
      // only complete nodules are scored live; the others say what they still need
      const indexOfSent = form.nodules.flatMap((n, i) => (missingOfNodule(n).length ? [] : [i]));
      const content = thyroidContent({ nodules: indexOfSent.map((i) => form.nodules[i]), comment: form.comment });
      return { content, apply: (computed) => apply(computed, indexOfSent) };
    },
    showComputed: (computed) => apply(computed, form.nodules.map((_, i) => i)),
  };
}

/** @param {any} score one nodule of the computed thyroid result */
function noduleResult(score) {
  const p = score.points ?? {};
  const advice = score.fna_recommended ? "FNA recommended"
    : score.follow_up_recommended ? `Follow-up: ${score.follow_up_schedule}` : "No FNA, no follow-up";
  return [
    el("div", { class: "score-line" },
      el("span", { class: "tr-level", "data-field": "level", "data-level": score.level, text: score.level }),
      el("span", { "data-field": "level-label", text: score.level_label }),
      el("span", { "data-field": "total", text: `${score.total} point${score.total === 1 ? "" : "s"}` })),
    el("div", { class: "muted small", "data-field": "points",
      text: `composition ${p.composition} · echogenicity ${p.echogenicity} · shape ${p.shape} · ` +
        `margin ${p.margin} · foci ${p.echogenic_foci}` }),
    el("div", { class: score.fna_recommended ? "advice fna" : "advice", "data-field": "advice", text: advice }),
    noteList(Array.isArray(score.notes) ? score.notes : []),
  ];
}

// ---- carotid -------------------------------------------------------------------------------------------------------

/**
 * @param {{right: import("../reports.js").SideInput, left: import("../reports.js").SideInput, comment: string}} form
 * @param {boolean} editable
 * @param {() => void} onInput
 * @returns {KindEditor}
 */
export function carotidEditor(form, editable, onInput) {
  /** @type {Record<string, HTMLElement>} */
  const results = {};
  const sides = SIDES.map(([name, label]) => {
    const side = form[name];
    const result = el("div", { class: "side-result", "data-testid": "side-result" });
    results[name] = result;
    const examined = el("input", { type: "checkbox", name: "examined", disabled: !editable });
    examined.checked = side.examined;
    const body = el("div", { class: "side-body" },
      el("div", { class: "grid-3" },
        field("Plaque", choice("plaque", CAROTID.plaque, side.plaque, !editable, (v) => { side.plaque = v; onInput(); })),
        field("ICA flow", choice("flow", CAROTID.flow, side.flow, !editable, (v) => { side.flow = v; onInput(); })),
        field("Vertebral", choice("vertebral_flow", CAROTID.vertebral_flow, side.vertebral_flow, !editable,
          (v) => { side.vertebral_flow = v; onInput(); }))),
      el("div", { class: "grid-4" }, CAROTID_NUMBERS.map(([key, text, unit]) => field(unit ? `${text} (${unit})` : text,
        numberInput(key, side[key], !editable, (v) => { side[key] = v; onInput(); })))),
      result);
    body.hidden = !side.examined;
    examined.addEventListener("change", () => {
      side.examined = examined.checked;
      body.hidden = !examined.checked;
      onInput();
    });
    return el("fieldset", { class: "carotid-side", "data-side": name },
      el("legend", {}, el("label", { class: "check" }, examined, el("span", { text: label }))), body);
  });
  const comment = el("textarea", { name: "comment", rows: 2, disabled: !editable });
  comment.value = form.comment;
  comment.addEventListener("input", () => { form.comment = comment.value; onInput(); });
  const element = el("div", { class: "carotid-form", "data-kind": "carotid" }, sides, field("Comment", comment));

  /** @param {Record<string, any>} computed */
  function apply(computed) {
    const graded = Array.isArray(computed.sides) ? computed.sides : [];
    for (const [name] of SIDES) {
      const grade = graded.find((/** @type {any} */ g) => g.side === name);
      const result = results[name];
      if (!grade) {
        const side = form[name];
        result.replaceChildren(el("span", { class: "muted", "data-field": "incomplete",
          text: side.examined && editable ? "To grade: choose plaque and ICA flow" : "—" }));
        result.dataset.grade = "";
        continue;
      }
      const flags = Array.isArray(grade.flags) ? grade.flags : [];
      result.dataset.grade = grade.grade;
      result.replaceChildren(
        el("div", { class: "score-line" },
          el("span", { class: `grade grade-${grade.grade}`, "data-field": "grade", "data-grade": grade.grade,
            text: grade.grade_label }),
          grade.ratio !== null && grade.ratio !== undefined
            ? el("span", { "data-field": "ratio", text: `ratio ${grade.ratio}` }) : null,
          grade.imt_class ? el("span", { "data-field": "imt", text: `IMT ${grade.imt_class}` }) : null),
        el("div", { class: "flags", hidden: !flags.length }, flags.map((/** @type {string} */ f) =>
          el("span", { class: `flag flag-${f}`, "data-flag": f, text: FLAG_LABELS[f] ?? f }))),
        noteList(Array.isArray(grade.notes) ? grade.notes : []));
    }
  }

  return {
    element,
    content: () => carotidContent(form),
    preview: () => {
      // only sides with plaque and flow chosen are graded live; the others say what they still need
      /** @param {import("../reports.js").SideInput} side */
      const ready = (side) => ({ ...side, examined: side.examined && Boolean(side.plaque && side.flow) });
      const partial = { right: ready(form.right), left: ready(form.left), comment: form.comment };
      if (!partial.right.examined && !partial.left.examined) {
        apply({ sides: [] });
        return null;
      }
      return { content: carotidContent(partial), apply };
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
      field("Findings", findings), field("Impression", impression)),
    content: () => ({ findings: form.findings, impression: form.impression }),
    preview: null,
    showComputed: () => {},
  };
}
