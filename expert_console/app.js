// @ts-check
// The single-page app: hash routes (#/login, #/, #/c/<id>[?observe=1], #/queue[?filters], #/studies/<id>,
// #/recordings[?filters], #/recordings/<id>, #/qc[?filters], #/audit[?filters], #/accounts (admins), #/patients
// (registrars), #/grants[?patient=] (registrars, admins), #/dicom (admins), #/orders, #/sites (admins), #/duty (admins,
// experts), #/account, #/results[?state=] and #/results/<report id> (community centres)), the
// header with its navigation, the critical-findings banner (sonographers, admins), the signed-in user. A restricted
// account (a password to change, an admin's TOTP to enrol) is kept on the sign-in page until it has done what it must.
// The language: the browser's before sign-in (i18n.js initialLanguage), the signed-in person's own choice after
// (users.language); the header's switch changes it, keeps it with the account and redraws the page (docs/I18N.md).
// Test hooks: window.teleus = {live, api, user, alerts}; `live` is the current LiveSession or null, `alerts` the
// expert's DutyAlerts (alerts.js) or null.

import { ALERT_ROLES, DutyAlerts, ReportAlerts } from "./alerts.js";
import { Api } from "./api.js";
import { ChangeFeed } from "./events.js";
import { initialLanguage, isLanguage, language, onLanguageChange, personName, setLanguage, t } from "./i18n.js";
import { mountAccount } from "./views/account.js";
import { mountAccounts } from "./views/accounts.js";
import { mountAlertsBell } from "./views/alertsbell.js";
import { mountAudit } from "./views/audit.js";
import { mountDashboard } from "./views/dashboard.js";
import { mountDicom } from "./views/dicom.js";
import { mountDuty } from "./views/duty.js";
import { el, setText } from "./views/dom.js";
import { mountFindingsBanner } from "./views/findings.js";
import { mountGrants } from "./views/grants.js";
import { mountHome } from "./views/home.js";
import { roleLabel } from "./views/labels.js";
import { mountLive } from "./views/live.js";
import { mountLogin } from "./views/login.js";
import { mountOrders } from "./views/orders.js";
import { openPasswordDialog } from "./views/password.js";
import { mountPatients } from "./views/patients.js";
import { mountQueue } from "./views/queue.js";
import { mountRecordings } from "./views/recordings.js";
import { mountResult, mountResults } from "./views/results.js";
import { mountReview } from "./views/review.js";
import { mountSites } from "./views/sites.js";
import { mountStudy } from "./views/viewer.js";

/** Roles that see the reading queue link (sonographers reach their site's studies through the API only). */
const QUEUE_ROLES = ["expert", "trainer", "admin"];
/** Roles that see the recorded sessions (trainer review) and the QC dashboard. */
const QC_ROLES = ["expert", "trainer", "admin"];
/** Roles that see the audit trail (the server refuses everyone else). */
const AUDIT_ROLES = ["admin"];
/** Roles that decide possible matches and split links (the server refuses everyone else, admins too). */
const REGISTRY_ROLES = ["registrar"];
/** Roles that make and revoke access grants. */
const GRANT_ROLES = ["registrar", "admin"];
/** Roles that manage DICOM peers and re-queue failed forwards. */
const DICOM_ROLES = ["admin"];
/** Roles that keep the sites, their settings and their edge devices. */
const SITE_ROLES = ["admin"];
/** Roles that see the on-duty roster (admins keep it; the server lets anyone signed in read it). */
const DUTY_ROLES = ["admin", "expert"];
/** Roles of a community centre that look up their site's results (docs/RESULTS.md). */
const RESULTS_ROLES = ["sonographer", "doctor"];
/** Roles that acknowledge critical findings for a referring centre. */
const FINDINGS_ROLES = ["sonographer", "admin"];
/** Roles that see orders: the community's doctors and sonographers order, the centre's experts follow them. */
const ORDER_ROLES = ["doctor", "sonographer", "expert"];

