// Requests (the live monitor: every call, hook run and timer run from the follow stream, with a
// click-through to the record, its logs and a replay) and Logs (live, with fn logs' filters).
import { state, request, appPath, envPath, follow, q } from "./api.js";
import { h, field, row, pretty, time } from "./dom.js";
import { outcome, logList } from "./functions.js";

const maxRows = 500;
const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });

export function requestsPanel(root, signal) {
  const status = h("span", { class: "muted", id: "monitor-state" }, "connecting…");
  const body = h("tbody", { id: "monitor-rows" });
  const detail = h("section", { id: "request-detail", "aria-label": "Request", "aria-live": "polite" });
  root.append(h("h1", {}, "Requests ", status),
    h("p", { class: "muted" }, "Every call, hook run and timer run of " + state.env + " as it happens."),
    h("div", { class: "split even" },
      h("div", { class: "log" }, h("table", { "aria-label": "Requests" },
        h("thead", {}, h("tr", {}, ["Time", "Kind", "Function", "Identity", "Status", "Duration"].map((c) => h("th", { scope: "col" }, c)))), body)),
      detail));
  const cols = [
    { label: "Time", get: (r) => clock(r.time) },
    { label: "Kind", get: (r) => r.kind || "call" },
    { label: "Function", get: (r) => h("span", { class: "mono" }, r.function || "") },
    { label: "Identity", get: (r) => r.identity || "—" },
    { label: "Status", get: (r) => String(r.status || ""), class: (r) => (r.status >= 400 || r.level === "error" ? "err" : "ok") },
    { label: "Duration", get: (r) => (r.durationMs || 0).toFixed(1) + " ms" },
  ];
  follow({ env: state.env }, (rec) => {
    if (!rec.invocation) return;
    const tr = row(cols, rec, (r, el) => {
      for (const s of body.querySelectorAll("tr.sel")) s.classList.remove("sel");
      el.classList.add("sel");
      showRequest(detail, r);
    });
    tr.dataset.request = rec.requestId;
    tr.dataset.function = rec.function || "";
    body.prepend(tr);
    while (body.children.length > maxRows) body.lastChild.remove();
  }, signal, (s) => { status.textContent = s; });
}

async function showRequest(root, rec) {
  const replay = h("button", { type: "button", id: "replay-button", disabled: !rec.replayable }, "Replay");
  const out = h("div", { id: "replay-outcome" });
  replay.addEventListener("click", async () => {
    replay.disabled = true;
    try { out.replaceChildren(h("h2", {}, "Replayed"), outcome(await request("POST", envPath("replay", "/" + encodeURIComponent(rec.requestId))))); }
    catch (e) { out.replaceChildren(h("p", { class: "err", role: "alert" }, e.message)); }
    finally { replay.disabled = !rec.replayable; }
  });
  const logs = h("div", {}, h("p", { class: "muted" }, "Loading logs…"));
  root.replaceChildren(...[h("h2", {}, "Request ", h("span", { class: "mono" }, rec.requestId)),
    h("div", { class: "row" }, replay, rec.replayable ? null : h("span", { class: "muted" }, "not replayable (no request kept)")),
    rec.request !== undefined ? h("div", {}, h("h2", {}, "Event"), h("pre", { id: "request-event" }, pretty(rec.request))) : null,
    h("h2", {}, "Record"), h("pre", { id: "request-record" }, pretty(rec)),
    h("h2", {}, "Logs"), logs, out].filter(Boolean));
  try {
    const text = await request("GET", appPath("logs") + q({ requestId: rec.requestId }), undefined, { text: true });
    const recs = text.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((r) => !r.invocation);
    logs.replaceChildren(logList(recs, "request-logs"));
  } catch (e) { logs.replaceChildren(h("p", { class: "err" }, e.message)); }
}

export function logsPanel(root, signal) {
  const fn = h("input", { id: "logs-function", placeholder: "any" });
  const level = h("select", { id: "logs-level" }, ["", "debug", "info", "warn", "error"].map((l) => h("option", { value: l }, l || "any")));
  const rid = h("input", { id: "logs-request", placeholder: "any", class: "mono" });
  const text = h("input", { id: "logs-text", placeholder: "contains…" });
  const since = h("input", { id: "logs-since", type: "datetime-local" });
  const status = h("span", { class: "muted", id: "logs-state" });
  const body = h("tbody", { id: "logs-rows" });
  const form = h("form", { class: "row", "aria-label": "Log filters" },
    field("Function", fn), field("Level (and above)", level), field("Request id", rid), field("Text", text), field("Since", since),
    h("button", { type: "submit", class: "primary", id: "logs-apply" }, "Apply"));
  root.append(h("h1", {}, "Logs ", status), form,
    h("div", { class: "log" }, h("table", { "aria-label": "Log records" },
      h("thead", {}, h("tr", {}, ["Time", "Level", "Function", "Request", "Message"].map((c) => h("th", { scope: "col" }, c)))), body)));
  let ctl = null;
  const start = () => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    signal.addEventListener("abort", () => ctl.abort(), { once: true });
    body.replaceChildren();
    const p = { env: state.env, function: fn.value.trim(), level: level.value, requestId: rid.value.trim(), search: text.value };
    if (since.value) p.since = new Date(since.value).toISOString().replace(/\.\d+Z$/, "Z");
    follow(p, (r) => {
      const tr = h("tr", { class: "lvl-" + r.level },
        h("td", {}, clock(r.time)), h("td", {}, r.level), h("td", {}, r.function || ""),
        h("td", { class: "mono" }, r.requestId || ""), h("td", {}, r.invocation ? `↳ ${r.kind || "call"} ${r.status || ""} ${(r.durationMs || 0).toFixed(1)} ms` : r.message));
      body.prepend(tr);
      while (body.children.length > 2000) body.lastChild.remove();
    }, ctl.signal, (s) => { status.textContent = s; });
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); start(); });
  start();
}
