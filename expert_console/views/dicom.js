// @ts-check
// The admin's DICOM page (#/dicom): the peers that may C-STORE into a site (AE title, site, networks, pinned
// certificate, limits), add one, disable and enable; the forward jobs to the regional PACS that failed, with
// Re-queue one by one or all at once. Everyone else is refused by the server (403) and sees its message.

import { t } from "../i18n.js";
import { listSites } from "../accounts.js";
import { createPeer, failedJobs, listPeers, peerFromForm, requeueAllFailed, requeueJob, setPeerEnabled, sizeText }
  from "../dicomadmin.js";
import { asError, el, showCodedError as showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../accounts.js").Site} Site
 * @typedef {import("../dicomadmin.js").DicomPeer} DicomPeer
 * @typedef {import("../dicomadmin.js").ForwardJob} ForwardJob
 */

/** The page's words that depend on data (the others are asked where they are used). */
const TEXT = {
  peerColumns: () => ["ae_title", "site", "networks", "certificate", "limits", "state"].map((c) => t(`dicom.peer_col.${c}`))
    .concat([""]),
  limits: (/** @type {DicomPeer} */ p) => t("dicom.limits", { size: sizeText(p.max_dataset_bytes), count: p.max_associations }),
  confirmDisable: (/** @type {string} */ ae) => t("dicom.confirm_disable", { ae }),
  added: (/** @type {string} */ ae) => t("dicom.added", { ae }),
  jobColumns: () => ["job", "object", "study", "site", "destination", "attempts", "last_error"].map((c) => t(`dicom.job_col.${c}`))
    .concat([""]),
  confirmRequeueAll: (/** @type {number} */ n) => t("dicom.confirm_requeue_all", { count: n }),
  requeued: (/** @type {number} */ n) => t("dicom.requeued", { count: n }),
};

/** Networks that let anyone in (what migration 0008 gave the former AE titles). */
const ANYWHERE = new Set(["0.0.0.0/0", "::/0"]);

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User}} context
 * @returns {() => void} cleanup
 */
export function mountDicom(root, { api }) {
  const page = new DicomPage(api);
  root.append(page.element);
  void page.refresh();
  return () => {
    page.stopped = true;
  };
}

