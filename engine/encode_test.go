package engine

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// marshalPlain is json.Marshal without HTML escaping: what the hand encoders must produce.
func marshalPlain(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

var awkward = []string{"", "plain", `q"uote\back`, "tab\tnl\ncr\r\b\f\x00\x1f\x7f", "<html>&", "中文 ✓", "bad\xffutf8\xc3", "line\u2028sep\u2029", "é"}

func TestAppendJSONStringIsEncodingJSON(t *testing.T) {
	for _, s := range awkward {
		got := string(appendJSONString(nil, s))
		if want := string(marshalPlain(t, s)); got != want {
			t.Errorf("appendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
}

func TestHandEncodedInvocationsAreEncodingJSON(t *testing.T) {
	for i, s := range awkward {
		wx := newWXInvokeMsg()
		wx.ID, wx.Fn, wx.RID, wx.Environ, wx.Namespace = uint64(i)*1e15, s, s, s, s
		wx.Event, wx.Env = json.RawMessage(`{"a":[1,2,{"b":null}]}`), json.RawMessage(`{"WX_OPENID":"o"}`)
		wx.TimeoutMs, wx.TimeLimitMs, wx.MemoryMB, wx.Concurrent = int64(i)*1000, int64(i), 256, i%2 == 0
		lean := newLeanInvokeMsg()
		lean.ID, lean.Kind, lean.Fn, lean.RID, lean.URL = uint64(i), "classHook", s, s, s
		if i%2 == 0 {
			lean.Name, lean.Hook, lean.ClassName, lean.SessionToken, lean.RemoteAddress = s, s+"h", s+"c", s+"t", s+"a"
			lean.RPC, lean.HookKeyOK, lean.Master, lean.RealtimeHook = true, true, true, true
			lean.Params = json.RawMessage(`{"x":"` + strings.Repeat("y", i) + `"}`)
		}
		lean.TimeoutMs = -int64(i)
		for _, m := range []request{wx, lean} {
			got, err := encodeRequest(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if want := append(marshalPlain(t, m), '\n'); !bytes.Equal(got, want) {
				t.Errorf("hand encoding\n%s\nencoding/json\n%s", got, want)
			}
		}
	}
}

func TestLeanParamsThatAreNotJSONAreRefusedBeforeTheWorker(t *testing.T) {
	m := newLeanInvokeMsg()
	m.Params = json.RawMessage(`{"a":`)
	if _, err := encodeRequest(nil, m); err == nil {
		t.Fatal("invalid params were encoded")
	}
}

func TestWXEventPassesTheDataThroughAndAddsUserInfoLast(t *testing.T) {
	id := &WXIdentity{OpenID: `o"1`, AppID: "wx1"}
	cases := []struct{ data, want string }{
		{``, `{"userInfo":{"appId":"wx1","openId":"o\"1"}}`},
		{`null`, `{"userInfo":{"appId":"wx1","openId":"o\"1"}}`},
		{` { } `, `{"userInfo":{"appId":"wx1","openId":"o\"1"}}`},
		{`{"z":1,"a":{"b":[1]}}`, `{"z":1,"a":{"b":[1]},"userInfo":{"appId":"wx1","openId":"o\"1"}}`},
		{`{"userInfo":{"openId":"forged"}}`, `{"userInfo":{"openId":"forged"},"userInfo":{"appId":"wx1","openId":"o\"1"}}`},
	}
	for _, c := range cases {
		got, err := wxEvent(json.RawMessage(c.data), id, true)
		if err != nil || string(got) != c.want {
			t.Errorf("wxEvent(%s) = %s, %v; want %s", c.data, got, err, c.want)
		}
	}
	// a forged userInfo loses to the caller's identity, as JSON.parse keeps the last duplicate
	got, _ := wxEvent(json.RawMessage(`{"userInfo":{"openId":"forged"}}`), id, true)
	var ev struct{ UserInfo map[string]string }
	if err := json.Unmarshal(got, &ev); err != nil || ev.UserInfo["openId"] != `o"1` {
		t.Errorf("the caller's own userInfo won: %s", got)
	}
	if got, _ := wxEvent(json.RawMessage(`{"a":1}`), id, false); string(got) != `{"a":1}` {
		t.Errorf("without userInfo the data changed: %s", got)
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a":`, `{"a":1}x`, `1`} {
		if _, err := wxEvent(json.RawMessage(bad), id, true); err == nil {
			t.Errorf("wxEvent accepted %s", bad)
		} else if fe := asFunctionError(err); fe.Kind != KindBadRequest {
			t.Errorf("wxEvent(%s): kind %s", bad, fe.Kind)
		}
	}
}

func TestDecodeSuccessReadsOnlyTheRunnersLayout(t *testing.T) {
	var rp resultMsg
	if !decodeSuccess([]byte(`{"t":"result","id":7,"ok":true,"value":{"a":[1,"}"]}}`), 7, &rp) || string(rp.Value) != `{"a":[1,"}"]}` || !rp.OK {
		t.Fatalf("the success layout was not read: %+v", rp)
	}
	for _, line := range []string{
		`{"t":"result","id":8,"ok":true,"value":1}`,       // another id
		`{"t":"result","id":7,"ok":false,"error":{}}`,     // a failure
		`{"t":"result","id":7,"ok":true,"value":{"a":}`,   // not JSON
		`{"t":"result","id":7,"ok":true,"value":1,"x":2}`, // not the runner's layout
		`{"t":"result","id":7,"ok":true,"value":}`,        // no value
	} {
		var rp resultMsg
		if decodeSuccess([]byte(line), 7, &rp) {
			t.Errorf("decodeSuccess took %s: %+v", line, rp)
		}
	}
}
