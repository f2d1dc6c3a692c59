// @ts-check
// Critical findings in the console: the banner of open findings a referring centre must acknowledge (every page,
// sonographers and admins; refetched when the server tells of a change, escalation level visible), and the study page's panel where the
// reader holding the lock flags one and sees what became of it.

import { FINDING_METHODS, acknowledgeFinding, clockTime, flagFinding, openFindings, studyFindings } from "../queue.js";
import { asError, el, setText, showError } from "./dom.js";

const METHOD_LABELS = /** @type {Record<string, string>} */ ({
  "in-system": "In system", phone: "Phone", "in-person": "In person",
});

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../queue.js").Finding} Finding
 */

/** @param {number} level */
function levelText(level) {
  return level > 0 ? `escalation level ${level}` : "not escalated";
}

/**
 * The banner of open critical findings for the caller's site (all sites for an admin).
 * @param {HTMLElement} container an element of the page outside the routed view (kept across routes)
 * @param {{api: Api, user: User, events: import("../events.js").ChangeFeed}} context
 * @returns {() => void} cleanup
 */
export function mountFindingsBanner(container, { api, events }) {
  let stopped = false;
  /** @type {Map<string, {item: HTMLElement, level: HTMLElement, finding: Finding}>} */
  const items = new Map();
  const list = el("ul", { class: "finding-items" });
  const error = el("p", { class: "error", role: "alert", "data-testid": "finding-ack-error", hidden: true });
  const title = el("strong", { class: "findings-title", text: "Critical findings" });
  container.replaceChildren(el("div", { class: "findings-inner" }, title, list, error));
  container.hidden = true;

  async function poll() {
    let findings;
    try {
      findings = await openFindings(api);
    } catch {
      return; // the next notice or safety refresh tries again; a lost session is handled by the router
    }
    if (stopped) return;
    render(findings);
  }

  /** @param {Finding[]} findings */
  function render(findings) {
    const seen = new Set();
    for (const finding of findings) {
      seen.add(finding.id);
      let entry = items.get(finding.id);
      if (!entry) {
        entry = createItem(finding);
        items.set(finding.id, entry);
        list.append(entry.item);
      }
      entry.finding = finding;
      setText(entry.level, levelText(finding.escalation_level));
      entry.item.dataset.level = String(Math.min(finding.escalation_level, 3));
    }
    for (const [id, entry] of items) {
      if (!seen.has(id)) {
        entry.item.remove();
        items.delete(id);
      }
    }
    setText(title, `Critical findings to acknowledge (${items.size})`);
    container.hidden = items.size === 0;
  }

  /** @param {Finding} finding */
  function createItem(finding) {
    const level = el("span", { class: "finding-level", "data-field": "escalation" });
    const person = el("input", { name: "notified_person", placeholder: "Notified person (optional)", maxlength: 200,
      "aria-label": "Notified person" });
    const button = el("button", { class: "primary", "data-action": "acknowledge", text: "Acknowledge" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      showError(error, null);
      try {
        await acknowledgeFinding(api, finding.id, person.value.trim() || undefined);
        items.get(finding.id)?.item.remove();
        items.delete(finding.id);
        render([...items.values()].map((e) => e.finding));
      } catch (err) {
        showError(error, asError(err));
        button.disabled = false;
      }
    });
    const item = el("li", { class: "finding-item", "data-finding-id": finding.id },
      el("span", { class: "finding-text", "data-field": "finding", text: finding.finding }),
      el("span", { class: "finding-meta", text:
        `${finding.accession ? `${finding.accession} · ` : ""}${finding.reported_by} · ${clockTime(finding.found_at)}` +
        ` · ${METHOD_LABELS[finding.method] ?? finding.method}` }),
      level, person, button);
    return { item, level, finding };
  }

  void poll();
  const unsubscribe = events.subscribe(["findings"], () => poll());
  return () => {
    stopped = true;
    unsubscribe();
    container.replaceChildren();
    container.hidden = true;
  };
}

/**
 * The study page's panel: the study's findings with their acknowledgement, and the form to flag one.
 * @param {{api: Api, user: User, studyId: string}} context
 */
export function createStudyFindings({ api, user, studyId }) {
  const list = el("ul", { class: "study-findings", "data-testid": "study-findings" });
  const error = el("p", { class: "error", role: "alert", "data-testid": "finding-error", hidden: true });
  const text = el("textarea", { name: "finding", rows: 2, maxlength: 2000, required: true,
    placeholder: "e.g. large right pneumothorax" });
  const method = el("select", { name: "method" },
    FINDING_METHODS.map((m) => el("option", { value: m, text: METHOD_LABELS[m] ?? m })));
  const person = el("input", { name: "notified_person", maxlength: 200, placeholder: "optional" });
  const submit = el("button", { type: "submit", class: "danger", text: "Flag critical finding" });
  const form = el("form", { class: "finding-form", "data-testid": "finding-form", novalidate: true },
    el("label", { class: "field" }, el("span", { text: "Finding" }), text),
    el("div", { class: "row" },
      el("label", { class: "field" }, el("span", { text: "Method" }), method),
      el("label", { class: "field" }, el("span", { text: "Person notified" }), person)),
    submit, error);
  form.hidden = user.role !== "expert";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    if (!text.value.trim()) {
      showError(error, { code: "invalid_request", message: "Describe the finding." });
      return;
    }
    submit.disabled = true;
    try {
      /** @type {{finding: string, method: string, notified_person?: string}} */
      const body = { finding: text.value.trim(), method: method.value };
      if (person.value.trim()) body.notified_person = person.value.trim();
      await flagFinding(api, studyId, body);
      text.value = "";
      person.value = "";
      await refresh();
    } catch (err) {
      showError(error, asError(err)); // not_lock_holder: claim the study first
    } finally {
      submit.disabled = false;
    }
  });

  async function refresh() {
    let findings;
    try {
      findings = await studyFindings(api, studyId);
    } catch {
      return;
    }
    list.replaceChildren(...findings.map(findingLine));
  }

  const element = el("section", { class: "panel findings-panel" },
    el("h3", { text: "Critical findings" }), list, form);
  return { element, refresh };
}

/**
 * One of the study's findings: open (waiting, with its escalation) or acknowledged (by whom, who was told, when).
 * @param {Finding} f
 */
function findingLine(f) {
  const notified = f.notified_person ? ` (notified: ${f.notified_person})` : "";
  const meta = f.acknowledged_at
    ? `acknowledged by ${f.acknowledged_by ?? "?"}${notified} at ${clockTime(f.acknowledged_at)}`
    : `${f.reported_by} · ${clockTime(f.found_at)} · waiting for acknowledgement · ${levelText(f.escalation_level)}`;
  return el("li", { "data-finding-id": f.id, class: f.acknowledged_at ? "acknowledged" : "open",
    "data-level": String(Math.min(f.escalation_level, 3)) },
  el("span", { class: "finding-text", text: f.finding }),
  el("span", { class: "finding-meta", text: meta }));
}
