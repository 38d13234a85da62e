package wxdb

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// The real wx-server-sdk 1.8.3 (tcb-admin-node → @cloudbase/database 0.9.x) speaks the legacy
// actions with plain JSON values; every call a 1.x function makes is answered as the platform
// answered it.
func TestLegacyActionsWithRealSDK1(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	url := adminServer(t, db)
	res := runNodeEnv(t, url, "testdata/legacy.js", "ADMIN_URL="+url)
	want := map[string]string{
		"add":              `{"_id":"a","errMsg":"collection.add:ok"}`,
		"addAuto":          `{"idLen":32,"openid":"o1","whenIsDate":true,"diff":60000}`,
		"docGet":           `{"title":"Alpha","tags":["x","y"],"meta":{"shelf":2,"note":"n"},"atIsDate":true,"at":"2024-01-02T03:04:05.678Z","lng":113.32,"lat":23.13,"errMsg":"document.get:ok"}`,
		"whereEq":          `["b"]`,
		"whereNested":      `["a","c"]`,
		"whereCmd":         `["c","b"]`,
		"whereIn":          `["a","c"]`,
		"whereOr":          `["a","c"]`,
		"whereRegExp":      `["a","b"]`,
		"whereDate":        `["a"]`,
		"whereArray":       `["a","b"]`,
		"orderSkipLimit":   `["b"]`,
		"field":            `[{"_id":"b","title":"Beta"}]`,
		"count":            `2`,
		"docUpdate":        `{"updated":1,"doc":{"_id":"b","n":12,"title":"Beta","tags":["y","z"],"meta":{"shelf":3,"note":"set"},"_openid":"o1"}}`,
		"docSetReplace":    `{"updated":1,"title":"replaced","n":"gone"}`,
		"docSetNew":        `{"created":1,"id":"new1","count":1}`,
		"whereUpdate":      `{"updated":2}`,
		"afterWhereUpdate": `2`,
		"aggregate":        `[{"_id":2,"n":1},{"_id":3,"n":1}]`,
		"tx":               `{"res":1,"n":101}`,
		"docRemove":        `{"removed":1}`,
		"txAddUndefinedId": `{"n":1}`,
		"addUndefinedId":   `{"idLen":32}`,
		"whereRemove":      `{"removed":4}`,
		"left":             `["a","c"]`,
	}
	for name, w := range want {
		if got, ok := res[name]; !ok {
			t.Errorf("%s: no result", name)
		} else if !jsonEqual(t, got, w) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, w)
		}
	}
	errs := map[string]struct {
		code float64
		msg  string
	}{
		"missingCollection": {-502005, "Db or Table not exist: nope"},
		"badUpdate":         {-501007, "$inc on n needs a number"},
	}
	for name, w := range errs {
		var e struct {
			Error   bool    `json:"error"`
			ErrCode float64 `json:"errCode"`
			ErrMsg  string  `json:"errMsg"`
		}
		json.Unmarshal(res[name], &e)
		if !e.Error || e.ErrCode != w.code || !strings.Contains(e.ErrMsg, w.msg) {
			t.Errorf("%s: got %s, want errCode %v with %q", name, res[name], w.code, w.msg)
		}
	}
}

