package leanstorage

import (
	"net/url"
	"testing"
)

func TestConditionalWritesNotFoundAndSessionsThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const acct = await new AV.Object('Account').save({ balance: 30 })
  acct.increment('balance', -20)
  await acct.save(null, { query: new AV.Query('Account').greaterThanOrEqualTo('balance', 20), fetchWhenSave: true })
  report.afterFirst = acct.get('balance')
  acct.increment('balance', -20)
  try { await acct.save(null, { query: new AV.Query('Account').greaterThanOrEqualTo('balance', 20) }) } catch (e) { report.second = errOf(e) }
  report.stored = (await new AV.Query('Account').get(acct.id)).get('balance')
  try { await AV.Object.createWithoutData('Person', 'fakeid').save({ name: 'x' }) } catch (e) { report.missing = errOf(e) }

  // one session per user: logins share it, refreshSessionToken replaces it
  const u = await new AV.User().set({ username: 'sam', password: 'pw' }).signUp()
  const l1 = await AV.User.logIn('sam', 'pw')
  const l2 = await AV.User.logIn('sam', 'pw')
  report.sameToken = l1.getSessionToken() === u.getSessionToken() && l2.getSessionToken() === u.getSessionToken()
  await l2.refreshSessionToken()
  report.rotated = l2.getSessionToken() !== u.getSessionToken()
  const l3 = await AV.User.logIn('sam', 'pw')
  report.loginAfterRefresh = l3.getSessionToken() === l2.getSessionToken()
  try { await AV.User.become(u.getSessionToken()) } catch (e) { report.oldToken = errOf(e) }
