// @ts-check
// The admin's sites page (#/sites): every site of the district (community centres, the regional centre, partner
// hospitals) with its settings ("one policy per hospital": kind, recording of live sessions, thyroid scoring
// system, its own turnaround targets), the header of its printed reports (name, address, phone, logo) and its edge
// devices (register, rotate the credential, revoke). A new device's credential is shown once.

import { formatDateTime, t } from "../i18n.js";
import {
  PRIORITIES, SITE_KINDS, TARGET_MODALITIES, THYROID_SYSTEMS, createSite, getHeader, listDevices, listSites,
  logoUrl, ownTarget, registerDevice, removeLogo, revokeDevice, rotateDevice, setHeader, setKind, setLogo,
  setRecording, setThyroidSystem, setTurnaround, turnaroundFromGrid,
} from "../sites.js";
import { asError, el, showError } from "./dom.js";

/**
 * @typedef {import("../api.js").Api} Api
 * @typedef {import("../api.js").User} User
 * @typedef {import("../sites.js").AdminSite} AdminSite
 * @typedef {import("../sites.js").Device} Device
 * @typedef {import("../sites.js").SiteKind} SiteKind
 * @typedef {import("../sites.js").Header} Header
 * @typedef {import("../sites.js").ThyroidSystem} ThyroidSystem
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
    /** Bumped when a logo changes, so that the page shows the new one. */
    this.logoVersion = Date.now();
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
   * Run an action, reload, then show what it did or its refusal (after the reload: what the page shows is then
   * the state the message speaks of).
   * @param {() => Promise<string|void>} action
   */
  async act(action) {
    showError(this.error, null);
    this.notice.hidden = true;
    this.notice.textContent = "";
    /** @type {string|void} */
    let said = undefined;
    let failure = null;
    try {
      said = await action();
    } catch (err) {
      failure = asError(err);
    }
    await this.refresh();
    if (failure) showError(this.error, failure);
    else if (said) {
      this.notice.textContent = said;
      this.notice.hidden = false;
    }
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
    let sites, devices, headers;
    try {
      [sites, devices] = await Promise.all([listSites(this.api), listDevices(this.api)]);
      headers = await Promise.all(sites.map((site) => getHeader(this.api, site.id)));
    } catch (err) {
      if (!this.stopped) showError(this.error, asError(err));
      return;
    }
    if (this.stopped) return;
    const open = new Set([...this.list.querySelectorAll("details[open]")].map((d) => /** @type {HTMLElement} */ (d).dataset.site));
    this.list.replaceChildren(...sites.map((site, i) =>
      this.siteCard(site, headers[i], devices.filter((d) => d.site_id === site.id), open.has(site.id))));
  }

  /** @param {AdminSite} site @param {Header|undefined} header @param {Device[]} devices @param {boolean} open */
  siteCard(site, header, devices, open) {
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
    const thyroid = el("select", { name: "thyroid_system", "aria-label": t("admin.sites.thyroid_system") },
      THYROID_SYSTEMS.map((system) => el("option", { value: system, selected: system === site.thyroid_system,
        text: t(`admin.thyroid.${system}`) })));
    thyroid.addEventListener("change", () => void this.act(async () => {
      await setThyroidSystem(this.api, site.id, /** @type {ThyroidSystem} */ (thyroid.value));
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
        field("kind", kind), field("thyroid_system", thyroid),
        el("label", { class: "field inline" }, recording, el("span", { text: t("admin.sites.recording") }))),
      header ? this.headerForm(site, header) : null,
      this.targetsForm(site),
      this.devicesPanel(site, devices));
  }

  /** The header of the site's printed reports: name, address, phone and logo.
   * @param {AdminSite} site @param {Header} header */
  headerForm(site, header) {
    const name = el("input", { name: "header_name", required: true, maxlength: 200, value: header.name, size: 30 });
    const address = el("input", { name: "address", maxlength: 300, value: header.address, size: 40 });
    const phone = el("input", { name: "phone", maxlength: 40, value: header.phone, size: 16 });
    const form = el("form", { class: "site-header", "data-testid": "site-header", novalidate: true },
      el("h3", { text: t("admin.header.title") }),
      el("p", { class: "hint", text: t("admin.header.hint") }),
      field("name", name), field("address", address), field("phone", phone),
      el("button", { type: "submit", text: t("admin.header.save") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.act(async () => {
        await setHeader(this.api, site.id, { name: name.value.trim(), address: address.value.trim(),
          phone: phone.value.trim() });
        return t("admin.sites.saved", { name: name.value.trim() });
      });
    });
    const file = el("input", { type: "file", name: "logo", accept: "image/png,image/jpeg",
      "aria-label": t("admin.header.logo") });
    file.addEventListener("change", () => {
      const chosen = file.files?.[0];
      if (!chosen) return;
      void this.act(async () => {
        await setLogo(this.api, site.id, chosen);
        this.logoVersion += 1;
        return t("admin.header.logo_saved", { name: site.name });
      });
    });
    const logo = el("div", { class: "site-logo", "data-testid": "site-logo" },
      el("span", { text: t("admin.header.logo") }),
      header.logo
        ? el("img", { src: logoUrl(site.id, this.logoVersion), alt: t("admin.header.logo_of", { name: site.name }),
          height: 48 })
        : el("span", { class: "muted", text: t("admin.header.no_logo") }),
      file,
      header.logo
        ? el("button", { type: "button", "data-action": "remove-logo", text: t("admin.header.remove_logo"),
          onclick: () => void this.act(async () => {
            await removeLogo(this.api, site.id);
            return t("admin.header.logo_removed", { name: site.name });
          }) })
        : null);
    return el("div", { class: "site-header-panel" }, form, logo);
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
