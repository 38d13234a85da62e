package leanstorage

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fnhq/fn/store"
)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(st, nil, nil)
	s.bcryptCost = bcrypt.MinCost
	return s
}

func (s *Service) do(t *testing.T, method, path string, q url.Values, body string, auth Auth) (int, map[string]any) {
	t.Helper()
	resp := s.Serve(context.Background(), method, path, q, []byte(body), auth)
	b, _ := json.Marshal(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.Status, m
}

func TestQueryOperators(t *testing.T) {
	t.Parallel()
	s := newService(t)
	master := Auth{Master: true}
	objs := []string{
		`{"name":"a","n":1,"tags":["x","y"],"when":{"__type":"Date","iso":"2026-01-01T00:00:00.000Z"},"owner":{"__type":"Pointer","className":"_User","objectId":"u1"}}`,
		`{"name":"b","n":2,"tags":["y"],"when":{"__type":"Date","iso":"2026-06-01T00:00:00.000Z"},"nested":{"k":"v"}}`,
		`{"name":"c","n":3,"gone":null}`,
	}
	for _, o := range objs {
		if status, m := s.do(t, "POST", "classes/Item", nil, o, master); status != 201 {
			t.Fatalf("create: %d %v", status, m)
		}
	}
	cases := []struct {
		where string
		want  string
	}{
		{`{"n":{"$gt":1}}`, "b c"},
		{`{"n":{"$gte":1,"$lt":3}}`, "a b"},
		{`{"n":{"$ne":2}}`, "a c"},
		{`{"name":{"$in":["a","c","z"]}}`, "a c"},
		{`{"name":{"$nin":["a"]}}`, "b c"},
		{`{"tags":"x"}`, "a"},
		{`{"tags":{"$all":["x","y"]}}`, "a"},
		{`{"tags":{"$size":1}}`, "b"},
		{`{"tags":{"$exists":true}}`, "a b"},
		{`{"gone":{"$exists":false}}`, "a b c"},
		{`{"name":{"$regex":"^[AB]$","$options":"i"}}`, "a b"},
		{`{"when":{"$gt":{"__type":"Date","iso":"2026-03-01T00:00:00.000Z"}}}`, "b"},
		{`{"owner":{"__type":"Pointer","className":"_User","objectId":"u1"}}`, "a"},
		{`{"nested.k":"v"}`, "b"},
		{`{"$or":[{"n":1},{"n":3}]}`, "a c"},
		{`{"$and":[{"n":{"$gt":1}},{"name":{"$ne":"c"}}]}`, "b"},
		{`{"missing":null}`, "a b c"},
	}
	for _, c := range cases {
		q := url.Values{"where": {c.where}, "order": {"name"}}
		status, m := s.do(t, "GET", "classes/Item", q, "", master)
		got := ""
		res, _ := m["results"].([]any)
		for _, r := range res {
			if got != "" {
				got += " "
			}
			got += fmt.Sprint(r.(map[string]any)["name"])
		}
		if status != 200 || got != c.want {
			t.Errorf("%s: %d got %q, want %q (%v)", c.where, status, got, c.want, m)
		}
	}
	// order descending by two keys, skip and limit, count
	q := url.Values{"order": {"-n,name"}, "skip": {"1"}, "limit": {"1"}, "count": {"1"}}
	_, m := s.do(t, "GET", "classes/Item", q, "", master)
	if m["count"] != 3.0 || len(m["results"].([]any)) != 1 || m["results"].([]any)[0].(map[string]any)["name"] != "b" {
		t.Errorf("order/skip/limit/count: %v", m)
	}
	// $inQuery and $select across classes
	s.do(t, "POST", "classes/Tag", nil, `{"label":"y","item":"b"}`, master)
	q = url.Values{"where": {`{"name":{"$select":{"query":{"className":"Tag","where":{"label":"y"}},"key":"item"}}}`}}
	if _, m := s.do(t, "GET", "classes/Item", q, "", master); len(m["results"].([]any)) != 1 {
		t.Errorf("$select: %v", m)
	}
}

func TestACLAndSessions(t *testing.T) {
	t.Parallel()
	s := newService(t)
	_, u := s.do(t, "POST", "users", nil, `{"username":"ann","password":"pw"}`, Auth{})
	token := u["sessionToken"].(string)
	uid := u["objectId"].(string)
	ann := Auth{SessionToken: token}
	_, obj := s.do(t, "POST", "classes/Doc", nil, `{"v":1,"ACL":{"`+uid+`":{"read":true,"write":true}}}`, ann)
	id := obj["objectId"].(string)
	if _, m := s.do(t, "GET", "classes/Doc/"+id, nil, "", Auth{}); len(m) != 0 {
		t.Errorf("anonymous read of a private object: %v", m)
	}
	if _, m := s.do(t, "GET", "classes/Doc/"+id, nil, "", ann); m["v"] != 1.0 {
		t.Errorf("owner read: %v", m)
	}
	if status, m := s.do(t, "DELETE", "classes/Doc/"+id, nil, "", Auth{}); status != 403 {
		t.Errorf("anonymous delete: %d %v", status, m)
	}
	if status, _ := s.do(t, "GET", "users/me", nil, "", Auth{SessionToken: "bad"}); status != 400 {
		t.Errorf("bad session: %d", status)
	}
	if status, m := s.do(t, "GET", "users/me", nil, "", Auth{SessionToken: "bad", Master: true}); status != 400 || m["code"] != 211.0 {
		t.Errorf("bad session with the master key: %d %v", status, m)
	}
	// refreshing the session invalidates the old token
	_, fresh := s.do(t, "PUT", "users/"+uid+"/refreshSessionToken", nil, "", ann)
	if fresh["sessionToken"] == nil || fresh["sessionToken"] == token {
		t.Fatalf("refresh: %v", fresh)
	}
	if status, _ := s.do(t, "GET", "users/me", nil, "", ann); status != 400 {
		t.Error("the old token should no longer work")
	}
	// password change by the user, then login with the new one
	s.do(t, "PUT", "users/"+uid, nil, `{"password":"new"}`, Auth{SessionToken: fresh["sessionToken"].(string)})
	if status, _ := s.do(t, "POST", "login", nil, `{"username":"ann","password":"new"}`, Auth{}); status != 200 {
		t.Errorf("login with the new password: %d", status)
	}
	// another user cannot alter ann
	_, other := s.do(t, "POST", "users", nil, `{"username":"bob","password":"pw"}`, Auth{})
	if status, _ := s.do(t, "PUT", "users/"+uid, nil, `{"nick":"x"}`, Auth{SessionToken: other["sessionToken"].(string)}); status != 403 {
		t.Errorf("bob altering ann: %d", status)
	}
	// duplicate username
	if status, m := s.do(t, "POST", "users", nil, `{"username":"ann","password":"x"}`, Auth{}); status != 400 || m["code"] != 202.0 {
		t.Errorf("duplicate username: %d %v", status, m)
	}
}

// An unknown or stale session token on an app-key request is ignored (the request runs as
// anonymous), as LeanCloud's recorded answers show; only GET /users/me answers 211 for it.
func TestStaleSessionTokenIgnoredOutsideUsersMe(t *testing.T) {
	t.Parallel()
	s := newService(t)
	stale := Auth{SessionToken: "0"}
	status, u := s.do(t, "POST", "users", nil, `{"username":"tester1","password":"pw"}`, stale)
	if status != 201 || u["sessionToken"] == nil {
		t.Fatalf("sign-up carrying the token 0: %d %v", status, u)
	}
	uid := u["objectId"].(string)
	owner := Auth{SessionToken: u["sessionToken"].(string)}
	_, priv := s.do(t, "POST", "classes/Doc", nil, `{"v":1,"ACL":{"`+uid+`":{"read":true,"write":true}}}`, owner)
	privID := priv["objectId"].(string)
	if status, m := s.do(t, "POST", "classes/Doc", nil, `{"v":2}`, stale); status != 201 {
		t.Errorf("create with a stale token: %d %v", status, m)
	}
	// the stale token grants nothing: the private object stays hidden and unwritable
	if _, m := s.do(t, "GET", "classes/Doc/"+privID, nil, "", stale); len(m) != 0 {
		t.Errorf("a stale token read a private object: %v", m)
	}
	if status, m := s.do(t, "PUT", "classes/Doc/"+privID, nil, `{"v":9}`, stale); status < 400 {
		t.Errorf("a stale token updated a private object: %d %v", status, m)
	}
	if status, m := s.do(t, "GET", "classes/Doc", url.Values{"count": {"1"}, "limit": {"0"}}, "", stale); status != 200 || m["count"] != 1.0 {
		t.Errorf("query with a stale token: %d %v", status, m)
	}
	if status, m := s.do(t, "GET", "users/me", nil, "", stale); status != 400 || m["code"] != 211.0 || m["error"] != "Could not find user." {
		t.Errorf("users/me with a stale token: %d %v", status, m)
	}
	// a deleted user's token is stale too
	s.do(t, "DELETE", "users/"+uid, nil, "", owner)
	if status, m := s.do(t, "GET", "classes/Doc", url.Values{"count": {"1"}, "limit": {"0"}}, "", owner); status != 200 || m["count"] != 1.0 {
		t.Errorf("query with a deleted user's token: %d %v", status, m)
	}
	if status, m := s.do(t, "GET", "users/me", nil, "", owner); status != 400 || m["code"] != 211.0 {
		t.Errorf("users/me with a deleted user's token: %d %v", status, m)
	}
}

// A batch GET of a missing object answers {"success": null}, of a missing class 101, as
// LeanCloud's recorded answer to AV.Object.fetchAll shows.
func TestBatchGetOfMissingObject(t *testing.T) {
	t.Parallel()
	s := newService(t)
	_, o := s.do(t, "POST", "classes/GameScore", nil, `{"score":1}`, Auth{})
	id := o["objectId"].(string)
	resp := s.Serve(t.Context(), "POST", "batch", nil, []byte(`{"requests":[{"method":"GET","path":"/1.1/classes/GameScore/`+id+`"},`+
		`{"method":"GET","path":"/1.1/classes/GameScore/fakeId"},{"method":"GET","path":"/1.1/classes/FakeClass/`+id+`"}]}`), Auth{})
	b, _ := json.Marshal(resp.Body)
	var got []map[string]any
	json.Unmarshal(b, &got)
	if len(got) != 3 {
		t.Fatalf("batch: %s", b)
	}
	if m, _ := got[0]["success"].(map[string]any); m["score"] != 1.0 {
		t.Errorf("the existing object: %v", got[0])
	}
	if v, present := got[1]["success"]; !present || v != nil {
		t.Errorf("the missing object: %v", got[1])
	}
	if e, _ := got[2]["error"].(map[string]any); e["code"] != 101.0 || e["error"] != "Class or object doesn't exists." {
		t.Errorf("the missing class: %v", got[2])
	}
	// a lone GET of the missing object still answers {}
	if status, m := s.do(t, "GET", "classes/GameScore/fakeId", nil, "", Auth{}); status != 200 || len(m) != 0 {
		t.Errorf("lone GET: %d %v", status, m)
	}
}

// The ACL is answered only with returnACL=true, then with the default for an object saved
// without one (LeanCloud's recorded answers); include takes "a, b" as the SDK passes it.
func TestReturnACLAndIncludeList(t *testing.T) {
	t.Parallel()
	s := newService(t)
	_, a := s.do(t, "POST", "classes/Person", nil, `{"name":"1"}`, Auth{})
	_, b := s.do(t, "POST", "classes/Person", nil, `{"name":"2","ACL":{"*":{"read":true}}}`, Auth{})
	_, p := s.do(t, "POST", "classes/Post", nil, `{"author1":{"__type":"Pointer","className":"Person","objectId":"`+a["objectId"].(string)+
		`"},"author2":{"__type":"Pointer","className":"Person","objectId":"`+b["objectId"].(string)+`"}}`, Auth{})
	pid := p["objectId"].(string)
	_, got := s.do(t, "GET", "classes/Post/"+pid, url.Values{"include": {"author1, author2"}}, "", Auth{})
	a1, _ := got["author1"].(map[string]any)
	a2, _ := got["author2"].(map[string]any)
	if a1["name"] != "1" || a2["name"] != "2" {
		t.Errorf("include with a space: %v", got)
	}
	if _, has := got["ACL"]; has {
		t.Errorf("ACL without returnACL: %v", got)
	}
	if _, has := a2["ACL"]; has {
		t.Errorf("an included object's ACL without returnACL: %v", a2)
	}
	_, found := s.do(t, "GET", "classes/Person", url.Values{"returnACL": {"true"}, "order": {"name"}}, "", Auth{})
	rs, _ := found["results"].([]any)
	if len(rs) != 2 {
		t.Fatalf("find: %v", found)
	}
	if acl := fmt.Sprint(rs[0].(map[string]any)["ACL"]); acl != "map[*:map[read:true write:true]]" {
		t.Errorf("the default ACL: %s", acl)
	}
	if acl := fmt.Sprint(rs[1].(map[string]any)["ACL"]); acl != "map[*:map[read:true]]" {
		t.Errorf("a stored ACL: %s", acl)
	}
	_, one := s.do(t, "GET", "classes/Person/"+b["objectId"].(string), url.Values{"returnACL": {"true"}}, "", Auth{})
	if one["ACL"] == nil {
		t.Errorf("GET with returnACL: %v", one)
	}
}

// An included pointer to a _File comes back as a File (what the SDK decodes to AV.File).
func TestIncludedFileIsAFile(t *testing.T) {
	t.Parallel()
	s := newService(t)
	_, f := s.do(t, "POST", "classes/_File", nil, `{"name":"ttt.jpg","url":"http://example.com/ttt.jpg","mime_type":"image/jpeg"}`, Auth{Master: true})
	fid, _ := f["objectId"].(string)
	if fid == "" {
		t.Fatalf("file: %v", f)
	}
	_, o := s.do(t, "POST", "classes/ComplexObject", nil, `{"fileColumn":{"__type":"Pointer","className":"_File","objectId":"`+fid+`"}}`, Auth{})
	_, got := s.do(t, "GET", "classes/ComplexObject/"+o["objectId"].(string), url.Values{"include": {"fileColumn"}}, "", Auth{})
	fc, _ := got["fileColumn"].(map[string]any)
	if fc["__type"] != "File" || fc["className"] != nil || fc["objectId"] != fid || fc["name"] != "ttt.jpg" || fc["url"] != "http://example.com/ttt.jpg" {
		t.Errorf("included file: %v", fc)
	}
}

// user.getRoles(): a pointer against a role's users relation is a membership test (the reverse
// query of AV.Relation), here and for any class's relation when the matcher sees it.
func TestReverseRelationQueryThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const u = await new AV.User().setUsername('member').setPassword('pw').signUp()
  const other = await new AV.User().setUsername('other').setPassword('pw').signUp()
  const acl = new AV.ACL(); acl.setPublicReadAccess(true)
  const role = new AV.Role('testRole', acl)
  role.getUsers().add(u)
  await role.save()
  report.roles = (await u.getRoles()).map((r) => r.getName())
  report.otherRoles = (await other.getRoles()).length
  const post = new AV.Object('Post')
  post.relation('likes').add(u)
  await post.save()
  report.liked = (await AV.Relation.reverseQuery('Post', 'likes', u).find()).map((p) => p.id === post.id)
  report.notLiked = (await AV.Relation.reverseQuery('Post', 'likes', other).count())
`)
	c := reportChecks{t, r}
	c.want("roles", []string{"testRole"})
	c.want("otherRoles", 0)
	c.want("liked", []bool{true})
	c.want("notLiked", 0)
}

// A query too long for a URL comes as a batch of one GET with params (the SDK's way).
func TestBatchGetWithParams(t *testing.T) {
	t.Parallel()
	s := newService(t)
	s.do(t, "POST", "classes/GameScore", nil, `{"arr":["contains-all-test"]}`, Auth{})
	s.do(t, "POST", "classes/GameScore", nil, `{"score":1}`, Auth{})
	all := make([]string, 200)
	for i := range all {
		all[i] = `"contains-all-test"`
	}
	body := `{"requests":[{"method":"GET","path":"/1.1/classes/GameScore","params":{"where":{"arr":{"$all":[` + strings.Join(all, ",") + `]}},"limit":10}}]}`
	resp := s.Serve(t.Context(), "POST", "batch", nil, []byte(body), Auth{})
	b, _ := json.Marshal(resp.Body)
	var got []struct {
		Success struct {
			Results []map[string]any `json:"results"`
		} `json:"success"`
	}
	json.Unmarshal(b, &got)
	if len(got) != 1 || len(got[0].Success.Results) != 1 || got[0].Success.Results[0]["arr"] == nil {
		t.Errorf("batch GET with params: %s", b)
	}
}

// countingStore counts the relation reads a query makes.
type countingStore struct {
	store.Store
	targets, owners atomic.Int64
}

func (c *countingStore) RelationTargets(ctx context.Context, r store.Relation) ([]string, error) {
	c.targets.Add(1)
	return c.Store.RelationTargets(ctx, r)
}

func (c *countingStore) RelationOwners(ctx context.Context, ownerClass, key, targetID string) ([]string, error) {
	c.owners.Add(1)
	return c.Store.RelationOwners(ctx, ownerClass, key, targetID)
}

// A pointer against a relation field (AV.Relation.reverseQuery) reads the relation's owners once
// per pointer and query, not the relation of every object the query scans.
func TestReverseRelationQueryReadsTheRelationOncePerPointer(t *testing.T) {
	t.Parallel()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	s := New(cs, nil, nil)
	master := Auth{Master: true}
	ptr := func(id string) string { return `{"__type":"Pointer","className":"_User","objectId":"` + id + `"}` }
	want := map[string]bool{}
	for i := range 40 {
		liker := "u-other"
		if i%8 == 0 {
			liker = "u-1"
		}
		status, m := s.do(t, "POST", "classes/Post", nil, `{"n":`+strconv.Itoa(i)+`,"likes":{"__op":"AddRelation","objects":[`+ptr(liker)+`]}}`, master)
		if status != 201 {
			t.Fatalf("create: %d %v", status, m)
		}
		if liker == "u-1" {
			want[m["objectId"].(string)] = true
		}
	}
	many := []string{ptr("u-1")}
	for i := range 12 {
		many = append(many, ptr("u-x"+strconv.Itoa(i)))
	}
	manyPointers := `{"likes":{"$in":[` + strings.Join(many, ",") + `]}}`
	for _, where := range []string{`{"likes":` + ptr("u-1") + `}`, `{"likes":{"$in":[` + ptr("u-1") + `,` + ptr("u-none") + `]},"n":{"$gte":0}}`, manyPointers} {
		cs.targets.Store(0)
		cs.owners.Store(0)
		status, m := s.do(t, "GET", "classes/Post", url.Values{"where": {where}, "limit": {"100"}}, "", master)
		if status != 200 {
			t.Fatalf("%s: %d %v", where, status, m)
		}
		got := map[string]bool{}
		for _, r := range m["results"].([]any) {
			got[r.(map[string]any)["objectId"].(string)] = true
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: found %v, want %v", where, got, want)
		}
		pointers := int64(strings.Count(where, "Pointer"))
		if where == manyPointers {
			// more pointers than maxOwnerLookups: each scanned object's relation, once
			if n := cs.targets.Load(); n > 40 {
				t.Errorf("%d pointers: read the relations %d times for 40 objects", pointers, n)
			}
			continue
		}
		if n := cs.targets.Load(); n != 0 {
			t.Errorf("%s: read the relation of %d scanned objects", where, n)
		}
		if n := cs.owners.Load(); n > pointers {
			t.Errorf("%s: read the owners %d times for %d pointers", where, n, pointers)
		}
	}
}
