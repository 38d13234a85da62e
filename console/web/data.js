// Data (LeanStorage classes and wx collections: browse with where/order/paging, create, edit and
// delete through the platform so hooks fire, the ACL as JSON, import/export), Users (create,
// impersonate for the invoke form) and Hooks (run a class hook by hand).
import { state, request, envPath, q } from "./api.js";
import { h, field, table, jsonInput, pretty, toast, download, setError } from "./dom.js";

const pageSize = 20;
const idOf = (o) => o.objectId || o._id || o.id;

export async function dataPanel(root, signal) {
  root.append(h("h1", {}, "Data"));
  let classes;
  try { classes = (await request("GET", envPath("data"), undefined, { signal })).classes || []; }
  catch (e) { root.append(h("p", { class: e.status === 404 ? "muted" : "err" }, e.message)); return; }
  const sel = h("select", { id: "data-class" }, classes.map((c) => h("option", { value: c.kind + "/" + c.name }, `${c.name} (${c.kind}, ${c.count})`)));
  const newName = h("input", { id: "data-new-class", placeholder: "or a new class" });
  const newKind = h("select", { id: "data-new-kind" }, h("option", { value: "lean" }, "LeanStorage class"), h("option", { value: "wx" }, "wx collection"));
  if (classes.length && classes.every((c) => c.kind === "wx")) newKind.value = "wx";
  const where = jsonInput("Where (JSON)", "", { id: "data-where", rows: 2, allowEmpty: true });
  const order = h("input", { id: "data-order", placeholder: "-createdAt" });
  const host = h("div", { id: "data-host" });
  // the editor stays while the table reloads under it (a save shows its hooks there)
  const editorHost = h("section", { id: "object-editor", "aria-label": "Object" });
  const form = h("form", { "aria-label": "Query" }, h("div", { class: "row" }, field("Class", sel), field("New class", newName), field("Kind", newKind), field("Order", order),
    h("button", { type: "submit", class: "primary", id: "data-query" }, "Query")), where.el);
  root.append(form, host, editorHost);
  let skip = 0;
  const current = () => {
    if (newName.value.trim()) return { kind: newKind.value, name: newName.value.trim() };
    const [kind, ...rest] = sel.value.split("/");
    return { kind, name: rest.join("/") };
  };
  const refreshClasses = async () => {
    const cur = current();
    try { classes = (await request("GET", envPath("data"), undefined, { signal })).classes || []; } catch { return; }
    sel.replaceChildren(...classes.map((x) => h("option", { value: x.kind + "/" + x.name, selected: x.kind === cur.kind && x.name === cur.name }, `${x.name} (${x.kind}, ${x.count})`)));
    if (newName.value.trim() && classes.some((x) => x.kind === cur.kind && x.name === cur.name)) newName.value = "";
  };
  const load = async () => {
    if (!where.valid()) return;
    await refreshClasses();
    const c = current();
    if (!c.name) { host.replaceChildren(h("p", { class: "muted" }, "No classes yet: name a new one above.")); return; }
    const base = envPath("data", `/${c.kind}/${encodeURIComponent(c.name)}`);
    let res;
    try { res = await request("GET", base + q({ where: where.ta.value.trim(), order: order.value.trim(), limit: pageSize, skip }), undefined, { signal }); }
    catch (e) {
      // a class or collection that does not exist yet: its first object creates it
      host.replaceChildren(h("p", { class: newName.value.trim() ? "muted" : "err", role: "alert" }, e.message),
        newName.value.trim() ? h("div", { class: "row" }, h("button", { type: "button", id: "data-new", onclick: () => edit(editorHost, c, base, null, load) }, "New object")) : "");
      return;
    }
    const objs = res.results || [];
    const keys = [...new Set(objs.flatMap((o) => Object.keys(o)))].filter((k) => !["objectId", "_id", "createdAt", "updatedAt", "ACL"].includes(k)).slice(0, 6);
    const exported = h("span", { id: "data-export-out", class: "muted", "aria-live": "polite" });
    const tb = table([
      { label: "id", get: (o) => h("span", { class: "mono" }, idOf(o)) },
      ...keys.map((k) => ({ label: k, get: (o) => (o[k] === undefined ? "" : typeof o[k] === "object" ? JSON.stringify(o[k]).slice(0, 60) : String(o[k]).slice(0, 60)) })),
    ], objs, (o) => edit(editorHost, c, base, o, load), c.name);
    tb.id = "data-table";
    const pager = h("div", { class: "row" },
      h("button", { type: "button", disabled: skip === 0, onclick: () => { skip = Math.max(0, skip - pageSize); load(); } }, "Previous"),
      h("span", { id: "data-count" }, `${objs.length ? skip + 1 : 0}–${skip + objs.length} of ${res.count}`),
      h("button", { type: "button", id: "data-next", disabled: skip + objs.length >= res.count, onclick: () => { skip += pageSize; load(); } }, "Next"),
      h("button", { type: "button", id: "data-new", onclick: () => edit(editorHost, c, base, null, load) }, "New object"),
      h("button", { type: "button", id: "data-export", onclick: async () => {
        try {
          const text = await request("GET", base + "/export", undefined, { text: true });
          download(`${c.name}.jsonl`, text, "application/x-ndjson");
          exported.textContent = `exported ${text.split("\n").filter(Boolean).length} objects to ${c.name}.jsonl`;
        } catch (e) { toast(e.message); }
      } }, "Export"),
      importControl(base, load), exported);
    host.replaceChildren(pager, tb);
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); skip = 0; load(); });
  sel.addEventListener("change", () => { skip = 0; newName.value = ""; editorHost.replaceChildren(); load(); });
  load();
}

