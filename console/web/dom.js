// Small DOM helpers: h() builds elements (text is always text, never HTML).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let uid = 0;
// field: a labelled control; returns [wrapper, control].
export function field(label, control, hint) {
  const id = control.id || `f${++uid}`;
  control.id = id;
  const err = h("div", { class: "error-text", id: id + "-err", "aria-live": "polite" });
  control.setAttribute("aria-describedby", err.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("span", { class: "muted" }, hint) : null, err);
}

export function setError(control, msg) {
  const err = document.getElementById(control.id + "-err");
  if (err) err.textContent = msg || "";
  if (msg) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}

export function toast(msg) {
  const t = document.getElementById("toast");
  const d = h("div", {}, msg);
  t.append(d);
  while (t.children.length > 3) t.firstChild.remove();
  setTimeout(() => d.remove(), 4000);
}

export function pretty(v) {
  if (v === undefined) return "";
  try { return JSON.stringify(v, null, 2); } catch { return String(v); }
}

export function time(t) {
  if (!t || t.startsWith("0001")) return "—";
  const d = new Date(t);
  return isNaN(d) ? t : d.toLocaleString();
}

// table renders rows with columns [{label, get}]; rows with onpick are selectable by click, Enter or Space.
export function table(columns, rows, onpick, label) {
  const body = h("tbody");
  for (const r of rows) body.append(row(columns, r, onpick));
  return h("table", { "aria-label": label }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))), body);
}

export function row(columns, r, onpick) {
  const tr = h("tr", {}, columns.map((c) => h("td", { class: c.class ? c.class(r) : null }, c.get(r))));
  if (onpick) {
    tr.tabIndex = 0;
    tr.addEventListener("click", () => onpick(r, tr));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onpick(r, tr); } });
  }
  return tr;
}

// jsonInput: a textarea validated as JSON as you type; .valid() and .value().
export function jsonInput(label, initial, opts = {}) {
  const ta = h("textarea", { spellcheck: "false", class: "mono", rows: opts.rows || 8, id: opts.id });
  ta.value = initial;
  const wrap = field(label, ta, opts.hint);
  const check = () => {
    const v = ta.value.trim();
    if (!v && opts.allowEmpty) { setError(ta, ""); return true; }
    try { JSON.parse(v); setError(ta, ""); opts.onvalid && opts.onvalid(true); return true; }
    catch (e) { setError(ta, "Not valid JSON: " + e.message); opts.onvalid && opts.onvalid(false); return false; }
  };
  ta.addEventListener("input", check);
  return { el: wrap, ta, valid: check, value: () => (ta.value.trim() ? JSON.parse(ta.value) : undefined), set: (v) => { ta.value = v; check(); } };
}

export async function copy(text, out) {
  if (out) out.textContent = text;
  try { await navigator.clipboard.writeText(text); toast("Copied"); } catch { toast("Select the command below to copy it"); }
}

export function download(name, text, type) {
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
