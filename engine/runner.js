'use strict';
// fn worker runner. A Node.js process started and supervised by the Go engine runs this file.
//
// Protocol (engine/protocol.go is the other half; keep both lists the same):
// newline-delimited JSON, Go -> worker on fd 3, worker -> Go on fd 4, so the function's own stdout
// and stderr stay free. "t" is always the first member; a reply's "id" (the request's) the second.
// Replies may come in any order. Closing fd 3 tells the worker to exit.
// With --fn-connect=HOST:PORT (Windows, which passes no fds 3 and 4; FN_ENGINE_TRANSPORT=tcp
// elsewhere) one loopback TCP connection carries both directions instead: the worker opens it and
// sends the one-time token from FN_ENGINE_TOKEN and a newline first; the engine half-closing it
// tells the worker to exit.
//
//   Go -> worker
//     load    {id, name, file, version, dialect, env?, moduleDir?}
//                                                          evaluate a bundle; answered by loaded
//     invoke  {id, dialect: "wx", fn, rid, event, env, environ, namespace, timeoutMs, timeLimitMs?, memoryMB, concurrent?}
//             {id, dialect: "lean", kind, fn, rid, name, hook, className, params, url, timeoutMs, ...}
//                                                          run a function; answered by result
//     ping    {id}                                         is the event loop free; answered by pong
//   worker -> Go
//     ready   {protocol, pid, node}                        once, first
//     loaded  {id, ok, error?, names?, ms}
//     result  {id, ok, value | error, status?, body?}      value is the function's result as JSON
//     pong    {id}
//     log     {level, msg, rid, fn, ts}                    a console call of an invocation
//     fatal   {kind, rid, error}                           an uncaught error is ending the worker
//     exit    {code, rid}                                  the function called process.exit
//
// PROTOCOL changes whenever a message changes shape; Go refuses a runner of another version.
const PROTOCOL = 2;
const T = Object.freeze({
  load: 'load',
  invoke: 'invoke',
  ping: 'ping',
  ready: 'ready',
  loaded: 'loaded',
  result: 'result',
  pong: 'pong',
  log: 'log',
  fatal: 'fatal',
  exit: 'exit',
});

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const Module = require('module');
const { AsyncLocalStorage } = require('async_hooks');

const IN_FD = 3;
const OUT_FD = 4;
const MAX_RESULT_BYTES = 1024 * 1024;

const als = new AsyncLocalStorage();
const connectTo = (process.argv.find((a) => a.startsWith('--fn-connect=')) || '').slice('--fn-connect='.length);
const engineToken = process.env.FN_ENGINE_TOKEN || '';
delete process.env.FN_ENGINE_TOKEN; // function code and its processes never see it
const link = connectTo ? connectEngine(connectTo) : null;
const out = link || new net.Socket({ fd: OUT_FD, readable: false, writable: true });

function connectEngine(addr) {
  const i = addr.lastIndexOf(':');
  const sock = net.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
  sock.setNoDelay(true);
  sock.write(engineToken + '\n'); // sent once connected, before any message
  sock.once('error', (err) => {
    if (sock.connecting) process.stderr.write(`fn runner: cannot reach the engine at ${addr}: ${err.message}\n`);
  });
  return sock;
}

function send(msg) {
  out.write(JSON.stringify(msg) + '\n');
}

// sendRaw writes a reply whose value is already JSON text (no second encoding of large results).
function sendRaw(head, valueJSON) {
  out.write(head.slice(0, -1) + ',"value":' + valueJSON + '}\n');
}

// A socket cannot be written synchronously: its write is tried at once, which on an idle
// connection hands the message to the system before the process exits.
function sendSync(msg) {
  try {
    if (link) link.write(JSON.stringify(msg) + '\n');
    else fs.writeSync(OUT_FD, JSON.stringify(msg) + '\n');
  } catch (_) {
    // Go is gone; nothing to tell.
  }
}

// ---- compile cache for packages (--fn-code-cache=DIR). Requiring an SDK compiles hundreds of
// files from node_modules at every worker start; V8's code for them, kept in DIR, saves part of
// that work. Node 22.1+ does it itself (module.enableCompileCache). Older Node gets it here:
// CommonJS files under a node_modules directory compile through vm.Script with cachedData, and
// once the worker is idle (after its first invocation, on a short timer, or at exit) the code V8
// has made for them by then is written back. The function's own code is never cached (it changes
// at every save, and evaluate compiles a bundle itself). A file that may use import() is left to
// Node: a vm.Script has no loader for it (and the one vm can be given does not survive cachedData).
// Nothing the cache does can fail a require: a missing,
// stale, corrupt or rejected entry compiles as usual and is written again; write errors are
// dropped. With --fn-code-cache-bundles the bundles are cached too (fn serve: a release's bundles,
// packages included, never change).
//
// Entries live in packs, one file per node_modules tree (the path up to the first node_modules
// directory) or bundle directory and Node build, read whole with one system call: a file per
// module cost as much in opening and reading as V8 saved in compiling.
let inflight = 0; // invocations in progress: the idle write waits for none
const cacheDir = (process.argv.find((a) => a.startsWith('--fn-code-cache=')) || '').slice('--fn-code-cache='.length);
const codeCache = startCodeCache(cacheDir);
const resolveCache = startResolveCache(cacheDir);