const api = new Api();
/** The server's change notices, one stream shared by every page. */
const events = new ChangeFeed();
/**
 * @typedef {{live: import("./session.js").LiveSession|null, api: Api, events: ChangeFeed,
 *   user: import("./api.js").User|null, alerts: DutyAlerts|null, reportAlerts: ReportAlerts|null}} TestHooks
 * @typedef {Window & typeof globalThis & {teleus: TestHooks}} HookedWindow the window once this module set the hooks
 */
/** @type {TestHooks} */
const teleus = { live: null, api, events, user: null, alerts: null, reportAlerts: null };
Object.assign(window, { teleus });

const main = /** @type {HTMLElement} */ (document.getElementById("app"));
const userLabel = /** @type {HTMLElement} */ (document.querySelector("[data-testid=current-user]"));
const logoutButton = /** @type {HTMLButtonElement} */ (document.querySelector("[data-action=logout]"));
const passwordButton = /** @type {HTMLButtonElement} */ (document.querySelector("[data-action=change-password]"));
const accountLink = /** @type {HTMLElement} */ (document.querySelector("[data-nav=account]"));
const accountsLink = /** @type {HTMLElement} */ (document.querySelector("[data-nav=accounts]"));
const navigation = /** @type {HTMLElement} */ (document.querySelector(".topnav"));
const queueLink = /** @type {HTMLElement} */ (document.querySelector("[data-nav=queue]"));
const qcLinks = /** @type {HTMLElement[]} */ ([...document.querySelectorAll("[data-nav=recordings], [data-nav=qc]")]);
const auditLink = /** @type {HTMLElement} */ (document.querySelector("[data-nav=audit]"));
/** The links shown only to some roles, each with those roles. @type {[HTMLElement, string[]][]} */
const roleLinks = [
  [/** @type {HTMLElement} */ (document.querySelector("[data-nav=patients]")), REGISTRY_ROLES],
  [/** @type {HTMLElement} */ (document.querySelector("[data-nav=results]")), RESULTS_ROLES],
  [/** @type {HTMLElement} */ (document.querySelector("[data-nav=grants]")), GRANT_ROLES],
  [/** @type {HTMLElement} */ (document.querySelector("[data-nav=dicom]")), DICOM_ROLES],
  [/** @type {HTMLElement} */ (document.querySelector("[data-nav=duty]")), DUTY_ROLES],
  [/** @type {HTMLElement} */ (document.querySelector("[data-nav=sites]")), SITE_ROLES],
  [/** @type {HTMLElement} */ (document.querySelector("[data-nav=orders]")), ORDER_ROLES],
];
const findingsBanner = /** @type {HTMLElement} */ (document.getElementById("findings-banner"));
/** @type {{userId: string, stop: () => void}|null} */
let banner = null;
const dutyBell = /** @type {HTMLElement} */ (document.querySelector("[data-testid=duty-bell]"));
/** The alerts of the expert signed in, and their header bell. @type {{userId: string, stopBell: () => void}|null} */
let duty = null;

/** @type {(() => void)|null} */
let unmount = null;
let routeToken = 0;
/** Where to go after signing in (the page someone asked for before being sent to #/login). */
let afterLogin = "#/";
/** @type {string|undefined} */
let loginNotice;

/**
 * @param {string} hash
 * @returns {{path: string, query: URLSearchParams}}
 */
export function parseHash(hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?", 2);
  return { path: path || "/", query: new URLSearchParams(search) };
}

/** @param {string} hash */
function navigate(hash) {
  if (location.hash === hash) void route();
  else location.hash = hash;
}

api.onUnauthenticated = () => {
  const { path } = parseHash(location.hash);
  // not signed in yet: the router itself sends the visitor to the login page
  if (path === "/login" || !teleus.user) return;
  afterLogin = location.hash || "#/";
  loginNotice = t("login.session_ended");
  events.close();
  api.user = null;
  teleus.user = null;
  navigate("#/login");
};

api.onRestricted = () => {
  if (parseHash(location.hash).path !== "/login") navigate("#/login");
};

