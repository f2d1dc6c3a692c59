// @ts-check
// The guidance state a page shows: the marks as the edge relayed them, and the other people's pointers.
// Pure: decoded protocol messages in, state out; no DOM, no channels.

/**
 * @typedef {import("./protocol.js").Mark} Mark
 * @typedef {import("./protocol.js").GuidanceMessage} GuidanceMessage
 * @typedef {Extract<import("./protocol.js").LiveMessage, {type: "pointer"}>} PointerMessage
 * @typedef {{x: number|null, y: number|null, visible: boolean, from: string|null, at: number|null,
 *   role: string|null}} Pointer
 */

export class GuidanceBoard {
  constructor() {
    /** @type {Map<string, Mark>} by sender and id: two pages may pick the same id */
    this.marks = new Map();
    /** @type {Map<string, Pointer>} by sender */
    this.pointers = new Map();
    /** @type {Pointer|null} the pointer message that came last, from anyone */
    this.lastPointer = null;
  }

  /**
   * Apply a `mark`, `marks` (the snapshot: replaces everything) or `clear` relayed by the edge.
   * @param {GuidanceMessage} message
   * @returns {boolean} whether the marks changed (false for anything else, such as `error`)
   */
  apply(message) {
    if (message.type === "mark") {
      this.marks.set(markKey(message), message);
    } else if (message.type === "marks") {
      this.marks = new Map(message.marks.map((m) => [markKey(m), m]));
    } else if (message.type === "clear") {
      this.marks.clear();
    } else {
      return false;
    }
    return true;
  }

  /**
   * Someone's pointer moved or left the image.
   * @param {PointerMessage} message
   * @param {string|null} role the sender's role, for the label
   * @returns {Pointer}
   */
  pointer(message, role) {
    /** @type {Pointer} */
    const pointer = {
      x: message.visible && message.x !== undefined ? message.x : null,
      y: message.visible && message.y !== undefined ? message.y : null,
      visible: message.visible,
      from: message.from,
      at: message.at,
      role,
    };
    this.pointers.set(message.from ?? "", pointer);
    this.lastPointer = pointer;
    return pointer;
  }

  /**
   * Someone left: their pointer goes (their marks stay: they belong to the consultation).
   * @param {string} peerId
   * @returns {boolean} whether a pointer went
   */
  forget(peerId) {
    if (!this.pointers.delete(peerId)) return false;
    if (this.lastPointer?.from === peerId) this.lastPointer = { ...this.lastPointer, visible: false, x: null, y: null };
    return true;
  }

  /** The connection closed: nobody's pointer is live any more (the marks stay until the next snapshot). */
  forgetPointers() {
    this.pointers.clear();
    if (this.lastPointer) this.lastPointer = { ...this.lastPointer, visible: false, x: null, y: null };
  }

  /** @returns {Mark[]} in the order they were first drawn */
  get markList() {
    return [...this.marks.values()];
  }

  /** @returns {Pointer[]} */
  get pointerList() {
    return [...this.pointers.values()];
  }
}

/** @param {Mark} mark */
function markKey(mark) {
  return `${mark.from ?? ""}\u0000${mark.id}`;
}