// ---- resolution cache for packages (with --fn-code-cache=DIR). Before compiling, Node resolves
// each require of a package's files by probing the file system (extensions, index files,
// package.json main and exports, every node_modules up the tree): a quarter of an SDK's load.
// What a file inside a node_modules tree resolved a request to is kept in DIR, one file per tree
// and state of that tree: the fingerprint covers the tree's directory and the files a package
// manager rewrites on every install (node_modules/.package-lock.json, the lockfiles, the
// project's package.json), so an install starts a new one. A hit is used only while its file
// still exists; anything odd (custom paths, a main module, a builtin, code outside
// node_modules, whose files the user edits) is left to Node.
function startResolveCache(dir) {
  if (!dir || process.execArgv.some((a) => a.startsWith('--inspect') || a.startsWith('--experimental-policy') || a.startsWith('--preserve-symlinks'))) return null;
  dir = path.resolve(dir);
  const crypto = require('crypto');
  const SEP = path.sep + 'node_modules' + path.sep;
  const MAX_ENTRIES = 50000;
  const MAX_FILES = 32;
  const isBuiltin = Module.isBuiltin || ((r) => r.startsWith('node:') || Module.builtinModules.includes(r));
  const trees = new Map(); // node_modules directory → { file, map, fresh }
  const context = [process.version, process.arch, process.execArgv.join(' '), process.env.NODE_PATH || '', process.env.NODE_OPTIONS || ''];

  function fingerprint(root) {
    const parts = context.concat(root);
    const stat = (f) => {
      const st = fs.statSync(f, { throwIfNoEntry: false });
      parts.push(f, st ? `${st.size}:${st.mtimeMs}:${st.ino}` : '-');
    };
    stat(root);
    for (const f of ['.package-lock.json', '.modules.yaml', '.yarn-state.yml', '.yarn-integrity']) stat(path.join(root, f));
    const project = path.dirname(root);
    for (const f of ['package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml']) stat(path.join(project, f));
    return crypto.createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
  }
  function read(file, root) {
    try {
      const obj = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (obj && obj.root === root && obj.entries && typeof obj.entries === 'object') return obj.entries;
    } catch (_) {
      // missing or unreadable: resolve as usual
    }
    return {};
  }
  function tree(root) {
    let t = trees.get(root);
    if (!t) {
      t = { root, file: path.join(dir, 'resolve-' + fingerprint(root) + '.json'), map: new Map(), fresh: 0 };
      const entries = read(t.file, root);
      for (const k of Object.keys(entries)) if (typeof entries[k] === 'string') t.map.set(k, entries[k]);
      trees.set(root, t);
    }
    return t;
  }
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, isMain, options) {
    const from = parent && parent.filename;
    const at = typeof from === 'string' ? from.indexOf(SEP) : -1;
    if (at < 0 || isMain || options !== undefined || typeof request !== 'string' || isBuiltin(request)) {
      return resolve.apply(this, arguments);
    }
    const t = tree(from.slice(0, at + SEP.length - 1));
    const key = path.dirname(from) + '\0' + request;
    const hit = t.map.get(key);
    if (hit !== undefined) {
      const st = fs.statSync(hit, { throwIfNoEntry: false });
      if (st && st.isFile()) return hit;
      t.map.delete(key);
    }
    const resolved = resolve.apply(this, arguments);
    if (typeof resolved === 'string' && path.isAbsolute(resolved) && t.map.size < MAX_ENTRIES) {
      t.map.set(key, resolved);
      t.fresh++;
    }
    return resolved;
  };
  // flush writes what this worker resolved, merged with what others wrote meanwhile (tmp +
  // rename), and keeps the MAX_FILES newest files. Errors are dropped: it is only a cache.
  function flush() {
    for (const t of trees.values()) {
      if (!t.fresh) continue;
      t.fresh = 0;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const entries = read(t.file, t.root);
        for (const [k, v] of t.map) entries[k] = v;
        const tmp = `${t.file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify({ root: t.root, entries }), { mode: 0o600 });
        fs.renameSync(tmp, t.file);
        const files = fs.readdirSync(dir).filter((f) => f.startsWith('resolve-') && f.endsWith('.json'));
        if (files.length > MAX_FILES) {
          files
            .map((f) => ({ f, m: (fs.statSync(path.join(dir, f), { throwIfNoEntry: false }) || { mtimeMs: 0 }).mtimeMs }))
            .sort((a, b) => a.m - b.m)
            .slice(0, files.length - MAX_FILES)
            .forEach(({ f }) => fs.rmSync(path.join(dir, f), { force: true }));
        }
      } catch (_) {
        // as above
      }
    }
  }
  if (process.env.FN_CODE_CACHE_STATS === '1') {
    Object.defineProperty(globalThis, Symbol.for('fn.resolveCacheFiles'), { value: () => Array.from(trees.values(), (t) => t.file) });
  }
  return { flush };
}

function startCodeCache(dir) {
  // a debugger or a policy needs Node's own compilation of every file
  if (!dir || process.execArgv.some((a) => a.startsWith('--inspect') || a.startsWith('--experimental-policy'))) return null;
  dir = path.resolve(dir);
  if (typeof Module.enableCompileCache === 'function') {
    try {
      Module.enableCompileCache(dir);
    } catch (_) {
      return null; // an optimisation only
    }
    // Node writes its cache at exit; 23+ can be told to write it once the worker is idle
    const flush = () => {
      try {
        if (typeof Module.flushCompileCache === 'function') Module.flushCompileCache();
      } catch (_) {
        // as above
      }
    };
    return { flush, bundle() {} };
  }
  const vm = require('vm');
  const crypto = require('crypto');
  const zlib = require('zlib');
  const MAGIC = 'fnV8pk1\n';
  const MAX_PACK = 64 * 1024 * 1024; // one tree's pack; its least recently used entries go first
  const MAX_TOTAL = 256 * 1024 * 1024; // the directory; the least recently used packs go first
  const IDLE_MS = 2000;
  // a smaller file compiles faster than its entry is found and used (leanengine requires hundreds
  // of core-js modules of a few lines: caching them made its load slower)
  const MIN_SOURCE = 2048;
  const STASH = '__fnCodeCacheWrapper';
  // Node's own _compile runs this in place of the file, so require, require.main, module, the
  // module's state and its errors are Node's; it calls the file's cached wrapper with them
  const STUB = `var f = module.${STASH}; delete module.${STASH}; return f.call(this, exports, require, module, __filename, __dirname);`;
  const HEAD = '(function (exports, require, module, __filename, __dirname) {\n';
  const TAIL = '\n})';
  const wrapper = Module.wrapper.slice();
  const wrap = Module.wrap;
  const NM = path.sep + 'node_modules' + path.sep;
  // what V8's code depends on besides the source: the engine and the flags it runs with
  const salt = [process.version, process.arch, process.versions.v8, process.execArgv.join(' '), process.env.NODE_OPTIONS || ''].join('\0');
  const hash = (s) => (crypto.hash ? crypto.hash('sha1', s) : crypto.createHash('sha1').update(s).digest('hex'));
  const sum = (buf) => (zlib.crc32 ? zlib.crc32(buf) : crypto.createHash('sha1').update(buf).digest().readUInt32LE(0));
  const stats = { hits: 0, misses: 0, rejected: 0, corrupt: 0, skipped: 0, small: 0, written: 0, errors: 0 };
  const packs = new Map(); // tree -> pack
  const bundles = new WeakSet(); // modules evaluate made for bundles
  const withBundles = process.argv.includes('--fn-code-cache-bundles');
  let timer = null;
  let pruned = false;
  const compile = Module.prototype._compile;

  Module.prototype._compile = function (content, filename, format) {
    const bundle = bundles.has(this);
    const script = (format === undefined || format === 'commonjs') && (withBundles || !bundle) ? compileCached(content, filename, bundle) : null;
    if (!script) return compile.apply(this, arguments);
    Object.defineProperty(this, STASH, { value: script.runInThisContext(), configurable: true });
    return compile.call(this, STUB, filename, format);
  };

  // compileCached returns the file's script, or null to leave the file to Node (which also
  // reports a syntax error, or loads ES module syntax its own way).
  function compileCached(content, filename, bundle) {
    const at = bundle ? filename.lastIndexOf(path.sep) : filename.indexOf(NM);
    if (at < 0 || !(filename.endsWith('.js') || filename.endsWith('.cjs'))) return null;
    if (process.sourceMapsEnabled || Module.wrap !== wrap || Module.wrapper[0] !== wrapper[0] || Module.wrapper[1] !== wrapper[1]) return null;
    if (content.length < MIN_SOURCE) {
      stats.small++;
      return null;
    }
    if (mayImport(content)) {
      stats.skipped++;
      return null;
    }
    const pack = packFor(bundle ? filename.slice(0, at + 1) : filename.slice(0, at + NM.length));
    const key = hash(filename).slice(0, 8) + hash(content); // (one string of both would be copied)
    const cachedData = pack.get(key);
    // a hashbang is only allowed at the start of a script; "//" keeps every column where it was
    const source = content.charCodeAt(0) === 35 && content.charCodeAt(1) === 33 ? '//' + content.slice(2) : content;
    let script;
    try {
      script = new vm.Script(HEAD + source + TAIL, { filename, lineOffset: -1, cachedData });
    } catch (_) {
      return null;
    }
    if (cachedData && !script.cachedDataRejected) {
      stats.hits++;
      pack.used.add(key);
      return script;
    }
    if (cachedData) stats.rejected++;
    else stats.misses++;
    pack.fresh.set(key, script);
    idle();
    return script;
  }

  // mayImport tells whether content may call import(). Two kinds of mention are known not to: a
  // method (protobufjs' root.import(...), in leanengine's bundle), and a JSDoc type (x = /** @type
  // {import('./x')} */ (y), a " * @param {import('y').T} a" line; the SDKs' bundles have dozens).
  // Between the type's "{" and import( no quote, "$", "+" or "}" may come, so that text in a
  // string or a template around a real import() is not taken for one.
  const JSDOC_TYPE = /(?:^\s*\*|\/\*\*)\s*@[\w-]+\s*\{[^}'"`$+\\]*$/;
  function mayImport(content) {
    if (!content.includes('import')) return false;
    const re = /\bimport\s*[(/]/g;
    for (let m; (m = re.exec(content)); ) {
      let k = m.index - 1;
      while (k >= 0 && /\s/.test(content[k])) k--;
      if (content[k] === '.' && content[k - 1] !== '.') continue; // a method: x.import(...)
      if (!JSDOC_TYPE.test(content.slice(content.lastIndexOf('\n', m.index) + 1, m.index))) return true;
    }
    return false;
  }

  function packFor(tree) {
    let pack = packs.get(tree);
    if (!pack) {
      pack = { file: path.join(dir, hash(salt + '\0' + tree).slice(0, 32) + '.pack'), index: null, used: new Set(), fresh: new Map() };
      pack.get = (key) => {
        if (!pack.index) pack.index = readPack(pack.file);
        const e = pack.index.get(key);
        if (!e) return undefined;
        if (sum(e.data) !== e.sum) {
          stats.corrupt++;
          pack.index.delete(key);
          return undefined;
        }
        return e.data;
      };
      packs.set(tree, pack);
    }
    return pack;
  }

  // readPack returns a pack's entries (key -> {data, sum, t}); an unreadable or malformed pack
  // has none, and is replaced at the next write.
  // Layout: MAGIC, the index's length (uint32 LE), the index (JSON: [[key, offset, length, sum,
  // last use in s], ...], offsets from the end of the index), the entries' data.
  function readPack(file) {
    const index = new Map();
    let buf;
    try {
      buf = fs.readFileSync(file);
    } catch (_) {
      return index;
    }
    try {
      const head = MAGIC.length + 4;
      if (buf.length < head || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) throw new Error('not a pack');
      const n = buf.readUInt32LE(MAGIC.length);
      if (head + n > buf.length) throw new Error('short');
      const base = head + n;
      for (const [key, off, len, s, t] of JSON.parse(buf.toString('utf8', head, base))) {
        if (typeof key !== 'string' || !(off >= 0 && len > 0 && base + off + len <= buf.length)) throw new Error('bad entry');
        index.set(key, { data: buf.subarray(base + off, base + off + len), sum: s, t });
      }
    } catch (_) {
      stats.corrupt++;
      index.clear();
    }
    return index;
  }

  function idle() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (inflight > 0) idle();
      else flush();
    }, IDLE_MS);
    timer.unref();
  }

  // flush writes the entries this worker compiled into their packs, merged with what other
  // workers wrote meanwhile, through a temporary file renamed over the pack.
  function flush() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    let wrote = false;
    for (const pack of packs.values()) {
      if (!pack.fresh.size) {
        pack.index = null; // its data has served; a later require reads the pack again
        if (pack.used.size) {
          // all hits: nothing to write, but the pack was used now (pruning goes by mtime)
          try {
            const t = new Date();
            fs.utimesSync(pack.file, t, t);
          } catch (_) {
            // only a cache
          }
        }
        continue;
      }
      const now = Math.floor(Date.now() / 1000);
      const fresh = pack.fresh;
      pack.fresh = new Map();
      const tmp = `${pack.file}.${process.pid}.tmp`;
      try {
        const merged = readPack(pack.file);
        for (const key of pack.used) {
          const e = merged.get(key);
          if (e) e.t = now;
        }
        for (const [key, script] of fresh) {
          const data = script.createCachedData();
          merged.set(key, { data, sum: sum(data), t: now });
          stats.written++;
        }
        const entries = [...merged].sort((a, b) => b[1].t - a[1].t);
        const index = [];
        const parts = [];
        let off = 0;
        for (const [key, e] of entries) {
          if (off + e.data.length > MAX_PACK) break;
          index.push([key, off, e.data.length, e.sum, e.t]);
          parts.push(e.data);
          off += e.data.length;
        }
        const json = Buffer.from(JSON.stringify(index));
        const head = Buffer.alloc(MAGIC.length + 4);
        head.write(MAGIC, 'latin1');
        head.writeUInt32LE(json.length, MAGIC.length);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fs.writeFileSync(tmp, Buffer.concat([head, json, ...parts]), { mode: 0o600 });
        fs.renameSync(tmp, pack.file);
        wrote = true;
      } catch (_) {
        stats.errors++;
        try {
          fs.unlinkSync(tmp);
        } catch (_) {
          // never written
        }
      }
      pack.used.clear();
      pack.index = null;
    }
    if (wrote && !pruned) {
      pruned = true;
      prune();
    }
  }

  // prune keeps the directory under MAX_TOTAL, removing the packs written longest ago, and
  // temporary files left by a worker that died while writing.
  function prune() {
    try {
      const found = [];
      let total = 0;
      const now = Date.now();
      for (const name of fs.readdirSync(dir)) {
        const p = path.join(dir, name);
        const st = fs.statSync(p, { throwIfNoEntry: false });
        if (!st || !st.isFile()) continue;
        if (name.endsWith('.tmp')) {
          if (now - st.mtimeMs > 60 * 1000) fs.rmSync(p, { force: true });
        } else if (name.endsWith('.pack')) {
          found.push({ p, size: st.size, mtime: st.mtimeMs });
          total += st.size;
        }
      }
      found.sort((a, b) => a.mtime - b.mtime);
      for (const f of found) {
        if (total <= MAX_TOTAL) break;
        fs.rmSync(f.p, { force: true });
        total -= f.size;
      }
    } catch (_) {
      // another worker pruned at the same time, or the directory is gone
    }
  }

  if (process.env.FN_CODE_CACHE_STATS === '1') {
    Object.defineProperty(globalThis, Symbol.for('fn.codeCacheStats'), { value: () => Object.assign({}, stats) });
  }
  return { flush, bundle: (m) => bundles.add(m) };
}

