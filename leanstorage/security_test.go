package leanstorage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fnhq/fn/store"
)

func newServiceWith(t *testing.T, opts Options) *Service {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := NewWithOptions(st, nil, nil, opts)
	s.bcryptCost = bcrypt.MinCost
	return s
}

// fakeWeChat answers sns/auth: only the token "token-of-<openid>" is valid for an openid, and
// jscode2session: the code "code-of-<openid>" for the app "wxapp"/"wxsecret".
func fakeWeChat(t *testing.T) (string, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		q := r.URL.Query()
		switch r.URL.Path {
		case "/sns/auth":
			if q.Get("access_token") == "token-of-"+q.Get("openid") {
				fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
				return
			}
			fmt.Fprint(w, `{"errcode":40003,"errmsg":"invalid openid"}`)
		case "/sns/jscode2session":
			openid, ok := strings.CutPrefix(q.Get("js_code"), "code-of-")
			if ok && q.Get("appid") == "wxapp" && q.Get("secret") == "wxsecret" {
				fmt.Fprintf(w, `{"openid":%q,"session_key":"sk"}`, openid)
				return
			}
			fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &calls
}

// Logging in as someone else by naming their openid is refused; the real owner, with a token
// WeChat accepts, logs in to the same user with the same session every time.
func TestAuthDataTakeoverRefusedThroughSDK(t *testing.T) {
	t.Parallel()
	wx, calls := fakeWeChat(t)
	svc := newServiceWith(t, Options{AuthVerifiers: map[string]AuthVerifier{
		"weixin":   &WeChatVerifier{BaseURL: wx},
		"lc_weapp": &MiniAppVerifier{BaseURL: wx, AppID: "wxapp", Secret: "wxsecret"},
	}})
	r := runSDK(t, svc, `
  const victim = await AV.User.loginWithAuthData({ openid: 'victim', access_token: 'token-of-victim', expires_in: 7200 }, 'weixin')
  report.victimId = !!victim.id
  await victim.save({ email: 'victim@example.com', mobilePhoneNumber: '18600000000' }, { sessionToken: victim.getSessionToken() })
  try { await AV.User.loginWithAuthData({ openid: 'victim', access_token: 'forged', expires_in: 7200 }, 'weixin') } catch (e) { report.forged = errOf(e) }
  try { await AV.User.loginWithAuthData({ openid: 'victim' }, 'weixin') } catch (e) { report.noToken = errOf(e) }
  try { await AV.User.loginWithAuthData({ uid: 'victim' }, 'myplatform') } catch (e) { report.unsupported = errOf(e) }
  try { await AV.User.loginWithAuthData({ openid: 'victim' }, 'lc_weapp') } catch (e) { report.weappOpenid = errOf(e) }
  const weapp = await AV.User.loginWithAuthData({ code: 'code-of-mini' }, 'lc_weapp')
  report.weappOpenidStored = weapp.get('authData').lc_weapp.openid
  const again = await AV.User.loginWithAuthData({ openid: 'victim', access_token: 'token-of-victim', expires_in: 7200 }, 'weixin')
  report.sameUser = again.id === victim.id
  report.sameToken = again.getSessionToken() === victim.getSessionToken()

  // signing up with someone's authData and a password, or linking it, is refused too
  const bob = new AV.User(); bob.set({ username: 'bob', password: 'pw', authData: { weixin: { openid: 'victim', access_token: 'forged' } } })
  try { await bob.signUp() } catch (e) { report.signupWithAuthData = errOf(e) }
  const bob2 = await new AV.User().set({ username: 'bob2', password: 'pw' }).signUp()
  try { await bob2.associateWithAuthData({ openid: 'victim', access_token: 'forged' }, 'weixin') } catch (e) { report.link = errOf(e) }

  // what others see of the victim: no authData, email or phone, and no querying by them
  const seen = await new AV.Query('_User').get(victim.id, { sessionToken: bob2.getSessionToken() })
  report.othersSee = Object.keys(seen.toJSON()).filter((k) => ['authData', 'email', 'mobilePhoneNumber'].includes(k))
  report.byEmail = await new AV.Query('_User').equalTo('email', 'victim@example.com').count({ sessionToken: bob2.getSessionToken() })
  report.byOpenid = await new AV.Query('_User').equalTo('authData.weixin.openid', 'victim').count()
  const self = await new AV.Query('_User').get(victim.id, { sessionToken: victim.getSessionToken() })
  report.selfSees = !!self.get('authData') && self.get('email') === 'victim@example.com'
  report.masterSees = (await new AV.Query('_User').equalTo('email', 'victim@example.com').count({ useMasterKey: true }))
`)
	c := reportChecks{t, r}
	c.want("victimId", true)
	c.wantErr("forged", 251, "Invalid authData for weixin: WeChat answered 40003")
	c.wantErr("noToken", 250, "Invalid authData for weixin: openid and access_token are required.")
	c.wantErr("unsupported", 252, `Unsupported authData platform "myplatform"`)
	c.wantErr("weappOpenid", 250, "Invalid authData for lc_weapp: the code of wx.login is required.")
	c.want("weappOpenidStored", "mini")
	c.want("sameUser", true)
	c.want("sameToken", true)
	c.wantErr("signupWithAuthData", 251, "Invalid authData for weixin")
	c.wantErr("link", 251, "Invalid authData for weixin")
	c.want("othersSee", []string{})
	c.want("byEmail", 0)
	c.want("byOpenid", 0)
	c.want("selfSees", true)
	c.want("masterSees", 1)
	if calls.Load() < 4 {
		t.Errorf("the verifier was asked %d times", calls.Load())
	}
}

// Only the user themself or the master key change or delete a user; server-owned fields are
// not the client's to set.
func TestUserWritesOnlyBySelfThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const ann = await new AV.User().set({ username: 'ann', password: 'pw', email: 'ann@example.com', mobilePhoneNumber: '18600000001', emailVerified: true, mobilePhoneVerified: true }).signUp()
  const eve = await new AV.User().set({ username: 'eve', password: 'pw' }).signUp()
  const target = AV.Object.createWithoutData('_User', ann.id)
  try { await target.destroy({ sessionToken: eve.getSessionToken() }) } catch (e) { report.deleteByOther = errOf(e) }
  try { await target.destroy() } catch (e) { report.deleteAnon = errOf(e) }
  try { await target.save({ nick: 'pwned' }, { sessionToken: eve.getSessionToken() }) } catch (e) { report.updateByOther = errOf(e) }
  let fetched = await new AV.Query('_User').get(ann.id, { useMasterKey: true })
  report.stillThere = fetched.get('username')
  report.verifiedAtSignup = [fetched.get('emailVerified'), fetched.get('mobilePhoneVerified')]
  await target.save({ emailVerified: true, nick: 'ann' }, { sessionToken: ann.getSessionToken() })
  fetched = await new AV.Query('_User').get(ann.id, { useMasterKey: true })
  report.verifiedAfterOwnUpdate = [fetched.get('emailVerified'), fetched.get('nick')]
  await target.save({ emailVerified: true }, { useMasterKey: true })
  report.masterSets = (await new AV.Query('_User').get(ann.id, { useMasterKey: true })).get('emailVerified')
  // the master key ignores a stale session token
  report.masterStale = await new AV.Query('_User').count({ useMasterKey: true, sessionToken: 'stale-token' })
  // ... and so does the app key (LeanCloud's recorded answers): the request runs as anonymous
  report.staleAlone = await new AV.Query('_User').count({ sessionToken: 'stale-token' })
  await target.destroy({ sessionToken: ann.getSessionToken() })
  report.selfDeleted = (await new AV.Query('_User').equalTo('objectId', ann.id).count({ useMasterKey: true })) === 0
  try { await AV.User.become(ann.getSessionToken()) } catch (e) { report.tokenOfDeleted = errOf(e) }
`)
	c := reportChecks{t, r}
	c.wantErr("deleteByOther", 206, "The user cannot be altered by a client without the session.")
	c.wantErr("deleteAnon", 206, "The user cannot be altered by a client without the session.")
	c.wantErr("updateByOther", 206, "The user cannot be altered by a client without the session.")
	c.want("stillThere", "ann")
	c.want("verifiedAtSignup", []bool{false, false})
	c.want("verifiedAfterOwnUpdate", []any{false, "ann"})
	c.want("masterSets", true)
	c.want("masterStale", 2)
	c.want("staleAlone", 2)
	c.want("selfDeleted", true)
	c.wantErr("tokenOfDeleted", 211, "Could not find user.")
}

func TestLongPasswordsAndOldHashes(t *testing.T) {
	t.Parallel()
	s := newService(t)
	long := strings.Repeat("é", 100) // 200 bytes: past bcrypt's 72
	if status, m := s.do(t, "POST", "users", nil, fmt.Sprintf(`{"username":"long","password":%q}`, long), Auth{}); status != 201 {
		t.Fatalf("signup with a long password: %d %v", status, m)
	}
	if status, m := s.do(t, "POST", "login", nil, fmt.Sprintf(`{"username":"long","password":%q}`, long), Auth{}); status != 200 {
		t.Fatalf("login with the long password: %d %v", status, m)
	}
	// same first 72 bytes, different end: refused (a plain bcrypt would accept it)
	if status, m := s.do(t, "POST", "login", nil, fmt.Sprintf(`{"username":"long","password":%q}`, long[:72]+"x"), Auth{}); status != 400 || m["code"] != 210.0 {
		t.Fatalf("login with a different long password: %d %v", status, m)
	}
	// a user imported with a plain bcrypt hash (older databases) still logs in
	legacy, err := bcrypt.GenerateFromPassword([]byte("legacy-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), map[string][]map[string]any{"_User": {{"objectId": "old1", "username": "old",
		"_hashed_password": string(legacy)}}}); err != nil {
		t.Fatal(err)
	}
	if status, m := s.do(t, "POST", "login", nil, `{"username":"old","password":"legacy-pw"}`, Auth{}); status != 200 {
		t.Fatalf("login with a legacy hash: %d %v", status, m)
	}
	if status, _ := s.do(t, "POST", "login", nil, `{"username":"old","password":"nope"}`, Auth{}); status != 400 {
		t.Fatalf("wrong password against a legacy hash: %d", status)
	}
}

// Failures from one address lock that address out, with a growing lock; the owner elsewhere
// still logs in.
func TestLoginLockoutPerUserAndAddress(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newServiceWith(t, Options{Now: func() time.Time { return now }})
	s.do(t, "POST", "users", nil, `{"username":"own","password":"right"}`, Auth{})
	attacker := Auth{RemoteAddr: "203.0.113.9"}
	owner := Auth{RemoteAddr: "198.51.100.7"}
	for i := 0; i < 5; i++ {
		if _, m := s.do(t, "POST", "login", nil, `{"username":"own","password":"guess"}`, attacker); m["code"] != 210.0 {
			t.Fatalf("failure %d: %v", i, m)
		}
	}
	if _, m := s.do(t, "POST", "login", nil, `{"username":"own","password":"right"}`, attacker); m["code"] != 219.0 {
		t.Fatalf("locked address with the right password: %v", m)
	}
	if status, m := s.do(t, "POST", "login", nil, `{"username":"own","password":"right"}`, owner); status != 200 {
		t.Fatalf("the owner from another address: %d %v", status, m)
	}
	// the lock ends after a minute; the next failure locks for two
	now = now.Add(61 * time.Second)
	s.do(t, "POST", "login", nil, `{"username":"own","password":"guess"}`, attacker)
	now = now.Add(61 * time.Second)
	if _, m := s.do(t, "POST", "login", nil, `{"username":"own","password":"right"}`, attacker); m["code"] != 219.0 {
		t.Fatalf("the second lock should last two minutes: %v", m)
	}
	now = now.Add(60 * time.Second)
	if status, m := s.do(t, "POST", "login", nil, `{"username":"own","password":"right"}`, attacker); status != 200 {
		t.Fatalf("after the second lock: %d %v", status, m)
	}
}

func TestQueryBoundsAndCancellation(t *testing.T) {
	t.Parallel()
	s := newServiceWith(t, Options{MaxRegexLength: 100, MaxInValues: 50})
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		o := &store.Object{Class: "Item", ID: fmt.Sprintf("i%04d", i), CreatedAt: time.Now(), UpdatedAt: time.Now(),
			Fields: map[string]any{"n": float64(i), "s": fmt.Sprintf("item-%d", i), "tags": []any{fmt.Sprint(i % 7)}}}
		if err := s.st.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	master := Auth{Master: true}
	where := func(w string) url.Values { return url.Values{"where": {w}, "count": {"1"}, "limit": {"0"}} }
	if _, m := s.do(t, "GET", "classes/Item", where(`{"s":{"$regex":"`+strings.Repeat("a", 101)+`"}}`), "", master); m["code"] != 102.0 ||
		!strings.Contains(m["error"].(string), "the limit is 100") {
		t.Errorf("long regex: %v", m)
	}
	in, _ := json.Marshal(map[string]any{"n": map[string]any{"$in": make([]any, 51)}})
	if _, m := s.do(t, "GET", "classes/Item", where(string(in)), "", master); m["code"] != 102.0 || !strings.Contains(m["error"].(string), "51 values") {
		t.Errorf("big $in: %v", m)
	}
	// $in compares natively: numbers, strings, array members
	if _, m := s.do(t, "GET", "classes/Item", where(`{"n":{"$in":[1,2,3,"4"]}}`), "", master); m["count"] != 3.0 {
		t.Errorf("$in numbers: %v", m)
	}
	if _, m := s.do(t, "GET", "classes/Item", where(`{"tags":{"$in":["0"]},"s":{"$nin":["item-0"]}}`), "", master); m["count"] != 142.0 {
		t.Errorf("$in array members with $nin: %v", m)
	}
	if _, m := s.do(t, "GET", "classes/Item", where(`{"s":{"$regex":"^item-99"}}`), "", master); m["count"] != 11.0 {
		t.Errorf("regex: %v", m)
	}

	// a client that goes away stops the scan
	cctx, cancel := context.WithCancel(ctx)
	var evaluated atomic.Int32
	s.onEvaluate = func() {
		if evaluated.Add(1) == 10 {
			cancel()
		}
	}
	resp := s.Serve(cctx, "GET", "classes/Item", where(`{"n":{"$gte":0}}`), nil, master)
	if resp.Status == 200 || evaluated.Load() > 10+checkEvery {
		t.Errorf("cancelled query: status %d after %d objects", resp.Status, evaluated.Load())
	}
	s.onEvaluate = nil

	// past the query deadline: 124
	s.opts.QueryTimeout = time.Nanosecond
	if status, m := s.do(t, "GET", "classes/Item", where(`{}`), "", master); status != 503 || m["code"] != 124.0 {
		t.Errorf("timed-out query: %d %v", status, m)
	}
}

func TestQQWeiboAndOAuthVerifiers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		token := r.Form.Get("access_token")
		switch r.URL.Path {
		case "/oauth2.0/me": // QQ answers JSONP unless fmt=json; the verifier copes with both
			if token == "qq-good" {
				fmt.Fprint(w, `callback( {"client_id":"app","openid":"qq-user"} );`)
				return
			}
			fmt.Fprint(w, `{"error":100016,"error_description":"access token check failed"}`)
		case "/oauth2/get_token_info":
			if r.Method == http.MethodPost && token == "wb-good" {
				fmt.Fprint(w, `{"uid":1073880650,"appkey":"k","expire_in":100}`)
				return
			}
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_access_token","error_code":21332}`)
		case "/me":
			if token == "gen-good" {
				fmt.Fprint(w, `{"sub":"gen-user"}`)
				return
			}
			w.WriteHeader(401)
			fmt.Fprint(w, `{}`)
		}
	}))
	t.Cleanup(srv.Close)
	s := newServiceWith(t, Options{AuthVerifiers: map[string]AuthVerifier{
		"qq":    &QQVerifier{BaseURL: srv.URL},
		"weibo": &WeiboVerifier{BaseURL: srv.URL},
		"myapp": &OAuthVerifier{Platform: "myapp", URL: srv.URL + "/me"},
	}})
	cases := []struct {
		authData string
		status   int
		code     float64
	}{
		{`{"qq":{"openid":"qq-user","access_token":"qq-good"}}`, 201, 0},
		{`{"qq":{"openid":"someone-else","access_token":"qq-good"}}`, 400, 251},
		{`{"qq":{"openid":"qq-user","access_token":"bad"}}`, 400, 251},
		{`{"weibo":{"uid":"1073880650","access_token":"wb-good"}}`, 201, 0},
		{`{"weibo":{"uid":"1","access_token":"wb-good"}}`, 400, 251},
		{`{"weibo":{"uid":"1073880650","access_token":"bad"}}`, 400, 251},
		{`{"myapp":{"uid":"gen-user","access_token":"gen-good"}}`, 201, 0},
		{`{"myapp":{"uid":"other","access_token":"gen-good"}}`, 400, 251},
		{`{"myapp":{"uid":"gen-user"}}`, 400, 250},
	}
	for _, c := range cases {
		status, m := s.do(t, "POST", "users", nil, `{"authData":`+c.authData+`}`, Auth{})
		if status != c.status || (c.code != 0 && m["code"] != c.code) {
			t.Errorf("%s: %d %v", c.authData, status, m)
		}
		if c.code != 0 && strings.Contains(fmt.Sprint(m["error"]), "good") {
			t.Errorf("an access token leaked into an error: %v", m)
		}
	}
	// the master key and cloud code (hook key) are trusted
	if status, m := s.do(t, "POST", "users", nil, `{"authData":{"qq":{"openid":"trusted"}}}`, Auth{HookKey: true}); status != 201 {
		t.Errorf("hook key: %d %v", status, m)
	}
}

