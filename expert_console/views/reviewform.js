// @ts-check
// The trainer's scoring form on the review page: OSAUS (seven items 1–5), the five image-quality items and the
// overall score (1–5; colour Doppler may be n/a), comments pinned to moments of the video, and the session score
// with the weights it used. The items come from the server's scheme (GET /api/v1/reviews/scheme).

import { formatClock } from "../replay.js";
import { SCORE_PARTS } from "../review.js";
import { formatTime, has, t } from "../i18n.js";
import { asError, el, setText, showError } from "./dom.js";

/**
 * @typedef {import("../review.js").Scheme} Scheme
 * @typedef {import("../review.js").Review} Review
 * @typedef {import("../review.js").Score} Score
 * @typedef {import("../review.js").Comment} Comment
 * @typedef {import("../review.js").Item} Item
 */

/**
 * @typedef {{osaus: Record<string, number|null>, image_quality: Record<string, number|null>, comments: Comment[]}} ReviewBody
 * @typedef {{scheme: Scheme, review: Review|null, currentTime: () => number, seek: (t: number) => void,
 *   save: (body: ReviewBody) => Promise<Review>}} Options
 * @typedef {{t: number|null, input: HTMLTextAreaElement, row: HTMLElement}} CommentEntry
 */

/** @param {Options} options */
export function createReviewForm(options) {
  const form = new ReviewForm(options);
  form.show(options.review);
  return {
    element: el("section", { class: "panel review-panel" }, el("h2", { text: t("review.yours") }), form.scorePanel, form.form),
    /** Keep the pin button's time in step with the video. @param {number} at */
    setTime(at) {
      setText(form.pinButton, t("review.comment_at", { at: formatClock(at) }));
    },
  };
}

/**
 * One item's choices: the scale, and n/a when the item may not apply.
 * @param {string} group "osaus" | "image_quality"
 * @param {Item} item
 * @param {[number, number]} scale
 */
function itemField(group, item, [low, high]) {
  const name = `${group}.${item.key}`;
  // the scheme's items in the reader's words (their keys are stable); an item the catalogs lack keeps the server's
  const label = has(`review.item.${item.key}`) ? t(`review.item.${item.key}`) : item.label;
  const choices = [];
  for (let value = low; value <= high; value++) {
    choices.push(el("label", { class: "score-choice" },
      el("input", { type: "radio", name, value: String(value), "aria-label": `${label}: ${value}` }),
      el("span", { text: String(value) })));
  }
  if (item.nullable) {
    choices.push(el("label", { class: "score-choice na" },
      el("input", { type: "radio", name, value: "", "aria-label": t("review.not_applicable_label", { item: label }) }),
      el("span", { text: t("review.not_applicable") })));
  }
  return el("fieldset", { class: "score-item", "data-field": name },
    el("legend", { text: label }), el("div", { class: "score-choices" }, choices));
}

class ReviewForm {
  /** @param {Options} options */
  constructor({ scheme, currentTime, seek, save }) {
    this.scheme = scheme;
    this.seek = seek;
    this.save = save;
    /** @type {CommentEntry[]} */ this.comments = [];
    this.commentList = el("ol", { class: "review-comments", "data-testid": "review-comments", "data-field": "comments" });
    this.pinButton = el("button", { type: "button", "data-action": "comment-here", text: t("review.comment_at", { at: "00:00" }),
      onclick: () => this.addComment(round(currentTime()), "", true) });
    const generalButton = el("button", { type: "button", "data-action": "comment-general", text: t("review.general_comment"),
      onclick: () => this.addComment(null, "", true) });
    this.error = el("p", { class: "error", "data-testid": "review-error", role: "alert", hidden: true });
    this.status = el("p", { class: "status-line", "data-testid": "review-status" });
    this.saveButton = el("button", { type: "submit", class: "primary", "data-action": "save-review", text: t("review.save") });
    this.scorePanel = el("div", { class: "session-score", "data-testid": "session-score" });
    this.form = el("form", { class: "review-form", "data-testid": "review-form", novalidate: true },
      el("h3", { text: t("review.osaus") }), scheme.osaus.map((item) => itemField("osaus", item, scheme.scale)),
      el("h3", { text: t("review.image_quality") }), scheme.image_quality.map((item) => itemField("image_quality", item, scheme.scale)),
      el("h3", { text: t("review.comments") }), this.commentList,
      el("div", { class: "comment-buttons" }, this.pinButton, generalButton),
      el("div", { class: "report-buttons" }, this.saveButton, this.status), this.error);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
  }

  /**
   * @param {number|null} at
   * @param {string} text
   * @param {boolean} focus
   */
  addComment(at, text, focus) {
    const input = el("textarea", { rows: 2, maxlength: 2000,
      "aria-label": at === null ? t("review.general_comment") : t("review.comment_at", { at: formatClock(at) }) });
    input.value = text;
    /** @type {CommentEntry} */
    const entry = { t: at, input, row: el("li") };
    const when = at === null
      ? el("span", { class: "comment-time muted", text: t("review.general") })
      : el("button", { type: "button", class: "link comment-time", "data-action": "seek", "data-t": String(at),
        text: formatClock(at), onclick: () => this.seek(at) });
    const remove = el("button", { type: "button", class: "link", "data-action": "remove-comment", text: t("review.remove"),
      onclick: () => {
        this.comments = this.comments.filter((c) => c !== entry);
        entry.row.remove();
      } });
    entry.row.append(el("div", { class: "comment-head" }, when, remove), input);
    entry.row.dataset.t = at === null ? "" : String(at);
    this.comments.push(entry);
    this.comments.sort((a, b) => (a.t ?? Infinity) - (b.t ?? Infinity));
    this.commentList.replaceChildren(...this.comments.map((c) => c.row));
    if (focus) input.focus();
  }