// ---- console capture: every console call becomes a log record tied to the invocation in flight.
const levels = { log: 'info', info: 'info', warn: 'warn', error: 'error', debug: 'debug' };
// The engine's bounds (engine/output.go) apply here first, so that a flood of output is not
// even sent: one record holds at most MAX_RECORD bytes; past MAX_INVOCATION_LOG an invocation's
// records are no longer sent (the engine notes the drop once).
const MAX_RECORD = 64 * 1024;
const MAX_INVOCATION_LOG = 1024 * 1024;
function log(level, text) {
  const st = als.getStore();
  if (st && st.rid) {
    if (st.logged > MAX_INVOCATION_LOG) return;
    st.logged = (st.logged || 0) + Math.min(text.length, MAX_RECORD);
  }
  if (text.length > MAX_RECORD / 3 && Buffer.byteLength(text) > MAX_RECORD) text = cut(text);
  send({ t: T.log, level, msg: text, rid: st ? st.rid : '', fn: st ? st.fn : '', ts: Date.now() });
}
function cut(text) {
  const room = MAX_RECORD - 32;
  let kept = text.slice(0, room);
  if (Buffer.byteLength(kept) > room) kept = text.slice(0, Math.floor(room / 3));
  return kept + '… [truncated ' + byteSize(Buffer.byteLength(text) - Buffer.byteLength(kept)) + ']';
}
function byteSize(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MB';
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KB';
  return n + ' bytes';
}
for (const [method, level] of Object.entries(levels)) {
  console[method] = (...args) => log(level, util.format(...args));
}
console.trace = (...args) => {
  const err = { name: 'Trace', message: util.format(...args) };
  Error.captureStackTrace(err, console.trace);
  log('debug', err.stack);
};
console.dir = (obj, options) => log('info', util.inspect(obj, Object.assign({ customInspect: false }, options)));
installBaseLog();

