// @ts-check
// Pure geometry of the live image: where the video's picture sits inside its element (object-fit: contain),
// and the mapping between normalised image coordinates (PROTOCOL.md §3: x, y in [0, 1] of the source image)
// and element pixels. No DOM: callers pass sizes in.

/**
 * @typedef {{x: number, y: number, width: number, height: number}} Rect
 *   A rectangle in element (CSS pixel) coordinates, origin at the element's top-left corner.
 * @typedef {[number, number]} Point
 */

/**
 * The rectangle the picture occupies inside an element of `boxWidth × boxHeight` when a
 * `videoWidth × videoHeight` source is shown with `object-fit: contain` (centred, letterboxed or pillarboxed).
 * Before the video knows its size (0 × 0) the whole box is returned.
 * @param {number} boxWidth
 * @param {number} boxHeight
 * @param {number} videoWidth
 * @param {number} videoHeight
 * @returns {Rect}
 */
export function contentRect(boxWidth, boxHeight, videoWidth, videoHeight) {
  if (!(boxWidth > 0) || !(boxHeight > 0)) return { x: 0, y: 0, width: 0, height: 0 };
  if (!(videoWidth > 0) || !(videoHeight > 0)) return { x: 0, y: 0, width: boxWidth, height: boxHeight };
  const scale = Math.min(boxWidth / videoWidth, boxHeight / videoHeight);
  const width = videoWidth * scale;
  const height = videoHeight * scale;
  return { x: (boxWidth - width) / 2, y: (boxHeight - height) / 2, width, height };
}

/**
 * Normalised image coordinates → element pixels.
 * @param {Rect} rect the content rectangle
 * @param {Point} point [x, y] in [0, 1]
 * @returns {Point}
 */
export function toElement(rect, point) {
  return [rect.x + point[0] * rect.width, rect.y + point[1] * rect.height];
}

/**
 * Element pixels → normalised image coordinates (not clamped: outside the picture gives values outside [0, 1]).
 * @param {Rect} rect the content rectangle
 * @param {number} px
 * @param {number} py
 * @returns {Point}
 */
export function toNormalised(rect, px, py) {
  if (!(rect.width > 0) || !(rect.height > 0)) return [NaN, NaN];
  return [(px - rect.x) / rect.width, (py - rect.y) / rect.height];
}

/**
 * Whether a normalised point lies on the picture.
 * @param {Point} point
 * @returns {boolean}
 */
export function onImage(point) {
  return point[0] >= 0 && point[0] <= 1 && point[1] >= 0 && point[1] <= 1;
}

/**
 * @param {number} value
 * @returns {number} the value limited to [0, 1]
 */
export function clamp01(value) {
  return Math.min(1, Math.max(0, value));
}

/**
 * @param {Point} point
 * @returns {Point} the point limited to the picture
 */
export function clampPoint(point) {
  return [clamp01(point[0]), clamp01(point[1])];
}

/**
 * Distance from `p` to the segment `a`–`b`.
 * @param {Point} p
 * @param {Point} a
 * @param {Point} b
 */
function segmentDistance(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const lengthSq = dx * dx + dy * dy;
  let t = lengthSq > 0 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / lengthSq : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}

/**
 * Ramer–Douglas–Peucker simplification with tolerance `epsilon` (iterative: long strokes do not recurse deep).
 * @param {Point[]} points
 * @param {number} epsilon
 * @returns {Point[]}
 */
export function simplifyRdp(points, epsilon) {
  if (points.length <= 2) return points.slice();
  const keep = new Uint8Array(points.length);
  keep[0] = 1;
  keep[points.length - 1] = 1;
  /** @type {[number, number][]} */
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [first, last] = /** @type {[number, number]} */ (stack.pop());
    let worst = -1;
    let worstDistance = 0;
    for (let i = first + 1; i < last; i++) {
      const d = segmentDistance(points[i], points[first], points[last]);
      if (d > worstDistance) {
        worstDistance = d;
        worst = i;
      }
    }
    if (worst >= 0 && worstDistance > epsilon) {
      keep[worst] = 1;
      stack.push([first, worst], [worst, last]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

/**
 * A freehand path reduced to at most `maxPoints` points (PROTOCOL.md: a freehand mark has 2–2000 points),
 * keeping its shape: repeated points are dropped, then the RDP tolerance grows until the path fits.
 * @param {Point[]} points normalised points
 * @param {number} [maxPoints]
 * @param {number} [epsilon] starting tolerance in normalised units
 * @returns {Point[]}
 */
export function simplifyPath(points, maxPoints = 2000, epsilon = 0.0005) {
  /** @type {Point[]} */
  const distinct = [];
  for (const p of points) {
    const last = distinct[distinct.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) distinct.push(p);
  }
  let result = simplifyRdp(distinct, epsilon);
  let tolerance = epsilon;
  while (result.length > maxPoints) {
    tolerance *= 2;
    result = simplifyRdp(distinct, tolerance);
  }
  return result;
}
