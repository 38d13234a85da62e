package localrun

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func leanDo(t *testing.T, method, url string, headers map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// What leanengine-node-sdk's own suite checks over HTTP: the master key as "key,master", the
// client address from a trusted proxy's headers, a 200 preflight, the ping body, the BigQuery
// callback route and request.expressReq.
func TestLeanEngineWireDetails(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml": "name: wire\ndialect: lean\nlean:\n  appId: wire-fnDev\n  appKey: wireKey\n  masterKey: wireMaster\n  hookKey: wireHook\n",
		"cloud.js": `const AV = require('leanengine')
AV.Cloud.define('addr', (req) => ({ addr: req.meta.remoteAddress, ip: req.expressReq.ip, url: req.expressReq.originalUrl, body: req.expressReq.body }))
AV.Cloud.define('secret', { internal: true }, () => 'inside')
AV.Insight.on('end', (data) => ({ seen: data.id }))
`,
	}, DevOptions{})
	app := map[string]string{"X-LC-Id": "wire-fnDev", "X-LC-Key": "wireKey", "Content-Type": "application/json"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range app {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// a loopback peer is a trusted proxy: Forwarded wins over X-Real-IP, X-Real-IP over X-Forwarded-For
	cases := []struct {
		headers map[string]string
		want    string
	}{
		{map[string]string{"Forwarded": `for="[2001:db8::7]:4711";proto=https, for=10.0.0.1`, "X-Real-IP": "10.1.1.1"}, "2001:db8::7"},
		{map[string]string{"Forwarded": "for=192.0.2.60;proto=http"}, "192.0.2.60"},
		{map[string]string{"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "198.51.100.1"}, "203.0.113.9"},
		{map[string]string{"X-Forwarded-For": "198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{map[string]string{"X-Real-IP": "not an address"}, "127.0.0.1"},
		{nil, "127.0.0.1"},
	}
	for _, c := range cases {
		status, body := leanDo(t, "POST", rec.url+"/1.1/functions/addr", with(c.headers), `{"k":1}`)
		want := `{"result":{"addr":"` + c.want + `","ip":"` + c.want + `","url":"/1.1/functions/addr","body":{"k":1}}}` + "\n"
		if status != 200 || body != want {
			t.Errorf("%v:\n got %d %s\nwant %s", c.headers, status, body, want)
		}
	}
	// the master key in X-LC-Key form passes internal functions, master-only metadata and storage
	master := with(map[string]string{"X-LC-Key": "wireMaster,master"})
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/secret", master, `{}`); status != 200 || body != `{"result":"inside"}`+"\n" {
		t.Errorf("internal function with key,master: %d %s", status, body)
	}
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/secret", app, `{}`); status != 401 {
		t.Errorf("internal function with the app key: %d %s", status, body)
	}
	// the bare master key as the app key is admitted (leanengine does), without the master's rights
	bare := with(map[string]string{"X-LC-Key": "wireMaster"})
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/addr", bare, `{}`); status != 200 {
		t.Errorf("the bare master key as the app key: %d %s", status, body)
	}
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/secret", bare, `{}`); status != 401 {
		t.Errorf("the bare master key passed an internal function: %d %s", status, body)
	}
	if status, body := leanDo(t, "GET", rec.url+"/1.1/functions/_ops/metadatas", master, ""); status != 200 || !strings.Contains(body, `"secret"`) {
		t.Errorf("metadata with key,master: %d %s", status, body)
	}
	if status, body := leanDo(t, "GET", rec.url+"/1.1/functions/_ops/metadatas", with(map[string]string{"X-LC-Key": "wireKey,master"}), ""); status != 401 {
		t.Errorf("the app key posing as master: %d %s", status, body)
	}
	if status, body := leanDo(t, "POST", rec.url+"/1.1/scan/classes/Nothing", master, ""); status == 401 || strings.Contains(body, `"code":401`) {
		t.Errorf("storage with key,master refused: %d %s", status, body)
	}
	// a preflight is answered 200, with the CORS headers
	status, body := leanDo(t, "OPTIONS", rec.url+"/1.1/functions/addr", map[string]string{"Origin": "http://example.com",
		"Access-Control-Request-Method": "POST"}, "")
	if status != 200 {
		t.Errorf("preflight: %d %s", status, body)
	}
	// the ping body is leanengine's: JSON, no trailing newline
	status, body = leanDo(t, "GET", rec.url+"/__engine/1/ping", nil, "")
	if status != 200 || !strings.HasPrefix(body, `{"runtime":"nodejs-`) || strings.HasSuffix(body, "\n") {
		t.Errorf("ping: %d %q", status, body)
	}
	// the Insight callback takes the hook key and gets the job's body as is
	hook := with(map[string]string{"X-LC-Hook-Key": "wireHook"})
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/BigQuery/onComplete", hook, `{"id":"job1","status":"OK"}`); status != 200 || body != `{"seen":"job1"}`+"\n" {
		t.Errorf("BigQuery/onComplete: %d %s", status, body)
	}
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/Insight/onComplete", app, `{"id":"job1"}`); status != 401 {
		t.Errorf("Insight/onComplete without the hook key: %d %s", status, body)
	}
}
