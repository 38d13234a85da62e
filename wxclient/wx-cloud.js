/* wx-cloud.js — the mini-program client (wx.cloud) against fn dev or fn serve, for page code and
 * its tests in Node.js 18+ (fetch). Served by fn at GET /__fn/wx-cloud.js.
 *
 *   const { cloud } = require('./wx-cloud.js')   // also sets globalThis.wx.cloud
 *   cloud.init({ server: 'http://127.0.0.1:3000', identity: 'alice' })
 *   const { result } = await cloud.callFunction({ name: 'login', data: {} })
 *
 * init options: server (fn's URL; default FN_SERVER or http://127.0.0.1:3000), app and env (fn
 * serve: the app and environment, routes under /wx/<app>/<env>), identity (fn dev: a name under
 * identities in fn.yaml), openid/appid/unionid (fn dev: a user not in fn.yaml), token (fn serve:
 * the session token of POST /wx/<app>/login), cloudEnv (the cloud environment id).
 * Every API takes success/fail/complete callbacks or returns a promise.
 */
'use strict';
(function (root, factory) {
  const api = factory();
  if (typeof module === 'object' && module.exports) module.exports = api;
  root.wx = root.wx || {};
  root.wx.cloud = api.cloud;
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
  const CODES = {
    INVALID_PARAM: -501007, SYS_ERR: -501001, DATABASE_REQUEST_FAILED: -502001, DATABASE_INVALID_OPERRATOR: -502002,
    DATABASE_PERMISSION_DENIED: -502003, DATABASE_COLLECTION_NOT_EXIST: -502005, STORAGE_REQUEST_FAIL: -503001,
    STORAGE_EXCEED_AUTHORITY: -503002, STORAGE_FILE_NONEXIST: -503003, FN_UNSUPPORTED_ACTION: -501001,
  };
  let cfg = null;

  function config() {
    if (!cfg) throw fail('cloud', -1, 'wx.cloud.init() must be called first');
    return cfg;
  }
  function prefix() {
    const c = config();
    return c.server + (c.app ? '/wx/' + encodeURIComponent(c.app) + '/' + encodeURIComponent(c.env || 'production') : '/wx');
  }
  function headers() {
    const c = config();
    const h = { 'content-type': 'application/json' };
    if (c.identity) h['x-fn-identity'] = c.identity;
    if (c.openid) h['x-wx-openid'] = c.openid;
    if (c.appid) h['x-wx-appid'] = c.appid;
    if (c.unionid) h['x-wx-unionid'] = c.unionid;
    if (c.token) h.authorization = 'Bearer ' + c.token;
    return h;
  }
  function fail(api, code, msg) {
    const e = new Error(api + ':fail ' + (code ? code + ' ' : '') + msg);
    e.errCode = code;
    e.errMsg = e.message;
    return e;
  }
  // wrap gives an API both styles: callbacks (success/fail/complete) or a promise.
  function wrap(name, fn) {
    return function (opts) {
      opts = opts || {};
      const p = Promise.resolve().then(() => fn(opts)).then((res) => Object.assign({ errMsg: name + ':ok' }, res));
      if (opts.success || opts.fail || opts.complete) {
        p.then((res) => { if (opts.success) opts.success(res); if (opts.complete) opts.complete(res); },
          (err) => { if (opts.fail) opts.fail(err); if (opts.complete) opts.complete(err); });
        return undefined;
      }
      return p;
    };
  }
  async function client(api, action, params) {
    const c = config();
    const res = await fetch(prefix() + '/client', { method: 'POST', headers: headers(),
      body: JSON.stringify(Object.assign({ action, envName: c.cloudEnv || '' }, params)) });
    let body;
    try {
      body = await res.json();
    } catch (e) {
      throw fail(api, -1, 'fn answered ' + res.status + ' without JSON');
    }
    if (body.code) throw fail(api, CODES[body.code] || -501001, body.message);
    return body;
  }

  // ---- EJSON: the database's wire format
  function encode(v) {
    if (v instanceof Date) return { $date: { $numberLong: String(v.getTime()) } };
    if (v && v._fnServerDate) return { $date: { $numberLong: String(Date.now() + (v.offset || 0)) } };
    if (Array.isArray(v)) return v.map(encode);
    if (v && typeof v === 'object') {
      if (v._fnCmd) return { ['$' + v._fnCmd]: encode(v.value) };
      if (v._fnLogic) return { ['$' + v._fnLogic]: v.value.map(encode) };
      const o = {};
      for (const k of Object.keys(v)) o[k] = encode(v[k]);
      return o;
    }
    if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 2 ** 31) return { $numberInt: String(v) };
    if (typeof v === 'number') return { $numberDouble: String(v) };
    return v;
  }
  function decode(v) {
    if (Array.isArray(v)) return v.map(decode);
    if (v && typeof v === 'object') {
      if ('$date' in v) return new Date(typeof v.$date === 'object' ? Number(v.$date.$numberLong) : v.$date);
      if ('$numberInt' in v) return Number(v.$numberInt);
      if ('$numberLong' in v) return Number(v.$numberLong);
      if ('$numberDouble' in v) return Number(v.$numberDouble);
      if ('$oid' in v) return v.$oid;
      const o = {};
      for (const k of Object.keys(v)) o[k] = decode(v[k]);
      return o;
    }
    return v;
  }
  const ejson = (v) => JSON.stringify(encode(v));
  // update data: commands grouped by operator, plain values flattened into $set dot paths
  function updateData(data) {
    const ops = {};
    const put = (op, k, v) => { (ops['$' + op] = ops['$' + op] || {})[k] = encode(v); };
    (function walk(obj, path) {
      for (const k of Object.keys(obj)) {
        const v = obj[k];
        const p = path ? path + '.' + k : k;
        if (v && v._fnCmd) put(v._fnCmd, p, v.value);
        else if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !v._fnServerDate && Object.keys(v).length) walk(v, p);
        else put('set', p, v);
      }
    })(data, '');
    return JSON.stringify(ops);
  }

  const cmd = (name) => (value) => ({ _fnCmd: name, value });
  const command = {
    eq: cmd('eq'), neq: cmd('ne'), gt: cmd('gt'), gte: cmd('gte'), lt: cmd('lt'), lte: cmd('lte'), in: cmd('in'), nin: cmd('nin'),
    exists: cmd('exists'), size: cmd('size'), all: cmd('all'), elemMatch: cmd('elemMatch'),
    and: (...q) => ({ _fnLogic: 'and', value: q.flat() }), or: (...q) => ({ _fnLogic: 'or', value: q.flat() }),
    inc: cmd('inc'), mul: cmd('mul'), set: cmd('set'), remove: () => ({ _fnCmd: 'unset', value: '' }), push: (v) => ({ _fnCmd: 'push', value: { $each: Array.isArray(v) ? v : [v] } }),
    pull: cmd('pull'), addToSet: cmd('addToSet'), min: cmd('min'), max: cmd('max'),
  };

  function collection(name) {
    const q = { query: null, order: [], offset: undefined, limit: undefined, projection: undefined };
    const query = (over) => Object.assign({}, q, over);
    function builder(state) {
      return {
        where(cond) { return builder(Object.assign({}, state, { query: cond })); },
        orderBy(field, dir) { return builder(Object.assign({}, state, { order: state.order.concat([{ field, direction: dir || 'asc' }]) })); },
        limit(n) { return builder(Object.assign({}, state, { limit: n })); },
        skip(n) { return builder(Object.assign({}, state, { offset: n })); },
        field(p) { return builder(Object.assign({}, state, { projection: p })); },
        get: wrap('collection.get', async () => {
          const params = { collectionName: name, query: ejson(state.query || {}), queryType: 'WHERE' };
          if (state.order.length) params.order = JSON.stringify(state.order);
          if (state.limit !== undefined) params.limit = state.limit;
          if (state.offset !== undefined) params.offset = state.offset;
          if (state.projection) params.projection = JSON.stringify(state.projection);
          const r = await client('collection.get', 'database.getDocument', params);
          return { data: r.data.list.map((s) => decode(JSON.parse(s))) };
        }),
        count: wrap('collection.count', async () => {
          const r = await client('collection.count', 'database.countDocument', { collectionName: name, query: ejson(state.query || {}), queryType: 'WHERE' });
          return { total: r.data.total };
        }),
        update: wrap('collection.update', async (o) => {
          const r = await client('collection.update', 'database.modifyDocument', { collectionName: name, query: ejson(state.query || {}), queryType: 'WHERE',
            data: updateData(o.data || {}), multi: true, merge: true, upsert: false });
          return { stats: { updated: r.data.updated } };
        }),
        remove: wrap('collection.remove', async () => {
          const r = await client('collection.remove', 'database.removeDocument', { collectionName: name, query: ejson(state.query || {}), queryType: 'WHERE', multi: true });
          return { stats: { removed: r.data.deleted } };
        }),
      };
    }
    const b = builder(query());
    b.add = wrap('collection.add', async (o) => {
      const r = await client('collection.add', 'database.insertDocument', { collectionName: name, data: [ejson(o.data || {})] });
      return { _id: r.data.insertedIds[0] };
    });
    b.doc = (id) => {
      const docQuery = () => JSON.stringify({ _id: id });
      return {
        get: wrap('document.get', async () => {
          const r = await client('document.get', 'database.getDocument', { collectionName: name, query: docQuery(), queryType: 'DOC' });
          if (!r.data.list.length) throw fail('document.get', -1, 'document with _id ' + id + ' does not exist');
          return { data: decode(JSON.parse(r.data.list[0])) };
        }),
        set: wrap('document.set', async (o) => {
          const r = await client('document.set', 'database.modifyDocument', { collectionName: name, query: docQuery(), queryType: 'DOC',
            data: ejson(o.data || {}), multi: false, merge: false, upsert: true });
          return { _id: id, stats: { updated: r.data.updated || 0, created: r.data.upsert_id ? 1 : 0 } };
        }),
        update: wrap('document.update', async (o) => {
          const r = await client('document.update', 'database.modifyDocument', { collectionName: name, query: docQuery(), queryType: 'DOC',
            data: updateData(o.data || {}), multi: false, merge: true, upsert: false });
          return { stats: { updated: r.data.updated } };
        }),
        remove: wrap('document.remove', async () => {
          const r = await client('document.remove', 'database.removeDocument', { collectionName: name, query: docQuery(), queryType: 'DOC', multi: false });
          return { stats: { removed: r.data.deleted } };
        }),
      };
    };
    return b;
  }

  async function tempURLs(api, fileList) {
    if (!Array.isArray(fileList) || !fileList.length) throw fail(api, -501007, 'fileList must be a non-empty array');
    const r = await client(api, 'storage.batchGetDownloadUrl', { file_list: fileList.map((f) => typeof f === 'string' ? { fileid: f, max_age: 7200 } : { fileid: f.fileID, max_age: f.maxAge }) });
    return r.data.download_list.map((f) => ({ fileID: f.fileID, tempFileURL: f.tempFileURL, maxAge: f.maxAge,
      status: f.code === 'SUCCESS' ? 0 : (CODES[f.code] || -1), errMsg: f.code === 'SUCCESS' ? 'ok' : f.message }));
  }

  const cloud = {
    init(opts) {
      opts = opts || {};
      const env = typeof process !== 'undefined' && process.env ? process.env : {};
      cfg = Object.assign({}, opts, { server: String(opts.server || env.FN_SERVER || 'http://127.0.0.1:3000').replace(/\/+$/, '') });
      if (typeof opts.env === 'string' && !opts.app) cfg.cloudEnv = opts.env;
    },
    // CloudID wraps a cloudID (from getUserProfile, getWeRunData …): callFunction hands the
    // function {cloudID, data} in its place, data being the fake user's.
    CloudID(cloudID) {
      return { _fnCloudID: String(cloudID) };
    },
    callFunction: wrap('cloud.callFunction', async (o) => {
      if (!o.name) throw fail('cloud.callFunction', -1, 'name is required');
      const ids = [];
      (function collect(v, depth) {
        if (!v || typeof v !== 'object' || depth > 32) return;
        if (typeof v._fnCloudID === 'string') ids.push(v._fnCloudID);
        else for (const k of Object.keys(v)) collect(v[k], depth + 1);
      })(o.data, 0);
      let data = o.data || {};
      if (ids.length) {
        const r = await client('cloud.callFunction', 'openapi.getOpenData', { list: ids });
        const resolved = new Map(ids.map((id, i) => [id, r.data.list[i]]));
        data = (function swap(v, depth) {
          if (!v || typeof v !== 'object' || depth > 32) return v;
          if (typeof v._fnCloudID === 'string') return resolved.get(v._fnCloudID);
          if (Array.isArray(v)) return v.map((x) => swap(x, depth + 1));
          const out = {};
          for (const k of Object.keys(v)) out[k] = swap(v[k], depth + 1);
          return out;
        })(data, 0);
      }
      const res = await fetch(prefix() + '/functions/' + encodeURIComponent(o.name), { method: 'POST', headers: headers(), body: JSON.stringify(data) });
      const body = await res.json().catch(() => ({ errCode: -1, errMsg: 'cloud.callFunction:fail fn answered ' + res.status + ' without JSON' }));
      if (body.errCode || !String(body.errMsg || '').endsWith(':ok')) {
        const e = fail('cloud.callFunction', body.errCode || -1, '');
        e.errMsg = e.message = body.errMsg || e.message;
        throw e;
      }
      return { result: body.result, requestID: body.requestID };
    }),
    database(opts) {
      return { collection, command, serverDate: (o) => ({ _fnServerDate: true, offset: (o && o.offset) || 0 }), RegExp: (o) => ({ $regex: o.regexp, $options: o.options || '' }) };
    },
    uploadFile: wrap('cloud.uploadFile', async (o) => {
      if (!o.cloudPath) throw fail('cloud.uploadFile', -501007, 'cloudPath is required');
      let content = o.fileContent;
      if (content === undefined) {
        if (!o.filePath) throw fail('cloud.uploadFile', -501007, 'filePath is required');
        content = require('fs').readFileSync(o.filePath);
      }
      const md = await client('cloud.uploadFile', 'storage.getUploadMetadata', { path: o.cloudPath });
      const put = await fetch(md.data.url, { method: 'PUT', headers: { authorization: md.data.authorization }, body: content });
      if (put.status !== 200) {
        const text = await put.text();
        const m = /<Message>([^<]*)<\/Message>/.exec(text);
        throw fail('cloud.uploadFile', -503001, m ? m[1] : 'upload answered ' + put.status);
      }
      return { fileID: md.data.fileId, statusCode: 200 };
    }),
    getTempFileURL: wrap('cloud.getTempFileURL', async (o) => ({ fileList: await tempURLs('cloud.getTempFileURL', o.fileList) })),
    downloadFile: wrap('cloud.downloadFile', async (o) => {
      const [f] = await tempURLs('cloud.downloadFile', [o.fileID]);
      if (f.status !== 0) throw fail('cloud.downloadFile', f.status, f.errMsg);
      const res = await fetch(f.tempFileURL);
      const buf = Buffer.from(await res.arrayBuffer());
      const p = require('path').join(require('os').tmpdir(), 'wx-cloud-' + Date.now() + '-' + require('path').basename(o.fileID));
      require('fs').writeFileSync(p, buf);
      return { tempFilePath: p, statusCode: res.status };
    }),
    deleteFile: wrap('cloud.deleteFile', async (o) => {
      const r = await client('cloud.deleteFile', 'storage.batchDeleteFile', { fileid_list: o.fileList || [] });
      return { fileList: r.data.delete_list.map((f) => ({ fileID: f.fileID, status: f.code === 'SUCCESS' ? 0 : (CODES[f.code] || -1), errMsg: f.code === 'SUCCESS' ? 'ok' : f.message })) };
    }),
  };
  return { cloud };
});
