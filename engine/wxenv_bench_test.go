package engine

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fnhq/fn/project"
)

// BenchmarkWXEnv is the per-call environment of a wx invocation (go test ./engine -run X -bench WXEnv -benchmem).
func BenchmarkWXEnv(b *testing.B) {
	e := &Engine{cfg: Config{EnvID: "bench-env", Dialect: project.WX}}
	req := &WXRequest{Identity: &WXIdentity{OpenID: "oAlice0000000000000000000000", AppID: "wx00000000000000a1", UnionID: "uAlice0000000000000000000000"},
		RequestID: "3bf99b34-78e2-43d0-8b90-e09fbc176970", ClientIP: "127.0.0.1", apiToken: "fn-3a1d1793-bbad-4332-9e78-f198de106191"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.wxEnv(req)
	}
}

// The environment is written by hand: it must stay the JSON object and environ string the
// straightforward construction makes, key order included.
func TestWXEnvEncoding(t *testing.T) {
	e := &Engine{cfg: Config{EnvID: "env-1", Dialect: project.WX}}
	for _, req := range []*WXRequest{
		{RequestID: "r1", apiToken: "tok"},
		{Identity: &WXIdentity{OpenID: "o\"1", AppID: "wx\\a"}, RequestID: "r2", ClientIP: "10.0.0.1", apiToken: "t", Source: "scf", Trigger: "timer"},
		{Identity: &WXIdentity{OpenID: "oé\n", AppID: "a", UnionID: "u"}, RequestID: "r3", apiToken: "t3"},
		{Identity: &WXIdentity{}, RequestID: "r4", apiToken: "t4"},
	} {
		env, environ := e.wxEnv(req)
		var got map[string]string
		if err := json.Unmarshal(env, &got); err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		var keys []string
		dec := json.NewDecoder(bytes.NewReader(env))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			dec.Token()
			keys = append(keys, k.(string))
		}
		ip := req.ClientIP
		if ip == "" {
			ip = "127.0.0.1"
		}
		want := [][2]string{{"WX_CLIENTIP", ip}, {"WX_CLIENTIPV6", "::ffff:" + ip}}
		if id := req.Identity; id != nil {
			for _, kv := range [][2]string{{"WX_APPID", id.AppID}, {"WX_OPENID", id.OpenID}, {"WX_UNIONID", id.UnionID}} {
				if kv[1] != "" {
					want = append(want, kv)
				}
			}
		}
		want = append(want, [2]string{"WX_API_TOKEN", req.apiToken})
		var ctxKeys []string
		for _, kv := range want {
			ctxKeys = append(ctxKeys, kv[0])
		}
		trigger, source := req.Trigger, req.Source
		if trigger == "" {
			trigger = "tcb"
		}
		if source == "" {
			source = "wx_client"
		}
		want = append(want, [][2]string{{"WX_CONTEXT_KEYS", strings.Join(ctxKeys, ",")}, {"WX_TRIGGER_API_TOKEN_V0", req.apiToken},
			{"TCB_ENV", "env-1"}, {"TCB_SEQID", req.RequestID}, {"TRIGGER_SRC", trigger}, {"TCB_SOURCE", source},
			{"SCF_NAMESPACE", "env-1"}, {"TCB_CONTEXT_KEYS", "TCB_ENV,TCB_SEQID,TRIGGER_SRC,TCB_SOURCE"}}...)
		var wantKeys, pairs []string
		for _, kv := range want {
			wantKeys = append(wantKeys, kv[0])
			pairs = append(pairs, kv[0]+"="+kv[1])
			if got[kv[0]] != kv[1] {
				t.Errorf("%s: %s = %q; want %q", req.RequestID, kv[0], got[kv[0]], kv[1])
			}
		}
		if strings.Join(keys, " ") != strings.Join(wantKeys, " ") {
			t.Errorf("%s: keys %v; want %v", req.RequestID, keys, wantKeys)
		}
		if environ != strings.Join(pairs, ";") {
			t.Errorf("%s: environ %q; want %q", req.RequestID, environ, strings.Join(pairs, ";"))
		}
	}
}
