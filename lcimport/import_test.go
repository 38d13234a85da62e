package lcimport

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/lcpassword"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/store"
)

const (
	goldenSalt = "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2"
	goldenHash = "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug=="
)

// An export as LeanCloud's console writes it: one .jsonl per class.
var exportFiles = map[string]string{
	"Post.jsonl": `{"objectId":"p1","createdAt":"2020-01-02T03:04:05.678Z","updatedAt":"2021-01-02T03:04:05.678Z","title":"hello","likes":3,"author":{"__type":"Pointer","className":"_User","objectId":"u1"},"tags":{"__type":"Relation","className":"Tag"},"where":{"__type":"GeoPoint","latitude":39.9,"longitude":116.4},"publishedAt":{"__type":"Date","iso":"2020-05-06T07:08:09.010Z"},"blob":{"__type":"Bytes","base64":"aGVsbG8="},"cover":{"__type":"File","id":"f1","name":"a.png","url":"http://files.example/a.png"},"ACL":{"*":{"read":true},"u1":{"write":true}},"nested":{"list":[1,"two",{"__type":"Pointer","className":"Tag","objectId":"t1"}]}}
{"objectId":"p2","createdAt":"2020-01-03T00:00:00.000Z","updatedAt":"2020-01-03T00:00:00.000Z","title":"second","tags":{"__type":"Relation","className":"Tag"}}
`,
	"Tag.jsonl": `{"objectId":"t1","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-01T00:00:00.000Z","name":"go"}
{"objectId":"t2","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-01T00:00:00.000Z","name":"js"}
`,
	"_User.jsonl": `{"objectId":"u1","createdAt":"2019-01-01T00:00:00.000Z","updatedAt":"2019-06-01T00:00:00.000Z","username":"alice","email":"a@example.com","emailVerified":true,"salt":"` + goldenSalt + `","password":"` + goldenHash + `","sessionToken":"tok-alice","authData":{"weixin":{"openid":"o1"}}}
`,
	"_Join:tags:Post.jsonl": `{"owningId":"p1","relatedId":"t1"}
{"owningId":"p1","relatedId":"t2"}
`,
	"_Role.jsonl":         `{"objectId":"r1","createdAt":"2019-01-01T00:00:00.000Z","updatedAt":"2019-01-01T00:00:00.000Z","name":"admin","ACL":{"*":{"read":true}}}` + "\n",
	"_Installation.jsonl": `{"objectId":"i1","createdAt":"2019-01-01T00:00:00.000Z","updatedAt":"2019-01-01T00:00:00.000Z","deviceType":"ios","deviceToken":"abc"}` + "\n",
	"_Conversation.jsonl": `{"objectId":"c1","createdAt":"2019-01-01T00:00:00.000Z","updatedAt":"2019-01-01T00:00:00.000Z","m":["u1"],"name":"chat"}` + "\n",
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func importPath(t *testing.T, path string, st store.Store, opts Options) (*Report, error) {
	t.Helper()
	src, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return Import(context.Background(), src, &StoreTarget{Store: st}, opts)
}

func get(t *testing.T, st store.Store, class, id string) *store.Object {
	t.Helper()
	o, err := st.Get(context.Background(), class, id)
	if err != nil {
		t.Fatalf("%s %s: %v", class, id, err)
	}
	return o
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestImportConsoleExportKeepsEveryType(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, exportFiles)
	st := openStore(t)
	rep, err := importPath(t, dir, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Totals(); got.Added != 10 || got.Failed != 0 || got.Changed != 0 {
		t.Fatalf("totals %+v, errors %v", got, rep.Errors)
	}
	if rep.Sessions != 1 {
		t.Errorf("sessions = %d", rep.Sessions)
	}
	p1 := get(t, st, "Post", "p1")
	if !p1.CreatedAt.Equal(time.Date(2020, 1, 2, 3, 4, 5, 678e6, time.UTC)) || !p1.UpdatedAt.Equal(time.Date(2021, 1, 2, 3, 4, 5, 678e6, time.UTC)) {
		t.Errorf("timestamps %v %v", p1.CreatedAt, p1.UpdatedAt)
	}
	var want map[string]any
	json.Unmarshal([]byte(strings.SplitN(exportFiles["Post.jsonl"], "\n", 2)[0]), &want)
	for _, k := range []string{"objectId", "createdAt", "updatedAt"} {
		delete(want, k)
	}
	// the relation table was folded into the owner: leanstorage's representation
	want["tags"] = map[string]any{"__type": "Relation", "className": "Tag", "objects": []any{
		map[string]any{"__type": "Pointer", "className": "Tag", "objectId": "t1"},
		map[string]any{"__type": "Pointer", "className": "Tag", "objectId": "t2"}}}
	if !reflect.DeepEqual(p1.Fields, want) {
		t.Errorf("Post p1\n got %s\nwant %s", mustJSON(p1.Fields), mustJSON(want))
	}
	if fr := rep.Relations["_Join:tags:Post"]; fr.Rows != 2 || fr.Owners != 1 {
		t.Errorf("relation fold %+v", fr)
	}
	// and into the store's relation rows, which $relatedTo queries and role grants read
	if ids, err := st.RelationTargets(context.Background(), store.Relation{OwnerClass: "Post", OwnerID: "p1", Key: "tags"}); err != nil || strings.Join(ids, ",") != "t1,t2" {
		t.Errorf("relation rows %v %v", ids, err)
	}
	// the join rows are kept as their own class too, for export
	if rows, _ := st.Scan(context.Background(), "_Join:tags:Post"); len(rows) != 2 {
		t.Errorf("join rows %d", len(rows))
	}
	for _, c := range []string{"_Role", "_Installation", "_Conversation"} {
		if objs, _ := st.Scan(context.Background(), c); len(objs) != 1 {
			t.Errorf("%s: %d objects", c, len(objs))
		}
	}

	u := get(t, st, "_User", "u1")
	if u.Fields[FieldLCSalt] != goldenSalt || u.Fields[FieldLCPassword] != goldenHash {
		t.Fatalf("user fields %v", u.Fields)
	}
	if _, leaked := u.Fields["password"]; leaked {
		t.Error("the hash is stored as a visible field")
	}
	if !lcpassword.VerifyLeanCloudPassword(u.Fields[FieldLCSalt].(string), u.Fields[FieldLCPassword].(string), "password") {
		t.Error("the imported hash does not verify")
	}
	// what leanstorage serves of the user: no hash, no salt, no token
	served := leanstorage.JSON(u)
	for _, k := range []string{"salt", "password", "sessionToken", FieldLCSalt, FieldLCPassword, FieldLCSessionToken} {
		if _, ok := served[k]; ok {
			t.Errorf("leanstorage serves %s", k)
		}
	}
	if served["username"] != "alice" || served["emailVerified"] != true {
		t.Errorf("served user %v", served)
	}
	if uid, err := st.SessionUser(context.Background(), "tok-alice"); err != nil || uid != "u1" {
		t.Errorf("session: %q %v", uid, err)
	}
}

func TestReimportIsIdempotentAndDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, exportFiles)
	st := openStore(t)
	if _, err := importPath(t, dir, st, Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := importPath(t, dir, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Totals(); got.Unchanged != 10 || got.Added+got.Changed+got.Failed != 0 {
		t.Fatalf("second import %+v %v", got, rep.Errors)
	}

	changed := map[string]string{
		"Tag.jsonl": `{"objectId":"t1","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-02-01T00:00:00.000Z","name":"golang"}
{"objectId":"t2","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-01T00:00:00.000Z","name":"js"}
{"objectId":"t3","createdAt":"2020-03-01T00:00:00.000Z","updatedAt":"2020-03-01T00:00:00.000Z","name":"new"}
`}
	writeFiles(t, dir, changed)
	rep, err = importPath(t, dir, st, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if tag := rep.Classes["Tag"]; *tag != (ClassReport{Added: 1, Changed: 1, Unchanged: 1}) {
		t.Fatalf("dry run Tag %+v", tag)
	}
	if get(t, st, "Tag", "t1").Fields["name"] != "go" {
		t.Fatal("the dry run wrote")
	}
	if _, err := st.Get(context.Background(), "Tag", "t3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("the dry run added")
	}
	rep, err = importPath(t, dir, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tag := rep.Classes["Tag"]; *tag != (ClassReport{Added: 1, Changed: 1, Unchanged: 1}) {
		t.Fatalf("Tag %+v", tag)
	}
	t1 := get(t, st, "Tag", "t1")
	if t1.Fields["name"] != "golang" || !t1.UpdatedAt.Equal(time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("t1 %v %v", t1.Fields, t1.UpdatedAt)
	}
	// the owners kept their folded relation through the re-import
	if rel := get(t, st, "Post", "p1").Fields["tags"].(map[string]any); len(rel["objects"].([]any)) != 2 {
		t.Errorf("relation lost: %v", rel)
	}
}

func TestFormatsGiveTheSameObjects(t *testing.T) {
	jsonl := `{"objectId":"a","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-02T00:00:00.000Z","name":"x","n":2,"ok":true,"when":{"__type":"Date","iso":"2020-01-01T10:00:00.000Z"},"p":{"__type":"Pointer","className":"Player","objectId":"pl1"},"loc":{"__type":"GeoPoint","latitude":31.2,"longitude":120.5},"arr":[1,2],"obj":{"k":"v"}}
{"objectId":"b","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-01T00:00:00.000Z","name":"y, with comma","n":2.5}
`
	var objs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(jsonl), "\n") {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		objs = append(objs, m)
	}
	arr, _ := json.MarshalIndent(objs, "", "  ")
	results, _ := json.Marshal(map[string]any{"results": objs, "count": 2})
	csv := "string,date,date,string,int,boolean,date,pointer:Player,geopoint,array,object\n" +
		"objectId,createdAt,updatedAt,name,n,ok,when,p,loc,arr,obj\n" +
		`a,2020-01-01T00:00:00.000Z,2020-01-02T00:00:00.000Z,x,2,true,2020-01-01T10:00:00.000Z,pl1,120.5 31.2,"[1,2]","{""k"":""v""}"` + "\n" +
		`b,2020-01-01T00:00:00.000Z,2020-01-01T00:00:00.000Z,"y, with comma",,,,,,,` + "\n"
	csvB := strings.Replace(csv, "string,date,date,string,int", "string,date,date,string,number", 1)
	csvB = strings.Replace(csvB, `"y, with comma",,`, `"y, with comma",2.5,`, 1)

	var reference map[string]*store.Object
	// (subtest names without '#': the SQLite store's file: URI would cut the path there)
	for _, c := range []struct{ test, name, body string }{
		{"jsonl", "Thing.jsonl", jsonl}, {"array", "Thing.json", string(arr)}, {"results", "Thing.json", string(results)},
		{"jsonl_named_json", "Thing.json", jsonl}, {"csv", "Thing.csv", csvB},
	} {
		t.Run(c.test, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, []byte(c.body), 0o644)
			st := openStore(t)
			rep, err := importPath(t, p, st, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Classes["Thing"] == nil || rep.Classes["Thing"].Added != 2 {
				t.Fatalf("report %+v %v", *rep.Classes["Thing"], rep.Errors)
			}
			got := map[string]*store.Object{"a": get(t, st, "Thing", "a"), "b": get(t, st, "Thing", "b")}
			if reference == nil {
				reference = got
				return
			}
			for id := range got {
				if mustJSON(got[id].Fields) != mustJSON(reference[id].Fields) || !got[id].UpdatedAt.Equal(reference[id].UpdatedAt) {
					t.Errorf("%s\n got %s\nwant %s", id, mustJSON(got[id].Fields), mustJSON(reference[id].Fields))
				}
			}
		})
	}
}

func TestBadInputIsReportedWithFileAndLine(t *testing.T) {
	big := `{"objectId":"big","s":"` + strings.Repeat("x", MaxObjectSize+10) + `"}`
	body := strings.Join([]string{
		`{"objectId":"ok1","createdAt":"2020-01-01T00:00:00.000Z"}`,
		`{"objectId":"bad1", "x": }`,
		`{"objectId":"t1","v":{"__type":"Money","amount":1}}`,
		`{"objectId":"ok1","createdAt":"2020-01-01T00:00:00.000Z"}`,
		big,
		`{"objectId":"op","n":{"__op":"Increment","amount":1}}`,
		`{"objectId":"acl","ACL":{"*":{"read":"yes"}}}`,
		`{"objectId":"pw","name":"x"}`,
		`{"objectId":"trunc","name":"cut o`,
	}, "\n")
	dir := t.TempDir()
	p := filepath.Join(dir, "Item.jsonl")
	os.WriteFile(p, []byte(body), 0o644)

	st := openStore(t)
	rep, err := importPath(t, p, st, Options{OnError: Skip})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Classes["Item"]; c.Added != 2 || c.Failed != 7 {
		t.Fatalf("Item %+v %v", c, rep.Errors)
	}
	wants := []struct {
		line string
		err  string
	}{
		{":2: Item: malformed data", ""},
		{":3: Item t1: unknown __type \"Money\" at v", ""},
		{":4: Item ok1: duplicate objectId", ""},
		{":5: Item: object larger than 16 MB", ""},
		{":6: Item op: invalid value: n is an atomic operation", ""},
		{":7: Item acl: invalid value: ACL entry \"*\".read must be true or false", ""},
		{":9: Item: input is truncated", ""},
	}
	if len(rep.Errors) != len(wants) {
		t.Fatalf("errors:\n%s", strings.Join(rep.Errors, "\n"))
	}
	for i, w := range wants {
		if !strings.HasPrefix(rep.Errors[i], p+w.line) {
			t.Errorf("error %d = %q, want prefix %q", i, rep.Errors[i], p+w.line)
		}
	}

	st2 := openStore(t)
	rep, err = importPath(t, p, st2, Options{OnError: Abort})
	var re *RecordError
	if !errors.As(err, &re) || re.Pos.Line != 2 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("abort: %v", err)
	}
	if rep.Classes["Item"].Added != 1 {
		t.Errorf("abort report %+v", rep.Classes["Item"])
	}
}

func TestPlainPasswordsAreRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "_User.jsonl")
	os.WriteFile(p, []byte(`{"objectId":"u","username":"bob","password":"hunter2"}`+"\n"+
		`{"objectId":"v","username":"carol","bcryptPassword":"$2a$10$abcdefghijklmnopqrstuuAbCdEfGhIjKlMnOpQrStUvWxYz01234"}`+"\n"), 0o644)
	st := openStore(t)
	rep, err := importPath(t, p, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "password without salt") {
		t.Fatalf("errors %v", rep.Errors)
	}
	v := get(t, st, "_User", "v")
	if !strings.HasPrefix(v.Fields[FieldBcrypt].(string), "$2a$") || v.Fields["bcryptPassword"] != nil {
		t.Errorf("bcrypt user %v", v.Fields)
	}
}

