package leanstorage

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

const (
	sdkAppID     = "sdk-app"
	sdkAppKey    = "sdkKey"
	sdkMasterKey = "sdkMaster"
)

// sdkServer serves a Service over HTTP the way server/server.go does: /1.1/<path> with the
// app key or master key (plain or signed) and X-LC-Session.
func sdkServer(t *testing.T, svc *Service) string {
	t.Helper()
	srv := httptest.NewServer(sdkHandler(svc))
	t.Cleanup(srv.Close)
	return srv.URL
}

func sdkHandler(svc *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, found := strings.CutPrefix(r.URL.Path, "/1.1/")
		if !found {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		auth := Auth{SessionToken: r.Header.Get("X-LC-Session")}
		auth.RemoteAddr, _, _ = net.SplitHostPort(r.RemoteAddr)
		key := r.Header.Get("X-LC-Key")
		if sign := r.Header.Get("X-LC-Sign"); sign != "" {
			parts := strings.Split(sign, ",")
			k := sdkAppKey
			if len(parts) == 3 && parts[2] == "master" {
				k = sdkMasterKey
			}
			sum := md5.Sum([]byte(parts[1] + k))
			if len(parts) < 2 || hex.EncodeToString(sum[:]) != parts[0] {
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"code":401,"error":"Unauthorized."}`))
				return
			}
			auth.Master = k == sdkMasterKey
		} else {
			switch key {
			case sdkAppKey:
			case sdkMasterKey + ",master":
				auth.Master = true
			default:
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"code":401,"error":"Unauthorized."}`))
				return
			}
		}
		resp := svc.Serve(r.Context(), r.Method, path, r.URL.Query(), body, auth)
		if resp.Location != "" {
			w.Header().Set("Location", resp.Location)
		}
		b, _ := json.Marshal(resp.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(resp.Status)
		w.Write(b)
	})
}

// runSDK runs a script with the real leancloud-storage SDK against svc. The script sees AV
// (initialised with the app key and the master key, not used unless asked), errOf, and report,
// which it fills; runSDK answers the report.
func runSDK(t *testing.T, svc *Service, script string) map[string]any {
	t.Helper()
	return runSDKAt(t, sdkServer(t, svc), script)
}

// runSDKAt is runSDK against a server already listening at url.
func runSDKAt(t *testing.T, url, script string) map[string]any {
	t.Helper()
	dir := t.TempDir()
	testutil.LinkNodeModules(t, dir)
	src := `const AV = require('leancloud-storage')
const [serverURL, appId, appKey, masterKey] = process.argv.slice(2)
AV.init({ appId, appKey, masterKey, serverURL })
const report = {}
const errOf = (e) => ({ code: e.code, message: e.message && e.message.replace(/ \[\d+ [A-Z]+ http[^\]]*\]$/, '') })
async function main() {
` + script + `
}
main().then(() => { process.stdout.write(JSON.stringify(report)) }, (e) => { console.error(e && e.stack || e); process.exit(1) })
`
	file := testutil.WriteFile(t, dir, "script.cjs", src)
	cmd := exec.Command("node", file, url, sdkAppID, sdkAppKey, sdkMasterKey)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("sdk script: %v\n%s\n%s", err, out, stderr)
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	return r
}

// reportChecks reads a report: want compares a value's JSON, wantErr a code and message prefix.
type reportChecks struct {
	t *testing.T
	r map[string]any
}

func (c reportChecks) want(key string, v any) {
	c.t.Helper()
	got, _ := json.Marshal(c.r[key])
	exp, _ := json.Marshal(v)
	if string(got) != string(exp) {
		c.t.Errorf("%s: got %s, want %s", key, got, exp)
	}
}

func (c reportChecks) wantErr(key string, code float64, msg string) {
	c.t.Helper()
	e, _ := c.r[key].(map[string]any)
	m, _ := e["message"].(string)
	if e == nil || e["code"] != code || !strings.HasPrefix(m, msg) {
		c.t.Errorf("%s: got %v, want code %v %q", key, c.r[key], code, msg)
	}
}
