// Drives the database through the real wx-server-sdk 1.8.3 (the fixture's wx-server-sdk-1, on
// tcb-admin-node and @cloudbase/database 0.9.x: the legacy actions addDocument, queryDocument,
// countDocument, updateDocument, deleteDocument, aggregate, *InTransaction). Prints one JSON
// object of step results.
const cloud = require(process.env.FIXTURE + '/wx-server-sdk-1')
// 1.x ignores TCB_CONTEXT_CNFG; serviceUrl points its tcb-admin-node at the test's /admin
cloud.init({ env: 'test-env', serviceUrl: process.env.ADMIN_URL })
const db = cloud.database()
const _ = db.command

const out = {}
const norm = v => JSON.parse(JSON.stringify(v, (k, x) => x))
async function step (name, fn) {
  try {
    out[name] = norm(await fn())
  } catch (e) {
    out[name] = { error: true, errCode: e.errCode, errMsg: e.errMsg || String(e) }
  }
}
const ids = r => r.data.map(d => d._id)

;(async () => {
  const c = db.collection('books')
  await step('add', () => c.add({ data: { _id: 'a', n: 1, title: 'Alpha', tags: ['x', 'y'], meta: { shelf: 2, note: 'n' }, at: new Date('2024-01-02T03:04:05.678Z'), p: db.Geo.Point(113.32, 23.13) } }))
  await step('addAuto', async () => {
    const r = await c.add({ data: { n: 5, title: 'auto', when: db.serverDate(), later: db.serverDate({ offset: 60000 }) } })
    const g = await c.doc(r._id).get()
    const d = g.data[0] || g.data
    return { idLen: r._id.length, openid: d._openid, whenIsDate: d.when instanceof Date, diff: d.later - d.when }
  })
  await c.add({ data: { _id: 'b', n: 2, title: 'Beta', tags: ['y'], meta: { shelf: 3 } } })
  await c.add({ data: { _id: 'c', n: 3, title: 'gamma', tags: [], meta: { shelf: 2 } } })
  await step('docGet', async () => {
    const g = await c.doc('a').get()
    const d = g.data[0] || g.data
    return { title: d.title, tags: d.tags, meta: d.meta, atIsDate: d.at instanceof Date, at: d.at, lng: d.p.longitude, lat: d.p.latitude, errMsg: g.errMsg }
  })
  await step('whereEq', async () => ids(await c.where({ title: 'Beta' }).get()))
  await step('whereNested', async () => ids(await c.where({ meta: { shelf: 2 } }).orderBy('_id', 'asc').get()))
  await step('whereCmd', async () => ids(await c.where({ n: _.gt(1).and(_.lte(3)) }).orderBy('n', 'desc').get()))
  await step('whereIn', async () => ids(await c.where({ _id: _.in(['a', 'c', 'zz']) }).orderBy('_id', 'asc').get()))
  await step('whereOr', async () => ids(await c.where(_.or([{ n: 1 }, { title: 'gamma' }])).orderBy('_id', 'asc').get()))
  await step('whereRegExp', async () => ids(await c.where({ title: db.RegExp({ regexp: '^(al|be)', options: 'i' }) }).orderBy('_id', 'asc').get()))
  await step('whereDate', async () => ids(await c.where({ at: _.lt(new Date('2025-01-01')) }).get()))
  await step('whereArray', async () => ids(await c.where({ tags: 'y' }).orderBy('_id', 'asc').get()))
  await step('orderSkipLimit', async () => ids(await c.where({ n: _.lt(5) }).orderBy('n', 'asc').skip(1).limit(1).get()))
  await step('field', async () => (await c.where({ _id: 'b' }).field({ title: true }).get()).data)
  await step('count', async () => (await c.where({ meta: { shelf: 2 } }).count()).total)
  await step('docUpdate', async () => {
    const r = await c.doc('b').update({ data: { n: _.inc(10), tags: _.push('z'), meta: { note: 'set' } } })
    const d = (await c.doc('b').get()).data
    return { updated: r.stats.updated, doc: d[0] || d }
  })
  await step('docSetReplace', async () => {
    const r = await c.doc('c').set({ data: { title: 'replaced' } })
    const d = (await c.doc('c').get()).data
    const doc = d[0] || d
    return { updated: r.stats.updated, title: doc.title, n: doc.n === undefined ? 'gone' : doc.n }
  })
  await step('docSetNew', async () => {
    const r = await c.doc('new1').set({ data: { title: 'fresh' } })
    return { created: r.stats.created, id: r._id, count: (await c.where({ _id: 'new1' }).count()).total }
  })
  await step('whereUpdate', async () => (await c.where({ n: _.gte(5) }).update({ data: { big: true } })).stats)
  await step('afterWhereUpdate', async () => ids(await c.where({ big: true }).orderBy('_id', 'asc').get()).length)
  await step('aggregate', async () => (await c.aggregate().match({ meta: { shelf: _.exists(true) } }).group({ _id: '$meta.shelf', n: db.command.aggregate.sum(1) }).sort({ _id: 1 }).end()).list)
  await step('tx', async () => {
    const res = await db.runTransaction(async t => {
      const a = await t.collection('books').doc('a').get()
      await t.collection('books').doc('a').update({ data: { n: a.data.n + 100 } })
      return a.data.n
    })
    const d = (await c.doc('a').get()).data
    return { res, n: (d[0] || d).n }
  })
  // a model object's `_id: undefined` arrives as _id null (bson's EJSON.stringify): a new id
  await step('txAddUndefinedId', async () => {
    const t = await db.startTransaction()
    const r = await t.collection('books').add({ data: { _id: undefined, title: 'in tx', big: true } })
    await t.commit()
    return { n: (await c.where({ title: 'in tx' }).count()).total }
  })
  await step('addUndefinedId', async () => {
    const r = await c.add({ data: { _id: undefined, title: 'plain', big: true } })
    return { idLen: r._id.length }
  })
  await step('docRemove', async () => (await c.doc('new1').remove()).stats)
  await step('whereRemove', async () => (await c.where({ big: true }).remove()).stats)
  await step('left', async () => ids(await c.orderBy('_id', 'asc').get()))
  await step('missingCollection', () => db.collection('nope').where({ a: 1 }).get())
  await step('badUpdate', () => c.doc('a').update({ data: { n: _.inc('x') } }))
  console.log(JSON.stringify(out))
})()
