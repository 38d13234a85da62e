// Drives the database through the real wx-server-sdk; prints one JSON object of step results.
const cloud = require(process.env.FIXTURE + '/wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
const db = cloud.database()
const _ = db.command
const $ = db.command.aggregate

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
  const c = db.collection('items')
  await step('createCollection', () => db.createCollection('made'))
  await step('createAgain', () => db.createCollection('made'))
  await step('getMissing', () => db.collection('nope').get())
  await step('docGetMissingColl', () => db.collection('nope').doc('x').get())

  await step('add', async () => {
    const r = await c.add({ data: { _id: 'a', n: 1, s: 'apple', tags: ['red', 'fruit'], nested: { x: 1, y: { z: 'deep' } }, d: new Date('2024-01-02T03:04:05.678Z'), p: db.Geo.Point(113.32, 23.13) } })
    return r
  })
  await step('addMany', () => c.add({ data: [
    { _id: 'b', n: 2, s: 'banana', tags: ['yellow', 'fruit'], nested: { x: 2 }, arr: [{ k: 1, v: 'one' }, { k: 2, v: 'two' }], p: db.Geo.Point(113.33, 23.14) },
    { _id: 'c', n: 3, s: 'cherry', tags: ['red'], nested: { x: 3 }, nul: null, big: 2 ** 40, f: 1.5 },
    { _id: 'd', n: '4', s: 'date', mixed: true },
    { _id: 'e', s: 'Elder', n: 10, p: db.Geo.Point(116.4, 39.9) }
  ] }))
  await step('addAutoId', async () => {
    const r = await c.add({ data: { n: 100, auto: true, when: db.serverDate(), later: db.serverDate({ offset: 60000 }) } })
    const g = await c.doc(r._id).get()
    return { idLen: r._id.length, hex: /^[0-9a-f]{32}$/.test(r._id), openid: g.data._openid, whenIsDate: typeof g.data.when, diff: new Date(g.data.later) - new Date(g.data.when) }
  })
  await step('addDup', () => c.add({ data: { _id: 'a', n: 9 } }))
  await step('addBadField', () => c.add({ data: { $bad: 1 } }))

  await step('docGet', async () => { const r = await c.doc('a').get(); return { ...r.data, dIsDate: r.data.d instanceof Date } })
  await step('docGetNone', () => c.doc('zzz').get())
  await step('docField', () => c.doc('a').field({ s: true, 'nested.y': true }).get())

  await step('whereEq', async () => ids(await c.where({ s: 'banana' }).get()))
  await step('whereNested', async () => ids(await c.where({ nested: { x: 2 } }).get()))
  await step('whereDot', async () => ids(await c.where({ 'nested.y.z': 'deep' }).get()))
  await step('whereArrayElem', async () => ids(await c.where({ tags: 'red' }).orderBy('_id', 'asc').get()))
  await step('whereArrayDot', async () => ids(await c.where({ 'arr.k': 2 }).get()))
  await step('gtlt', async () => ids(await c.where({ n: _.gt(1).and(_.lte(3)) }).orderBy('n', 'asc').get()))
  await step('neq', async () => ids(await c.where({ n: _.neq(1), auto: _.exists(false) }).orderBy('_id', 'asc').get()))
  await step('in', async () => ids(await c.where({ n: _.in([1, 3, '4']) }).orderBy('_id', 'asc').get()))
  await step('nin', async () => ids(await c.where({ n: _.nin([1, 3]), auto: _.exists(false) }).orderBy('_id', 'asc').get()))
  await step('or', async () => ids(await c.where(_.or([{ s: 'apple' }, { n: 3 }])).orderBy('_id', 'asc').get()))
  await step('fieldOr', async () => ids(await c.where({ n: _.eq(1).or(_.eq(2)) }).orderBy('_id', 'asc').get()))
  await step('and', async () => ids(await c.where(_.and([{ tags: 'fruit' }, { n: _.gte(2) }])).get()))
  await step('nor', async () => ids(await c.where(_.nor([{ tags: 'fruit' }, { auto: true }])).orderBy('_id', 'asc').get()))
  await step('not', async () => ids(await c.where({ n: _.not(_.gt(2)), auto: _.exists(false) }).orderBy('_id', 'asc').get()))
  await step('existsNull', async () => ids(await c.where({ nul: null, auto: _.exists(false) }).orderBy('_id', 'asc').get()))
  await step('exists', async () => ids(await c.where({ nul: _.exists(true) }).get()))
  await step('size', async () => ids(await c.where({ tags: _.size(2) }).orderBy('_id', 'asc').get()))
  await step('mod', async () => ids(await c.where({ n: _.mod([2, 1]) }).orderBy('_id', 'asc').get()))
  await step('all', async () => ids(await c.where({ tags: _.all(['red', 'fruit']) }).get()))
  await step('elemMatch', async () => ids(await c.where({ arr: _.elemMatch({ k: _.gt(1), v: 'two' }) }).get()))
  await step('regex', async () => ids(await c.where({ s: /^(a|b)/ }).orderBy('_id', 'asc').get()))
  await step('dbRegExp', async () => ids(await c.where({ s: db.RegExp({ regexp: '^elder', options: 'i' }) }).get()))
  await step('dateRange', async () => ids(await c.where({ d: _.gt(new Date('2024-01-01')) }).get()))
  await step('geoNear', async () => ids(await c.where({ p: _.geoNear({ geometry: db.Geo.Point(113.3301, 23.1401), maxDistance: 5000 }) }).get()))
  await step('geoWithin', async () => ids(await c.where({ p: _.geoWithin({ geometry: db.Geo.Polygon([db.Geo.LineString([db.Geo.Point(113, 23), db.Geo.Point(114, 23), db.Geo.Point(114, 24), db.Geo.Point(113, 24), db.Geo.Point(113, 23)])]) }) }).orderBy('_id', 'asc').get()))
  await step('geoWithinSphere', async () => ids(await c.where({ p: _.geoWithin({ centerSphere: [[116.4, 39.9], 0.001] }) }).get()))
  await step('geoIntersects', async () => ids(await c.where({ p: _.geoIntersects({ geometry: db.Geo.Polygon([db.Geo.LineString([db.Geo.Point(116, 39), db.Geo.Point(117, 39), db.Geo.Point(117, 40), db.Geo.Point(116, 40), db.Geo.Point(116, 39)])]) }) }).get()))
  await step('geoPointBack', async () => { const r = await c.doc('a').get(); return { lng: r.data.p.longitude, lat: r.data.p.latitude } })

  await step('orderLimitSkip', async () => ids(await c.where({ auto: _.exists(false) }).orderBy('s', 'desc').skip(1).limit(2).get()))
  await step('mixedSort', async () => (await c.where({ auto: _.exists(false) }).orderBy('n', 'asc').field({ n: true }).get()).data)
  await step('count', () => c.where({ tags: 'fruit' }).count())
  await step('countAll', () => c.count())
  await step('fieldExclude', async () => (await c.where({ _id: 'c' }).field({ tags: false, nested: false, big: false }).get()).data)
  await step('projSlice', async () => (await c.where({ _id: 'b' }).field({ tags: _.project.slice(1) , s: true}).get()).data)

  await step('update', () => c.doc('a').update({ data: { n: _.inc(5), 'nested.x': _.mul(10), s: _.remove(), tags: _.push(['new']), newf: { a: 1 }, cnt: _.inc(1) } }))
  await step('afterUpdate', async () => (await c.doc('a').get()).data)
  await step('updateArrayOps', async () => {
    await c.doc('b').update({ data: { tags: _.pop() } })
    await c.doc('b').update({ data: { tags: _.unshift(['first']) } })
    await c.doc('b').update({ data: { tags: _.addToSet('first') } })
    await c.doc('b').update({ data: { tags: _.addToSet({ each: ['x', 'y', 'x'] }) } })
    const r1 = (await c.doc('b').get()).data.tags
    await c.doc('b').update({ data: { tags: _.shift() } })
    await c.doc('b').update({ data: { tags: _.pull('y') } })
    await c.doc('b').update({ data: { tags: _.pullAll(['x']) } })
    const r2 = (await c.doc('b').get()).data.tags
    await c.doc('b').update({ data: { tags: _.push({ each: ['z', 'a'], sort: 1, slice: 3 }) } })
    const r3 = (await c.doc('b').get()).data.tags
    return { r1, r2, r3 }
  })
  await step('updateMinMaxRename', async () => {
    await c.doc('c').update({ data: { n: _.min(1), f: _.max(9), big: _.rename('huge') } })
    const d = (await c.doc('c').get()).data
    return { n: d.n, f: d.f, huge: d.huge, big: d.big === undefined }
  })
  await step('positional', async () => {
    const r = await c.where({ _id: 'b', 'arr.k': 2 }).update({ data: { 'arr.$.v': 'TWO' } })
    return { r, arr: (await c.doc('b').get()).data.arr }
  })
  await step('pullCond', async () => {
    await c.doc('e').update({ data: { nums: [1, 5, 8, 2] } })
    await c.doc('e').update({ data: { nums: _.pull(_.gt(4)) } })
    return (await c.doc('e').get()).data.nums
  })
  await step('setObj', async () => {
    await c.doc('e').update({ data: { obj: { a: 1, b: 2 } } })
    await c.doc('e').update({ data: { obj: _.set({ c: 3 }) } })
    await c.doc('e').update({ data: { obj2: { x: 1 } } })
    await c.doc('e').update({ data: { obj2: { y: 2 } } })
    const d = (await c.doc('e').get()).data
    return { obj: d.obj, obj2: d.obj2 }
  })
  await step('bit', async () => { await c.doc('e').update({ data: { flags: _.bit({ or: 5 }) } }); return (await c.doc('e').get()).data.flags })
  await step('exprWhere', async () => ids(await c.where(_.expr($.gt(['$n', 5]))).orderBy('_id', 'asc').get()))
  await step('projElemMatch', async () => (await c.where({ _id: 'b' }).field({ arr: _.project.elemMatch({ k: 2 }) }).get()).data)
  await step('incString', () => c.doc('d').update({ data: { n: _.inc(1) } }))
  await step('updateId', () => c.doc('d').update({ data: { _id: 'x' } }))
  await step('updateNone', () => c.doc('nobody').update({ data: { n: 1 } }))
  await step('set', async () => {
    const r = await c.doc('d').set({ data: { replaced: true, when: db.serverDate() } })
    return { r, doc: Object.keys((await c.doc('d').get()).data).sort() }
  })
  await step('setCreate', async () => {
    const r = await c.doc('newdoc').set({ data: { fresh: 1 } })
    return { r, doc: (await c.doc('newdoc').get()).data }
  })
  await step('whereUpdate', () => c.where({ tags: 'red' }).update({ data: { red: true } }))
  await step('whereUpdateCount', () => c.where({ red: true }).count())
  await step('removeDoc', () => c.doc('newdoc').remove())
  await step('removeNone', () => c.doc('newdoc').remove())
  await step('whereRemove', () => c.where({ auto: true }).remove())
  await step('afterRemove', () => c.count())

  // aggregation
  const o = db.collection('orders')
  await o.add({ data: [
    { _id: 'o1', user: 'u1', amount: 10, items: ['x', 'y'], cat: 'A' },
    { _id: 'o2', user: 'u2', amount: 20, items: ['y'], cat: 'B' },
    { _id: 'o3', user: 'u1', amount: 5, items: [], cat: 'A' },
    { _id: 'o4', user: 'u3', amount: 50, cat: 'C' }
  ] })
  const u = db.collection('users')
  await u.add({ data: [{ _id: 'u1', name: 'Ann' }, { _id: 'u2', name: 'Bob' }] })
  await step('aggGroup', async () => (await o.aggregate().group({ _id: '$user', total: $.sum('$amount'), n: $.sum(1), avg: $.avg('$amount'), mn: $.min('$amount'), mx: $.max('$amount'), first: $.first('$_id'), last: $.last('$_id'), all: $.push('$amount'), cats: $.addToSet('$cat') }).sort({ _id: 1 }).end()).list)
  await step('aggMatchProject', async () => (await o.aggregate().match({ amount: _.gte(10) }).project({ _id: 0, user: 1, double: $.multiply(['$amount', 2]), label: $.concat(['$cat', '-', '$user']), big: $.cond({ if: $.gt(['$amount', 15]), then: 'yes', else: 'no' }) }).sort({ double: -1 }).skip(1).limit(2).end()).list)
  await step('aggAddFields', async () => (await o.aggregate().addFields({ n: $.size($.ifNull(['$items', []])) }).sort({ _id: 1 }).project({ n: 1 }).end()).list)
  await step('aggCount', async () => (await o.aggregate().match({ cat: 'A' }).count('howMany').end()).list)
  await step('aggUnwind', async () => (await o.aggregate().unwind('$items').project({ items: 1 }).end()).list)
  await step('aggUnwindOpts', async () => (await o.aggregate().unwind({ path: '$items', includeArrayIndex: 'i', preserveNullAndEmptyArrays: true }).project({ items: 1, i: 1 }).end()).list)
  await step('aggLookup', async () => (await o.aggregate().lookup({ from: 'users', localField: 'user', foreignField: '_id', as: 'who' }).project({ user: 1, 'who.name': 1 }).sort({ _id: 1 }).limit(2).end()).list)
  await step('aggLookupPipeline', async () => (await u.aggregate().lookup({ from: 'orders', let: { uid: '$_id' }, pipeline: $.pipeline().match(_.expr($.eq(['$user', '$$uid']))).project({ _id: 0, amount: 1 }).done(), as: 'orders' }).sort({ _id: 1 }).end()).list)
  await step('aggSample', async () => (await o.aggregate().sample({ size: 2 }).end()).list.length)
  await step('aggBucket', async () => (await o.aggregate().bucket({ groupBy: '$amount', boundaries: [0, 10, 30], default: 'other', output: { c: $.sum(1), ids: $.push('$_id') } }).end()).list)
  await step('aggReplaceRoot', async () => (await o.aggregate().match({ _id: 'o1' }).replaceRoot({ newRoot: { u: '$user', a: '$amount' } }).end()).list)
  await step('aggSortByCount', async () => (await o.aggregate().sortByCount('$cat').end()).list[0])
  await step('aggGeoNear', async () => (await c.aggregate().geoNear({ distanceField: 'dist', spherical: true, near: db.Geo.Point(113.32, 23.13), key: 'p', maxDistance: 10000 }).project({ dist: 1 }).end()).list.map(x => [x._id, Math.round(x.dist)]))
  await step('aggGroupNoId', () => o.aggregate().group({ total: $.sum(1) }).end())
  await step('aggMissing', () => db.collection('nope').aggregate().match({}).end())

  // transactions
  const acct = db.collection('acct')
  await acct.add({ data: [{ _id: 'alice', bal: 100 }, { _id: 'bob', bal: 0 }] })
  await step('runTx', () => db.runTransaction(async tx => {
    const a = (await tx.collection('acct').doc('alice').get()).data
    await tx.collection('acct').doc('alice').update({ data: { bal: _.inc(-30) } })
    await tx.collection('acct').doc('bob').update({ data: { bal: _.inc(30) } })
    await tx.collection('acct').doc('carol').set({ data: { bal: 1 } })
    await tx.collection('acct').add({ data: { _id: 'dave', bal: 2 } })
    const inside = (await tx.collection('acct').doc('alice').get()).data.bal
    const outside = (await acct.doc('alice').get()).data.bal
    return { before: a.bal, inside, outside }
  }))
  await step('afterTx', async () => (await acct.orderBy('_id', 'asc').get()).data.map(d => [d._id, d.bal]))
  await step('txRollback', async () => {
    try {
      await db.runTransaction(async tx => {
        await tx.collection('acct').doc('alice').update({ data: { bal: 0 } })
        await tx.rollback('nope')
      })
      return 'no error'
    } catch (e) { return { rejected: e } }
  })
  await step('afterRollback', async () => (await acct.doc('alice').get()).data.bal)
  await step('startTx', async () => {
    const tx = await db.startTransaction()
    await tx.collection('acct').doc('bob').remove()
    let gone
    try { gone = (await tx.collection('acct').doc('bob').get()).data } catch (e) { gone = e.errMsg }
    await tx.commit()
    const after = await acct.where({ _id: 'bob' }).count()
    return { gone, after: after.total }
  })
  await step('txConflictRetry', async () => {
    let attempts = 0
    const r = await db.runTransaction(async tx => {
      attempts++
      const d = (await tx.collection('acct').doc('alice').get()).data
      if (attempts === 1) await acct.doc('alice').update({ data: { bal: _.inc(1000) } })
      await tx.collection('acct').doc('alice').update({ data: { bal: d.bal + 1 } })
      return d.bal
    })
    return { attempts, r, final: (await acct.doc('alice').get()).data.bal }
  })
  await step('txConflictStart', async () => {
    const t1 = await db.startTransaction()
    const t2 = await db.startTransaction()
    await t1.collection('acct').doc('carol').update({ data: { bal: 10 } })
    await t2.collection('acct').doc('carol').update({ data: { bal: 20 } })
    await t1.commit()
    try { await t2.commit(); return 'committed' } catch (e) { return { code: e.code, message: e.message } }
  })
  await step('txSnapshot', async () => {
    const t = await db.startTransaction()
    await acct.doc('dave').update({ data: { bal: 99 } })
    const seen = (await t.collection('acct').doc('dave').get()).data.bal
    await t.rollback()
    return seen
  })

  await step('txParallel', async () => {
    await acct.doc('ctr').set({ data: { v: 0 } })
    const inc = () => db.runTransaction(async tx => {
      const d = (await tx.collection('acct').doc('ctr').get()).data
      await tx.collection('acct').doc('ctr').update({ data: { v: d.v + 1 } })
    }, 10)
    await Promise.all([inc(), inc(), inc()])
    return (await acct.doc('ctr').get()).data.v
  })

  // errors
  await step('unknownCommand', () => c.where({ n: { $foo: 1 } }).get())
  await step('badPath', () => c.where({ 'a..b': 1 }).get())
  await step('dollarField', () => c.doc('a').update({ data: { $x: 1 } }))
  await step('watch', () => { c.where({}).watch({ onChange () {}, onError () {} }) })
  await step('limits', async () => {
    const l = db.collection('many')
    const docs = []
    for (let i = 0; i < 250; i++) docs.push({ i })
    await l.add({ data: docs })
    const a = (await l.get()).data.length
    const b = (await l.limit(200).get()).data.length
    const c2 = (await l.skip(240).get()).data.length
    return { a, b, c2 }
  })
  await step('types', async () => {
    const t = db.collection('types')
    await t.add({ data: { _id: 't', i: 1, f: 2.5, big: 2 ** 53 - 1, neg: -7, bool: false, s: '', arr: [], obj: {}, nul: null, d: new Date(0), buf: Buffer.from([1, 2, 3]) } })
    const d = (await t.doc('t').get()).data
    return { types: Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v === null ? 'null' : v instanceof Date ? 'date' : Array.isArray(v) ? 'array' : typeof v])), big: d.big, d: d.d }
  })
  console.log(JSON.stringify(out))
})().catch(e => { console.error(e); process.exit(1) })