function importControl(base, reload) {
  const file = h("input", { type: "file", id: "data-import-file", accept: ".jsonl,.ndjson,.json" });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    try { const r = await request("POST", base + "/import", await f.text()); toast(`imported ${r.imported}`); reload(); }
    catch (e) { toast(e.message); }
  });
  return h("span", { class: "field" }, h("label", { for: file.id }, "Import NDJSON"), file);
}

function edit(root, c, base, obj, reload) {
  const fields = obj ? Object.fromEntries(Object.entries(obj).filter(([k]) => !["objectId", "_id", "createdAt", "updatedAt", "ACL"].includes(k))) : {};
  const body = jsonInput(obj ? "Fields (JSON; LeanStorage ops allowed)" : "New object (JSON)", pretty(fields), { id: "object-json", rows: 10 });
  const acl = c.kind === "lean" ? jsonInput("ACL (JSON, empty: unchanged/default)", obj && obj.ACL ? pretty(obj.ACL) : "", { id: "object-acl", rows: 3, allowEmpty: true }) : null;
  const out = h("p", { id: "object-result", "aria-live": "polite" });
  const save = h("button", { type: "submit", class: "primary", id: "object-save" }, obj ? "Save" : "Create");
  const del = obj ? h("button", { type: "button", id: "object-delete" }, "Delete") : null;
  const hooks = (r) => (r && r.hooks && r.hooks.length ? "hooks ran: " + r.hooks.join(", ") : "no hooks ran");
  const form = h("form", { "aria-label": obj ? "Edit " + idOf(obj) : "New object" }, h("h2", {}, obj ? "Object " + idOf(obj) : "New object"), body.el, acl && acl.el, h("div", { class: "row" }, save, del), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!body.valid() || (acl && !acl.valid())) return;
    const v = body.value() || {};
    if (acl && acl.ta.value.trim()) v.ACL = acl.value();
    try {
      const r = obj ? await request("PUT", base + "/" + encodeURIComponent(idOf(obj)), v) : await request("POST", base, v);
      out.className = "ok";
      out.textContent = (obj ? "Saved · " : "Created · ") + hooks(r);
      reload().then(() => {}).catch(() => {});
    } catch (err) { out.className = "err"; out.textContent = err.message; }
  });
  if (del) del.addEventListener("click", async () => {
    if (!confirm(`Delete ${idOf(obj)}?`)) return;
    try { const r = await request("DELETE", base + "/" + encodeURIComponent(idOf(obj))); out.className = "ok"; out.textContent = "Deleted · " + hooks(r); reload(); }
    catch (err) { out.className = "err"; out.textContent = err.message; }
  });
  root.replaceChildren(form);
  body.ta.focus();
}