// The cloud function runtime gives console a __baseLog__(msg, level) that older wx-server-sdk
// versions (1.x, through tcb-admin-node's cloud.logger()) write their structured logs with.
function installBaseLog() {
  const known = { debug: 'debug', info: 'info', log: 'info', warn: 'warn', error: 'error' };
  Object.defineProperty(console, '__baseLog__', {
    value: (msg, level) => log(known[String(level).toLowerCase()] || 'info', typeof msg === 'string' ? msg : util.format(msg)),
    enumerable: false,
    writable: true,
    configurable: true,
  });
}

// ---- the deadline of the invocation travels with cloud code's LeanStorage requests, so that the
// hooks a write fires get at most the time the function has left (LeanEngine's rule).
const apiServer = process.env.LEANCLOUD_API_SERVER ? new URL(process.env.LEANCLOUD_API_SERVER) : null;
if (apiServer) {
  for (const mod of [require('http'), require('https')]) {
    const original = mod.request;
    mod.request = function (...args) {
      const req = original.apply(this, args);
      const st = als.getStore();
      if (st && st.deadline && req.getHeader('host') === apiServer.host) {
        try {
          req.setHeader('X-Fn-Deadline', String(st.deadline));
        } catch (_) {
          // headers already sent
        }
      }
      return req;
    };
  }
}

