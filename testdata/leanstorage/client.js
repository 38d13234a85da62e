// Drives fn dev with the real leancloud-storage client (default signed requests) and prints one
// JSON report. Usage: node client.js <serverURL> <appId> <appKey> <masterKey>
const AV = require('leancloud-storage')
const [serverURL, appId, appKey, masterKey] = process.argv.slice(2)
AV.init({ appId, appKey, masterKey, serverURL })

const report = {}
const errOf = (e) => ({ code: e.code, message: e.message && e.message.replace(/ \[\d+ [A-Z]+ http[^\]]*\]$/, '') })
async function poll(what, fn, ms = 5000) {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error('timed out waiting for ' + what)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function main() {
  // averageStars over reviews saved by the client; the 140-char truncation
  for (const stars of [5, 3, 4]) {
    await new AV.Object('Review').save({ movie: '夏洛特烦恼', stars, comment: 'x'.repeat(stars === 5 ? 150 : 10) })
  }
  report.average = await AV.Cloud.run('averageStars', { movie: '夏洛特烦恼' })
  const long = await new AV.Query('Review').equalTo('stars', 5).first()
  report.truncated = long.get('comment')

  // beforeSave error: 142 with the exact text
  try { await new AV.Object('Review').save({ movie: 'm', stars: 1 }) } catch (e) { report.noComment = errOf(e) }
  report.reviewCount = await new AV.Query('Review').count()

  // customErrorCode
  try { await AV.Cloud.run('customErrorCode') } catch (e) { report.custom = errOf(e) }

  // beforeUpdate rejects a long comment; the stored comment stays
  const short = await new AV.Query('Review').equalTo('stars', 3).first()
  short.set('comment', 'y'.repeat(200))
  try { await short.save() } catch (e) { report.beforeUpdate = errOf(e) }
  report.afterRejectedUpdate = (await new AV.Query('Review').get(short.id)).get('comment')

  // afterSave increments Post.comments
  const post = await new AV.Object('Post').save({ title: 'hello', comments: 0 })
  await new AV.Object('Comment').save({ post, text: 'first' })
  await new AV.Object('Comment').save({ post, text: 'second' })
  report.comments = await poll('Post.comments', async () => {
    const n = (await new AV.Query('Post').get(post.id)).get('comments')
    return n === 2 && n
  })

  // beforeDelete refuses an album with photos
  const album = await new AV.Object('Album').save({ name: 'trip' })
  await new AV.Object('Photo').save({ album, url: 'a.png' })
  try { await album.destroy() } catch (e) { report.albumDelete = errOf(e) }
  report.albumStillThere = !!(await new AV.Query('Album').get(album.id).catch(() => null))

  // afterDelete cascades
  const gallery = await new AV.Object('Gallery').save({ name: 'g' })
  await new AV.Object('Picture').save({ gallery, n: 1 })
  await new AV.Object('Picture').save({ gallery, n: 2 })
  await gallery.destroy()
  report.picturesLeft = await poll('cascade', async () => {
    const n = await new AV.Query('Picture').count()
    return n === 0 ? 'none' : false
  })

  // an afterUpdate that saves its own object does not loop
  const counter = await new AV.Object('HookRuns').save({ n: 0 })
  const article = await new AV.Object('Article').save({ title: 'a', counterId: counter.id })
  article.set('title', 'b')
  await article.save()
  report.touched = await poll('the hook to save its object', async () => (await new AV.Query('Article').get(article.id)).get('touched') === true)
  report.afterUpdateRuns = (await new AV.Query('HookRuns').get(counter.id)).get('n')

  // users: signup, login, onLogin blocking noLogin, current user in a function
  const alice = new AV.User()
  alice.setUsername('alice'); alice.setPassword('secret1'); alice.setEmail('alice@example.com')
  await alice.signUp()
  report.signupToken = !!alice.getSessionToken()
  const bob = new AV.User()
  bob.setUsername('noLogin'); bob.setPassword('secret2')
  await bob.signUp()
  try { await AV.User.logIn('noLogin', 'secret2') } catch (e) { report.noLogin = errOf(e) }
  try { await AV.User.logIn('alice', 'wrong') } catch (e) { report.wrongPassword = errOf(e) }
  try { await AV.User.logIn('nobody', 'x') } catch (e) { report.noUser = errOf(e) }
  const logged = await AV.User.logIn('alice', 'secret1')
  const aliceToken = logged.getSessionToken()
  // in Node the SDK keeps the logged-in user and sends its session with every request: log out
  // so that "anonymous" below really is
  await AV.User.logOut()
  report.whoami = await AV.Cloud.run('whoami', {}, { sessionToken: aliceToken })
  report.whoamiAnon = await AV.Cloud.run('whoami', {})
  try { await AV.Cloud.run('whoami', {}, { sessionToken: 'not-a-token' }) } catch (e) { report.badToken = errOf(e) }
  report.me = (await AV.User.become(aliceToken)).get('username')
  await AV.User.logOut()
  report.passwordHidden = (await new AV.Query('_User').get(logged.id)).get('password') === undefined

  // rpc returning an AV.Object
  const made = await AV.Cloud.rpc('makePost', { title: 'from rpc' })
  report.rpc = { isObject: made instanceof AV.Object, className: made.className, title: made.get('title'), hasId: !!made.id }

  // ACL: only alice may read or write
  const acl = new AV.ACL()
  acl.setReadAccess(logged.id, true)
  acl.setWriteAccess(logged.id, true)
  const secret = new AV.Object('Secret')
  secret.setACL(acl)
  secret.set('v', 1)
  await secret.save(null, { sessionToken: aliceToken })
  report.aclAnonCount = await new AV.Query('Secret').count()
  report.aclOwnerCount = await new AV.Query('Secret').count({ sessionToken: aliceToken })
  report.aclMasterCount = await new AV.Query('Secret').count({ useMasterKey: true })
  try { await AV.Object.createWithoutData('Secret', secret.id).save({ v: 2 }) } catch (e) { report.aclWrite = errOf(e) }
  report.aclValue = (await new AV.Query('Secret').get(secret.id, { useMasterKey: true })).get('v')
  report.cloudAsUser = await AV.Cloud.run('readSecret', {}, { sessionToken: aliceToken })
  report.cloudAsAnon = await AV.Cloud.run('readSecret', {})
  report.cloudAsMaster = await AV.Cloud.run('readSecretAsMaster', {})

  // queries
  report.gt = await new AV.Query('Review').greaterThan('stars', 3).count()
  report.containedIn = await new AV.Query('Review').containedIn('stars', [3, 4]).count()
  report.regex = await new AV.Query('Review').matches('comment', /^x+\.\.\.$/).count()
  report.ordered = (await new AV.Query('Review').descending('stars').find()).map((r) => r.get('stars'))
  report.limited = (await new AV.Query('Review').ascending('stars').limit(1).skip(1).find()).map((r) => r.get('stars'))
  const inc = await new AV.Query('Comment').include('post').ascending('createdAt').first()
  report.include = inc.get('post').get('title')
  const inner = new AV.Query('Post').equalTo('title', 'hello')
  report.inQuery = await new AV.Query('Comment').matchesQuery('post', inner).count()
  report.or = await AV.Query.or(new AV.Query('Review').equalTo('stars', 5), new AV.Query('Review').equalTo('stars', 3)).count()

  console.log(JSON.stringify(report))
}

main().catch((e) => { console.error(e); process.exit(1) })
