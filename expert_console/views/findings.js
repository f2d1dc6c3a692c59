// @ts-check
// Critical findings in the console: the banner of open findings a referring centre must acknowledge (every page,
// sonographers and admins; refetched when the server tells of a change, escalation level visible), and the study page's panel where the
// reader holding the lock flags one and sees what became of it.

import { raiseAlert } from "../alerts.js";
import { FINDING_METHODS, acknowledgeFinding, clockTime, flagFinding, openFindings, studyFindings } from "../queue.js";
import { has, personName, t } from "../i18n.js";
import { asError, el, setText, showError } from "./dom.js";

/** @param {string} method how the finding was told: in-system, phone, in-person */
const methodLabel = (method) => (has(`findings.method.${method}`) ? t(`findings.method.${method}`) : method);

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../queue.js").Finding} Finding
 */

/** @param {number} level */
function levelText(level) {
  return level > 0 ? t("findings.level", { level }) : t("findings.not_escalated");
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
  const title = el("strong", { class: "findings-title", text: t("findings.banner") });
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

  /** Whether the banner has drawn once: findings open when the page opened are on it, not announced. */
  let primed = false;

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
        if (primed) announce(finding, "findings.alert_new");
      } else if (finding.escalation_level > entry.finding.escalation_level) {
        announce(finding, "findings.alert_escalated");
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
    setText(title, t("findings.to_acknowledge", { count: items.size }));
    container.hidden = items.size === 0;
    primed = true;
    container.dataset.ready = "true"; // drawn once: what opens from now on is announced
  }

  /** A notification and the chime: a critical finding must reach someone now, not when they look at the page.
   * The text names the finding and the accession, never the patient (a notification shows on the desktop).
   * @param {Finding} finding @param {string} titleKey */
  function announce(finding, titleKey) {
    raiseAlert({
      title: t(titleKey, { level: finding.escalation_level }),
      body: finding.accession ? `${finding.accession} · ${finding.finding}` : finding.finding,
      tag: `finding-${finding.id}`,
    });
  }

  /** @param {Finding} finding */
  function createItem(finding) {
    const level = el("span", { class: "finding-level", "data-field": "escalation" });
    const person = el("input", { name: "notified_person", placeholder: t("findings.notified_optional"), maxlength: 200,
      "aria-label": t("findings.notified") });
    const button = el("button", { class: "primary", "data-action": "acknowledge", text: t("findings.acknowledge") });
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
        `${finding.accession ? `${finding.accession} · ` : ""}${personName(finding.reported_by)} · ${clockTime(finding.found_at)}` +
        ` · ${methodLabel(finding.method)}` }),
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
    delete container.dataset.ready;
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
    placeholder: t("findings.example") });
  const method = el("select", { name: "method" },
    FINDING_METHODS.map((m) => el("option", { value: m, text: methodLabel(m) })));
  const person = el("input", { name: "notified_person", maxlength: 200, placeholder: t("findings.optional") });
  const submit = el("button", { type: "submit", class: "danger", text: t("findings.flag") });
  const form = el("form", { class: "finding-form", "data-testid": "finding-form", novalidate: true },
    el("label", { class: "field" }, el("span", { text: t("findings.finding") }), text),
    el("div", { class: "row" },
      el("label", { class: "field" }, el("span", { text: t("findings.method") }), method),
      el("label", { class: "field" }, el("span", { text: t("findings.person_notified") }), person)),
    submit, error);
  form.hidden = user.role !== "expert";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    if (!text.value.trim()) {
      showError(error, { code: "invalid_request", text: t("findings.describe") });
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
    el("h3", { text: t("findings.banner") }), list, form);
  return { element, refresh };
}

/**
 * One of the study's findings: open (waiting, with its escalation) or acknowledged (by whom, who was told, when).
 * @param {Finding} f
 */
function findingLine(f) {
  const by = personName(f.acknowledged_by) || "?";
  const at = clockTime(f.acknowledged_at);
  const meta = f.acknowledged_at
    ? (f.notified_person ? t("findings.acknowledged_notified", { by, at, notified: personName(f.notified_person) })
      : t("findings.acknowledged", { by, at }))
    : t("findings.waiting", { by: personName(f.reported_by), at: clockTime(f.found_at), level: levelText(f.escalation_level) });

  return el("li", { "data-finding-id": f.id, class: f.acknowledged_at ? "acknowledged" : "open",
    "data-level": String(Math.min(f.escalation_level, 3)) },
  el("span", { class: "finding-text", text: f.finding }),
  el("span", { class: "finding-meta", text: meta }));
}