// ---- the wx SDK probes Tencent Cloud's instance metadata host before every API call and does not
// remember the failure; off that cloud the lookup waits for DNS (100–200 ms per call). It can
// never succeed here, so it fails at once.
{
  const dns = require('dns');
  const lookup = dns.lookup;
  dns.lookup = function (host, opts, cb) {
    if (host === 'metadata.tencentyun.com') {
      const done = typeof opts === 'function' ? opts : cb;
      const err = Object.assign(new Error('getaddrinfo ENOTFOUND ' + host), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname: host });
      process.nextTick(done, err);
      return {};
    }
    return lookup.apply(this, arguments);
  };
}
// ---- outbound HTTP (wx). Requests a function makes through http, https or fetch are looked at
// here: WeChat's API (api.weixin.qq.com) goes to fn's openapi emulation; old wx-server-sdk
// versions (1.x, 2.1, 2.2), which ignore TCB_CONTEXT_CNFG, send their API calls to Tencent
// Cloud's tcb-* hosts: those go to fn's /admin with their body as sent; any other Tencent Cloud
// endpoint fails with an error saying so, never reaching the real cloud. Third-party requests go
// out (FN_HTTP_MODE live, the default), or are recorded to / replayed from plain JSON-lines files
// (FN_HTTP_MODE record | replay, FN_HTTP_RECORDINGS the directory, one <function>.jsonl each),
// matched by method, URL and body.
const outbound = (function () {
  let admin = null;
  try {
    const cnf = process.env.TCB_CONTEXT_CNFG;
    admin = cnf ? new URL(JSON.parse(cnf).URL) : null;
  } catch (_) {
    admin = null;
  }
  if (!admin) return null;
  const http = require('http');
  const https = require('https');
  const stream = require('stream');
  const orig = { http: http.request, https: https.request, fetch: globalThis.fetch };
  const mode = process.env.FN_HTTP_MODE || 'live';
  const recDir = process.env.FN_HTTP_RECORDINGS || '';
  const prefix = admin.pathname.replace(/\/admin$/, '');
  const openapiBase = admin.origin + (prefix ? prefix + '/openapi' : '/wx/openapi');

  // route decides what happens to a request: {kind: 'local' | 'rewrite' | 'blocked' | 'external', url}
  function route(u) {
    const host = u.hostname.toLowerCase();
    if (host === 'api.weixin.qq.com') return { kind: 'rewrite', url: new URL(openapiBase + u.pathname + u.search) };
    // The SDK asks the metadata service whether it runs in Tencent Cloud before every API call
    // (@cloudbase/node-sdk caches only an answer, not a failure: offline each call would wait
    // out its 30 ms timeout). An empty answer says no, and is cached.
    if (host === 'metadata.tencentyun.com') return { kind: 'metadata' };
    const tencent = host.endsWith('.tencentcloudapi.com') || host === 'tencentcloudapi.com' || host.endsWith('.tcloudbase.com') ||
      host.endsWith('.tencentyun.com');
    if (tencent && /^(tcb-[a-z]+\.tencentcloudapi\.com|[^.]+\.tcb-api\.tencentcloudapi\.com|[^.]+\.api\.tcloudbase\.com)$/.test(host) &&
        /^\/admin(\/|$)/.test(u.pathname)) {
      return { kind: 'rewrite', url: new URL(admin.href + u.search) };
    }
    if (tencent) return { kind: 'blocked' };
    // fn itself; in record and replay mode every other host (loopback ones too) is third-party
    if (u.host === admin.host) return { kind: 'local' };
    return { kind: mode === 'live' ? 'local' : 'external' };
  }

  function blockedError(method, u) {
    return Object.assign(new Error(`fn: ${method} ${u.origin}${u.pathname} is a Tencent Cloud endpoint that fn does not emulate; ` +
      'fn never sends a function\'s requests to the real cloud'), { code: 'FN_BLOCKED_CLOUD_ENDPOINT' });
  }

  function apiToken() {
    return process.env.WX_API_TOKEN || '';
  }

  // ---- recordings
  const used = new Map(); // key → how many times this process replayed it
  const rerecorded = new Set(); // keys recorded by this process (older entries replaced)
  function recFile() {
    const st = als.getStore();
    const fn = (st && st.fn) || 'unknown';
    return path.join(recDir, fn.replace(/[^A-Za-z0-9_.-]/g, '_') + '.jsonl');
  }
  function keyOf(method, url, body) {
    return method + ' ' + url + '\n' + body;
  }
  function bodyText(buf) {
    const s = buf.toString('utf8');
    return Buffer.from(s, 'utf8').equals(buf) ? { text: s } : { base64: buf.toString('base64') };
  }
  function bodyOf(rec) {
    if (rec.base64 !== undefined) return Buffer.from(rec.base64, 'base64');
    return Buffer.from(rec.text || '', 'utf8');
  }
  function readRecordings(file) {
    let src = '';
    try {
      src = fs.readFileSync(file, 'utf8');
    } catch (_) {
      return [];
    }
    const out = [];
    src.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      try {
        out.push(JSON.parse(line));
      } catch (e) {
        throw Object.assign(new Error(`fn --http replay: ${file}:${i + 1} is not JSON: ${e.message}`), { code: 'FN_HTTP_BAD_RECORDING' });
      }
    });
    return out;
  }
  function reqBody(r) {
    return r.request.base64 !== undefined ? Buffer.from(r.request.base64, 'base64').toString('utf8') : r.request.text || '';
  }
  function replay(method, url, body) {
    const file = recFile();
    const key = keyOf(method, url, body.toString('utf8'));
    const matches = readRecordings(file).filter((r) => r.request && keyOf(r.request.method, r.request.url, reqBody(r)) === key);
    if (!matches.length) {
      throw Object.assign(new Error(`fn --http replay: no recorded response for ${method} ${url}` +
        (body.length ? ` with this ${body.length}-byte body` : '') + ` in ${path.relative(process.cwd(), file) || file} ` +
        '(record it with fn dev --http record, or add it to the file)'), { code: 'FN_HTTP_NOT_RECORDED' });
    }
    const n = used.get(key) || 0;
    used.set(key, n + 1);
    const r = matches[Math.min(n, matches.length - 1)];
    return { status: r.response.status, headers: r.response.headers || {}, body: bodyOf(r.response) };
  }
  function record(method, url, body, res) {
    const file = recFile();
    const key = keyOf(method, url, body.toString('utf8'));
    let entries = readRecordings(file);
    if (!rerecorded.has(key)) {
      entries = entries.filter((r) => !(r.request && keyOf(r.request.method, r.request.url, reqBody(r)) === key));
      rerecorded.add(key);
    }
    const headers = Object.assign({}, res.headers);
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    delete headers.connection;
    entries.push({ request: Object.assign({ method, url }, bodyText(body)), response: Object.assign({ status: res.status, headers }, bodyText(res.body)) });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  }
  // live performs the request for real (record mode), its response buffered.
  function live(method, u, headers, body) {
    return new Promise((resolve, reject) => {
      const h = Object.assign({}, headers);
      for (const k of Object.keys(h)) if (k.toLowerCase() === 'accept-encoding') delete h[k]; // recordings stay readable
      const req = (u.protocol === 'https:' ? orig.https : orig.http)(u, { method, headers: h }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
  async function exchange(method, u, headers, body) {
    if (mode === 'replay') return replay(method, u.href, body);
    const res = await live(method, u, headers, body);
    record(method, u.href, body, res);
    return res;
  }

  // fakeRequest is a ClientRequest whose answer comes from answer(body) (a recording, a live
  // exchange buffered, or an error).
  function fakeRequest(u, method, cb, answer) {
    const chunks = [];
    const headers = {};
    const req = new stream.Writable({
      write(c, enc, next) {
        chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c, enc));
        next();
      },
    });
    Object.assign(req, {
      method, path: u.pathname + u.search, host: u.host, protocol: u.protocol, aborted: false,
      setHeader(k, v) { headers[k.toLowerCase()] = v; return req; },
      getHeader(k) { return headers[k.toLowerCase()]; },
      getHeaders() { return Object.assign({}, headers); },
      removeHeader(k) { delete headers[k.toLowerCase()]; },
      hasHeader(k) { return k.toLowerCase() in headers; },
      setTimeout(ms, f) { if (f) req.once('timeout', f); return req; },
      setNoDelay() {}, setSocketKeepAlive() {}, flushHeaders() {},
      abort() { req.aborted = true; req.destroy(); },
    });
    if (cb) req.once('response', cb);
    req.on('finish', () => {
      Promise.resolve().then(() => answer(Buffer.concat(chunks), headers)).then((r) => {
        if (req.aborted) return;
        const res = new stream.Readable({ read() {} });
        Object.assign(res, { statusCode: r.status, statusMessage: http.STATUS_CODES[r.status] || '', headers: r.headers, httpVersion: '1.1',
          rawHeaders: Object.entries(r.headers).flatMap(([k, v]) => [k, String(v)]), req });
        req.emit('response', res);
        res.push(r.body);
        res.push(null);
      }, (err) => req.emit('error', err));
    });
    return req;
  }

  function parse(defaultProto, args) {
    let u = null;
    let opts = {};
    let i = 0;
    if (typeof args[0] === 'string' || args[0] instanceof URL) {
      u = new URL(String(args[0]));
      i = 1;
    }
    if (args[i] && typeof args[i] === 'object') opts = args[i++];
    const cb = typeof args[i] === 'function' ? args[i] : undefined;
    if (!u) {
      const proto = opts.protocol || defaultProto;
      const host = opts.hostname || (opts.host || 'localhost').replace(/:\d+$/, '');
      const port = opts.port || (opts.host && /:(\d+)$/.test(opts.host) ? opts.host.match(/:(\d+)$/)[1] : '');
      u = new URL(proto + '//' + (host.includes(':') ? '[' + host + ']' : host) + (port ? ':' + port : '') + (opts.path || '/'));
    }
    const headers = {};
    if (opts.headers && !Array.isArray(opts.headers)) for (const [k, v] of Object.entries(opts.headers)) headers[k] = v;
    return { u, opts, cb, method: String(opts.method || 'GET').toUpperCase(), headers };
  }

  function wrap(proto, original) {
    return function request(...args) {
      let p;
      try {
        p = parse(proto, args);
      } catch (_) {
        return original.apply(this, args);
      }
      const r = route(p.u);
      switch (r.kind) {
        case 'local':
          return original.apply(this, args);
        case 'rewrite': {
          const headers = Object.assign({}, p.headers, { host: r.url.host, 'x-fn-api-token': apiToken() });
          for (const k of Object.keys(headers)) if (k !== 'host' && k.toLowerCase() === 'host') delete headers[k];
          const opts = { method: p.method, headers, timeout: p.opts.timeout };
          return (r.url.protocol === 'https:' ? orig.https : orig.http)(r.url, opts, p.cb);
        }
        case 'blocked':
          return fakeRequest(p.u, p.method, p.cb, () => { throw blockedError(p.method, p.u); });
        case 'metadata':
          return fakeRequest(p.u, p.method, p.cb, () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.alloc(0) }));
        default:
          return fakeRequest(p.u, p.method, p.cb, (body, late) => exchange(p.method, p.u, Object.assign({}, p.headers, late), body));
      }
    };
  }
  http.request = wrap('http:', http.request);
  https.request = wrap('https:', https.request);
  // http.get is bound to the module's own request internally: route it through ours
  http.get = function get(...args) { const req = http.request(...args); req.end(); return req; };
  https.get = function get(...args) { const req = https.request(...args); req.end(); return req; };

  if (typeof orig.fetch === 'function') {
    globalThis.fetch = async function fetch(input, init) {
      let u;
      try {
        u = new URL(typeof input === 'object' && input && 'url' in input ? input.url : String(input));
      } catch (_) {
        return orig.fetch(input, init);
      }
      const r = route(u);
      if (r.kind === 'local') return orig.fetch(input, init);
      const req = new Request(input, Object.assign({ duplex: 'half' }, init));
      if (r.kind === 'blocked') throw new TypeError('fetch failed', { cause: blockedError(req.method, u) });
      if (r.kind === 'metadata') return new Response('', { status: 200, headers: { 'content-type': 'text/plain' } });
      const body = req.method === 'GET' || req.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await req.arrayBuffer());
      const headers = Object.fromEntries(req.headers.entries());
      if (r.kind === 'rewrite') {
        headers['x-fn-api-token'] = apiToken();
        return orig.fetch(r.url, { method: req.method, headers, body: body.length ? body : undefined, signal: req.signal });
      }
      let res;
      try {
        res = await exchange(req.method, u, headers, body);
      } catch (err) {
        throw new TypeError('fetch failed', { cause: err });
      }
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
      const nullBody = res.status === 204 || res.status === 304 || req.method === 'HEAD';
      return new Response(nullBody ? null : res.body, { status: res.status, headers: h });
    };
  }
  return { route };
})();