export async function usersPanel(root, signal) {
  root.append(h("h1", {}, "Users"));
  const base = envPath("data", "/lean/_User");
  const name = h("input", { id: "user-name", autocomplete: "off", required: true });
  const pass = h("input", { id: "user-password", type: "password", autocomplete: "new-password", required: true });
  const form = h("form", { class: "row", "aria-label": "Create a user" }, field("Username", name), field("Password", pass), h("button", { type: "submit", class: "primary", id: "user-create" }, "Create user"));
  const list = h("div", { id: "users-list" });
  const note = h("p", { id: "impersonating", "aria-live": "polite" }, state.impersonate ? `Invoking as ${state.impersonate.username}` : "");
  root.append(form, note, list);
  const load = async () => {
    try {
      const res = await request("GET", base + q({ limit: 100, order: "-createdAt" }), undefined, { signal });
      list.replaceChildren(table([
        { label: "Username", get: (u) => u.username || "" },
        { label: "id", get: (u) => h("span", { class: "mono" }, u.objectId) },
        { label: "Email", get: (u) => u.email || "" },
        { label: "", get: (u) => h("button", { type: "button", "aria-label": "Impersonate " + (u.username || u.objectId), onclick: async () => {
          try {
            const s = await request("POST", envPath("data", `/users/${encodeURIComponent(u.objectId)}/session`));
            state.impersonate = { sessionToken: s.sessionToken, username: u.username, objectId: u.objectId };
            note.textContent = `Invoking as ${u.username}: the Functions panel's calls run as this user.`;
          } catch (e) { toast(e.message); }
        } }, "Impersonate") },
      ], res.results || [], null, "Users"));
    } catch (e) { list.replaceChildren(h("p", { class: e.status === 404 ? "muted" : "err" }, e.message)); }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await request("POST", base, { username: name.value, password: pass.value }); pass.value = ""; setError(name, ""); toast("user created"); load(); }
    catch (err) { setError(name, err.message); }
  });
  load();
}

export function hooksPanel(root) {
  root.append(h("h1", {}, "Hooks"), h("p", { class: "muted" }, "Run a class hook by hand with an object: nothing is written."));
  const cls = h("input", { id: "hook-class", required: true, placeholder: "Todo" });
  const hook = h("select", { id: "hook-name" }, ["beforeSave", "afterSave", "beforeUpdate", "afterUpdate", "beforeDelete", "afterDelete"].map((x) => h("option", { value: x }, x)));
  const obj = jsonInput("Object (JSON)", "{}", { id: "hook-object", rows: 6 });
  const out = h("div", { id: "hook-outcome", "aria-live": "polite" });
  const form = h("form", { "aria-label": "Run a hook" }, h("div", { class: "row" }, field("Class", cls), field("Hook", hook)), obj.el,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "hook-run" }, "Run hook")), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!obj.valid() || !cls.value.trim()) { setError(cls, cls.value.trim() ? "" : "name the class"); return; }
    try {
      const { outcome } = await import("./functions.js");
      out.replaceChildren(outcome(await request("POST", envPath("hooks", `/${encodeURIComponent(cls.value.trim())}/${hook.value}`), { object: obj.value() })));
    } catch (err) { out.replaceChildren(h("p", { class: "err", role: "alert" }, err.message)); }
  });
  root.append(form);
}
