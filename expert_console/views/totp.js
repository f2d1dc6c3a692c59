// @ts-check
// Enrolling the TOTP second factor: the password, then the QR code (and the otpauth URI as text, for apps that
// take it typed or pasted), then the first 6-digit code from the app.

import { t } from "../i18n.js";
import { beginTotp, confirmTotp } from "../accounts.js";
import { asError, el, showError } from "./dom.js";


/**
 * @param {{api: import("../api.js").Api, password?: string|undefined, forced?: boolean,
 *   onDone: (user: import("../api.js").User) => void}} options `password`: already known, not asked again
 * @returns {HTMLElement}
 */
export function totpEnrolment({ api, password, forced = false, onDone }) {
  const error = el("p", { class: "error", "data-testid": "totp-error", role: "alert", hidden: true });
  const body = el("div", { class: "totp-step" });
  const panel = el("section", { class: "totp-enrolment", "data-testid": "totp-enrolment" },
    forced ? el("h2", { text: t("totp.title") }) : null, forced ? el("p", { class: "notice", text: t("totp.forced_note") }) : null,
    body, error);

  /** @param {string} known */
  const begin = async (known) => {
    showError(error, null);
    try {
      const enrolment = await beginTotp(api, known);
      showCode(enrolment);
    } catch (err) {
      showError(error, asError(err));
    }
  };

  /** @param {import("../accounts.js").TotpEnrolment} enrolment */
  const showCode = (enrolment) => {
    const code = el("input", { name: "totp_code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6 });
    const submit = el("button", { type: "submit", class: "primary", text: t("totp.confirm") });
    const form = el("form", { novalidate: true },
      el("p", { text: t("totp.scan") }),
      el("img", { class: "totp-qr", alt: t("totp.qr_alt"), src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(enrolment.qr_svg)}` }),
      el("p", {}, el("span", { class: "muted", text: `${t("totp.key")}: ` }), el("code", { "data-testid": "totp-secret", text: enrolment.secret })),
      el("p", {}, el("code", { class: "totp-uri", "data-testid": "totp-uri", text: enrolment.uri })),
      el("label", { class: "field" }, el("span", { text: t("totp.code") }), code),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(error, null);
      submit.disabled = true;
      try {
        onDone(await confirmTotp(api, code.value.trim()));
      } catch (err) {
        showError(error, asError(err));
        code.value = "";
        code.focus();
      } finally {
        submit.disabled = false;
      }
    });
    body.replaceChildren(form);
    code.focus();
  };

  if (password !== undefined) {
    void begin(password);
  } else {
    const input = el("input", { name: "password", type: "password", autocomplete: "current-password" });
    const form = el("form", { novalidate: true },
      el("label", { class: "field" }, el("span", { text: t("totp.password") }), input),
      el("button", { type: "submit", class: "primary", text: t("totp.start") }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void begin(input.value);
    });
    body.replaceChildren(form);
  }
  return panel;
}
