package leanstorage

import "testing"

// leanengine's AV.Cloud.CookieSession in an express app, against LeanStorage: a form login
// sets the signed avos:sess cookie with the user's id and session token, the next request
// finds the user through /users/me, a forged or stale cookie finds nobody, logout clears it.
func TestCookieSessionThroughLeanengine(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const LE = require('leanengine')
  // requiring leanengine resets the SDK's app from LEANCLOUD_* variables: initialise again
  LE.init({ appId, appKey, masterKey, serverURL })
  const express = require('express')
  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(LE.Cloud.CookieSession({ secret: 'my secret', maxAge: 3600000, fetchUser: true }))
  app.post('/login', async (req, res) => {
    try {
      res.saveCurrentUser(await LE.User.logIn(req.body.username, req.body.password))
      res.redirect('/profile')
    } catch (e) { res.status(401).json({ code: e.code, error: e.message }) }
  })
  app.get('/profile', (req, res) => res.json(req.currentUser ? { username: req.currentUser.get('username'), id: req.currentUser.id } : {}))
  app.post('/logout', (req, res) => { res.clearCurrentUser(); res.end() })
  const server = await new Promise((ok) => { const s = app.listen(0, '127.0.0.1', () => ok(s)) })
  const base = 'http://127.0.0.1:' + server.address().port
  try {
    const ann = await new AV.User().set({ username: 'ann', password: 'pw' }).signUp()
    const form = (u, p) => ({ method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=' + u + '&password=' + p })
    const bad = await fetch(base + '/login', form('ann', 'wrong'))
    report.badLogin = [bad.status, (await bad.json()).code]
    const login = await fetch(base + '/login', form('ann', 'pw'))
    const cookies = login.headers.getSetCookie().map((c) => c.split(';')[0])
    report.login = [login.status, login.headers.get('location'), cookies.map((c) => c.split('=')[0])]
    const sess = JSON.parse(Buffer.from(cookies[0].slice('avos:sess='.length), 'base64').toString())
    report.cookie = [sess._uid === ann.id, sess._sessionToken === ann.getSessionToken()]
    const profile = async (cookie) => (await fetch(base + '/profile', { headers: cookie ? { cookie } : {} })).json()
    report.profile = await profile(cookies.join('; '))
    report.anonymous = await profile('')
    // a cookie signed with another secret, and one naming another token, find nobody
    const forged = 'avos:sess=' + Buffer.from(JSON.stringify({ _uid: ann.id, _sessionToken: 'guess' })).toString('base64')
    report.forged = await profile(forged + '; ' + cookies[1])
    const logout = await fetch(base + '/logout', { method: 'POST', headers: { cookie: cookies.join('; ') } })
    report.logout = logout.headers.getSetCookie()[0].split(';')[0]
    // the session ends with the user: a stale cookie finds nobody
    await ann.destroy({ sessionToken: ann.getSessionToken() })
    report.stale = await profile(cookies.join('; '))
  } finally { server.close() }
`)
	c := reportChecks{t, r}
	c.want("badLogin", []any{401, 210})
	c.want("login", []any{302, "/profile", []string{"avos:sess", "avos:sess.sig"}})
	c.want("cookie", []bool{true, true})
	if p, _ := r["profile"].(map[string]any); p["username"] != "ann" || p["id"] == nil {
		t.Errorf("profile with the cookie: %v", r["profile"])
	}
	c.want("anonymous", map[string]any{})
	c.want("forged", map[string]any{})
	c.want("logout", "avos:sess=")
	c.want("stale", map[string]any{})
}