// ---- errors
function errInfo(err) {
  if (err instanceof Error) {
    const info = { name: err.name, message: err.message, stack: err.stack || String(err) };
    if (err.code !== undefined) info.code = err.code;
    if (err.status !== undefined) info.status = err.status;
    return info;
  }
  let text;
  try {
    text = typeof err === 'string' ? err : JSON.stringify(err);
  } catch (_) {
    text = util.inspect(err);
  }
  return { name: typeof err, message: text === undefined ? String(err) : text, stack: '' };
}

// A worker that runs one invocation at a time (wx) dies of an uncaught error, as on the platform,
// and the invocation fails with it. A shared worker (lean: many invocations at once) logs the
// error with its stack and serves on, so one function's stray callback does not fail every
// other invocation in flight.
let exiting = false;
let shared = false;
process.on('uncaughtException', (err) => {
  if (shared) return log('error', 'Uncaught exception: ' + describe(err));
  sendSync({ t: T.fatal, kind: 'uncaughtException', rid: currentRid(), error: errInfo(err) });
  exiting = true;
  process.exit(70);
});
process.on('unhandledRejection', (reason) => {
  if (shared) return log('error', 'Unhandled promise rejection: ' + describe(reason));
  sendSync({ t: T.fatal, kind: 'unhandledRejection', rid: currentRid(), error: errInfo(reason) });
  exiting = true;
  process.exit(70);
});
function describe(err) {
  return err instanceof Error ? err.stack || String(err) : util.inspect(err);
}
process.on('exit', (code) => {
  if (!exiting) sendSync({ t: T.exit, code, rid: currentRid() });
  if (codeCache) codeCache.flush();
  if (resolveCache) resolveCache.flush();
  if (!swept || process.ppid !== parentPid) killChildren();
});

// ---- children. Every process a function spawns ends with the worker, detached or not. Where
// the engine sweeps them up (Linux: --fn-swept) it must find them alive, so the runner leaves
// them to it unless fn itself is gone (the worker was re-parented). Elsewhere the runner kills
// them; a detached child leads a process group of its own, which is killed whole.
const swept = process.argv.includes('--fn-swept');
const parentPid = process.ppid;
const children = new Set();
{
  const { ChildProcess } = require('child_process');
  const spawn = ChildProcess.prototype.spawn;
  ChildProcess.prototype.spawn = function (...args) {
    const ret = spawn.apply(this, args);
    const pid = this.pid;
    if (pid) {
      children.add(pid);
      this.once('exit', () => children.delete(pid));
    }
    return ret;
  };
}
function killChildren() {
  for (const pid of children) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch (_) {
        // gone already, or not a group leader
      }
    }
  }
  children.clear();
}
function currentRid() {
  const st = als.getStore();
  return st ? st.rid : '';
}

// ---- loading bundles. A bundle is compiled as a fresh CommonJS module that is not put in
// require's cache, so a reload drops the old code once no invocation holds it. Packages it
// requires (dev builds leave them external) resolve from the project's node_modules and load once.
const fns = Object.create(null); // name -> { version, exports, dialect }

function evaluate(file, moduleDir) {
  const code = fs.readFileSync(file, 'utf8');
  const m = new Module(file, null);
  if (codeCache) codeCache.bundle(m);
  m.filename = file;
  m.paths = modulePaths(file, moduleDir);
  m._compile(code, file);
  return m.exports;
}

// A wx function folder is its own npm package: its packages (and its own wx-server-sdk version)
// resolve from its folder first, as they would on the platform, then up the project as before.
function modulePaths(file, moduleDir) {
  const own = moduleDir ? Module._nodeModulePaths(moduleDir) : [];
  const seen = new Set(own);
  return own.concat(Module._nodeModulePaths(path.dirname(file)).filter((p) => !seen.has(p)));
}

function load(msg) {
  const started = process.hrtime.bigint();
  const prev = fns[msg.name];
  // LeanEngine keeps its registry in AV.Cloud.functions and refuses to define a name twice, so a
  // reload of cloud code that shares the leanengine module starts from an empty registry and puts
  // the old one back if the new code fails.
  let saved = null;
  const prevAV = prev && msg.dialect === 'lean' ? prev.exports : null;
  if (prevAV && prevAV.Cloud && prevAV.Cloud.functions) {
    saved = Object.assign({}, prevAV.Cloud.functions);
    for (const k of Object.keys(prevAV.Cloud.functions)) delete prevAV.Cloud.functions[k];
  }
  if (msg.dialect === 'lean') shared = true;
  else useEnvView(); // before the function's code can take a reference to process.env
  // a pre-started spare worker gets its function's environment with its first bundle
  if (msg.env) Object.assign(realEnv, msg.env);
  let exports;
  try {
    exports = als.run({ rid: '', fn: msg.name }, () => evaluate(msg.file, msg.moduleDir));
  } catch (err) {
    if (saved) {
      for (const k of Object.keys(prevAV.Cloud.functions)) delete prevAV.Cloud.functions[k];
      Object.assign(prevAV.Cloud.functions, saved);
    }
    return { ok: false, error: errInfo(err) };
  }
  const reply = { ok: true };
  if (msg.dialect === 'lean') {
    if (!exports || !exports.Cloud || !exports.Cloud.functions) {
      return { ok: false, error: { name: 'Error', message: 'the cloud code bundle does not export leanengine', stack: '' } };
    }
    reply.names = Object.keys(exports.Cloud.functions);
  } else if (!exports || typeof exports.main !== 'function') {
    return { ok: false, error: { name: 'Error', message: `${msg.name}: the function does not export main (exports.main = async (event, context) => { ... })`, stack: '' } };
  }
  fns[msg.name] = { version: msg.version, exports, dialect: msg.dialect };
  reply.ms = Number(process.hrtime.bigint() - started) / 1e6;
  return reply;
}

// ---- WeChat invocations: one at a time per process (the Go pool guarantees it), because the
// identity lives in process.env, where the real wx-server-sdk reads it.
// Writing process.env is a native call per key, so only what differs from the previous
// invocation is written; keys the new invocation lacks are removed.
// wxContext is the second argument of main, as the platform's runtime passes it. An object
// literal: defining the accessor with Object.defineProperty made every context a dictionary-mode
// object, a tenth of an exclusive worker's time per call.
function wxContext(msg, deadline, done) {
  let waits = true;
  return {
    get callbackWaitsForEmptyEventLoop() { return waits; },
    set callbackWaitsForEmptyEventLoop(v) { waits = Boolean(v); },
    done: (err, value) => done(err, value),
    succeed: (value) => done(null, value),
    fail: (err) => done(err instanceof Error ? err : new Error(String(err))),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    memory_limit_in_mb: msg.memoryMB,
    time_limit_in_ms: msg.timeLimitMs || msg.timeoutMs,
    request_id: msg.rid,
    environ: msg.environ,
    function_version: '$LATEST',
    function_name: msg.fn,
    namespace: msg.namespace,
  };
}

