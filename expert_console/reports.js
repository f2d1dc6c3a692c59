// @ts-check
// Reports over /api/v1 (PROTOCOL.md §5): versions, draft, edit, preview, sign, approve, addenda, print; and the
// pure pieces of the editor: which kind a study takes, the choices of the structured forms (the values of
// signaling_server/reports/tirads.py and carotid.py), and turning form input into the server's content. No DOM.

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {"free_text"|"thyroid"|"carotid"} ReportKind
 * @typedef {"draft"|"preliminary"|"archiving"|"final"} ReportState archiving: approved, its SR not stored yet
 * @typedef {{attempts: number, last_error: string|null, next_attempt_at: string|null}} Archiving
 * @typedef {{id: string, study_id: string, version: number, kind: ReportKind, state: ReportState,
 *   content: Record<string, any>, computed: Record<string, any>, author: {id: string, name: string},
 *   created_at: string, signed_at: string|null, approver: {id: string, name: string}|null,
 *   approved_at: string|null, amends_id: string|null, sr_sop_uid: string|null,
 *   archiving: Archiving|null}} Report
 * @typedef {[value: string, label: string, points?: number]} Option
 */

const id = encodeURIComponent;

export const KINDS = /** @type {const} */ ([
  ["free_text", "Free text"],
  ["thyroid", "Thyroid (ACR TI-RADS)"],
  ["carotid", "Carotid (SRU)"],
]);

// ---- calls -------------------------------------------------------------------------------------------------

/**
 * @param {Api} api
 * @param {string} studyId
 * @returns {Promise<Report[]>} oldest version first
 */
export async function listReports(api, studyId) {
  const data = await api.request("GET", `/studies/${id(studyId)}/reports`);
  return data.reports;
}

/**
 * A new draft (the lock holder, study matched).
 * @param {Api} api
 * @param {string} studyId
 * @param {ReportKind} kind
 * @param {Record<string, any>} content
 * @returns {Promise<Report>}
 */
export function createReport(api, studyId, kind, content) {
  return api.request("POST", `/studies/${id(studyId)}/reports`, { kind, content });
}

/**
 * @param {Api} api
 * @param {string} reportId
 * @param {Record<string, any>} content
 * @returns {Promise<Report>}
 */
export function editReport(api, reportId, content) {
  return api.request("PUT", `/reports/${id(reportId)}`, { content });
}

/**
 * What the rules make of `content`, nothing saved; 400 `invalid_request` names the first missing or bad field.
 * With `studyId`, a thyroid report is scored with the study's site's system (ACR TI-RADS or C-TIRADS).
 * @param {Api} api
 * @param {ReportKind} kind
 * @param {Record<string, any>} content
 * @param {string} [studyId]
 * @returns {Promise<{computed: Record<string, any>, content: Record<string, any>}>}
 */
export function previewReport(api, kind, content, studyId) {
  return api.request("POST", "/reports/preview", studyId ? { kind, content, study_id: studyId } : { kind, content });
}

/**
 * Draft → preliminary (its author, holding the lock; the lock is released).
 * @param {Api} api
 * @param {string} reportId
 * @returns {Promise<Report>}
 */
export function signReport(api, reportId) {
  return api.request("POST", `/reports/${id(reportId)}/sign`);
}

/**
 * Preliminary → archiving → final (an expert other than the author): the answer is the final report when its SR
 * was stored at once (200), else the archiving one (202) that the server finishes by itself.
 * @param {Api} api
 * @param {string} reportId
 * @returns {Promise<Report>}
 */
export function approveReport(api, reportId) {
  return api.request("POST", `/reports/${id(reportId)}/approve`);
}

/**
 * A new draft amending the newest final report.
 * @param {Api} api
 * @param {string} reportId the final report it corrects
 * @param {Record<string, any>} content
 * @returns {Promise<Report>}
 */
export function addAddendum(api, reportId, content) {
  return api.request("POST", `/reports/${id(reportId)}/addenda`, { content });
}

/**
 * @param {string} reportId
 * @param {string} [base]
 */
export function printUrl(reportId, base = "/api/v1") {
  return `${base}/reports/${id(reportId)}/print`;
}

// ---- which kind ----------------------------------------------------------------------------------------------

/**
 * The report kind a study takes by default: ultrasound by its consultation's exam type (thyroid or carotid),
 * everything else free text. Null for ultrasound without a known exam type: the reader chooses.
 * @param {string} modality
 * @param {string|null|undefined} examType
 * @returns {ReportKind|null}
 */
