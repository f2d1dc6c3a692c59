// @ts-check
// DICOMweb (PS3.18) as the viewer needs it: QIDO-RS series and instances, WADO-RS metadata, rendered frame URLs,
// helpers over the DICOM JSON model (PS3.18 F.2), and US Region Calibration (PS3.3 C.8.5.5) for calipers.
// Same-origin, session cookie; no DOM.

import { t } from "./i18n.js";
import { ApiError } from "./api.js";

/** Tags by DICOM keyword (group+element, upper-case hex, as the JSON model keys them). */
export const TAG = Object.freeze({
  StudyInstanceUID: "0020000D",
  SeriesInstanceUID: "0020000E",
  SOPInstanceUID: "00080018",
  SOPClassUID: "00080016",
  Modality: "00080060",
  SeriesNumber: "00200011",
  SeriesDescription: "0008103E",
  InstanceNumber: "00200013",
  StudyDate: "00080020",
  StudyDescription: "00081030",
  NumberOfFrames: "00280008",
  Rows: "00280010",
  Columns: "00280011",
  BitsStored: "00280101",
  WindowCenter: "00281050",
  WindowWidth: "00281051",
  FrameTime: "00181063",
  CineRate: "00180040",
  RecommendedDisplayFrameRate: "00082144",
  SequenceOfUltrasoundRegions: "00186011",
  RegionSpatialFormat: "00186012",
  RegionDataType: "00186014",
  RegionLocationMinX0: "00186018",
  RegionLocationMinY0: "0018601A",
  RegionLocationMaxX1: "0018601C",
  RegionLocationMaxY1: "0018601E",
  PhysicalUnitsXDirection: "00186024",
  PhysicalUnitsYDirection: "00186026",
  PhysicalDeltaX: "0018602C",
  PhysicalDeltaY: "0018602E",
});

/** PhysicalUnits… value for centimetres (PS3.3 C.8.5.5.1.15). */
export const UNITS_CM = 3;

/**
 * @typedef {Record<string, {vr: string, Value?: any[], InlineBinary?: string, BulkDataURI?: string}>} DicomJson
 * @typedef {{x0: number, y0: number, x1: number, y1: number, spatialFormat: number|null, dataType: number|null,
 *   unitsX: number|null, unitsY: number|null, deltaX: number|null, deltaY: number|null}} UsRegion
 * @typedef {{x: number, y: number}} Point pixel coordinates: x = column, y = row, from 0
 * @typedef {"calibrated"|"uncalibrated"|"different_regions"|"outside_regions"|"not_spatial"} CaliperStatus
 * @typedef {{mm: number|null, status: CaliperStatus}} Measurement
 * @typedef {{studyUid: string, seriesUid: string, sopUid: string}} InstanceRef
 */

// ---- DICOM JSON ------------------------------------------------------------------------------------------------

/**
 * Every value of a tag ([] when absent or empty).
 * @param {DicomJson|undefined|null} ds
 * @param {string} tag
 * @returns {any[]}
 */
export function values(ds, tag) {
  const element = ds?.[tag];
  return element && Array.isArray(element.Value) ? element.Value : [];
}

/**
 * The first value of a tag, or undefined.
 * @param {DicomJson|undefined|null} ds
 * @param {string} tag
 */
export function first(ds, tag) {
  return values(ds, tag)[0];
}

/**
 * The first value as text ("" when absent); a person name gives its alphabetic form.
 * @param {DicomJson|undefined|null} ds
 * @param {string} tag
 */
export function text(ds, tag) {
  const value = first(ds, tag);
  if (value === undefined || value === null) return "";
  if (typeof value === "object") return String(value.Alphabetic ?? "");
  return String(value);
}

/**
 * The first value as a number (IS and DS values may come as strings), or null.
 * @param {DicomJson|undefined|null} ds
 * @param {string} tag
 */
