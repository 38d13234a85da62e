package wxopenapi

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"strings"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"
	"google.golang.org/protobuf/encoding/protowire"
)

// request encodes a CommApiData as the SDK does (OPEN_API, one pair per parameter).
func request(params map[string]any) []byte {
	var pairs []byte
	for k, v := range params {
		val, _ := json.Marshal(v)
		var kv []byte
		kv = protowire.AppendTag(kv, 1, protowire.BytesType)
		kv = protowire.AppendString(kv, k)
		kv = protowire.AppendTag(kv, 2, protowire.BytesType)
		kv = protowire.AppendBytes(kv, val)
		pairs = protowire.AppendTag(pairs, 1, protowire.BytesType)
		pairs = protowire.AppendBytes(pairs, kv)
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 0)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, pairs)
}

type resp struct {
	data        []byte
	contentType string
}

func decodeResp(t *testing.T, b []byte) resp {
	t.Helper()
	var r resp
	if err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1:
			r.data = v
		case 2:
			r.contentType = string(v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func callJSON(t *testing.T, s *Service, c Caller, api string, params map[string]any) map[string]any {
	t.Helper()
	r := decodeResp(t, s.Handle(context.Background(), "env-1", c, api, request(params)))
	var m map[string]any
	if err := json.Unmarshal(r.data, &m); err != nil {
		t.Fatalf("%s: %q %v", api, r.data, err)
	}
	return m
}

func TestMessagesAreValidatedAndKept(t *testing.T) {
	var noted []Message
	s := New(Config{MaxOutbox: 2, Note: func(m Message) { noted = append(noted, m) }, Now: func() time.Time { return time.Unix(1, 0) }})
	c := Caller{Function: "notify", OpenID: "oA"}
	good := map[string]map[string]any{
		"subscribeMessage.send":       {"touser": "o1", "template_id": "t", "data": map[string]any{"a": map[string]any{"value": "x"}}},
		"templateMessage.send":        {"touser": "o2", "template_id": "t", "form_id": "f", "data": map[string]any{"a": map[string]any{"value": "x"}}},
		"customerServiceMessage.send": {"touser": "o3", "msgtype": "text", "text": map[string]any{"content": "hi"}},
	}
	for _, api := range []string{"subscribeMessage.send", "templateMessage.send", "customerServiceMessage.send"} {
		if m := callJSON(t, s, c, api, good[api]); m["errcode"] != 0.0 {
			t.Errorf("%s: %v", api, m)
		}
	}
	bad := []struct {
		api    string
		params map[string]any
		want   string
	}{
		{"subscribeMessage.send", map[string]any{"template_id": "t", "data": map[string]any{}}, "touser"},
		{"subscribeMessage.send", map[string]any{"touser": "o", "template_id": "t", "data": map[string]any{"a": map[string]any{}}}, "data.a needs a value"},
		{"subscribeMessage.send", map[string]any{"touser": "o", "template_id": "t", "data": map[string]any{}, "miniprogram_state": "beta"}, "miniprogram_state"},
		{"customerServiceMessage.send", map[string]any{"touser": "o", "msgtype": "video"}, "msgtype"},
		{"customerServiceMessage.send", map[string]any{"touser": "o", "msgtype": "link", "link": map[string]any{"title": "x"}}, "link.description"},
		{"uniformMessage.send", map[string]any{"touser": "o"}, "weapp_template_msg or mp_template_msg"},
	}
	for _, b := range bad {
		m := callJSON(t, s, c, b.api, b.params)
		if m["errcode"] != float64(CodeInvalidArg) || !strings.Contains(m["errmsg"].(string), b.want) {
			t.Errorf("%s %v: %v", b.api, b.params, m)
		}
	}
	box := s.Outbox("")
	if len(box) != 2 || box[0].API != "templateMessage.send" || box[1].ToUser != "o3" || box[1].Function != "notify" || len(noted) != 3 {
		t.Fatalf("outbox (bounded to 2): %+v, noted %d", box, len(noted))
	}
	if len(s.Outbox("other-env")) != 0 {
		t.Fatal("another environment's outbox is not empty")
	}
}

func TestSecurityChecksAndPermissions(t *testing.T) {
	s := New(Config{Blocklist: []string{"spam"}})
	if m := callJSON(t, s, Caller{}, "security.msgSecCheck", map[string]any{"content": "hello"}); m["errcode"] != 0.0 {
		t.Errorf("clean: %v", m)
	}
	if m := callJSON(t, s, Caller{}, "security.msgSecCheck", map[string]any{"content": "spam!"}); m["errcode"] != float64(CodeRisky) {
		t.Errorf("blocked word: %v", m)
	}
	m := callJSON(t, s, Caller{}, "security.msgSecCheck", map[string]any{"content": "spam!", "version": 2, "openid": "o", "scene": 1})
	if m["errcode"] != 0.0 || m["result"].(map[string]any)["suggest"] != "risky" {
		t.Errorf("v2 blocked word: %v", m)
	}
	c := Caller{Function: "f", Permissions: []string{"security.msgSecCheck"}}
	if m := callJSON(t, s, c, "subscribeMessage.send", map[string]any{}); m["errcode"] != float64(CodeNoPermission) || !strings.Contains(m["errmsg"].(string), "subscribeMessage.send") {
		t.Errorf("undeclared API: %v", m)
	}
	if m := callJSON(t, s, Caller{}, "ocr.idcard", map[string]any{}); m["errcode"] != float64(CodeNotFound) || !strings.Contains(m["errmsg"].(string), "not emulated: ocr.idcard") {
		t.Errorf("unknown API: %v", m)
	}
	if r := decodeResp(t, s.Handle(context.Background(), "e", Caller{}, "x.y", []byte{0xff, 0xff})); !strings.Contains(string(r.data), "not a CommApiData") {
		t.Errorf("garbage request: %q", r.data)
	}
}

// The PNG holds the QR code of the page and scene: its modules, sampled from the image, are the
// code's bitmap (and not another text's).
func TestWXACodeIsTheQRCodeOfThePath(t *testing.T) {
	s := New(Config{})
	r := decodeResp(t, s.Handle(context.Background(), "e", Caller{}, "wxacode.getUnlimited", request(map[string]any{"scene": "id=42", "page": "pages/item/item", "width": 300})))
	if r.contentType != "image/png" {
		t.Fatalf("content type %q: %s", r.contentType, r.data)
	}
	img, err := png.Decode(bytes.NewReader(r.data))
	if err != nil {
		t.Fatal(err)
	}
	matches := func(text string) bool {
		q, _ := qrcode.New(text, qrcode.Medium)
		bm := q.Bitmap()
		n := len(bm)
		size := img.Bounds().Dx()
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				px := img.At((2*x+1)*size/(2*n), (2*y+1)*size/(2*n))
				r, _, _, _ := px.RGBA()
				if (r < 0x8000) != bm[y][x] {
					return false
				}
			}
		}
		return true
	}
	if !matches("pages/item/item?scene=id=42") {
		t.Fatal("the image is not the QR code of page?scene")
	}
	if matches("pages/item/item?scene=id=43") {
		t.Fatal("the image also matches another scene")
	}
	if m := callJSON(t, s, Caller{}, "wxacode.getUnlimited", map[string]any{"scene": strings.Repeat("x", 33)}); m["errcode"] != float64(CodeInvalidArg) {
		t.Errorf("a 33-character scene: %v", m)
	}
}

func TestOutboxBoundsAMessage(t *testing.T) {
	s := New(Config{})
	big := strings.Repeat("x", maxKept)
	m := callJSON(t, s, Caller{}, "subscribeMessage.send", map[string]any{"touser": "o", "template_id": "t", "data": map[string]any{"a": map[string]any{"value": big}}})
	if m["errcode"] != 0.0 {
		t.Fatal(m)
	}
	box := s.Outbox("")
	if len(box) != 1 || len(box[0].Data) > 1024 || !strings.Contains(string(box[0].Data), "truncated") {
		t.Fatalf("kept %d bytes", len(box[0].Data))
	}
}