/** @param {import("./api.js").User|null} user */
function showUser(user) {
  teleus.user = user;
  userLabel.replaceChildren();
  if (user) {
    userLabel.append(
      el("span", { class: "user-name", text: personName(user.name) }),
      el("span", { class: "user-role", "data-role": user.role, text: roleLabel(user.role) }),
    );
  }
  logoutButton.hidden = !user;
  passwordButton.hidden = !user;
  accountLink.hidden = !user;
  accountsLink.hidden = user?.role !== "admin";
  document.body.dataset.role = user?.role ?? "";
  navigation.hidden = !user;
  queueLink.hidden = !user || !QUEUE_ROLES.includes(user.role);
  for (const link of qcLinks) link.hidden = !user || !QC_ROLES.includes(user.role);
  auditLink.hidden = !user || !AUDIT_ROLES.includes(user.role);
  for (const [link, roles] of roleLinks) link.hidden = !user || !roles.includes(user.role);
  const wantsBanner = user && FINDINGS_ROLES.includes(user.role);
  if (banner && (!wantsBanner || banner.userId !== user?.id)) {
    banner.stop();
    banner = null;
  }
  if (wantsBanner && !banner) banner = { userId: user.id, stop: mountFindingsBanner(findingsBanner, { api, user, events }) };
  showDuty(user);
}

/** Alerts to live requests for an expert (on duty or not: the roster decides, alerts.js asks it), and the
 * permission to notify for those told of critical findings (findings.js); the bell is drawn again with every call,
 * so that it speaks the language just chosen.
 * @param {import("./api.js").User|null} user */
function showDuty(user) {
  const onDuty = Boolean(user && ALERT_ROLES.includes(user.role));
  const awaitsReports = Boolean(user && RESULTS_ROLES.includes(user.role));
  const wanted = user && (onDuty || awaitsReports || FINDINGS_ROLES.includes(user.role));
  if (duty && (!wanted || duty.userId !== user?.id)) {
    duty.stopBell();
    teleus.alerts?.stop();
    teleus.alerts = null;
    teleus.reportAlerts?.stop();
    teleus.reportAlerts = null;
    duty = null;
  }
  if (!wanted) return;
  if (onDuty && !teleus.alerts) {
    teleus.alerts = new DutyAlerts(api, events, { navigate });
    teleus.alerts.start();
  }
  if (awaitsReports && !teleus.reportAlerts) {
    teleus.reportAlerts = new ReportAlerts(api, events, { navigate });
    teleus.reportAlerts.start();
  }
  duty?.stopBell();
  duty = { userId: user.id, stopBell: mountAlertsBell(dutyBell, teleus.alerts) };
}