// The legacy wire format as @cloudbase/database 0.9.x's serializers write it (recorded from
// dist/commonjs/serializer/datatype.js and document.js): values are plain JSON, dates
// {$date: ms}, server dates {$date: {offset}}, regular expressions {$regex, $options}; answers
// carry documents as plain JSON with dates as {$date: ms}.
func TestLegacyWireFormat(t *testing.T) {
	db := openTest(t)
	add := mustOK(t, call(t, db, "database.addDocument", map[string]any{"collectionName": "c",
		"data": json.RawMessage(`{"_id":"x","n":1,"big":1099511627776,"f":1.5,"at":{"$date":1704164645678},"now":{"$date":{"offset":1000}},"re":{"$regex":"^a","$options":"i"},"p":{"type":"Point","coordinates":[1,2]},"deep":{"k":[{"v":null}]}}`)}))
	if !jsonEqual(t, add.Data, `{"_id":"x"}`) {
		t.Errorf("addDocument answers %s", add.Data)
	}
	q := mustOK(t, call(t, db, "database.queryDocument", map[string]any{"collectionName": "c", "queryType": "WHERE",
		"query": json.RawMessage(`{"at":{"$gte":{"$date":1704164645000}},"re":{"$exists":true}}`),
		"order": json.RawMessage(`[{"field":"n","direction":"desc"}]`), "limit": 100, "projection": json.RawMessage(`{"now":0}`)}))
	var got struct {
		List []map[string]any `json:"list"`
	}
	if err := json.Unmarshal(q.Data, &got); err != nil || len(got.List) != 1 {
		t.Fatalf("queryDocument answers %s (%v)", q.Data, err)
	}
	b, _ := json.Marshal(got.List[0])
	if !jsonEqual(t, b, `{"_id":"x","n":1,"big":1099511627776,"f":1.5,"at":{"$date":1704164645678},"re":{"$regex":"^a","$options":"i"},"p":{"type":"Point","coordinates":[1,2]},"deep":{"k":[{"v":null}]}}`) {
		t.Errorf("document read back as %s", b)
	}
	// the server date became a date, the regular expression a regular expression
	n := mustOK(t, call(t, db, "database.countDocument", map[string]any{"collectionName": "c", "queryType": "WHERE",
		"query": json.RawMessage(`{"now":{"$gt":{"$date":1704164645678}},"re":{"$type":"regex"}}`)}))
	if !jsonEqual(t, n.Data, `{"total":1}`) {
		t.Errorf("countDocument answers %s", n.Data)
	}
	up := mustOK(t, call(t, db, "database.updateDocument", map[string]any{"collectionName": "c", "queryType": "DOC",
		"query": json.RawMessage(`{"_id":"y"}`), "data": json.RawMessage(`{"title":"set"}`), "multi": false, "merge": false, "upsert": true}))
	if !jsonEqual(t, up.Data, `{"updated":0,"upsert_id":"y","upserted_id":"y"}`) {
		t.Errorf("updateDocument (set, new) answers %s", up.Data)
	}
	agg := mustOK(t, call(t, db, "database.aggregate", map[string]any{"collectionName": "c",
		"stages": []map[string]any{{"stageKey": "$match", "stageValue": `{"_id":"x"}`}, {"stageKey": "$project", "stageValue": `{"n":1}`}}}))
	var al struct {
		List string `json:"list"` // a JSON string of EJSON strings: both 0.9.x and 1.0.x JSON.parse it
	}
	if err := json.Unmarshal(agg.Data, &al); err != nil {
		t.Fatalf("aggregate answers %s: %v", agg.Data, err)
	}
	var docs []string
	if err := json.Unmarshal([]byte(al.List), &docs); err != nil || len(docs) != 1 || !jsonEqual(t, json.RawMessage(docs[0]), `{"_id":"x","n":1}`) {
		t.Errorf("aggregate list %q (%v)", al.List, err)
	}
	del := mustOK(t, call(t, db, "database.deleteDocument", map[string]any{"collectionName": "c", "queryType": "WHERE", "query": json.RawMessage(`{}`), "multi": true}))
	if !jsonEqual(t, del.Data, `{"deleted":2}`) {
		t.Errorf("deleteDocument answers %s", del.Data)
	}
}

// Bad legacy input is refused with the platform's error, and nothing is written.
func TestLegacyBadInput(t *testing.T) {
	db := openTest(t)
	deep := strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
	for name, data := range map[string]string{
		"deep":        deep,
		"bad $date":   `{"at":{"$date":"tomorrow"}}`,
		"dollar key":  `{"$set":{"a":1}}`,
		"dotted key":  `{"a.b":1}`,
		"not object":  `[1,2]`,
		"bad _id doc": `{"_id":{"x":1}}`,
	} {
		r := call(t, db, "database.addDocument", map[string]any{"collectionName": "c", "data": json.RawMessage(data)})
		if r.Code == "" {
			t.Errorf("%s: accepted (%s)", name, r.Data)
		}
	}
	if _, err := legacyDecode([]byte(`{"a":1}}`), "data"); err == nil {
		t.Error("data after the value: accepted")
	}
	r := call(t, db, "database.addDocument", map[string]any{"collectionName": "c", "data": json.RawMessage(`{"a":1}`), "_id": json.RawMessage(`{"no":1}`)})
	if r.Code != CodeInvalidParam {
		t.Errorf("an object _id: %s %s", r.Code, r.Message)
	}
	n := call(t, db, "database.countDocument", map[string]any{"collectionName": "c", "queryType": "WHERE", "query": json.RawMessage(`{}`)})
	if n.Code == "" && !jsonEqual(t, n.Data, `{"total":0}`) {
		t.Errorf("a refused document was written: %s", n.Data)
	}
	if r := call(t, db, "database.queryDocument", map[string]any{"collectionName": "c", "query": json.RawMessage(`{"a":{"$bogus":1}}`)}); r.Code != CodeInvalidCommand && r.Code != CodeCollectionNotExist {
		t.Errorf("an unknown operator: %s %s", r.Code, r.Message)
	}
}

// The current SDKs' EJSON.stringify writes `_id: undefined` as null too: insertDocument gives such
// a document a new id instead of refusing it.
func TestInsertNullIDGetsAnID(t *testing.T) {
	db := openTest(t)
	r := mustOK(t, call(t, db, "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"_id":null,"a":{"$numberInt":"1"}}`, `{"_id":null,"a":{"$numberInt":"2"}}`}}))
	var d struct {
		IDs []string `json:"insertedIds"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || len(d.IDs) != 2 || len(d.IDs[0]) != 32 || d.IDs[0] == d.IDs[1] {
		t.Fatalf("insertedIds %s (%v)", r.Data, err)
	}
	got := list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "c", "query": `{"_id":"` + d.IDs[1] + `"}`, "queryType": "DOC"}))
	if len(got) != 1 || got[0]["a"] != 2.0 {
		t.Errorf("read back %v", got)
	}
}