export function defaultKind(modality, examType) {
  if (modality !== "US") return "free_text";
  if (examType === "thyroid" || examType === "carotid") return examType;
  return null;
}

/**
 * The newest version, or null.
 * @param {Report[]} reports
 */
export function latest(reports) {
  return reports.reduce((/** @type {Report|null} */ best, r) => (!best || r.version > best.version ? r : best), null);
}

// ---- thyroid (ACR TI-RADS) -----------------------------------------------------------------------------------

/** The five categories: the choices and their points (CLINICAL.md §1). */
export const TIRADS = {
  composition: /** @type {Option[]} */ ([
    ["cystic", "Cystic or almost completely cystic", 0],
    ["spongiform", "Spongiform", 0],
    ["mixed_cystic_solid", "Mixed cystic and solid", 1],
    ["solid", "Solid or almost completely solid", 2],
    ["cannot_determine", "Cannot be determined (calcification)", 2],
  ]),
  echogenicity: /** @type {Option[]} */ ([
    ["anechoic", "Anechoic", 0],
    ["hyper_or_isoechoic", "Hyperechoic or isoechoic", 1],
    ["hypoechoic", "Hypoechoic", 2],
    ["very_hypoechoic", "Very hypoechoic", 3],
    ["cannot_determine", "Cannot be determined", 1],
  ]),
  shape: /** @type {Option[]} */ ([
    ["wider_than_tall", "Wider-than-tall", 0],
    ["taller_than_wide", "Taller-than-wide", 3],
  ]),
  margin: /** @type {Option[]} */ ([
    ["smooth", "Smooth", 0],
    ["ill_defined", "Ill-defined", 0],
    ["lobulated_or_irregular", "Lobulated or irregular", 2],
    ["extrathyroidal_extension", "Extra-thyroidal extension", 3],
    ["cannot_determine", "Cannot be determined", 0],
  ]),
  echogenic_foci: /** @type {Option[]} */ ([
    ["none_or_comet_tail", "None or large comet-tail", 0],
    ["comet_tail", "Large comet-tail artefacts", 0],
    ["macrocalcifications", "Macrocalcifications", 1],
    ["peripheral_calcifications", "Peripheral (rim) calcifications", 2],
    ["punctate_echogenic_foci", "Punctate echogenic foci", 3],
  ]),
};
export const CATEGORY_LABELS = /** @type {const} */ ({
  composition: "Composition",
  echogenicity: "Echogenicity",
  shape: "Shape",
  margin: "Margin",
  echogenic_foci: "Echogenic foci",
});
export const DIAMETERS = /** @type {const} */ ([
  ["max_axial_mm", "Max. axial"],
  ["perpendicular_axial_mm", "Perp. axial"],
  ["craniocaudal_mm", "Craniocaudal"],
]);

/**
 * @typedef {{location: string, composition: string, echogenicity: string, shape: string, margin: string,
 *   echogenic_foci: string[], max_axial_mm: string, perpendicular_axial_mm: string, craniocaudal_mm: string}} NoduleInput
 *   what the form holds (text as typed; "" = not chosen)
 */

/** @returns {NoduleInput} */
export function emptyNodule() {
  return {
    location: "", composition: "", echogenicity: "", shape: "", margin: "", echogenic_foci: [],
    max_axial_mm: "", perpendicular_axial_mm: "", craniocaudal_mm: "",
  };
}

/**
 * The thyroid content for the server: unchosen fields left out (the server names what is missing), numbers parsed.
 * @param {{nodules: NoduleInput[], comment: string}} form
 */
export function thyroidContent(form) {
  return {
    nodules: form.nodules.map((n) => {
      /** @type {Record<string, any>} */
      const out = { echogenic_foci: [...n.echogenic_foci] };
      if (n.location.trim()) out.location = n.location.trim();
      for (const key of ["composition", "echogenicity", "shape", "margin"]) {
        const value = /** @type {any} */ (n)[key];
        if (value) out[key] = value;
      }
      for (const [key] of DIAMETERS) {
        const value = parseNumber(n[key]);
        if (value !== null) out[key] = value;
      }
      return out;
    }),
    comment: form.comment,
  };
}

/**
 * The form from stored thyroid content.
 * @param {Record<string, any>|undefined} content
 * @returns {{nodules: NoduleInput[], comment: string}}
 */
