// @ts-check
// The admin's sites page (#/sites): every site of the district (community centres, the regional centre, partner
// hospitals) with its settings ("one policy per hospital": kind, recording of live sessions, its own turnaround
// targets) and its edge devices (register, rotate the credential, revoke). A new device's credential is shown once.

import { formatDateTime, t } from "../i18n.js";
import {
  PRIORITIES, SITE_KINDS, TARGET_MODALITIES, createSite, listDevices, listSites, ownTarget, registerDevice,
  revokeDevice, rotateDevice, setKind, setRecording, setTurnaround, turnaroundFromGrid,
} from "../sites.js";
import { asError, el, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../sites.js").AdminSite} AdminSite
 * @typedef {import("../sites.js").Device} Device
 * @typedef {import("../sites.js").SiteKind} SiteKind
 */

/**
 * @param {HTMLElement} root
 * @param {{api: Api, user: User}} context
 * @returns {() => void} cleanup
 */
export function mountSites(root, { api }) {
  const page = new SitesPage(api);
  root.append(page.element);
  void page.refresh();
  return () => {
    page.stopped = true;
  };
}

/** @param {string} key @param {HTMLElement} control */
const field = (key, control) => el("label", { class: "field" }, el("span", { text: t(`admin.sites.${key}`) }), control);

/** @param {SiteKind} selected @param {string} name */
function kindSelect(selected, name) {
  return el("select", { name, "aria-label": t("admin.sites.kind") },
    SITE_KINDS.map((kind) => el("option", { value: kind, selected: kind === selected, text: t(`admin.kind.${kind}`) })));
}

class SitesPage {
  /** @param {Api} api */
  constructor(api) {
    this.api = api;
    this.stopped = false;
    this.error = el("p", { class: "error", role: "alert", "data-testid": "sites-error", hidden: true });
    this.notice = el("p", { class: "notice", role: "status", "data-testid": "sites-notice", hidden: true });
    this.credential = el("div", { class: "credential", "data-testid": "device-credential", hidden: true });
    this.list = el("div", { class: "site-list", "data-testid": "site-list" });
    this.element = el("div", { class: "queue sites-admin" },
      el("section", { class: "panel wide" },
        el("div", { class: "queue-head" }, el("h2", { text: t("admin.sites.title") })),
        this.makeCreateForm(), this.notice, this.credential, this.error, this.list));
  }

  makeCreateForm() {
    const code = el("input", { name: "code", required: true, maxlength: 32, autocomplete: "off", size: 16 });
    const name = el("input", { name: "name", required: true, maxlength: 200, autocomplete: "off", size: 30 });
    const kind = kindSelect("community", "kind");
    const form = el("form", { class: "create-site", "data-testid": "create-site", novalidate: true },
      field("code", code), field("name", name), field("kind", kind),
      el("button", { type: "submit", class: "primary", text: t("admin.sites.add") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.act(async () => {
        const made = await createSite(this.api, { code: code.value.trim(), name: name.value.trim(),
          kind: /** @type {SiteKind} */ (kind.value) });
        form.reset();
        return t("admin.sites.added", { name: made.name });
      });
    });
    return form;
  }

  /**
   * Run an action; show what it did or its refusal, then reload.
   * @param {() => Promise<string|void>} action
   */
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

  /** Show a device's new credential once, with how to use it. @param {string} device @param {string} credential */
  showCredential(device, credential) {
    this.credential.replaceChildren(
      el("strong", { text: t("admin.devices.credential_once", { name: device }) }),
      el("code", { "data-testid": "credential-value", text: credential }),
      el("span", { class: "hint", text: t("admin.devices.credential_hint") }));
    this.credential.hidden = false;
  }

  async refresh() {
    let sites, devices;
    try {
      [sites, devices] = await Promise.all([listSites(this.api), listDevices(this.api)]);
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    const open = new Set([...this.list.querySelectorAll("details[open]")].map((d) => /** @type {HTMLElement} */ (d).dataset.site));
    this.list.replaceChildren(...sites.map((site) =>
      this.siteCard(site, devices.filter((d) => d.site_id === site.id), open.has(site.id))));
  }

  /** @param {AdminSite} site @param {Device[]} devices @param {boolean} open */
  siteCard(site, devices, open) {
    const kind = kindSelect(site.kind, "site_kind");
    kind.addEventListener("change", () => void this.act(async () => {
      await setKind(this.api, site.id, /** @type {SiteKind} */ (kind.value));
      return t("admin.sites.saved", { name: site.name });
    }));
    const recording = el("input", { type: "checkbox", name: "recording", checked: site.recording_enabled });
    recording.addEventListener("change", () => void this.act(async () => {
      await setRecording(this.api, site.id, recording.checked);
      return t("admin.sites.saved", { name: site.name });
    }));
    const active = devices.filter((d) => !d.revoked).length;
    const summary = el("summary", {},
      el("strong", { text: site.name }), " ", el("span", { class: "muted", text: site.code }), " · ",
      el("span", { text: t(`admin.kind.${site.kind}`) }), " · ",
      el("span", { text: t("admin.devices.count", { count: active }) }));
    return el("details", { class: "site-card", "data-site": site.id, "data-testid": "site-card", open },
      summary,
      el("div", { class: "site-settings" },
        field("kind", kind),
        el("label", { class: "field inline" }, recording, el("span", { text: t("admin.sites.recording") }))),
      this.targetsForm(site),
      this.devicesPanel(site, devices));
  }

  /** The site's own targets, minutes by modality and priority; empty: the server's. @param {AdminSite} site */
  targetsForm(site) {
    /** @type {Record<string, Record<string, HTMLInputElement>>} */
    const inputs = {};
    const rows = TARGET_MODALITIES.map((modality) => {
      inputs[modality] = {};
      return el("tr", {}, el("th", { scope: "row", text: t(`admin.modality.${modality}`) }),
        PRIORITIES.map((priority) => {
          const input = el("input", { type: "text", inputmode: "numeric", size: 5, name: `${modality}.${priority}`,
            value: ownTarget(site.turnaround, modality, priority), placeholder: t("admin.targets.default"),
            "aria-label": t("admin.targets.cell", { modality: t(`admin.modality.${modality}`),
              priority: t(`admin.priority.${priority}`) }) });
          inputs[modality][priority] = input;
          return el("td", {}, input);
        }));
    });
    const form = el("form", { class: "targets", "data-testid": "site-targets", novalidate: true },
      el("h3", { text: t("admin.targets.title") }),
      el("p", { class: "hint", text: t("admin.targets.hint") }),
      el("table", { class: "targets-grid" },
        el("thead", {}, el("tr", {}, el("th", {}), PRIORITIES.map((p) => el("th", { text: t(`admin.priority.${p}`) })))),
        el("tbody", {}, rows)),
      el("button", { type: "submit", text: t("admin.targets.save") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const grid = Object.fromEntries(Object.entries(inputs).map(([modality, row]) =>
        [modality, Object.fromEntries(Object.entries(row).map(([priority, input]) => [priority, input.value]))]));
      const others = Object.fromEntries(Object.entries(site.turnaround).filter(([m]) => !TARGET_MODALITIES.includes(m)));
      void this.act(async () => {
        await setTurnaround(this.api, site.id, { ...others, ...turnaroundFromGrid(grid) });
        return t("admin.sites.saved", { name: site.name });
      });
    });
    return form;
  }

  /** @param {AdminSite} site @param {Device[]} devices */
  devicesPanel(site, devices) {
    const name = el("input", { name: "device_name", required: true, maxlength: 200, autocomplete: "off", size: 20 });
    const form = el("form", { class: "add-device", "data-testid": "add-device", novalidate: true },
      el("label", { class: "field" }, el("span", { text: t("admin.devices.name") }), name),
      el("button", { type: "submit", text: t("admin.devices.add") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.act(async () => {
        const made = await registerDevice(this.api, site.id, name.value.trim());
        this.showCredential(made.device.name, made.credential);
      });
    });
    const rows = devices.map((device) => el("tr", { "data-device": device.id },
      el("td", { text: device.name }),
      el("td", { text: t(device.revoked ? "admin.devices.revoked" : "admin.devices.active") }),
      el("td", { text: device.last_seen_at ? formatDateTime(device.last_seen_at) : t("admin.devices.never") }),
      el("td", {}, device.revoked ? null : [
        el("button", { type: "button", "data-action": "rotate-device", text: t("admin.devices.rotate"),
          onclick: () => {
            if (!confirm(t("admin.devices.confirm_rotate", { name: device.name }))) return;
            void this.act(async () => {
              const made = await rotateDevice(this.api, device.id);
              this.showCredential(made.device.name, made.credential);
            });
          } }),
        el("button", { type: "button", "data-action": "revoke-device", text: t("admin.devices.revoke"),
          onclick: () => {
            if (!confirm(t("admin.devices.confirm_revoke", { name: device.name }))) return;
            void this.act(async () => {
              await revokeDevice(this.api, device.id);
              return t("admin.devices.revoked_notice", { name: device.name });
            });
          } }),
      ])));
    const columns = ["name", "state", "last_seen"].map((key) => el("th", { text: t(`admin.devices.${key}`) }));
    return el("div", { class: "devices" },
      el("h3", { text: t("admin.devices.title") }),
      el("table", { class: "studies", "data-testid": "device-list", "aria-label": t("admin.devices.title") },
        el("thead", {}, el("tr", {}, columns, el("th", {}))),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 4, text: t("admin.devices.none") })))),
      form);
  }
}