`)
	c := reportChecks{t, r}
	c.want("afterFirst", 10)
	c.wantErr("second", 305, "No effect on updating/deleting a document.")
	c.want("stored", 10)
	c.wantErr("missing", 1, "Could not find object by id 'fakeid' for class 'Person'.")
	c.want("sameToken", true)
	c.want("rotated", true)
	c.want("loginAfterRefresh", true)
	c.wantErr("oldToken", 211, "Could not find user.")

	// conditional delete over REST, and inside a batch
	s := svc
	s.do(t, "POST", "classes/Doc", nil, `{"v":0}`, Auth{})
	_, o := s.do(t, "POST", "classes/Doc", nil, `{"v":1}`, Auth{})
	id := o["objectId"].(string)
	if status, m := s.do(t, "DELETE", "classes/Doc/"+id, url.Values{"where": {`{"v":2}`}}, "", Auth{}); status != 400 || m["code"] != 305.0 {
		t.Errorf("conditional delete that does not match: %d %v", status, m)
	}
	resp := s.Serve(t.Context(), "POST", "batch", nil, []byte(`{"requests":[{"method":"PUT","path":"/1.1/classes/Doc/`+id+`?where=%7B%22v%22%3A2%7D","body":{"v":3}}]}`), Auth{})
	if list, _ := resp.Body.([]any); len(list) != 1 || list[0].(map[string]any)["error"].(map[string]any)["code"] != 305 {
		t.Errorf("conditional update in a batch: %v", resp.Body)
	}
	if status, _ := s.do(t, "DELETE", "classes/Doc/"+id, url.Values{"where": {`{"v":1}`}}, "", Auth{}); status != 200 {
		t.Errorf("conditional delete that matches: %d", status)
	}
	if _, m := s.do(t, "GET", "classes/Doc/"+id, nil, "", Auth{}); len(m) != 0 {
		t.Errorf("deleted: %v", m)
	}
}

func TestRolesRelationsBitsAndGeoThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const admin = await new AV.User().set({ username: 'admin', password: 'pw' }).signUp()
  const mod = await new AV.User().set({ username: 'mod', password: 'pw' }).signUp()
  const nobody = await new AV.User().set({ username: 'nobody', password: 'pw' }).signUp()
  const as = (u) => ({ sessionToken: u.getSessionToken() })

  const roleACL = new AV.ACL(); roleACL.setPublicReadAccess(true); roleACL.setWriteAccess(admin, true)
  const admins = new AV.Role('Administrators', roleACL)
  admins.getUsers().add(admin)
  await admins.save(null, as(admin))
  const mods = new AV.Role('Moderators', roleACL)
  mods.getUsers().add(mod)
  mods.getRoles().add(admins) // administrators inherit what moderators may do
  await mods.save(null, as(admin))
  try { await new AV.Role('Moderators', roleACL).save() } catch (e) { report.dupRole = errOf(e) }
  try { await new AV.Object('_Role').save({ name: 'NoACL' }) } catch (e) { report.noACL = errOf(e) }
  try { await new AV.Role('bad/name', roleACL).save() } catch (e) { report.badName = errOf(e) }

  const acl = new AV.ACL(); acl.setRoleReadAccess('Moderators', true); acl.setRoleWriteAccess('Moderators', true)
  const post = await new AV.Object('Post').save({ title: 'moderated', ACL: acl }, as(mod))
  const count = (u) => new AV.Query('Post').count(u ? as(u) : {})
  report.readers = { mod: await count(mod), admin: await count(admin), nobody: await count(nobody), anon: await count() }
  try { await post.save({ title: 'x' }, as(nobody)) } catch (e) { report.nobodyWrite = errOf(e) }
  await AV.Object.createWithoutData('Post', post.id).save({ title: 'by admin' }, as(admin))
  report.adminWrote = (await new AV.Query('Post').get(post.id, as(mod))).get('title')
  // the role's users relation is queryable
  report.adminsUsers = (await admins.getUsers().query().find()).map((u) => u.get('username'))

  // relations: add, remove, query both ways
  const pub = await new AV.Object('Post').save({ title: 'public' })
  const likes = pub.relation('likers')
  likes.add([admin, mod, nobody])
  await pub.save()
  pub.relation('likers').remove(nobody)
  await pub.save()
  report.likers = (await pub.relation('likers').query().ascending('username').find()).map((u) => u.get('username'))
  report.relationField = (await new AV.Query('Post').get(pub.id)).get('likers') instanceof AV.Relation
  report.likedByMod = await new AV.Query('_User').equalTo('username', 'mod').count()

  // bit operations
  const flags = await new AV.Object('Flags').save({ v: 12 })
  flags.bitAnd('v', 10); await flags.save(null, { fetchWhenSave: true }); report.and = flags.get('v')
  flags.bitOr('v', 5); await flags.save(null, { fetchWhenSave: true }); report.or = flags.get('v')
  flags.bitXor('v', 3); await flags.save(null, { fetchWhenSave: true }); report.xor = flags.get('v')

  // geo
  const places = [['Tiananmen', 39.9087, 116.3975], ['Summer Palace', 39.9999, 116.2755], ['Shanghai', 31.2304, 121.4737]]
  for (const [name, lat, lng] of places) await new AV.Object('Place').save({ name, loc: new AV.GeoPoint(lat, lng) })
  const here = new AV.GeoPoint(39.91, 116.40)
  report.near = (await new AV.Query('Place').near('loc', here).find()).map((p) => p.get('name'))
  report.within20km = (await new AV.Query('Place').withinKilometers('loc', here, 20).find()).map((p) => p.get('name'))
  report.box = (await new AV.Query('Place').withinGeoBox('loc', new AV.GeoPoint(30, 120), new AV.GeoPoint(32, 122)).find()).map((p) => p.get('name'))
  report.point = (await new AV.Query('Place').equalTo('name', 'Shanghai').first()).get('loc').latitude
`)
	c := reportChecks{t, r}
	c.wantErr("dupRole", 137, "A unique field was given a value that is already taken")
	c.wantErr("noACL", 1, "Role ACL is required.")
	c.wantErr("badName", 139, "Role's name is invalid")
	c.want("readers", map[string]int{"mod": 1, "admin": 1, "nobody": 0, "anon": 0})
	c.wantErr("nobodyWrite", 1, "Forbidden writing by object's ACL.")
	c.want("adminWrote", "by admin")
	c.want("adminsUsers", []string{"admin"})
	c.want("likers", []string{"admin", "mod"})
	c.want("relationField", true)
	c.want("and", 8)
	c.want("or", 13)
	c.want("xor", 14)
	c.want("near", []string{"Tiananmen", "Summer Palace", "Shanghai"})
	c.want("within20km", []string{"Tiananmen", "Summer Palace"})
	c.want("box", []string{"Shanghai"})
	c.want("point", 31.2304)

	// REST forms the SDK does not send: $geoWithin with a polygon and a sphere, bad shapes
	s := svc
	q := func(w string) (int, map[string]any) {
		return s.do(t, "GET", "classes/Place", url.Values{"where": {w}, "order": {"name"}}, "", Auth{})
	}
	if _, m := q(`{"loc":{"$geoWithin":{"$polygon":[[116,39],[117,39],[117,40.5],[116,40.5]]}}}`); len(m["results"].([]any)) != 2 {
		t.Errorf("polygon: %v", m)
	}
	if _, m := q(`{"loc":{"$geoWithin":{"$centerSphere":[[121.47,31.23],0.01]}}}`); len(m["results"].([]any)) != 1 {
		t.Errorf("centerSphere: %v", m)
	}
	if status, m := q(`{"loc":{"$within":{"$box":[{"__type":"GeoPoint","latitude":91,"longitude":0},{"__type":"GeoPoint","latitude":0,"longitude":0}]}}}`); status != 400 || m["code"] != 102.0 {
		t.Errorf("bad box: %d %v", status, m)
	}
	if status, m := s.do(t, "POST", "classes/Flags", nil, `{"v":{"__op":"BitOr","value":1.5}}`, Auth{}); status != 400 || m["code"] != 111.0 {
		t.Errorf("BitOr with a fraction: %d %v", status, m)
	}
	if status, m := s.do(t, "POST", "classes/Place", nil, `{"loc":{"__type":"GeoPoint","latitude":91,"longitude":0}}`, Auth{}); status != 400 || m["code"] != 111.0 {
		t.Errorf("a GeoPoint off the globe: %d %v", status, m)
	}
}

