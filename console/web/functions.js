// Functions: the list, an invoke form (JSON validated as you type, saved events, identity,
// impersonated user), the outcome with that call's logs, and the call as curl or fn invoke.
import { state, request, envPath, appPath, q } from "./api.js";
import { h, field, table, jsonInput, pretty, copy, time } from "./dom.js";

let local = null;
async function localInfo() {
  if (state.mode !== "dev") return { identities: [], events: {} };
  if (!local) local = await request("GET", "/__fn/console/local");
  return local;
}

export async function functionsPanel(root, signal) {
  root.append(h("h1", {}, "Functions"));
  const list = await request("GET", envPath("functions"), undefined, { signal });
  if (!list.length) { root.append(h("p", { class: "muted" }, "No functions in " + state.env + ".")); return; }
  const detail = h("section", { "aria-label": "Invoke", id: "invoke-panel" });
  // the source file of each function (fn dev) and its last call, both best effort
  const [sources, last] = await Promise.all([
    state.mode === "dev" ? request("GET", appPath(`source/${encodeURIComponent(state.env)}`), undefined, { signal }).then((r) => r.files || []).catch(() => []) : [],
    request("GET", appPath("logs") + q({ env: state.env }), undefined, { text: true, signal }).then((text) => {
      const m = {};
      for (const l of text.split("\n")) { if (!l) continue; try { const r = JSON.parse(l); if (r.invocation && r.function) m[r.function] = r; } catch {} }
      return m;
    }).catch(() => ({})),
  ]);
  const source = (f) => (sources.find((x) => x.function === f.name) || (f.dialect === "lean" ? sources[0] : null) || {}).path || "";
  const t = table([
    { label: "Name", get: (f) => h("span", { class: "mono" }, f.name) },
    { label: "Dialect", get: (f) => f.dialect + (f.kind && f.kind !== "function" ? " · " + f.kind : "") },
    state.mode === "dev" ? { label: "Source", get: (f) => h("span", { class: "mono" }, source(f)) } : null,
    { label: "Timeout", get: (f) => (f.config.timeout || "—") + " s" },
    { label: "Memory", get: (f) => (f.config.memory || "—") + " MB" },
    { label: "Last call", get: (f) => { const r = last[f.name]; return r ? h("span", { class: r.status >= 400 || r.level === "error" ? "err" : "ok" }, `${r.status || r.level} · ${(r.durationMs || 0).toFixed(1)} ms`) : "—"; } },
  ].filter(Boolean), list, (f, tr) => {
    for (const r of t.querySelectorAll("tr.sel")) r.classList.remove("sel");
    tr.classList.add("sel");
    invokeForm(detail, f, signal);
  }, "Functions");
  t.id = "functions-table";
  root.append(h("div", { class: "split even" }, h("div", {}, t), detail));
  const first = list.find((f) => !f.name.startsWith("__")) || list[0];
  invokeForm(detail, first, signal);
  t.querySelector("tbody tr").classList.add("sel");
}

function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

