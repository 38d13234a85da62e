package wxdb

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/nodejs"
)

// adminServer serves /admin the way server/wxadmin.go will: the same body, database actions
// answered by db.Handle.
func adminServer(t *testing.T, db *DB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/admin" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			Action  string `json:"action"`
			EnvName string `json:"envName"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply, ok := db.Handle(r.Context(), req.EnvName, Caller{OpenID: "o1", AppID: "wx1"}, req.Action, body)
		if !ok {
			reply = []byte(`{"code":"FN_UNSUPPORTED_ACTION","message":"not a database action"}`)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(reply)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/admin"
}

func runNode(t *testing.T, url, script string) map[string]json.RawMessage {
	t.Helper()
	return runNodeEnv(t, url, script)
}

// runNodeEnv runs script with the SDK's environment and extra NAME=value entries.
func runNodeEnv(t *testing.T, url, script string, extra ...string) map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, err := nodejs.Find(ctx)
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	abs, _ := filepath.Abs(script)
	preload, _ := filepath.Abs("testdata/nometa.js")
	cmd := exec.CommandContext(ctx, node.Path, "-r", preload, abs)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"FIXTURE=" + testutil.NodeModules(t),
		`TCB_CONTEXT_CNFG={"URL":"` + url + `"}`,
		"TCB_ENV=test-env", "SCF_NAMESPACE=test-env",
		"TENCENTCLOUD_SECRETID=x", "TENCENTCLOUD_SECRETKEY=x",
		"WX_CONTEXT_KEYS=WX_OPENID,WX_APPID", "WX_OPENID=o1", "WX_APPID=wx1",
		"SILENCE=true",
	}
	cmd.Env = append(cmd.Env, extra...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var res map[string]json.RawMessage
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("node output is not JSON: %v\n%s\n%s", err, outb, stderr.String())
	}
	return res
}

func TestConformanceWithRealSDK(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res := runNode(t, adminServer(t, db), "testdata/conformance.js")
	want := map[string]string{
		"createCollection":   `{"errMsg":"createCollection:ok","requestId":"*"}`,
		"add":                `{"_id":"a","errMsg":"collection.add:ok"}`,
		"addMany":            `{"_ids":["b","c","d","e"],"errMsg":"collection.add:ok"}`,
		"addAutoId":          `{"idLen":32,"hex":true,"openid":"o1","whenIsDate":"object","diff":60000}`,
		"docGet":             `{"_id":"a","n":1,"s":"apple","tags":["red","fruit"],"nested":{"x":1,"y":{"z":"deep"}},"d":"2024-01-02T03:04:05.678Z","p":{"type":"Point","coordinates":[113.32,23.13]},"_openid":"o1","dIsDate":true}`,
		"docField":           `{"data":{"_id":"a","s":"apple","nested":{"y":{"z":"deep"}}},"errMsg":"document.get:ok"}`,
		"whereEq":            `["b"]`,
		"whereNested":        `["b"]`,
		"whereDot":           `["a"]`,
		"whereArrayElem":     `["a","c"]`,
		"whereArrayDot":      `["b"]`,
		"gtlt":               `["b","c"]`,
		"neq":                `["b","c","d","e"]`,
		"in":                 `["a","c","d"]`,
		"nin":                `["b","d","e"]`,
		"or":                 `["a","c"]`,
		"fieldOr":            `["a","b"]`,
		"and":                `["b"]`,
		"nor":                `["c","d","e"]`,
		"not":                `["a","b","d"]`,
		"existsNull":         `["a","b","c","d","e"]`,
		"exists":             `["c"]`,
		"size":               `["a","b"]`,
		"mod":                `["a","c"]`,
		"all":                `["a"]`,
		"elemMatch":          `["b"]`,
		"regex":              `["a","b"]`,
		"dbRegExp":           `["e"]`,
		"dateRange":          `["a"]`,
		"geoNear":            `["b","a"]`,
		"geoWithin":          `["a","b"]`,
		"geoWithinSphere":    `["e"]`,
		"geoIntersects":      `["e"]`,
		"geoPointBack":       `{"lng":113.32,"lat":23.13}`,
		"orderLimitSkip":     `["c","b"]`,
		"mixedSort":          `[{"_id":"a","n":1},{"_id":"b","n":2},{"_id":"c","n":3},{"_id":"e","n":10},{"_id":"d","n":"4"}]`,
		"count":              `{"total":2,"errMsg":"collection.count:ok"}`,
		"countAll":           `{"total":6,"errMsg":"collection.count:ok"}`,
		"fieldExclude":       `[{"_id":"c","n":3,"s":"cherry","nul":null,"f":1.5,"_openid":"o1"}]`,
		"projSlice":          `[{"_id":"b","s":"banana","tags":["yellow"]}]`,
		"update":             `{"stats":{"updated":1},"errMsg":"document.update:ok"}`,
		"afterUpdate":        `{"_id":"a","n":6,"tags":["red","fruit","new"],"nested":{"x":10,"y":{"z":"deep"}},"d":"2024-01-02T03:04:05.678Z","p":{"type":"Point","coordinates":[113.32,23.13]},"_openid":"o1","newf":{"a":1},"cnt":1}`,
		"updateArrayOps":     `{"r1":["first","yellow","x","y"],"r2":["yellow"],"r3":["a","yellow","z"]}`,
		"updateMinMaxRename": `{"n":1,"f":9,"huge":1099511627776,"big":true}`,
		"positional":         `{"r":{"stats":{"updated":1},"errMsg":"collection.update:ok"},"arr":[{"k":1,"v":"one"},{"k":2,"v":"TWO"}]}`,
		"pullCond":           `[1,2]`,
		"updateNone":         `{"stats":{"updated":0},"errMsg":"document.update:ok"}`,
		"set":                `{"r":{"_id":"d","errMsg":"document.set:ok","stats":{"updated":1,"created":0}},"doc":["_id","_openid","replaced","when"]}`,
		"setCreate":          `{"r":{"_id":"newdoc","errMsg":"document.set:ok","stats":{"updated":0,"created":1}},"doc":{"_id":"newdoc","fresh":1,"_openid":"o1"}}`,
		"whereUpdate":        `{"stats":{"updated":2},"errMsg":"collection.update:ok"}`,
		"whereUpdateCount":   `{"total":2,"errMsg":"collection.count:ok"}`,
		"removeDoc":          `{"stats":{"removed":1},"errMsg":"document.remove:ok"}`,
		"removeNone":         `{"stats":{"removed":0},"errMsg":"document.remove:ok"}`,
		"whereRemove":        `{"stats":{"removed":1},"errMsg":"collection.remove:ok"}`,
		"afterRemove":        `{"total":5,"errMsg":"collection.count:ok"}`,
		"aggGroup":           `[{"_id":"u1","total":15,"n":2,"avg":7.5,"mn":5,"mx":10,"first":"o1","last":"o3","all":[10,5],"cats":["A"]},{"_id":"u2","total":20,"n":1,"avg":20,"mn":20,"mx":20,"first":"o2","last":"o2","all":[20],"cats":["B"]},{"_id":"u3","total":50,"n":1,"avg":50,"mn":50,"mx":50,"first":"o4","last":"o4","all":[50],"cats":["C"]}]`,
		"aggMatchProject":    `[{"user":"u2","double":40,"label":"B-u2","big":"yes"},{"user":"u1","double":20,"label":"A-u1","big":"no"}]`,
		"aggAddFields":       `[{"_id":"o1","n":2},{"_id":"o2","n":1},{"_id":"o3","n":0},{"_id":"o4","n":0}]`,
		"aggCount":           `[{"howMany":2}]`,
		"aggUnwind":          `[{"_id":"o1","items":"x"},{"_id":"o1","items":"y"},{"_id":"o2","items":"y"}]`,
		"aggUnwindOpts":      `[{"_id":"o1","items":"x","i":0},{"_id":"o1","items":"y","i":1},{"_id":"o2","items":"y","i":0},{"_id":"o3","i":null},{"_id":"o4","i":null}]`,
		"aggLookup":          `[{"_id":"o1","user":"u1","who":[{"name":"Ann"}]},{"_id":"o2","user":"u2","who":[{"name":"Bob"}]}]`,
		"aggLookupPipeline":  `[{"_id":"u1","name":"Ann","_openid":"o1","orders":[{"amount":10},{"amount":5}]},{"_id":"u2","name":"Bob","_openid":"o1","orders":[{"amount":20}]}]`,
		"aggSample":          `2`,
		"aggBucket":          `[{"_id":0,"c":1,"ids":["o3"]},{"_id":10,"c":2,"ids":["o1","o2"]},{"_id":"other","c":1,"ids":["o4"]}]`,
		"aggReplaceRoot":     `[{"u":"u1","a":10}]`,
		"aggSortByCount":     `{"_id":"A","count":2}`,
		"aggGeoNear":         `[["a",0],["b",1512]]`,
		"runTx":              `{"before":100,"inside":70,"outside":100}`,
		"afterTx":            `[["alice",70],["bob",30],["carol",1],["dave",2]]`,
		"txRollback":         `{"rejected":"nope"}`,
		"afterRollback":      `70`,
		"startTx":            `{"gone":"document.get:fail document with _id bob does not exist","after":0}`,
		"txConflictRetry":    `{"attempts":2,"r":1070,"final":1071}`,
		"txConflictStart":    `{"code":"DATABASE_TRANSACTION_CONFLICT","message":"[ResourceUnavailable.TransactionConflict] Transaction is conflict, maybe resource operated by others. Please check your request, but if the problem cannot be solved, contact us."}`,
		"txSnapshot":         `2`,
		"limits":             `{"a":100,"b":200,"c2":10}`,
	}
	for name, w := range want {
		got, ok := res[name]
		if strings.Contains(w, `"*"`) {
			var m map[string]any
			json.Unmarshal(got, &m)
			if id, _ := m["requestId"].(string); len(id) == 32 {
				m["requestId"] = "*"
			}
			got, _ = json.Marshal(m)
		}
		if !ok {
			t.Errorf("%s: no result", name)
			continue
		}
		if !jsonEqual(t, got, w) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, w)
		}
	}
	// Failures: the SDK's errCode and errMsg.
	wantErr := map[string]struct {
		code int
		msg  string
	}{
		"createAgain":       {-1, "createCollection:fail [ResourceInUse.TableExist] Table exist: made."},
		"getMissing":        {-502005, "collection.get:fail -502005 database collection not exists. [ResourceNotFound] Db or Table not exist: nope."},
		"docGetMissingColl": {-502005, "document.get:fail -502005 database collection not exists."},
		"addDup":            {-502001, "collection.add:fail -502001 database request fail. E11000 duplicate key error"},
		"addBadField":       {-501007, "field name \"$bad\" in the document may not start with '$'"},
		"docGetNone":        {-1, "document.get:fail document with _id zzz does not exist"},
		"incString":         {-501007, "Cannot apply $inc to a value of non-numeric type"},
		"updateId":          {-501007, "document.update:fail -501007 invalid parameters. 不能更新_id的值"},
		"aggGroupNoId":      {-1, "collection.aggregate:fail a group specification must include an _id"},
		"aggMissing":        {-1, "collection.aggregate:fail [ResourceNotFound] Db or Table not exist: nope."},
		"unknownCommand":    {-502002, "collection.get:fail -502002 database invalid command. unknown operator: $foo"},
		"badPath":           {-501007, `field path "a..b" has an empty segment`},
		"dollarField":       {-502002, "document.update:fail -502002 database invalid command. unknown update operator: $x"},
		"watch":             {0, "watch is not a function"},
	}
	for name, w := range wantErr {
		var got struct {
			Error   bool   `json:"error"`
			ErrCode int    `json:"errCode"`
			ErrMsg  string `json:"errMsg"`
		}
		if err := json.Unmarshal(res[name], &got); err != nil || !got.Error {
			t.Errorf("%s: want an error, got %s", name, res[name])
			continue
		}
		if got.ErrCode != w.code || !strings.Contains(got.ErrMsg, w.msg) {
			t.Errorf("%s: got errCode %d errMsg %q, want %d and %q", name, got.ErrCode, got.ErrMsg, w.code, w.msg)
		}
	}
	// Types survive the round trip.
	var types struct {
		Types map[string]string `json:"types"`
		Big   float64           `json:"big"`
		D     string            `json:"d"`
	}
	json.Unmarshal(res["types"], &types)
	wantTypes := map[string]string{"_id": "string", "_openid": "string", "i": "number", "f": "number", "big": "number", "neg": "number", "bool": "boolean", "s": "string", "arr": "array", "obj": "object", "nul": "null", "d": "date", "buf": "object"}
	for k, v := range wantTypes {
		if types.Types[k] != v {
			t.Errorf("types: %s is %q, want %q (%s)", k, types.Types[k], v, res["types"])
		}
	}
	if types.Big != 1<<53-1 || types.D != "1970-01-01T00:00:00.000Z" {
		t.Errorf("types: big %v d %q", types.Big, types.D)
	}
}

func jsonEqual(t *testing.T, a json.RawMessage, b string) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("bad expectation %s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
