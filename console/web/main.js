// The console's entry: session, login (fn serve), app and environment pickers, and the panels
// by URL hash (#functions, #requests, …), each with its own cleanup when you leave it.
import { state, request, APIError } from "./api.js";
import { h, field, setError } from "./dom.js";
import * as functions from "./functions.js";
import * as requests from "./requests.js";
import * as data from "./data.js";
import * as ops from "./ops.js";
import * as code from "./code.js";

const panels = {
  functions: functions.functionsPanel, requests: requests.requestsPanel, logs: requests.logsPanel,
  data: data.dataPanel, users: data.usersPanel, hooks: data.hooksPanel,
  timers: ops.timersPanel, outbox: ops.outboxPanel, versions: ops.versionsPanel, code: code.codePanel,
};
const main = document.getElementById("main");
let cleanup = null;

function route() {
  if (!state.ready) return;
  const name = location.hash.slice(1) || "functions";
  const panel = panels[name] || panels.functions;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (cleanup) { try { cleanup(); } catch {} }
  cleanup = null;
  main.replaceChildren();
  main.dataset.panel = name;
  const ctl = new AbortController();
  const ret = panel(main, ctl.signal);
  cleanup = () => { ctl.abort(); if (typeof ret === "function") ret(); };
  Promise.resolve(ret).catch((e) => main.append(h("p", { class: "err", role: "alert" }, e.message)));
}

function pickers() {
  const where = document.getElementById("where");
  where.replaceChildren();
  if (state.mode === "serve" && state.role === "admin") {
    const sel = h("select", { id: "app-picker" }, state.apps.map((a) => h("option", { value: a.appId, selected: a.appId === state.app }, a.name)));
    sel.addEventListener("change", () => { state.app = sel.value; localStorage.setItem("fn.app", sel.value); route(); });
    where.append(h("label", { for: "app-picker", class: "muted" }, "App"), sel);
  } else if (state.mode === "serve") {
    where.append(h("span", { class: "badge" }, state.appName || state.app));
  }
  const env = h("select", { id: "env-picker" }, state.envs.map((e) => h("option", { value: e, selected: e === state.env }, e)));
  env.disabled = state.envs.length < 2;
  env.addEventListener("change", () => { state.env = env.value; localStorage.setItem("fn.env", env.value); route(); });
  where.append(h("label", { for: "env-picker", class: "muted" }, "Env"), env);
}

async function start(info) {
  Object.assign(state, { mode: info.mode, csrf: info.csrf || "", envs: info.envs, role: info.role, editor: info.editor });
  if (info.mode === "dev") {
    state.app = "-";
    state.env = "dev";
    document.getElementById("who").textContent = "fn dev";
  } else {
    document.getElementById("who").textContent = info.role === "admin" ? "admin" : "master key";
    document.getElementById("logout").hidden = false;
    if (info.role === "admin") {
      state.apps = await request("GET", "/__fn/apps");
      const saved = localStorage.getItem("fn.app");
      state.app = (state.apps.find((a) => a.appId === saved) || state.apps[0] || {}).appId || "";
    } else {
      state.app = info.app;
      state.appName = info.appName;
    }
    const savedEnv = localStorage.getItem("fn.env");
    state.env = info.envs.includes(savedEnv) ? savedEnv : info.envs[0];
  }
  document.getElementById("nav").hidden = false;
  pickers();
  state.ready = true;
  if (state.mode === "serve" && !state.app) {
    main.replaceChildren(h("p", {}, "No apps yet: create one with fn apps create."));
    return;
  }
  route();
}

function login(message) {
  state.ready = false;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("where").replaceChildren();
  const input = h("input", { type: "password", id: "login-token", autocomplete: "current-password", required: true });
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to fn serve"),
    h("p", { class: "muted" }, "Give the admin token (every app) or an app's master key (that app)."),
    field("Admin token or master key", input),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "login-submit" }, "Log in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const info = await request("POST", "/__fn/console/login", { token: input.value }, { noRelogin: true });
      input.value = "";
      await start(info);
    } catch (err) {
      setError(input, err.message);
      input.focus();
    }
  });
  main.replaceChildren(form);
  if (message) setError(input, message);
  input.focus();
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await request("POST", "/__fn/console/logout", undefined, { noRelogin: true }); } catch {}
  state.csrf = "";
  if (cleanup) cleanup();
  login("Logged out.");
});
window.addEventListener("hashchange", () => { route(); main.focus(); });
window.addEventListener("fn-unauthorized", () => { if (state.ready) { if (cleanup) cleanup(); login("Your session ended: log in again."); } });

(async () => {
  try {
    const info = await request("GET", "/__fn/console/session", undefined, { noRelogin: true });
    if (info.mode === "serve" && !info.loggedIn) login();
    else await start(info);
  } catch (e) {
    main.replaceChildren(h("p", { class: "err", role: "alert" }, "The console could not start: " + e.message));
  }
})();
export { APIError };