async function invokeForm(root, f, signal) {
  root.replaceChildren(h("h2", {}, "Invoke ", h("span", { class: "mono", id: "invoke-name" }, f.name)));
  const info = await localInfo();
  const button = h("button", { type: "submit", class: "primary", id: "invoke-button" }, "Invoke");
  const input = jsonInput("Event (JSON)", "{}", { id: "invoke-data", onvalid: (ok) => { button.disabled = !ok; } });
  const events = info.events[f.name] || [];
  const evSel = h("select", { id: "invoke-event" }, h("option", { value: "" }, events.length ? "— pick a saved event —" : "no saved events"), events.map((e) => h("option", { value: e }, e)));
  evSel.disabled = !events.length;
  evSel.addEventListener("change", async () => {
    if (!evSel.value) return;
    const ev = await request("GET", `/__fn/console/events/${encodeURIComponent(f.name)}/${encodeURIComponent(evSel.value)}`);
    input.set(pretty(ev));
  });
  const idSel = h("select", { id: "invoke-identity" }, h("option", { value: "" }, "default" + (info.default ? ` (${info.default})` : "")), info.identities.map((n) => h("option", { value: n }, n)));
  idSel.disabled = !info.identities.length;
  const imp = state.impersonate;
  const impNote = imp ? h("p", { id: "invoke-as-user" }, "As user ", h("strong", {}, imp.username || imp.objectId), " ",
    h("button", { type: "button", onclick: () => { state.impersonate = null; invokeForm(root, f, signal); } }, "stop impersonating")) : null;
  const leanPath = h("select", { id: "invoke-path" }, h("option", { value: "functions" }, "/1.1/functions"), h("option", { value: "call" }, "/1.1/call"));
  const form = h("form", { "aria-label": "Invoke " + f.name },
    input.el,
    h("div", { class: "row" },
      field("Saved event", evSel),
      field("Identity", idSel),
      f.dialect === "lean" ? field("Client path (copy as curl)", leanPath) : null),
    impNote,
    h("div", { class: "row" }, button,
      h("button", { type: "button", id: "copy-curl" }, "Copy as curl"),
      h("button", { type: "button", id: "copy-fn" }, "Copy as fn invoke")));
  const copied = h("pre", { id: "copy-output", class: "mono", hidden: true });
  const out = h("div", { id: "invoke-outcome", "aria-live": "polite" });
  const recent = h("div", { id: "recent-calls" });
  root.append(form, copied, out, h("h2", {}, "Last calls"), recent);

  const body = () => {
    const b = { data: input.value() ?? {} };
    if (idSel.value) b.identity = idSel.value;
    if (state.impersonate) b.sessionToken = state.impersonate.sessionToken;
    return b;
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!input.valid()) { input.ta.focus(); return; }
    button.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "Running…"));
    try {
      const o = await request("POST", envPath("invoke", "/" + encodeURIComponent(f.name)), body());
      out.replaceChildren(outcome(o));
      lastCalls(recent, f.name);
    } catch (err) {
      out.replaceChildren(h("p", { class: "err", role: "alert" }, err.message));
    } finally { button.disabled = false; }
  });
  const copyCurl = () => {
    if (!input.valid()) return;
    const origin = location.origin;
    let cmd;
    if (f.dialect === "lean" && state.mode === "dev" && info.appId) {
      // the client's call, as an app would send it (with the impersonated user's session)
      const session = state.impersonate ? ` -H ${shellQuote("X-LC-Session: " + state.impersonate.sessionToken)}` : "";
      cmd = `curl -sS -X POST ${origin}/1.1/${leanPath.value}/${f.name} -H 'Content-Type: application/json' -H ${shellQuote("X-LC-Id: " + info.appId)} -H ${shellQuote("X-LC-Key: " + info.appKey)}${session} -d ${shellQuote(JSON.stringify(body().data))}`;
    } else {
      const auth = state.mode === "serve" ? ` -H "Authorization: Bearer $FN_TOKEN"` : "";
      cmd = `curl -sS -X POST ${origin}${envPath("invoke", "/" + encodeURIComponent(f.name))} -H 'Content-Type: application/json'${auth} -d ${shellQuote(JSON.stringify(body()))}`;
    }
    copied.hidden = false;
    copy(cmd, copied);
  };
  const copyFn = () => {
    if (!input.valid()) return;
    let cmd = `fn invoke ${f.name} --data ${shellQuote(JSON.stringify(body().data))}`;
    if (idSel.value) cmd += ` --as ${shellQuote(idSel.value)}`;
    if (state.mode === "serve") cmd += ` --remote --app ${shellQuote(state.appName || appName())} --env ${state.env}`;
    copied.hidden = false;
    copy(cmd, copied);
  };
  form.querySelector("#copy-curl").addEventListener("click", copyCurl);
  form.querySelector("#copy-fn").addEventListener("click", copyFn);
  lastCalls(recent, f.name);
}

function appName() {
  const a = state.apps.find((x) => x.appId === state.app);
  return a ? a.name : state.app;
}

export function outcome(o) {
  const failed = !!o.error;
  return h("div", { class: "outcome" },
    h("p", {},
      h("span", { class: failed ? "err" : "ok", id: "outcome-status" }, failed ? "failed" : "ok"),
      ` · ${o.durationMs.toFixed(1)} ms · request `, h("span", { class: "mono", id: "outcome-request" }, o.requestId),
      o.identity ? ` · as ${o.identity}` : ""),
    failed ? h("pre", { class: "err", id: "outcome-error" }, o.error.kind + ": " + o.error.message + (o.error.stack ? "\n" + o.error.stack : "")) : null,
    h("h2", {}, "Result"),
    h("pre", { id: "outcome-result" }, pretty(o.result !== undefined ? o.result : o.body)),
    h("h2", {}, "Logs of this call"),
    logList(o.logs || [], "outcome-logs"));
}

export function logList(recs, id) {
  if (!recs.length) return h("p", { class: "muted", id }, "No log lines.");
  return h("pre", { id, class: "mono" }, recs.map((r) => `${r.level.padEnd(5)} ${r.message}`).join("\n"));
}

async function lastCalls(root, name) {
  try {
    const text = await request("GET", appPath("logs") + q({ function: name, env: state.env }), undefined, { text: true });
    const recs = text.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.invocation).slice(-5).reverse();
    if (!recs.length) { root.replaceChildren(h("p", { class: "muted" }, "No calls yet.")); return; }
    root.replaceChildren(table([
      { label: "Time", get: (r) => new Date(r.time).toLocaleTimeString([], { hour12: false }) },
      { label: "Status", get: (r) => h("span", { class: r.status >= 400 || r.level === "error" ? "err" : "ok" }, String(r.status || r.level)) },
      { label: "Duration", get: (r) => (r.durationMs || 0).toFixed(1) + " ms" },
      { label: "Request", get: (r) => h("span", { class: "mono" }, r.requestId) },
    ], recs, null, "Last calls"));
  } catch (e) { root.replaceChildren(h("p", { class: "err" }, e.message)); }
}