// A wx invocation's identity and request ids (msg.env) are a view over the real environment, not
// setenv(3) on every call: that costs a few microseconds and, as glibc never frees a value it
// replaced, ~290 bytes of the worker's memory per call. process.env becomes a proxy (wx workers
// only, installed before any of the function's code or its SDK loads) that shows:
// - in an exclusive worker (one call at a time), the running call's values, to any code that
//   runs meanwhile, as a process-wide environment would (a pooled connection's callback that
//   another call's context created sees this call's identity);
// - with concurrency, each call's own values from its AsyncLocalStorage store, which keeps
//   overlapping calls apart.
// Child processes see the view (child_process copies process.env's keys), and so do
// console.log(process.env) and util.inspect. Native code and worker threads see the real
// environment only, and structuredClone cannot copy a proxy.
let currentEnv = null; // the exclusive call running, or the latest one
function invocationEnv() {
  const st = als.getStore();
  return (st && st.env) || currentEnv;
}
const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const realEnv = process.env;
let envView = false;
function useEnvView() {
  if (envView) return;
  envView = true;
  // The proxy's target is a plain object that only says how to print the view: util.inspect
  // formats a proxy's target without its traps, and the real environment takes no symbol keys.
  // Every trap works on the real environment.
  const target = {};
  Object.defineProperty(target, util.inspect.custom, {
    value(depth, options, inspect) {
      return inspect({ ...this }, options);
    },
    configurable: true,
  });
  process.env = new Proxy(target, {
    get(_, key) {
      const e = typeof key === 'string' && invocationEnv();
      return e && hasOwn(e, key) ? e[key] : realEnv[key];
    },
    set(_, key, value) {
      const e = typeof key === 'string' && invocationEnv();
      if (e && hasOwn(e, key)) e[key] = String(value);
      else realEnv[key] = value;
      return true;
    },
    defineProperty(_, key, desc) {
      const e = typeof key === 'string' && invocationEnv();
      if (e && hasOwn(e, key) && 'value' in desc) {
        e[key] = String(desc.value);
        return true;
      }
      return Reflect.defineProperty(realEnv, key, desc);
    },
    deleteProperty(_, key) {
      const e = typeof key === 'string' && invocationEnv();
      if (e) delete e[key];
      return delete realEnv[key];
    },
    has(_, key) {
      const e = typeof key === 'string' && invocationEnv();
      return (e && hasOwn(e, key)) || key in realEnv;
    },
    ownKeys() {
      const e = invocationEnv();
      return e ? [...new Set([...Reflect.ownKeys(realEnv), ...Object.keys(e)])] : Reflect.ownKeys(realEnv);
    },
    getOwnPropertyDescriptor(_, key) {
      const e = typeof key === 'string' && invocationEnv();
      if (e && hasOwn(e, key)) return { value: e[key], writable: true, enumerable: true, configurable: true };
      const d = Reflect.getOwnPropertyDescriptor(realEnv, key);
      return d && Object.assign(d, { configurable: true });
    },
  });
}

function invokeWX(msg) {
  const f = fns[msg.fn];
  if (!f) return Promise.reject(Object.assign(new Error(`function ${msg.fn} is not loaded`), { fnKind: 'not-found' }));
  if (msg.concurrent) als.getStore().env = msg.env;
  else currentEnv = msg.env;
  const deadline = Date.now() + msg.timeoutMs;
  const main = f.exports.main;
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err, value) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(value);
    };
    const context = wxContext(msg, deadline, done);
    const callbackStyle = main.length >= 3;
    let ret;
    try {
      ret = callbackStyle ? main(msg.event, context, done) : main(msg.event, context);
    } catch (err) {
      done(err);
      return;
    }
    if (ret && typeof ret.then === 'function') ret.then((v) => done(null, v), (e) => done(e));
    else if (!callbackStyle) done(null, ret);
  });
}

// ---- LeanEngine invocations: many at once per process, dispatched from the real leanengine
// registry the same way leanengine's own middleware does (lib/leanengine.js), without express.
function leanAV() {
  const f = fns.cloud;
  if (!f) throw new Error('cloud code is not loaded');
  return f.exports;
}

function cloudError(AV, message, extra) {
  return new AV.Cloud.Error(message, Object.assign({ printToLog: true, printFullStack: false }, extra));
}

// expressRequest stands in for the express request leanengine hands to cloud functions
// (request.expressReq) when they run in fn's shared workers: what the call carried.
function expressRequest(opts) {
  const headers = {};
  if (opts.sessionToken) headers['x-lc-session'] = opts.sessionToken;
  return {
    method: 'POST',
    url: opts.url,
    originalUrl: opts.url,
    path: opts.url,
    ip: opts.remoteAddress,
    ips: opts.remoteAddress ? [opts.remoteAddress] : [],
    body: opts.params,
    headers,
    get: (name) => headers[String(name).toLowerCase()],
    header: (name) => headers[String(name).toLowerCase()],
  };
}

function prepareRequest(opts) {
  const currentUser = opts.user;
  return {
    expressReq: expressRequest(opts),
    params: opts.params,
    object: opts.object,
    meta: { remoteAddress: opts.remoteAddress },
    user: opts.user,
    currentUser,
    sessionToken: (currentUser && currentUser.getSessionToken && currentUser.getSessionToken()) || opts.sessionToken,
  };
}

function responder(callback) {
  return { success: (result) => callback(null, result), error: (err) => callback(err) };
}

function decodeUser(AV, json) {
  if (!json) return undefined;
  const user = new AV.User();
  user._finishFetch(json, true);
  return user;
}

function encodeResult(AV, result) {
  const encodeObject = (object) => {
    if (object && object.toFullJSON) object = object.toFullJSON();
    const encoded = {};
    if (object !== null && (typeof object === 'object' || typeof object === 'function')) {
      for (const k of Object.keys(object)) encoded[k] = AV._encode(object[k], []);
    }
    return encoded;
  };
  return Array.isArray(result) ? result.map(encodeObject) : encodeObject(result);
}

async function invokeLeanFunction(AV, msg) {
  const fn = AV.Cloud.functions[msg.name];
  if (!fn) throw cloudError(AV, `No such cloud function '${msg.name}'`, { status: 404 });
  if (fn.internal && !msg.hookKeyOK && !msg.master) {
    throw cloudError(AV, `Internal cloud function, request from ${msg.remoteAddress}`, { status: 401, code: 401 });
  }
  if (msg.realtimeHook && !msg.hookKeyOK) {
    throw cloudError(AV, `Hook key check failed, request from ${msg.remoteAddress}`, { status: 401, code: 401 });
  }
  let params = msg.params;
  if (msg.rpc) params = AV._decode(params);
  let user;
  if (fn.fetchUser !== false && msg.sessionToken) {
    try {
      user = await AV.User.become(msg.sessionToken);
    } catch (err) {
      if (err.code === 211) {
        throw new AV.Cloud.Error(`Verify sessionToken failed, maybe login expired: ${err.message}`, { status: 401, code: 211 });
      }
      throw err;
    }
  }
  const request = prepareRequest({ user, params, remoteAddress: msg.remoteAddress, sessionToken: msg.sessionToken, url: msg.url });
  let result;
  if (fn.length === 2) {
    result = await new Promise((resolve, reject) => {
      fn(request, responder((err, value) => (err ? reject(err) : resolve(value))));
    });
  } else {
    result = await fn(request);
  }
  return msg.rpc ? { result: encodeResult(AV, result) } : { result };
}

const hookPrefixes = {
  beforeSave: '__before_save_for_',
  beforeUpdate: '__before_update_for_',
  afterSave: '__after_save_for_',
  afterUpdate: '__after_update_for_',
  beforeDelete: '__before_delete_for_',
  afterDelete: '__after_delete_for_',
  onVerified: '__on_verified_',
  onLogin: '__on_login_',
  onAuthData: '__on_authdata_',
};

function omitType(json) {
  const copy = Object.assign({}, json);
  delete copy.__type;
  delete copy.className;
  return copy;
}