func TestTruncatedJSONArrayStopsWithALine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "A.json")
	os.WriteFile(p, []byte("[\n{\"objectId\":\"a\"},\n{\"objectId\":\"b\"},\n{\"objectId\":\"c\", \"x\":"), 0o644)
	st := openStore(t)
	rep, err := importPath(t, p, st, Options{})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err %v", err)
	}
	if !strings.HasPrefix(err.Error(), p+":4:") {
		t.Errorf("position: %v", err)
	}
	if rep.Classes["A"].Added != 2 {
		t.Errorf("report %+v", rep.Classes["A"])
	}
}

func TestExportDataArchive(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name, body string) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.WriteHeader(&tar.Header{Name: "export/", Mode: 0o755, Typeflag: tar.TypeDir})
	add("export/Tag.jsonl", exportFiles["Tag.jsonl"])
	add("export/_User.jsonl", exportFiles["_User.jsonl"])
	add("export/Post.schema.json", `{"title":{"type":"String"}}`)
	add("export/../../evil/Note.jsonl", `{"objectId":"n1","text":"entry names are labels, not paths"}`+"\n")
	tw.Close()
	gz.Close()
	dir := t.TempDir()
	p := filepath.Join(dir, "export.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)

	st := openStore(t)
	rep, err := importPath(t, p, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Classes["Tag"].Added != 2 || rep.Classes["_User"].Added != 1 || rep.Classes["Note"].Added != 1 || len(rep.Classes) != 3 {
		t.Fatalf("classes %v", rep.Classes)
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "evil")); err == nil {
		t.Fatal("an entry name was used as a path")
	}

	// a cut-off archive: what was read is kept, the error says the input is truncated
	os.WriteFile(p, buf.Bytes()[:buf.Len()/2], 0o644)
	_, err = importPath(t, p, openStore(t), Options{})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated archive: %v", err)
	}
}