  /** @returns {ReviewBody} */
  body() {
    /** @type {Record<string, Record<string, number|null>>} */
    const groups = { osaus: {}, image_quality: {} };
    for (const group of /** @type {const} */ (["osaus", "image_quality"])) {
      for (const item of this.scheme[group]) {
        const chosen = /** @type {HTMLInputElement|null} the selector names radio inputs */ (
          this.form.querySelector(`input[name="${group}.${item.key}"]:checked`));
        if (chosen) groups[group][item.key] = chosen.value === "" ? null : Number(chosen.value);
      }
    }
    return {
      osaus: groups.osaus,
      image_quality: groups.image_quality,
      comments: this.comments.filter((c) => c.input.value.trim()).map((c) => ({ t: c.t, text: c.input.value.trim() })),
    };
  }

  async submit() {
    const { error, status, saveButton, form } = this;
    showError(error, null);
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    saveButton.disabled = true;
    setText(status, t("review.saving"));
    try {
      const saved = await this.save(this.body());
      this.show(saved);
      setText(status, t("review.saved", { at: formatTime(saved.updated_at) }));
    } catch (err) {
      const problem = asError(err);
      setText(status, "");
      showError(error, problem);
      const named = err && typeof err === "object" && "field" in err && typeof err.field === "string" ? err.field : null;
      const field = named ?? fieldOf(problem.message);
      const node = field ? form.querySelector(`[data-field="${CSS.escape(field.replace(/\[.*$/, ""))}"]`) : null;
      node?.setAttribute("aria-invalid", "true");
    } finally {
      saveButton.disabled = false;
    }
  }

  /** @param {Review|null} saved */
  show(saved) {
    if (!saved) {
      this.scorePanel.replaceChildren(el("p", { class: "muted", text: t("review.score_after_save") }));
      return;
    }
    for (const group of /** @type {const} */ (["osaus", "image_quality"])) {
      for (const [key, value] of Object.entries(saved[group] ?? {})) {
        const input = /** @type {HTMLInputElement|null} the selector names radio inputs */ (
          this.form.querySelector(`input[name="${group}.${key}"][value="${value === null ? "" : String(value)}"]`));
        if (input) input.checked = true;
      }
    }
    this.comments = [];
    this.commentList.replaceChildren();
    for (const comment of saved.comments ?? []) this.addComment(comment.t, comment.text, false);
    this.scorePanel.replaceChildren(...scoreView(saved.score));
  }
}

/**
 * The total (0–100) with the weights beside it, one line per part of the score.
 * @param {Score|null|undefined} score
 * @returns {HTMLElement[]}
 */
export function scoreView(score) {
  if (!score) return [];
  const percent = (/** @type {number|null|undefined} */ v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)} %`);
  const total = el("p", { class: "score-total" },
    el("span", { class: "score-number", "data-testid": "score-total",
      text: score.total === null ? "—" : (score.total * 100).toFixed(1) }),
    el("span", { class: "muted", text: ` ${t("review.score_of_100")}` }));
  const rows = SCORE_PARTS.map((key) => {
    const part = score.parts?.[key] ?? null;
    const used = score.weights_used?.[key];
    const weight = score.weights?.[key] ?? 0;
    const label = t(`review.part.${key}`);
    const source = key === "image" && score.image_source
      ? t("review.part_source", { label, source: t(score.image_source === "trainer" ? "review.by_trainer" : "review.automatic") })
      : label;
    return el("tr", { "data-part": key },
      el("td", { text: source }),
      el("td", { class: "numeric", text: part ? percent(part.value) : t("review.no_data") }),
      el("td", { class: "numeric", "data-field": "weight",
        text: `× ${Math.round(weight * 100)} %${used !== undefined && Math.abs(used - weight) > 1e-4
          ? ` ${t("review.weight_used", { percent: Math.round(used * 100) })}` : ""}` }));
  });
  const table = el("table", { class: "score-parts", "data-testid": "score-weights" },
    el("thead", {}, el("tr", {}, el("th", { text: t("review.col.part") }), el("th", { text: t("review.col.value") }),
      el("th", { text: t("review.col.weight") }))),

    el("tbody", {}, rows));
  return [total, table];
}

/** @param {number} t */
function round(t) {
  return Math.round(t * 1000) / 1000;
}

/**
 * The field a refusal's message names ("osaus.indication: …").
 * @param {string} message
 */
function fieldOf(message) {
  const match = /^([a-z_]+(?:\.[a-z_]+)?(?:\[\d+\](?:\.[a-z]+)?)?):/.exec(message);
  return match ? match[1] : null;
}