func TestUserUniquenessAndExportImportKeepRelations(t *testing.T) {
	t.Parallel()
	s := newServiceWith(t, Options{})
	_, a := s.do(t, "POST", "users", nil, `{"username":"a","password":"pw","email":"a@example.com"}`, Auth{})
	_, b := s.do(t, "POST", "users", nil, `{"username":"b","password":"pw"}`, Auth{})
	bAuth := Auth{SessionToken: b["sessionToken"].(string)}
	bid := b["objectId"].(string)
	for body, code := range map[string]float64{`{"username":"a"}`: 202, `{"email":"a@example.com"}`: 203, `{"username":""}`: 200} {
		if status, m := s.do(t, "PUT", "users/"+bid, nil, body, bAuth); status != 400 || m["code"] != code {
			t.Errorf("%s: %d %v", body, status, m)
		}
	}
	s.do(t, "PUT", "users/"+bid, nil, `{"email":"b@example.com"}`, Auth{Master: true, SessionToken: "stale"})
	s.Verify(t.Context(), bid, "email")
	s.do(t, "PUT", "users/"+bid, nil, `{"email":"b2@example.com"}`, bAuth)
	if _, m := s.do(t, "GET", "users/"+bid, nil, "", Auth{Master: true}); m["email"] != "b2@example.com" || m["emailVerified"] != false {
		t.Errorf("a changed email is unverified: %v", m)
	}

	// a role with members survives export and import into a fresh service
	aid := a["objectId"].(string)
	_, role := s.do(t, "POST", "classes/_Role", nil, `{"name":"Editors","ACL":{"*":{"read":true}},"users":{"__op":"AddRelation","objects":[{"__type":"Pointer","className":"_User","objectId":"`+aid+`"}]}}`, Auth{Master: true})
	if role["objectId"] == nil {
		t.Fatalf("role: %v", role)
	}
	s.do(t, "POST", "classes/Doc", nil, `{"v":1,"ACL":{"role:Editors":{"read":true}}}`, Auth{Master: true})
	dump, err := s.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s2 := newServiceWith(t, Options{})
	if _, err := s2.Import(t.Context(), dump); err != nil {
		t.Fatal(err)
	}
	login := func(svc *Service) string {
		_, m := svc.do(t, "POST", "login", nil, `{"username":"a","password":"pw"}`, Auth{})
		tok, _ := m["sessionToken"].(string)
		return tok
	}
	if _, m := s2.do(t, "GET", "classes/Doc", url.Values{"count": {"1"}}, "", Auth{SessionToken: login(s2)}); m["count"] != 1.0 {
		t.Errorf("after import, the role still grants: %v", m)
	}
}
