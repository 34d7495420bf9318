// The console shell: session check, login form, navigation and hash routing.
// Each page gets a `ctx` whose `alive()` turns false once the user navigates away, so pollers
// and late responses of a left page stop touching the DOM.

import { ApiError, request, setUnauthorizedHandler } from "./api.js";
import { clear, h, message } from "./dom.js";
import { connectorsPage } from "./pages/connectors.js";
import { editConnectorPage } from "./pages/connector_edit.js";
import { newConnectorPage } from "./pages/connector_form.js";
import { detailPage } from "./pages/detail.js";
import { sharesPage } from "./pages/shares.js";
import { auditPage } from "./pages/audit.js";
import { takeFlash } from "./pages/common.js";

const root = document.getElementById("app");
let session = null; // {name, role?} once signed in (role "readonly": look, change nothing)
let generation = 0;

const ROUTES = [
  [/^connectors$/, () => connectorsPage],
  [/^connectors\/new(?:\/(smb|sharepoint))?$/, (m) => (ctx) => newConnectorPage(ctx, m[1] || "smb")],
  [/^connectors\/([^/]+)\/edit$/, (m) => (ctx) => editConnectorPage(ctx, decodeURIComponent(m[1]))],
  [/^connectors\/([^/]+)(?:\/(overview|logs|conflicts|identities|held))?$/,
    (m) => (ctx) => detailPage(ctx, decodeURIComponent(m[1]), m[2] || "overview")],
  [/^shares$/, () => sharesPage],
  [/^audit$/, () => auditPage],
];

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  return { path: path || "connectors", params: new URLSearchParams(query) };
}

export function go(path, params) {
  const query = params && [...params].length ? `?${params}` : "";
  location.hash = `#/${path}${query}`;
}

function showLogin(error) {
  session = null;
  document.body.classList.remove("readonly");
  generation += 1;
  const errorBox = h("div", { id: "login-error" });
  if (error) errorBox.append(message("error", error));
  const name = h("input", { id: "login-name", name: "name", required: true, autocomplete: "name",
    placeholder: "you@example.com" });
  const token = h("input", { id: "login-token", name: "token", type: "password", required: true,
    autocomplete: "current-password" });
  const form = h("form", { class: "login", onsubmit: async (ev) => {
    ev.preventDefault();
    clear(errorBox);
    try {
      await request("POST", "/session", { token: token.value, name: name.value.trim() },
        { quiet401: true });
    } catch (err) {
      const text = err instanceof ApiError && err.status === 401
        ? "Wrong admin token." : `Sign-in failed: ${err.message}`;
      errorBox.append(message("error", text));
      token.value = "";
      return;
    }
    await start();
  } },
  h("h1", {}, "ScaiDrive Connectors"),
  h("p", { class: "hint" }, "Sign in with the admin token (or the read-only token, to look only)."),
  h("label", { for: "login-name" }, "Your name (for the audit log)"), name,
  h("label", { for: "login-token" }, "Admin token"), token,
  errorBox,
  h("button", { type: "submit", class: "primary" }, "Sign in"));
  clear(root, form);
  name.focus();
}

async function signOut() {
  try { await request("DELETE", "/session", undefined, { quiet401: true }); } catch { /* gone */ }
  showLogin();
}

function layout(current) {
  const link = (path, text) => h("a", { href: `#/${path}`,
    class: current.startsWith(path) ? "active" : "" }, text);
  const main = h("main", { id: "page" });
  const flash = takeFlash();
  clear(root,
    h("header", {},
      h("span", { class: "brand" }, "ScaiDrive Connectors"),
      h("nav", {}, link("connectors", "Connectors"), link("shares", "Shares"),
        link("audit", "Audit log")),
      h("span", { class: "who" }, "Signed in as ", h("strong", { id: "who" }, session.name),
        session.role === "readonly" ? h("span", { id: "readonly-badge" }, " (read-only)") : null,
        h("button", { class: "link", onclick: signOut }, "Sign out"))),
    flash ? h("div", { class: "flash" }, message(flash.kind, flash.text)) : null,
    main);
  return main;
}

async function render() {
  if (!session) return;
  const mine = ++generation;
  const { path, params } = parseHash();
  const main = layout(path);
  const ctx = {
    main, params, session, go,
    alive: () => mine === generation && session !== null,
    fail: (err) => { if (mine === generation) clear(main, message("error", err.message)); },
  };
  for (const [re, make] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    try { await make(m)(ctx); } catch (err) { if (!(err instanceof ApiError && err.status === 401)) ctx.fail(err); }
    return;
  }
  clear(main, message("error", `No page at #/${path}.`));
}

async function start() {
  try {
    session = await request("GET", "/session", undefined, { quiet401: true });
    // A read-only session: style.css hides every control that would change something (the
    // API refuses those with 403 anyway; hiding them just spares the user the error).
    document.body.classList.toggle("readonly", session.role === "readonly");
  } catch (err) {
    showLogin(err instanceof ApiError && err.status === 401 ? null : err.message);
    return;
  }
  await render();
}

setUnauthorizedHandler(() => { if (session) showLogin("Your session ended: sign in again."); });
window.addEventListener("hashchange", render);
start();