export function number(ds, tag) {
  const value = first(ds, tag);
  if (value === undefined || value === null || value === "") return null;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

/**
 * Sort QIDO results by a numeric tag (SeriesNumber, InstanceNumber); missing numbers last, order kept otherwise.
 * @param {DicomJson[]} items
 * @param {string} tag
 */
export function sortByNumber(items, tag) {
  return items
    .map((item, index) => ({ item, index, n: number(item, tag) }))
    .sort((a, b) => (a.n ?? Infinity) - (b.n ?? Infinity) || a.index - b.index)
    .map((entry) => entry.item);
}

/**
 * Number of frames (1 for a single-frame image).
 * @param {DicomJson} meta
 */
export function frameCount(meta) {
  const n = number(meta, TAG.NumberOfFrames);
  return n !== null && n >= 1 ? Math.floor(n) : 1;
}

/**
 * Milliseconds per frame of a clip: FrameTime, else from the cine or recommended rate, else 30 frames/s.
 * @param {DicomJson} meta
 */
export function frameIntervalMs(meta) {
  const frameTime = number(meta, TAG.FrameTime);
  if (frameTime !== null && frameTime > 0) return frameTime;
  for (const tag of [TAG.CineRate, TAG.RecommendedDisplayFrameRate]) {
    const rate = number(meta, tag);
    if (rate !== null && rate > 0) return 1000 / rate;
  }
  return 1000 / 30;
}

/**
 * The stored window (first of WindowCenter/WindowWidth), or null.
 * @param {DicomJson} meta
 * @returns {{center: number, width: number}|null}
 */
export function storedWindow(meta) {
  const center = number(meta, TAG.WindowCenter);
  const width = number(meta, TAG.WindowWidth);
  return center !== null && width !== null && width >= 1 ? { center, width } : null;
}

// ---- US Region Calibration ---------------------------------------------------------------------------------------

/**
 * The instance's ultrasound regions ([] when the object carries no calibration).
 * @param {DicomJson} meta
 * @returns {UsRegion[]}
 */
export function usRegions(meta) {
  return values(meta, TAG.SequenceOfUltrasoundRegions).flatMap((item) => {
    const x0 = number(item, TAG.RegionLocationMinX0);
    const y0 = number(item, TAG.RegionLocationMinY0);
    const x1 = number(item, TAG.RegionLocationMaxX1);
    const y1 = number(item, TAG.RegionLocationMaxY1);
    if (x0 === null || y0 === null || x1 === null || y1 === null) return [];
    return [{
      x0, y0, x1, y1,
      spatialFormat: number(item, TAG.RegionSpatialFormat),
      dataType: number(item, TAG.RegionDataType),
      unitsX: number(item, TAG.PhysicalUnitsXDirection),
      unitsY: number(item, TAG.PhysicalUnitsYDirection),
      deltaX: number(item, TAG.PhysicalDeltaX),
      deltaY: number(item, TAG.PhysicalDeltaY),
    }];
  });
}

/**
 * The region a pixel lies in (bounds inclusive, as the standard gives them), or null. Where regions overlap the
 * first listed wins.
 * @param {UsRegion[]} regions
 * @param {Point} point
 */
export function regionAt(regions, point) {
  const x = Math.floor(point.x);
  const y = Math.floor(point.y);
  return regions.find((r) => x >= r.x0 && x <= r.x1 && y >= r.y0 && y <= r.y1) ?? null;
}

/**
 * Caliper between two pixels: sqrt((dx·ΔX)² + (dy·ΔY)²) in cm, times 10, when both lie in one region whose
 * physical units are cm in both directions; otherwise mm is null and `status` says why.
 * @param {UsRegion[]} regions
 * @param {Point} a
 * @param {Point} b
 * @returns {Measurement}
 */
export function measure(regions, a, b) {
  if (!regions.length) return { mm: null, status: "uncalibrated" };
  const ra = regionAt(regions, a);
  const rb = regionAt(regions, b);
  if (!ra || !rb) return { mm: null, status: "outside_regions" };
  if (ra !== rb) return { mm: null, status: "different_regions" };
  if (ra.unitsX !== UNITS_CM || ra.unitsY !== UNITS_CM || !ra.deltaX || !ra.deltaY) {
    return { mm: null, status: "not_spatial" };
  }
  const dx = (b.x - a.x) * Math.abs(ra.deltaX);
  const dy = (b.y - a.y) * Math.abs(ra.deltaY);
  return { mm: Math.hypot(dx, dy) * 10, status: "calibrated" };
}

/**
 * The calibrated distance in mm, or null (uncalibrated, points in different regions or outside, not in cm).
 * @param {UsRegion[]} regions
 * @param {Point} a
 * @param {Point} b
 */
export function distanceMm(regions, a, b) {
  return measure(regions, a, b).mm;
}

/**
 * What the caliper shows: "12.3 mm", or the reason there is no distance.
 * @param {Measurement} m
 */
export function describeMeasurement(m) {
  switch (m.status) {
    case "calibrated":
      return `${(/** @type {number} */ (m.mm)).toFixed(1)} mm`;
    case "uncalibrated":
    case "different_regions":
    case "outside_regions":
      return t(`viewer.measure.${m.status}`);
    default:
      return t("viewer.measure.not_cm");

  }
}

// ---- the client ----------------------------------------------------------------------------------------------

export class DicomWeb {
  /**
   * @param {{base?: string, fetch?: typeof fetch, onUnauthenticated?: (error: ApiError) => void}} [options]
   */
  constructor({ base = "/dicomweb", fetch: fetchImpl, onUnauthenticated } = {}) {
    this.base = base;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
    this.onUnauthenticated = onUnauthenticated ?? (() => {});
  }

  /**
   * GET a DICOM JSON answer; 204 (no matches) is [].
   * @param {string} path
   * @returns {Promise<DicomJson[]>}
   */
  async json(path) {
    let response;
    try {
      response = await this.fetch(this.base + path, {
        headers: { Accept: "application/dicom+json" },
        credentials: "same-origin",
      });
    } catch (err) {
      throw new ApiError("network", `the image server could not be reached (${String(err)})`, 0);
    }
    if (response.status === 204) return [];
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const code = data && typeof data.error === "string" ? data.error : `http_${response.status}`;
      const message = data && typeof data.message === "string" ? data.message : response.statusText || code;
      const error = new ApiError(code, message, response.status);
      if (response.status === 401) this.onUnauthenticated(error);
      throw error;
    }
    if (!Array.isArray(data)) throw new ApiError("bad_answer", "the image server's answer was not DICOM JSON", response.status);
    return data;
  }

  /**
   * QIDO-RS: the study's series, by SeriesNumber.
   * @param {string} studyUid
   */
  async series(studyUid) {
    return sortByNumber(await this.json(`/studies/${enc(studyUid)}/series`), TAG.SeriesNumber);
  }

  /**
   * QIDO-RS: a series' instances, by InstanceNumber.
   * @param {string} studyUid
   * @param {string} seriesUid
   */
  async instances(studyUid, seriesUid) {
    return sortByNumber(
      await this.json(`/studies/${enc(studyUid)}/series/${enc(seriesUid)}/instances`), TAG.InstanceNumber);
  }

  /**
   * WADO-RS metadata of one instance.
   * @param {InstanceRef} ref
   * @returns {Promise<DicomJson>}
   */
  async metadata(ref) {
    const [meta] = await this.json(`${instancePath(ref)}/metadata`);
    if (!meta) throw new ApiError("not_found", "the image server has no metadata for this instance", 404);
    return meta;
  }

  /**
   * WADO-RS rendered: the whole instance, or one frame (from 1), optionally windowed; JPEG unless PNG is asked.
   * @param {InstanceRef} ref
   * @param {{frame?: number|undefined, window?: {center: number, width: number}|null, png?: boolean}} [options]
   */
  renderedUrl(ref, { frame, window, png } = {}) {
    const path = frame ? `${instancePath(ref)}/frames/${frame}/rendered` : `${instancePath(ref)}/rendered`;
    const query = [];
    if (window) query.push(`window=${round(window.center)},${round(window.width)}`);
    if (png) query.push(`accept=${encodeURIComponent("image/png")}`);
    return this.base + path + (query.length ? `?${query.join("&")}` : "");
  }
}

/**
 * The instance reference a QIDO instance result names (study and series UIDs may be given by the caller).
 * @param {DicomJson} item
 * @param {string} [studyUid]
 * @param {string} [seriesUid]
 * @returns {InstanceRef}
 */
export function instanceRef(item, studyUid, seriesUid) {
  return {
    studyUid: text(item, TAG.StudyInstanceUID) || studyUid || "",
    seriesUid: text(item, TAG.SeriesInstanceUID) || seriesUid || "",
    sopUid: text(item, TAG.SOPInstanceUID),
  };
}

/** @param {InstanceRef} ref */
function instancePath(ref) {
  return `/studies/${enc(ref.studyUid)}/series/${enc(ref.seriesUid)}/instances/${enc(ref.sopUid)}`;
}

/** @param {string} uid */
function enc(uid) {
  return encodeURIComponent(uid);
}

/** Window values in the URL: whole numbers unless the value needs its fraction. @param {number} v */
function round(v) {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
}
