// @ts-check
// The study page's "report images" panel: the images chosen for the report, printed with it and referenced by its
// SR (docs/RESULTS.md). The author of a draft adds the image (and frame) shown in the viewer, or removes one; once
// signed, the choice is shown read-only. Every word from the `results` catalog.

import { has, initialLanguage, setLanguage, t } from "../i18n.js";
import { latest, listReports } from "../reports.js";
import { chooseReportImages, reportImages } from "../results.js";
import { asError, el, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../results.js").ChosenImage} ChosenImage
 * @typedef {{ref: import("../dicomweb.js").InstanceRef|null, frame: number, frames: number}} ShownImage the viewer
 */

/**
 * @param {{api: Api, user: User, studyId: string, shown: () => ShownImage}} context
 */
export function createReportImages({ api, user, studyId, shown }) {
  const title = el("h3");
  const hint = el("p", { class: "muted small" });
  const list = el("ol", { class: "report-images", "data-testid": "report-images" });
  const error = el("p", { class: "error", role: "alert", "data-testid": "report-images-error", hidden: true });
  const add = el("button", { type: "button", "data-action": "add-report-image", hidden: true,
    onclick: () => void change((images) => {
      const { ref, frame, frames } = shown();
      if (!ref) return images;
      const next = { sop_uid: ref.sopUid, frame: frames > 1 ? frame : 1 };
      return images.some((i) => i.sop_uid === next.sop_uid && i.frame === next.frame) ? images : [...images, next];
    }) });
  const element = el("section", { class: "panel report-images-panel", "data-testid": "report-images-panel" },
    title, hint, list, add, error);
  /** @type {string|null} the draft the caller may change, else null */
  let editable = null;
  /** @type {ChosenImage[]} */
  let images = [];
  let stopped = false;

  function render() {
    title.textContent = t("results.images.title");
    hint.textContent = editable ? t("results.images.hint") : "";
    hint.hidden = !editable;
    add.textContent = t("results.images.add");
    add.hidden = !editable;
    list.replaceChildren(...images.map((image, n) => el("li", { "data-sop": image.sop_uid },
      el("span", { text: t("results.images.item", { number: n + 1, sop: image.sop_uid.slice(-8), frame: image.frame }) }),
      editable ? el("button", { type: "button", class: "link", "data-action": "remove-report-image",
        text: t("results.images.remove"),
        onclick: () => void change((all) => all.filter((_, i) => i !== n)) }) : null)));
    if (!images.length) list.append(el("li", { class: "muted", text: t("results.images.none") }));
  }

  /** @param {(images: ChosenImage[]) => ChosenImage[]} edit */
  async function change(edit) {
    if (!editable) return;
    try {
      images = await chooseReportImages(api, editable, edit(images));
      showError(error, null);
    } catch (err) {
      showError(error, asError(err));
    }
    if (!stopped) render();
  }

  async function refresh() {
    if (!has("results.images.title")) await setLanguage(initialLanguage());
    try {
      const report = latest(await listReports(api, studyId));
      editable = report && report.state === "draft" && report.author.id === user.id ? report.id : null;
      images = report ? await reportImages(api, report.id) : [];
      showError(error, null);
    } catch (err) {
      showError(error, asError(err));
    }
    if (!stopped) render();
  }

  return {
    element,
    refresh,
    destroy() {
      stopped = true;
    },
  };
}
