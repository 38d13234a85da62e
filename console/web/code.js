// Code: edit functions in the page. fn dev: the project's files (a save hot-reloads); fn serve:
// online functions with a history per function, deploy to an environment as a normal version,
// and the merged cloud.js. Syntax errors come from the server's esbuild check (422 build_failed).
import { state, request, appPath, q } from "./api.js";
import { h, field, table, toast, time, download } from "./dom.js";

async function makeEditor(host, doc, label) {
  if (state.editor) {
    try {
      const m = await import("./editor.js");
      host.replaceChildren();
      return m.createEditor(host, { doc, label });
    } catch {}
  }
  const ta = h("textarea", { id: "code-text", class: "mono", spellcheck: "false", "aria-label": label });
  ta.value = doc;
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && ta.dataset.tab !== "off") {
      e.preventDefault();
      ta.setRangeText("  ", ta.selectionStart, ta.selectionEnd, "end");
    } else if (e.key === "Escape") ta.dataset.tab = "off"; // Escape, then Tab leaves the editor
  });
  ta.addEventListener("blur", () => { delete ta.dataset.tab; });
  host.replaceChildren(ta, h("p", { class: "muted", id: "editor-fallback" }, "Plain editor: build fn with make build (or make console) for the full code editor."));
  return { kind: "textarea", get: () => ta.value, set: (t) => { ta.value = t; }, focus: () => ta.focus(), diagnostics: () => {} };
}

function showErrors(box, ed, err) {
  const errs = (err.body && err.body.errors) || [];
  ed.diagnostics(errs);
  box.replaceChildren(...[h("p", { class: "err", role: "alert" }, err.message),
    errs.length ? h("ul", { id: "build-errors" }, errs.map((e) => h("li", { class: "mono" }, `${e.file || ""}:${e.line}:${e.column} ${e.text}`))) : null].filter(Boolean));
}

function newFunctionForm(onCreate) {
  const name = h("input", { id: "new-name", required: true, placeholder: "hello" });
  const type = h("select", { id: "new-type" }, ["function", "hook", "timer"].map((t) => h("option", { value: t }, t)));
  const cls = h("input", { id: "new-class", placeholder: "Todo" });
  const hook = h("select", { id: "new-hook" }, ["beforeSave", "afterSave", "beforeUpdate", "afterUpdate", "beforeDelete", "afterDelete"].map((x) => h("option", { value: x }, x)));
  const cron = h("input", { id: "new-cron", placeholder: "0 * * * * ?" });
  const form = h("form", { class: "row", "aria-label": "New function" }, field("Name", name), field("Type", type), field("Class (hook)", cls), field("Hook", hook), field("Cron (timer)", cron),
    h("button", { type: "submit", id: "new-create" }, "Create"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const b = { name: name.value.trim(), type: type.value };
    if (b.type === "hook") { b.class = cls.value.trim(); b.hook = hook.value; }
    if (b.type === "timer") b.cron = cron.value.trim();
    onCreate(b);
  });
  return form;
}

export async function codePanel(root, signal) {
  root.append(h("h1", {}, "Code"));
  if (state.mode === "dev") return devCode(root, signal);
  return onlineCode(root, signal);
}

async function devCode(root, signal) {
  const base = appPath(`source/${encodeURIComponent(state.env)}`);
  const files = h("div", { id: "source-files" });
  const work = h("section", { id: "code-work", "aria-label": "Editor" });
  root.append(newFunctionForm(async (b) => {
    try { const r = await request("POST", base + "/functions", b); toast("created " + r.path); await list(); open(r.path); }
    catch (e) { toast(e.message); }
  }), h("div", { class: "split" }, files, work));
  const open = async (path) => {
    const f = await request("GET", base + "/file" + q({ path }));
    const host = h("div", { class: "editor-host" });
    const box = h("div", { id: "save-result", "aria-live": "polite" });
    const save = h("button", { type: "button", class: "primary", id: "code-save" }, "Save");
    const force = h("button", { type: "button", id: "code-force", hidden: true }, "Save anyway");
    work.replaceChildren(h("h2", { class: "mono", id: "code-path" }, path), host, h("div", { class: "row" }, save, force), box);
    const ed = await makeEditor(host, f.content, path);
    const put = async (forced) => {
      try {
        await request("PUT", base + "/file" + q({ path, force: forced ? 1 : "" }), { content: ed.get() });
        ed.diagnostics([]);
        force.hidden = true;
        box.replaceChildren(h("p", { class: "ok", id: "save-ok" }, "Saved: fn dev reloads it."));
      } catch (e) { showErrors(box, ed, e); force.hidden = e.code !== "build_failed"; }
    };
    save.addEventListener("click", () => put(false));
    force.addEventListener("click", () => put(true));
  };
  const list = async () => {
    try {
      const res = await request("GET", base, undefined, { signal });
      files.replaceChildren(table([{ label: "File", get: (f) => h("span", { class: "mono" }, f.path) }, { label: "Function", get: (f) => f.function || "" }],
        res.files || [], (f) => open(f.path), "Source files"));
    } catch (e) { files.replaceChildren(h("p", { class: "err" }, e.message)); }
  };
  await list();
}