async function invokeClassHook(AV, msg) {
  if (!msg.hookKeyOK) throw cloudError(AV, `Hook key check failed, request from ${msg.remoteAddress}`, { status: 401, code: 401 });
  const hook = AV.Cloud.functions[hookPrefixes[msg.hook] + msg.className];
  if (!hook) throw cloudError(AV, `No ${msg.hook} hook of '${msg.className}'`, { status: 404 });
  const before = msg.hook.indexOf('before') === 0;
  const body = msg.params || {};
  const object = AV._decode(Object.assign({}, body.object, { __type: 'Object', className: msg.className }));
  if (body.object && body.object._updatedKeys) object.updatedKeys = body.object._updatedKeys;
  if (before) object.disableBeforeHook();
  else object.disableAfterHook();
  const request = prepareRequest({ object, user: decodeUser(AV, body.user), remoteAddress: msg.remoteAddress });
  if (before && hook.length === 2) {
    await new Promise((resolve, reject) => hook(request, responder((err) => (err ? reject(err) : resolve()))));
  } else {
    await hook(request);
  }
  if (!before) return { result: 'ok' };
  if (msg.hook === 'beforeDelete') return {};
  return omitType(object._toFullJSON());
}

async function invokeUserHook(AV, msg) {
  if (!msg.hookKeyOK) throw cloudError(AV, `Hook key check failed, request from ${msg.remoteAddress}`, { status: 401, code: 401 });
  const target = msg.hook === 'onVerified' ? msg.className : '_User';
  const hook = AV.Cloud.functions[hookPrefixes[msg.hook] + target];
  if (!hook) throw cloudError(AV, `No such hook: ${msg.hook}`, { status: 404 });
  const body = msg.params || {};
  const user = decodeUser(AV, body.object);
  const request = prepareRequest({ user, object: user, remoteAddress: msg.remoteAddress });
  if (body.authData) request.authData = body.authData;
  if (msg.hook === 'onLogin' && hook.length === 2) {
    await new Promise((resolve, reject) => hook(request, responder((err) => (err ? reject(err) : resolve()))));
    return { result: 'ok' };
  }
  const result = await hook(request);
  return msg.hook === 'onAuthData' ? { result } : { result: 'ok' };
}

// invokeBigQuery is /1.1/functions/BigQuery/onComplete: the job's body goes to the callback
// as is, and its return value is the answer (leanengine's onCompleteBigQueryJob, registered with AV.Insight.on).
async function invokeBigQuery(AV, msg) {
  if (!msg.hookKeyOK) throw cloudError(AV, `Hook key check failed, request from ${msg.remoteAddress}`, { status: 401, code: 401 });
  const fn = AV.Cloud.functions.__on_complete_bigquery_job;
  if (!fn) throw cloudError(AV, 'No such hook: onComplete', { status: 404 });
  const result = await fn(msg.params);
  return result === undefined ? {} : result;
}

function invokeLean(msg) {
  const AV = leanAV();
  switch (msg.kind) {
    case 'bigquery':
      return invokeBigQuery(AV, msg);
    case 'function':
      return invokeLeanFunction(AV, msg);
    case 'classHook':
      return invokeClassHook(AV, msg);
    case 'userHook':
      return invokeUserHook(AV, msg);
  }
  return Promise.reject(new Error('unknown invocation kind ' + msg.kind));
}

// leanErrorReply maps an error exactly as leanengine's middleware does: status from err.status
// (500 for an Error without one, 400 for a thrown non-Error) and body {code, error}.
function leanErrorReply(err) {
  const status = err instanceof Error ? err.status || err.statusCode || 500 : 400;
  let message = err && (err.message || err.responseText);
  if (!message) message = err || 'unknown error';
  return { status, body: { code: (err && err.code) || 1, error: message }, log: status === 500 || (err && err.printToLog) };
}

// ---- dispatch
function serialise(value) {
  try {
    const json = JSON.stringify(value === undefined ? null : value);
    return json === undefined ? { json: 'null' } : { json };
  } catch (err) {
    return { error: { name: 'TypeError', message: 'the result cannot be sent as JSON: ' + err.message, stack: '', kind: 'not-serializable' } };
  }
}

// answer sends the reply of a request: kind and id first, as the engine reads them.
function answer(kind, id, fields) {
  send(Object.assign({ t: kind, id }, fields));
}

function fail(id, fields) {
  answer(T.result, id, Object.assign({ ok: false }, fields));
}

function reply(id, value) {
  const s = serialise(value);
  if (s.error) return fail(id, { error: s.error });
  if (Buffer.byteLength(s.json) > MAX_RESULT_BYTES) {
    return fail(id, { error: { name: 'Error', kind: 'too-large', message: `the result is ${Buffer.byteLength(s.json)} bytes; the limit is ${MAX_RESULT_BYTES} (1 MB)`, stack: '' } });
  }
  sendRaw(JSON.stringify({ t: T.result, id, ok: true }), s.json);
}

function handle(msg) {
  switch (msg.t) {
    case T.ping:
      return answer(T.pong, msg.id, {});
    case T.load:
      return answer(T.loaded, msg.id, load(msg));
    case T.invoke:
      inflight++;
      return als.run({ rid: msg.rid, fn: msg.fn, deadline: msg.timeoutMs ? Date.now() + msg.timeoutMs : 0 }, () => {
        if (msg.dialect === 'wx') {
          invokeWX(msg).then((v) => reply(msg.id, v), (err) => fail(msg.id, { error: Object.assign(errInfo(err), { kind: err && err.fnKind }) })).finally(invoked);
          return;
        }
        let p;
        try {
          p = invokeLean(msg);
        } catch (err) {
          p = Promise.reject(err);
        }
        p.then((v) => reply(msg.id, v), (err) => {
          const r = leanErrorReply(err);
          if (r.log) {
            const text = err instanceof Error ? (err.printFullStack === false ? `${err.name}: ${err.message}` : err.stack || err.message) : String(r.body.error);
            log('warn', `LeanEngine: ${msg.url}: ${r.status}: ${text}`);
          }
          fail(msg.id, { status: r.status, body: r.body, error: errInfo(err) });
        }).finally(invoked);
      });
  }
}

// invoked ends an invocation. The code V8 compiled and the resolutions made for packages up to
// the first one are written once the reply is out (later code waits for the code cache's idle
// timer, later resolutions for the worker's exit).
let invokedOnce = false;
function invoked() {
  inflight--;
  if (!invokedOnce && inflight === 0) {
    if (codeCache) setImmediate(codeCache.flush);
    if (resolveCache) setImmediate(resolveCache.flush);
  }
  invokedOnce = true;
}

const input = link || new net.Socket({ fd: IN_FD, readable: true, writable: false });
let buffered = '';
input.setEncoding('utf8');
input.on('data', (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (line) handle(JSON.parse(line));
  }
});
// The supervisor closed the pipe (it stopped or died): leave no orphan behind.
input.on('end', () => {
  exiting = true;
  process.exit(0);
});
input.on('error', () => {
  exiting = true;
  process.exit(0);
});

// A spare started for SDK users requires the project's SDK before it says it is ready
// (--fn-preload=<package>, resolved from the project directory as a bundle's require() resolves
// it): the function that takes the spare finds the package in require's cache. The engine gives
// such a spare only to a bundle that requires that package and brings no env of its own.
for (const arg of process.argv) {
  if (!arg.startsWith('--fn-preload=')) continue;
  if (arg === '--fn-preload=wx-server-sdk') useEnvView(); // before the SDK can take a reference to it
  try {
    als.run({ rid: '', fn: '' }, () => require(require.resolve(arg.slice('--fn-preload='.length), { paths: [process.cwd()] })));
  } catch (_) {
    // not installed, or it fails to load: the function's own require reports that
  }
}

send({ t: T.ready, protocol: PROTOCOL, pid: process.pid, node: process.version });