export function thyroidForm(content) {
  const nodules = Array.isArray(content?.nodules) ? content.nodules : [];
  return {
    nodules: nodules.map((/** @type {any} */ n) => ({
      ...emptyNodule(),
      location: String(n.location ?? ""),
      composition: String(n.composition ?? ""),
      echogenicity: String(n.echogenicity ?? ""),
      shape: String(n.shape ?? ""),
      margin: String(n.margin ?? ""),
      echogenic_foci: Array.isArray(n.echogenic_foci) ? n.echogenic_foci.map(String) : [],
      max_axial_mm: numberText(n.max_axial_mm),
      perpendicular_axial_mm: numberText(n.perpendicular_axial_mm),
      craniocaudal_mm: numberText(n.craniocaudal_mm),
    })),
    comment: String(content?.comment ?? ""),
  };
}

// ---- carotid (SRU) --------------------------------------------------------------------------------------------

export const CAROTID = {
  plaque: /** @type {Option[]} */ ([
    ["none", "No plaque"],
    ["visible", "Plaque visible"],
    ["lumen_narrowed", "Plaque, lumen narrowed"],
    ["markedly_narrowed", "Plaque, lumen markedly narrowed"],
  ]),
  flow: /** @type {Option[]} */ ([
    ["present", "ICA flow present"],
    ["absent", "No ICA flow"],
  ]),
  vertebral_flow: /** @type {Option[]} */ ([
    ["antegrade", "Antegrade"],
    ["retrograde", "Retrograde"],
    ["absent", "Absent"],
  ]),
};
export const CAROTID_NUMBERS = /** @type {const} */ ([
  ["ica_psv_cm_s", "ICA PSV", "cm/s"],
  ["ica_edv_cm_s", "ICA EDV", "cm/s"],
  ["cca_psv_cm_s", "CCA PSV", "cm/s"],
  ["ica_cca_ratio", "ICA/CCA ratio", ""],
  ["doppler_angle_deg", "Doppler angle", "°"],
  ["imt_mm", "IMT", "mm"],
  ["eca_psv_cm_s", "ECA PSV", "cm/s"],
]);
export const SIDES = /** @type {const} */ ([["right", "Right"], ["left", "Left"]]);

/**
 * @typedef {{examined: boolean, plaque: string, flow: string, vertebral_flow: string} & Record<string, any>} SideInput
 */

/** @returns {SideInput} */
export function emptySide() {
  /** @type {SideInput} */
  const side = { examined: true, plaque: "", flow: "present", vertebral_flow: "" };
  for (const [key] of CAROTID_NUMBERS) side[key] = "";
  return side;
}

/**
 * The carotid content for the server: sides not examined are left out, so are empty measurements.
 * @param {{right: SideInput, left: SideInput, comment: string}} form
 */
export function carotidContent(form) {
  /** @type {Record<string, any>} */
  const content = { comment: form.comment };
  for (const [name] of SIDES) {
    const side = form[name];
    if (!side.examined) continue;
    /** @type {Record<string, any>} */
    const out = {};
    for (const key of ["plaque", "flow", "vertebral_flow"]) if (side[key]) out[key] = side[key];
    for (const [key] of CAROTID_NUMBERS) {
      const value = parseNumber(side[key]);
      if (value !== null) out[key] = value;
    }
    content[name] = out;
  }
  return content;
}

/**
 * The form from stored carotid content.
 * @param {Record<string, any>|undefined} content
 * @returns {{right: SideInput, left: SideInput, comment: string}}
 */
export function carotidForm(content) {
  /** @param {any} raw */
  const side = (raw) => {
    const out = emptySide();
    if (!raw) return content ? { ...out, examined: false } : out;
    for (const key of ["plaque", "flow", "vertebral_flow"]) out[key] = raw[key] ? String(raw[key]) : out[key];
    for (const [key] of CAROTID_NUMBERS) out[key] = numberText(raw[key]);
    return out;
  };
  return { right: side(content?.right), left: side(content?.left), comment: String(content?.comment ?? "") };
}

// ---- free text ---------------------------------------------------------------------------------------------------

/**
 * @param {Record<string, any>|undefined} content
 * @returns {{findings: string, impression: string}}
 */
export function freeTextForm(content) {
  return { findings: String(content?.findings ?? ""), impression: String(content?.impression ?? "") };
}

// ---- helpers -----------------------------------------------------------------------------------------------------

/**
 * A typed number ("12", "12.5", "12,5"), or null when empty or not a number.
 * @param {string|number|null|undefined} value
 */
export function parseNumber(value) {
  if (value === null || value === undefined) return null;
  const textValue = String(value).trim().replace(",", ".");
  if (!textValue) return null;
  const n = Number(textValue);
  return Number.isFinite(n) ? n : null;
}

/** @param {unknown} value */
function numberText(value) {
  return typeof value === "number" && Number.isFinite(value) ? String(value) : "";
}
