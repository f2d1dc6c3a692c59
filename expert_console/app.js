// The single-page app: hash routes (#/login, #/, #/c/<id>[?observe=1]), the header, the signed-in user.
// Test hooks: window.teleus = {live, api, user}; `live` is the current LiveSession or null.

import { Api } from "./api.js";
import { el, setText } from "./views/dom.js";
import { mountHome } from "./views/home.js";
import { mountLive } from "./views/live.js";
import { mountLogin } from "./views/login.js";

const api = new Api();
/** @type {{live: import("./session.js").LiveSession|null, api: Api, user: import("./api.js").User|null}} */
const teleus = { live: null, api, user: null };
/** @type {any} */ (window).teleus = teleus;

const main = /** @type {HTMLElement} */ (document.getElementById("app"));
const userLabel = /** @type {HTMLElement} */ (document.querySelector("[data-testid=current-user]"));
const logoutButton = /** @type {HTMLButtonElement} */ (document.querySelector("[data-action=logout]"));

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
  loginNotice = "Your session has ended: please sign in again.";
  api.user = null;
  teleus.user = null;
  navigate("#/login");
};

/** @param {import("./api.js").User|null} user */
function showUser(user) {
  teleus.user = user;
  userLabel.replaceChildren();
  if (user) userLabel.append(el("span", { class: "user-name", text: user.name }), el("span", { class: "user-role", text: user.role }));
  logoutButton.hidden = !user;
  document.body.dataset.role = user?.role ?? "";
}

async function route() {
  const token = ++routeToken;
  unmount?.();
  unmount = null;
  main.replaceChildren();
  const { path, query } = parseHash(location.hash);

  if (path === "/login") {
    showUser(null);
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
    main.append(el("p", { class: "muted centre", text: "Loading…" }));
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
  const user = /** @type {import("./api.js").User} */ (api.user);
  showUser(user);

  const live = path.match(/^\/c\/([^/]+)$/);
  if (live) {
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
    unmount = mountHome(main, { api, user, navigate });
  }
}

logoutButton.addEventListener("click", async () => {
  unmount?.();
  unmount = null;
  try {
    await api.logout();
  } catch {
    // signed out locally either way
  }
  showUser(null);
  afterLogin = "#/";
  navigate("#/login");
});

window.addEventListener("hashchange", () => void route());
void route();
