// Timers (next fire times, last runs, trigger now, enable/disable), the outbox, and versions with
// a diff of two versions' config computed here from their manifests.
import { state, request, envPath, appPath, q } from "./api.js";
import { h, field, table, pretty, time, toast } from "./dom.js";

export function timersPanel(root, signal) {
  const host = h("div", { id: "timers" });
  root.append(h("h1", {}, "Timers"), host);
  let busy = false;
  const load = async () => {
    if (busy || signal.aborted) return;
    busy = true;
    try {
      const ts = await request("GET", envPath("timers"), undefined, { signal });
      if (!ts.length) { host.replaceChildren(h("p", { class: "muted" }, "No timers in " + state.env + ".")); return; }
      const act = (t, action) => async () => {
        try { await request("POST", envPath("timers", `/${encodeURIComponent(t.name)}/${action}`)); toast(`${t.name}: ${action} done`); load(); }
        catch (e) { toast(`${t.name}: ${e.message}`); }
      };
      const tb = table([
        { label: "Timer", get: (t) => h("span", { class: "mono" }, t.name) },
        { label: "Function", get: (t) => t.function },
        { label: "Schedule", get: (t) => t.cron || `every ${t.interval} s` },
        { label: "Enabled", get: (t) => (t.enabled ? "yes" : "no") + (t.shortCircuited ? " (short-circuited)" : "") },
        { label: "Next", get: (t) => (t.enabled ? time(t.next) : "—") },
        { label: "Last run", get: (t) => time(t.lastScheduled) },
        { label: "Runs", get: (t) => String(t.runs) },
        { label: "", get: (t) => h("span", { class: "row" },
          h("button", { type: "button", onclick: act(t, "trigger"), "aria-label": "Trigger " + t.name, disabled: t.running }, t.running ? "running…" : "Trigger"),
          h("button", { type: "button", onclick: act(t, t.enabled ? "disable" : "enable"), "aria-label": (t.enabled ? "Disable " : "Enable ") + t.name }, t.enabled ? "Disable" : "Enable")) },
      ], ts, null, "Timers");
      for (const [i, t] of ts.entries()) { tb.tBodies[0].rows[i].dataset.timer = t.name; tb.tBodies[0].rows[i].dataset.runs = t.runs; }
      const focused = document.activeElement && document.activeElement.getAttribute("aria-label");
      host.replaceChildren(tb);
      if (focused) { const b = host.querySelector(`[aria-label="${CSS.escape(focused)}"]`); if (b) b.focus(); }
    } catch (e) { if (!signal.aborted) host.replaceChildren(h("p", { class: "err" }, e.message)); }
    finally { busy = false; }
  };
  load();
  const iv = setInterval(load, 1500);
  return () => clearInterval(iv);
}

export async function outboxPanel(root, signal) {
  root.append(h("h1", {}, "Outbox"), h("p", { class: "muted" }, "Messages the functions sent (subscribe messages, SMS and email codes): kept here, not delivered."));
  const host = h("div", { id: "outbox" });
  root.append(h("div", { class: "row" }, h("button", { type: "button", onclick: () => load() }, "Refresh")), host);
  const load = async () => {
    try {
      const msgs = await request("GET", envPath("outbox"), undefined, { signal });
      host.replaceChildren(msgs.length ? h("pre", { id: "outbox-list" }, msgs.map((m) => pretty(m)).join("\n\n")) : h("p", { class: "muted" }, "The outbox is empty."));
    } catch (e) { host.replaceChildren(h("p", { class: e.status === 404 ? "muted" : "err" }, e.message)); }
  };
  await load();
}

// flatten turns a manifest into "path = value" lines keyed by path, bundles keyed by name.
export function flatten(m) {
  const out = {};
  const walk = (v, p) => {
    if (v && typeof v === "object" && !Array.isArray(v)) { for (const k of Object.keys(v).sort()) walk(v[k], p ? p + "." + k : k); return; }
    if (Array.isArray(v) && v.every((x) => x && typeof x === "object" && (x.name || x.path))) { for (const x of v) walk(x, `${p}[${x.name || x.path}]`); return; }
    out[p] = JSON.stringify(v);
  };
  walk(m || {}, "");
  return out;
}

export function diff(a, b) {
  const fa = flatten(a), fb = flatten(b);
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  const lines = [];
  for (const k of keys) {
    if (fa[k] === fb[k]) continue;
    if (fa[k] !== undefined) lines.push({ op: "-", text: `${k} = ${fa[k]}` });
    if (fb[k] !== undefined) lines.push({ op: "+", text: `${k} = ${fb[k]}` });
  }
  return lines;
}

export async function versionsPanel(root, signal) {
  root.append(h("h1", {}, "Versions"));
  if (state.mode === "dev") { root.append(h("p", { class: "muted" }, "fn dev runs your working copy: versions are fn serve's (fn deploy).")); return; }
  const vs = await request("GET", appPath("versions") + q({ env: state.env }), undefined, { signal });
  if (!vs.length) { root.append(h("p", { class: "muted" }, "Nothing deployed to " + state.env + " yet.")); return; }
  vs.sort((x, y) => y.id - x.id);
  const opts = (sel) => vs.map((v) => h("option", { value: v.id, selected: v.id === sel }, `v${v.id}${v.active ? " (active)" : ""}`));
  const from = h("select", { id: "diff-from" }, opts((vs[1] || vs[0]).id));
  const to = h("select", { id: "diff-to" }, opts(vs[0].id));
  const out = h("pre", { id: "diff-out", "aria-live": "polite" });
  const show = () => {
    const a = vs.find((v) => v.id == from.value), b = vs.find((v) => v.id == to.value);
    const lines = diff(a.manifest, b.manifest);
    out.replaceChildren(...(lines.length ? lines.map((l) => h("div", { class: l.op === "+" ? "diff-add" : "diff-del" }, l.op + " " + l.text)) : [h("span", { class: "muted" }, "No config difference.")]));
  };
  from.addEventListener("change", show);
  to.addEventListener("change", show);
  const rollback = (v) => async () => {
    try { await request("POST", appPath("rollback"), { env: state.env, to: v.id }); toast(`${state.env} is now v${v.id}`); root.replaceChildren(); versionsPanel(root, signal); }
    catch (e) { toast(e.message); }
  };
  const promote = h("button", { type: "button", id: "promote" }, "Promote staging → production");
  promote.addEventListener("click", async () => {
    try { const r = await request("POST", appPath("promote"), { message: "promoted from the console" }); toast(r.changed ? "promoted" : "nothing to promote"); }
    catch (e) { toast(e.message); }
  });
  root.append(...[table([
    { label: "Version", get: (v) => `v${v.id}` },
    { label: "Deployed", get: (v) => time(v.createdAt) },
    { label: "Message", get: (v) => v.message || "" },
    { label: "By", get: (v) => v.who || "" },
    { label: "Functions", get: (v) => String((v.manifest && v.manifest.bundles || []).length) },
    { label: "", get: (v) => (v.active ? h("strong", {}, "active") : h("button", { type: "button", onclick: rollback(v), "aria-label": "Roll back to v" + v.id }, "Roll back")) },
  ], vs, null, "Versions"),
  state.env === "staging" ? h("div", { class: "row" }, promote) : null,
  h("h2", {}, "Config diff"), h("div", { class: "row" }, field("From", from), field("To", to)), out].filter(Boolean));
  show();
}