func TestClassesFilter(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, exportFiles)
	st := openStore(t)
	rep, err := importPath(t, dir, st, Options{Classes: []string{"Tag"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Classes) != 1 || rep.Classes["Tag"].Added != 2 || rep.Skipped["Post"] != 2 {
		t.Fatalf("%+v skipped %v", rep.Classes, rep.Skipped)
	}
	if cs, _ := st.Classes(context.Background()); !reflect.DeepEqual(cs, []string{"Tag"}) {
		t.Errorf("classes %v", cs)
	}
}

func TestExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, exportFiles)
	st := openStore(t)
	if _, err := importPath(t, dir, st, Options{}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	counts, err := Export(context.Background(), st, out, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if counts["Post"] != 2 || counts["_Join:tags:Post"] != 2 || counts["_User"] != 1 {
		t.Fatalf("counts %v", counts)
	}
	// the export reads back as the original: the same user fields, relations as join rows
	b, _ := os.ReadFile(filepath.Join(out, "_User.jsonl"))
	var u map[string]any
	json.Unmarshal(b, &u)
	var orig map[string]any
	json.Unmarshal([]byte(exportFiles["_User.jsonl"]), &orig)
	if !reflect.DeepEqual(u, orig) {
		t.Errorf("user\n got %s\nwant %s", mustJSON(u), mustJSON(orig))
	}
	b, _ = os.ReadFile(filepath.Join(out, "Post.jsonl"))
	if strings.Contains(string(b), `"objects"`) {
		t.Errorf("folded relation pointers leaked into the export: %s", b)
	}
	st2 := openStore(t)
	rep, err := importPath(t, out, st2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Totals(); got.Added != 10 || got.Failed != 0 {
		t.Fatalf("re-import %+v %v", got, rep.Errors)
	}
	for _, c := range []string{"Post", "Tag", "_User", "_Join:tags:Post", "_Role"} {
		a, _ := st.Scan(context.Background(), c)
		b, _ := st2.Scan(context.Background(), c)
		if mustJSON(a) != mustJSON(b) {
			t.Errorf("%s differs after a round trip\n%s\n%s", c, mustJSON(a), mustJSON(b))
		}
	}
}

func TestJSONArrayElementPositions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "A.json")
	os.WriteFile(p, []byte("[\n  {\"objectId\":\"a\"},\n  5,\n\n  {\"objectId\":\"b\",\n   \"v\":{\"__type\":\"Nope\"}},\n  {\"objectId\":\"c\"}\n]\n"), 0o644)
	rep, err := importPath(t, p, openStore(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 2 || !strings.HasPrefix(rep.Errors[0], p+":3: A: malformed data") || !strings.HasPrefix(rep.Errors[1], p+":5: A b: unknown __type") {
		t.Fatalf("errors %q", rep.Errors)
	}
	if rep.Classes["A"].Added != 2 {
		t.Errorf("report %+v", rep.Classes["A"])
	}
}