// authData as the SDK's suite uses it with the master key: a unionid logs in its main account
// and links the new platform; "authData.<platform>" keys unlink; linking makes an anonymous
// user a regular one. A client with the app key cannot log in by a unionid it names.
func TestAuthDataUnionIDAndDottedKeysThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{AuthVerifiers: TrustingVerifiers()})
	r := runSDK(t, svc, `
  AV._config.useMasterKey = true
  const u1 = await new AV.User().setUsername('unionist').loginWithAuthDataAndUnionId(
    { uid: 'openid1', access_token: 't', expires_in: 1382686496 }, 'weixin_1', 'union1', { asMainAccount: true })
  const u2 = await AV.User.signUpOrlogInWithAuthDataAndUnionId({ uid: 'openid2', access_token: 't', expires_in: 1382686496 }, 'weixin_2', 'union1')
  report.sameUser = [u2.id === u1.id, u2.getUsername()]
  report.linked = Object.keys(u2.get('authData')).sort()
  const linked = await AV.User.signUpOrlogInWithAuthData({ uid: 'zz', access_token: 'a' }, 'test')
  const withWeixin = await AV.User.associateWithAuthData(linked, 'weixin', { openid: 'oo', access_token: 'a' })
  report.both = Object.keys(withWeixin.get('authData')).sort()
  const dissociated = await withWeixin.dissociateAuthData('weixin')
  report.afterDissociate = Object.keys(dissociated.get('authData')).sort()
  report.stored = Object.keys((await new AV.Query('_User').get(linked.id)).get('authData')).sort()
  const anon = await AV.User.loginAnonymously()
  const named = await anon.associateWithAuthData({ uid: 'gh', access_token: 'a' }, 'github')
  report.anonymous = named.isAnonymous()
  AV._config.useMasterKey = false
  AV.User._currentUser = null
  // the app key: the unionid names the main account, but does not log into it
  const stranger = await AV.User.signUpOrlogInWithAuthDataAndUnionId({ openid: 'attacker', access_token: 't' }, 'weixin', 'union1', { unionIdPlatform: 'weixin' })
  report.strangerIsOther = stranger.id !== u1.id
`)
	c := reportChecks{t, r}
	c.want("sameUser", []any{true, "unionist"})
	c.want("linked", []string{"weixin_1", "weixin_2"})
	c.want("both", []string{"test", "weixin"})
	c.want("afterDissociate", []string{"test"})
	c.want("stored", []string{"test"})
	c.want("anonymous", false)
	c.want("strangerIsOther", true)
}
