// The admin API client of the console: every call goes to /__fn/ on this origin; a state-changing
// call carries the session's CSRF token (fn serve).
export const state = { mode: "dev", app: "-", env: "dev", csrf: "", envs: ["dev"], role: "dev", apps: [], editor: false, impersonate: null };

export class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.body = body;
  }
}

export async function request(method, path, body, opts = {}) {
  const headers = {};
  if (method !== "GET" && method !== "HEAD" && state.csrf) headers["X-Fn-Csrf"] = state.csrf;
  let payload;
  if (body !== undefined) {
    if (typeof body === "string") { payload = body; headers["Content-Type"] = opts.type || "application/x-ndjson"; }
    else { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal: opts.signal });
  const text = await res.text();
  if (opts.text && res.ok) return text;
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = opts.text ? text : { error: text.slice(0, 500) }; } }
  if (!res.ok) {
    if (res.status === 401 && state.mode === "serve" && !opts.noRelogin) window.dispatchEvent(new Event("fn-unauthorized"));
    throw new APIError(res.status, data);
  }
  return data;
}

export const appPath = (rest) => `/__fn/apps/${encodeURIComponent(state.app)}/${rest}`;
export const envPath = (what, rest = "") => appPath(`${what}/${encodeURIComponent(state.env)}${rest}`);
export const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
};

// follow reads the app's log stream (NDJSON), calling onRecord for each record, and reconnects
// after the last id it saw when the stream ends; it stops when signal aborts.
export async function follow(params, onRecord, signal, onState) {
  let after = 0;
  let delay = 250;
  while (!signal.aborted) {
    try {
      const p = { ...params, follow: 1 };
      if (after) p.after = after;
      const res = await fetch(appPath("logs") + q(p), { credentials: "same-origin", signal });
      if (!res.ok) throw new APIError(res.status, await res.json().catch(() => null));
      onState && onState("live");
      delay = 250;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          let rec;
          try { rec = JSON.parse(line); } catch { continue; }
          if (rec.id > after) after = rec.id;
          onRecord(rec);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      onState && onState("reconnecting: " + e.message);
      if (e.status === 401 || e.status === 400) return;
    }
    if (signal.aborted) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5000);
  }
}