async function onlineCode(root, signal) {
  const base = appPath("online");
  const files = h("div", { id: "online-list" });
  const work = h("section", { id: "code-work", "aria-label": "Editor" });
  const env = h("select", { id: "deploy-env" }, state.envs.map((e) => h("option", { value: e, selected: e === "staging" }, e)));
  const msg = h("input", { id: "deploy-message", placeholder: "online edit" });
  const deployOut = h("p", { id: "deploy-result", "aria-live": "polite" });
  const deploy = h("button", { type: "button", class: "primary", id: "deploy-button" }, "Deploy");
  deploy.addEventListener("click", async () => {
    try {
      const r = await request("POST", base + "/deploy", { env: env.value, message: msg.value || "online edit" });
      deployOut.className = "ok";
      deployOut.textContent = r.version ? `deployed v${r.version.id} to ${r.env || env.value}` : "nothing changed";
    } catch (e) { deployOut.className = "err"; deployOut.textContent = e.message; }
  });
  const preview = h("button", { type: "button", id: "preview-button" }, "Preview cloud.js");
  const previewOut = h("pre", { id: "preview-out", hidden: true });
  preview.addEventListener("click", async () => {
    try { previewOut.textContent = await request("GET", appPath("online.js"), undefined, { text: true }); previewOut.hidden = false; }
    catch (e) { toast(e.message); }
  });
  const dl = h("button", { type: "button", id: "download-button" }, "Download cloud.js");
  dl.addEventListener("click", async () => {
    try { download("cloud.js", await request("GET", appPath("online.js"), undefined, { text: true }), "text/javascript"); } catch (e) { toast(e.message); }
  });
  root.append(newFunctionForm((b) => open(b.name, b)),
    h("div", { class: "row" }, field("Deploy to", env), field("Message", msg), deploy, preview, dl), deployOut,
    h("div", { class: "split" }, files, work), previewOut);
  const open = async (name, fresh) => {
    let f = fresh ? { ...fresh, code: template(fresh) } : await request("GET", base + "/" + encodeURIComponent(name));
    const host = h("div", { class: "editor-host" });
    const box = h("div", { id: "save-result", "aria-live": "polite" });
    const save = h("button", { type: "button", class: "primary", id: "code-save" }, "Save");
    const hist = h("div", { id: "history" });
    work.replaceChildren(h("h2", { class: "mono", id: "code-path" }, name + (f.revision ? ` · r${f.revision}` : "")), host, h("div", { class: "row" }, save), box, h("h2", {}, "History"), hist);
    const ed = await makeEditor(host, f.code || "", name);
    const history = async () => {
      try {
        const r = await request("GET", base + "/" + encodeURIComponent(name) + "/history");
        hist.replaceChildren(table([{ label: "Revision", get: (x) => "r" + x.revision }, { label: "Saved", get: (x) => time(x.time) }],
          (r.revisions || []).slice().reverse(), (x) => { ed.set(x.code); toast(`loaded r${x.revision}: save to make it current`); }, "History"));
      } catch (e) { hist.replaceChildren(h("p", { class: "muted" }, e.status === 404 ? "Not saved yet." : e.message)); }
    };
    save.addEventListener("click", async () => {
      const b = { type: f.type || "function", code: ed.get() };
      if (f.class) b.class = f.class;
      if (f.hook) b.hook = f.hook;
      if (f.cron) b.cron = f.cron;
      try {
        const r = await request("PUT", base + "/" + encodeURIComponent(name), b);
        ed.diagnostics([]);
        box.replaceChildren(h("p", { class: "ok", id: "save-ok" }, `Saved r${r.revision}. Deploy to run it.`));
        f = r;
        list(); history();
      } catch (e) { showErrors(box, ed, e); }
    });
    history();
  };
  const list = async () => {
    try {
      const res = await request("GET", base, undefined, { signal });
      files.replaceChildren(table([{ label: "Name", get: (f) => h("span", { class: "mono" }, f.name) }, { label: "Type", get: (f) => f.type + (f.hook ? ` ${f.class}.${f.hook}` : "") + (f.cron ? ` ${f.cron}` : "") }, { label: "Rev", get: (f) => "r" + f.revision }],
        res.functions || [], (f) => open(f.name), "Online functions"));
    } catch (e) { files.replaceChildren(h("p", { class: "err" }, e.message)); }
  };
  await list();
}

// template is the body of a new online function (the server wraps it as LeanEngine defines it).
function template(b) {
  if (b.type === "hook") return `// request.object is the ${b.class || "object"} being saved; throw to refuse it\nconsole.log("${b.hook} of", request.object.id)\n`;
  if (b.type === "timer") return `console.log("timer ${b.name} ran")\n`;
  return `return "hello " + (request.params.name || "world")\n`;
}