/** @param {string} path */
function markNavigation(path) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    const target = /** @type {HTMLElement} */ (link).dataset.nav;
    const current = target === "queue" ? path === "/queue" || path.startsWith("/studies/")
      : target === "recordings" ? path === "/recordings" || path.startsWith("/recordings/")
      : target === "results" ? path === "/results" || path.startsWith("/results/")
        : target && ["qc", "audit", "accounts", "account", "patients", "grants", "dicom", "orders"].includes(target)
          ? path === `/${target}`
          : path === "/";
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const token = ++routeToken;
  unmount?.();
  unmount = null;
  main.replaceChildren();
  const { path, query } = parseHash(location.hash);

  if (path === "/login") {
    showUser(null);
    if (!api.user) {
      try {
        await api.me(); // a restricted session (a reload) resumes at the step it must take
      } catch {
        // not signed in: the form
      }
      if (token !== routeToken) return;
      if (api.user && !api.restriction) api.user = null; // signed in already: the form all the same
    }
    const notice = loginNotice;
    loginNotice = undefined;
    unmount = mountLogin(main, {
      api,
      notice,
      onSignedIn: (user) => {
        showUser(user);
        const target = afterLogin;
        afterLogin = "#/";
        navigate(target.startsWith("#/login") ? "#/" : target);
      },
    });
    return;
  }

  if (!api.user) {
    setText(main, "");
    main.append(el("p", { class: "muted centre", text: t("common.loading") }));
    try {
      await api.me();
    } catch {
      if (token !== routeToken) return;
      afterLogin = location.hash || "#/";
      navigate("#/login");
      return;
    }
    if (token !== routeToken) return;
    main.replaceChildren();
  }
  if (api.restriction) {
    navigate("#/login");
    return;
  }
  const user = /** @type {import("./api.js").User} */ (api.user);
  if (isLanguage(user.language) && user.language !== language()) {
    await setLanguage(user.language); // the person's own choice wins over this browser's
    if (token !== routeToken) return;
  }
  showUser(user);
  markNavigation(path);

  const live = path.match(/^\/c\/([^/]+)$/);
  const study = path.match(/^\/studies\/([^/]+)$/);
  const recording = path.match(/^\/recordings\/([^/]+)$/);
  const result = path.match(/^\/results\/([^/]+)$/);
  if (path === "/queue") {
    unmount = mountQueue(main, { api, user, events, query, navigate });
  } else if (study) {
    unmount = mountStudy(main, { api, user, events, studyId: decodeURIComponent(study[1]), navigate });
  } else if (path === "/results") {
    unmount = mountResults(main, { api, user, events, query, navigate });
  } else if (result) {
    unmount = mountResult(main, { api, user, reportId: decodeURIComponent(result[1]), navigate });
  } else if (path === "/recordings") {
    unmount = mountRecordings(main, { api, user, query, navigate });
  } else if (recording) {
    unmount = mountReview(main, { api, user, recordingId: decodeURIComponent(recording[1]), navigate });
  } else if (path === "/qc") {
    unmount = mountDashboard(main, { api, user, query, navigate });
  } else if (path === "/audit") {
    unmount = mountAudit(main, { api, user, query, navigate });
  } else if (path === "/accounts" && user.role === "admin") {
    unmount = mountAccounts(main, { api, user });
  } else if (path === "/patients") {
    unmount = mountPatients(main, { api, user });
  } else if (path === "/grants") {
    unmount = mountGrants(main, { api, user, query });
  } else if (path === "/dicom") {
    unmount = mountDicom(main, { api, user });
  } else if (path === "/sites") {
    unmount = mountSites(main, { api, user });
  } else if (path === "/duty") {
    unmount = mountDuty(main, { api, user, events });
  } else if (path === "/orders") {
    unmount = mountOrders(main, { api, user, events });
  } else if (path === "/account") {
    unmount = mountAccount(main, { api, user });
  } else if (live) {
    unmount = mountLive(main, {
      api,
      user,
      consultationId: decodeURIComponent(live[1]),
      observe: query.get("observe") === "1",
      navigate,
    });
  } else {
    if (path !== "/") {
      navigate("#/");
      return;
    }
    unmount = mountHome(main, { api, user, events, navigate });
  }
}

passwordButton.addEventListener("click", () => openPasswordDialog(api));

logoutButton.addEventListener("click", async () => {
  unmount?.();
  unmount = null;
  try {
    await api.logout();
  } catch {
    // signed out locally either way
  }
  events.close();
  showUser(null);
  afterLogin = "#/";
  navigate("#/login");
});

/** The page's own words (index.html's data-i18n attributes), the title and the switch, in the current language. */
function translatePage() {
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(/** @type {string} */ (/** @type {HTMLElement} */ (node).dataset.i18n));
  }
  for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(/** @type {string} */ (/** @type {HTMLElement} */ (node).dataset.i18nAriaLabel)));
  }
  for (const button of languageButtons) button.setAttribute("aria-pressed", String(button.dataset.language === language()));
}

const languageButtons = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll("[data-language]")]);
for (const button of languageButtons) {
  button.addEventListener("click", async () => {
    const chosen = button.dataset.language;
    if (!isLanguage(chosen) || chosen === language()) return;
    await setLanguage(chosen);
    if (api.user) {
      try {
        await api.setLanguage(chosen); // remembered for this person, on every browser
      } catch (err) {
        console.warn("the language is not kept with the account", err);
      }
    }
    // a live session keeps running: its page takes the new words on its next visit; any other page redraws
    if (!teleus.live) void route();
  });
}

onLanguageChange(() => {
  translatePage();
  banner?.stop(); // the critical-findings banner lives outside the routes: drawn again in the new words
  banner = null;
  if (teleus.user) showUser(teleus.user);
});


window.addEventListener("hashchange", () => void route());

async function start() {
  try {
    await setLanguage(initialLanguage());
  } catch (err) {
    console.error("no catalog", err); // the page still works, showing the catalog keys
  }
  translatePage();
  void route();
}

void start();