class DicomPage {
  /** @param {Api} api */
  constructor(api) {
    this.api = api;
    this.stopped = false;
    /** @type {Site[]} */ this.sites = [];
    /** @type {ForwardJob[]} */ this.jobs = [];
    this.error = el("p", { class: "error", role: "alert", "data-testid": "dicom-error", hidden: true });
    this.notice = el("p", { class: "notice", role: "status", "data-testid": "dicom-notice", hidden: true });
    this.siteSelect = el("select", { name: "site_id", required: true });
    this.peers = el("tbody");
    this.jobRows = el("tbody");
    this.requeueAll = el("button", { type: "button", "data-action": "requeue-all", text: t("dicom.requeue_all"), disabled: true,
      onclick: () => {
        if (confirm(TEXT.confirmRequeueAll(this.jobs.length))) {
          void this.act(async () => TEXT.requeued((await requeueAllFailed(this.api)).length));
        }
      } });
    /** @param {string} head @param {string[]} columns @param {HTMLElement} body @param {string} testid */
    const table = (head, columns, body, testid) => el("div", { class: "list-wrap" },
      el("table", { class: "studies", "data-testid": testid, "aria-label": head },
        el("thead", {}, el("tr", {}, columns.map((h) => el("th", { text: h })))), body));
    this.element = el("div", { class: "queue dicom-admin" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("dicom.title") })),
        this.makeForm(), this.notice, this.error,
        table(t("dicom.title"), TEXT.peerColumns(), this.peers, "peer-list")),
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("dicom.jobs_title") }), this.requeueAll),
        table(t("dicom.jobs_title"), TEXT.jobColumns(), this.jobRows, "job-list")));
  }

  makeForm() {
    const ae = el("input", { name: "ae_title", required: true, maxlength: 16, autocomplete: "off", size: 16 });
    const networks = el("input", { name: "networks", required: true, autocomplete: "off", size: 30 });
    const sha256 = el("input", { name: "tls_client_sha256", autocomplete: "off", size: 40 });
    const maxMib = el("input", { name: "max_mib", type: "number", min: 1, step: "any", size: 8 });
    const maxAssociations = el("input", { name: "max_associations", type: "number", min: 1, max: 64, size: 4 });
    /** @param {string} text @param {HTMLElement} control */
    const field = (text, control) => el("label", { class: "field" }, el("span", { text }), control);
    const form = el("form", { class: "create-peer", "data-testid": "create-peer", novalidate: true },
      field(t("dicom.ae_title"), ae), field(t("dicom.site"), this.siteSelect), field(t("dicom.networks"), networks),
      field(t("dicom.sha256"), sha256), field(t("dicom.max_mib"), maxMib), field(t("dicom.max_associations"), maxAssociations),
      el("button", { type: "submit", class: "primary", text: t("dicom.add") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const peer = peerFromForm({ ae_title: ae.value, site_id: this.siteSelect.value, networks: networks.value,
        sha256: sha256.value, max_mib: maxMib.value, max_associations: maxAssociations.value });
      void this.act(async () => {
        const made = await createPeer(this.api, peer);
        form.reset();
        return TEXT.added(made.ae_title);
      });
    });
    return form;
  }

  /** Run an action; show what it did or its refusal (message and code), then reload. @param {() => Promise<string|void>} action */
  async act(action) {
    showError(this.error, null);
    this.notice.hidden = true;
    try {
      const said = await action();
      if (said) {
        this.notice.textContent = said;
        this.notice.hidden = false;
      }
    } catch (err) {
      showError(this.error, asError(err));
    }
    await this.refresh();
  }

  async refresh() {
    let peers;
    try {
      [peers, this.sites, this.jobs] = await Promise.all([listPeers(this.api), listSites(this.api), failedJobs(this.api)]);
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    const chosen = this.siteSelect.value;
    this.siteSelect.replaceChildren(...this.sites.map((s) => el("option", { value: s.id, text: `${s.code} · ${s.name}` })));
    if (chosen) this.siteSelect.value = chosen;
    this.peers.replaceChildren(...(peers.length ? peers.map((p) => this.peerRow(p))
      : [el("tr", { class: "empty" }, el("td", { colspan: TEXT.peerColumns().length, text: t("dicom.no_peers") }))]));
    this.jobRows.replaceChildren(...(this.jobs.length ? this.jobs.map((j) => this.jobRow(j))
      : [el("tr", { class: "empty" }, el("td", { colspan: TEXT.jobColumns().length, text: t("dicom.no_jobs") }))]));
    this.requeueAll.disabled = this.jobs.length === 0;
  }

  /** @param {string} siteId */
  siteCode(siteId) {
    return this.sites.find((s) => s.id === siteId)?.code ?? siteId;
  }

  /** @param {DicomPeer} p */
  peerRow(p) {
    const open = p.networks.some((n) => ANYWHERE.has(n));
    return el("tr", { "data-ae": p.ae_title, class: p.enabled ? "peer" : "peer disabled" },
      el("td", { "data-field": "ae_title", text: p.ae_title }),
      el("td", { "data-field": "site", text: this.siteCode(p.site_id) }),
      el("td", { "data-field": "networks", class: open ? "warn" : null }, p.networks.join(", "),
        open ? el("div", { class: "notice", text: t("dicom.open_to_all") }) : null),
      el("td", { "data-field": "certificate", class: "fingerprint", title: p.tls_client_subject ?? "",
        text: p.tls_client_sha256 ?? t("dicom.no_certificate") }),
      el("td", { "data-field": "limits", text: TEXT.limits(p) }),
      el("td", { "data-field": "state", text: p.enabled ? t("dicom.enabled") : t("dicom.disabled") }),
      el("td", { class: "actions" }, p.enabled
        ? el("button", { type: "button", "data-action": "disable", text: t("dicom.disable"), onclick: () => {
          if (confirm(TEXT.confirmDisable(p.ae_title))) void this.act(async () => void (await setPeerEnabled(this.api, p.id, false)));
        } })
        : el("button", { type: "button", "data-action": "enable", text: t("dicom.enable"),
          onclick: () => void this.act(async () => void (await setPeerEnabled(this.api, p.id, true))) })));
  }

  /** @param {ForwardJob} j */
  jobRow(j) {
    return el("tr", { "data-job": j.id },
      el("td", { class: "numeric", text: String(j.id) }),
      el("td", { "data-field": "sop_uid", class: "uid", text: j.sop_uid }),
      el("td", { "data-field": "study_uid", class: "uid", text: j.study_uid }),
      el("td", { "data-field": "site", text: this.siteCode(j.site_id) }),
      el("td", { "data-field": "destination", text: j.destination }),
      el("td", { class: "numeric", "data-field": "attempts", text: String(j.attempts) }),
      el("td", { "data-field": "last_error", class: "muted", text: j.last_error ?? "" }),
      el("td", { class: "actions" }, el("button", { type: "button", "data-action": "requeue", text: t("dicom.requeue"),
        onclick: () => void this.act(async () => TEXT.requeued([await requeueJob(this.api, j.id)].length)) })));
  }
}
