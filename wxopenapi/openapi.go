// Package wxopenapi answers cloud.openapi.* (and getOpenData) calls offline. The real
// wx-server-sdk sends them to /admin as the action wx.openApi: a multipart form whose requestData
// is a protobuf CommApiData, answered by a protobuf CommOpenApiResp. Messages (subscribe,
// template, customer service, uniform) are validated and kept in an outbox; security checks pass
// unless a blocklist says otherwise; wxacode calls return a real QR code PNG; other APIs answer a
// configured canned response or a "not emulated" error naming the API. A function that declares
// its permissions.openapi list may call only those APIs, as on the platform.
package wxopenapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// Config is the emulation's configuration (fn.yaml wx.openapi).
type Config struct {
	// Blocklist: words that make security.msgSecCheck report risky content.
	Blocklist []string
	// BlockedImages: sha256 (hex) of images that security.imgSecCheck rejects.
	BlockedImages []string
	// Responses: canned JSON answers per API name (e.g. "wxa.getPaidUnionid").
	Responses map[string]json.RawMessage
	// OpenData: what getOpenData answers per cloudID (otherwise the caller's identity).
	OpenData map[string]json.RawMessage
	// MaxOutbox bounds the messages kept per environment (0: 1000; the oldest go first).
	MaxOutbox int
	// Note is told about every message sent (fn dev shows it in its log).
	Note func(Message)
	// Now is the clock (tests).
	Now func() time.Time
}

// Caller is the function calling: its name, user, and its declared permissions.openapi list
// (nil when it declares none: then every API is allowed, as for fn.yaml functions).
type Caller struct {
	Function    string
	OpenID      string
	AppID       string
	UnionID     string
	Permissions []string
}

// Message is one message a function sent, as kept in the outbox.
type Message struct {
	Time     time.Time       `json:"time"`
	Env      string          `json:"env"`
	API      string          `json:"api"`
	Function string          `json:"function,omitempty"`
	OpenID   string          `json:"openid,omitempty"` // the calling user
	ToUser   string          `json:"touser"`
	Data     json.RawMessage `json:"data"` // the request as sent (snake_case keys)
}

// Service is the openapi emulation of one app.
type Service struct {
	cfg    Config
	mu     sync.Mutex
	outbox []Message
	msgID  int64
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.MaxOutbox <= 0 {
		cfg.MaxOutbox = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

// Outbox returns the messages sent (to the cloud environment env; "" for all), oldest first.
func (s *Service) Outbox(env string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Message{}
	for _, m := range s.outbox {
		if env == "" || m.Env == env {
			out = append(out, m)
		}
	}
	return out
}

// Platform error codes used in answers.
const (
	CodeNoPermission = -604101 // function has no permission to call this API
	CodeNotFound     = -604100 // API not found
	CodeInvalidArg   = 47001   // WeChat's "data format error"
	CodeRisky        = 87014   // risky content
	CodeInvalidScene = 40097   // invalid args
)

// apiError is a WeChat-side error, answered as {errcode, errmsg} (the SDK throws it as
// errCode/errMsg "openapi.<api>:fail <errmsg>").
type apiError struct {
	Code int
	Msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Msg) }

func invalid(format string, args ...any) *apiError {
	return &apiError{CodeInvalidArg, "data format error: " + fmt.Sprintf(format, args...)}
}

// reply is the API's answer: JSON, or a binary body with its content type.
type reply struct {
	contentType string
	body        []byte
}

func jsonReply(v any) reply {
	b, _ := json.Marshal(v)
	return reply{"application/json; charset=utf-8", b}
}

// Handle answers one wx.openApi request: apiName and the protobuf CommApiData the SDK sent.
// The answer is the protobuf CommOpenApiResp the SDK decodes.
func (s *Service) Handle(ctx context.Context, env string, c Caller, apiName string, requestData []byte) []byte {
	req, err := decodeCommApiData(requestData)
	if err != nil {
		return respError(fmt.Errorf("openapi %s: the request is not a CommApiData message: %w", apiName, err))
	}
	if req.svrkitAPI != "" {
		return s.svrkit(c, req)
	}
	if apiName == "" {
		return respError(fmt.Errorf("openapi: the request names no API"))
	}
	var rep reply
	if c.Permissions != nil && !slices.Contains(c.Permissions, apiName) {
		rep = jsonReply(map[string]any{"errcode": CodeNoPermission, "errmsg": fmt.Sprintf(
			"function has no permission to call this API: %s is not in %s's config.json permissions.openapi %v", apiName, c.Function, c.Permissions)})
	} else if r, err := s.call(env, c, apiName, req.pairs); err != nil {
		rep = jsonReply(map[string]any{"errcode": err.Code, "errmsg": err.Msg})
	} else {
		rep = r
	}
	return encodeCommOpenApiResp(rep.body, rep.contentType, 0, 200, 0)
}

// respError is a failure of the call itself (not of the API): the SDK reports it with its
// message through the JSON error path.
func respError(err error) []byte {
	b, _ := json.Marshal(map[string]any{"errcode": -604103, "errmsg": err.Error()})
	return encodeCommOpenApiResp(b, "application/json; charset=utf-8", 0, 200, 0)
}

// args holds the request's pairs: JSON values (media parts as raw bytes).
type args map[string][]byte

func (a args) str(k string) (string, bool) {
	v, ok := a[k]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

func (a args) object(k string) (map[string]json.RawMessage, bool) {
	v, ok := a[k]
	if !ok {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func (a args) json() json.RawMessage {
	m := map[string]json.RawMessage{}
	for k, v := range a {
		if json.Valid(v) {
			m[k] = v
		} else {
			b, _ := json.Marshal(fmt.Sprintf("<%d bytes>", len(v)))
			m[k] = b
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func (a args) required(api string, keys ...string) *apiError {
	for _, k := range keys {
		if s, ok := a.str(k); !ok || strings.TrimSpace(s) == "" {
			return invalid("%s needs %s (a non-empty string)", api, k)
		}
	}
	return nil
}

var ok = map[string]any{"errcode": 0, "errmsg": "ok"}

// maxKept bounds one message's data in the outbox.
const maxKept = 64 << 10

func (s *Service) call(env string, c Caller, api string, a args) (reply, *apiError) {
	switch api {
	case "subscribeMessage.send":
		if err := a.required(api, "touser", "template_id"); err != nil {
			return reply{}, err
		}
		if err := templateData(api, a); err != nil {
			return reply{}, err
		}
		if st, has := a.str("miniprogram_state"); has && st != "developer" && st != "trial" && st != "formal" {
			return reply{}, invalid("%s: miniprogram_state is %q, one of developer, trial, formal is expected", api, st)
		}
		return s.send(env, c, api, a), nil
	case "templateMessage.send":
		if err := a.required(api, "touser", "template_id", "form_id"); err != nil {
			return reply{}, err
		}
		if err := templateData(api, a); err != nil {
			return reply{}, err
		}
		return s.send(env, c, api, a), nil
	case "customerServiceMessage.send":
		if err := a.required(api, "touser", "msgtype"); err != nil {
			return reply{}, err
		}
		t, _ := a.str("msgtype")
		need := map[string][]string{"text": {"content"}, "image": {"media_id"}, "link": {"title", "description", "url", "thumb_url"},
			"miniprogrampage": {"title", "pagepath", "thumb_media_id"}}
		fields, known := need[t]
		if !known {
			return reply{}, invalid("%s: msgtype is %q, one of text, image, link, miniprogrampage is expected", api, t)
		}
		body, has := a.object(t)
		if !has {
			return reply{}, invalid("%s: msgtype %s needs the object %s", api, t, t)
		}
		for _, f := range fields {
			var v string
			if json.Unmarshal(body[f], &v) != nil || v == "" {
				return reply{}, invalid("%s: %s.%s is required (a non-empty string)", api, t, f)
			}
		}
		return s.send(env, c, api, a), nil
	case "uniformMessage.send":
		if err := a.required(api, "touser"); err != nil {
			return reply{}, err
		}
		mp, hasMP := a.object("mp_template_msg")
		_, hasWeapp := a.object("weapp_template_msg")
		if !hasMP && !hasWeapp {
			return reply{}, invalid("%s needs weapp_template_msg or mp_template_msg", api)
		}
		if hasMP {
			for _, f := range []string{"appid", "template_id"} {
				var v string
				if json.Unmarshal(mp[f], &v) != nil || v == "" {
					return reply{}, invalid("%s: mp_template_msg.%s is required", api, f)
				}
			}
		}
		return s.send(env, c, api, a), nil
	case "security.msgSecCheck":
		content, has := a.str("content")
		if !has {
			return reply{}, invalid("%s needs content (a string)", api)
		}
		if len(content) > 2500*4 {
			return reply{}, invalid("%s: content is over 2500 characters", api)
		}
		hit := ""
		for _, w := range s.cfg.Blocklist {
			if w != "" && strings.Contains(content, w) {
				hit = w
				break
			}
		}
		if v, _ := a[`version`]; string(v) == "2" {
			suggest, label := "pass", 100
			if hit != "" {
				suggest, label = "risky", 20001
			}
			return jsonReply(map[string]any{"errcode": 0, "errmsg": "ok", "trace_id": traceID(content),
				"result": map[string]any{"suggest": suggest, "label": label},
				"detail": []any{map[string]any{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "keyword": hit}}}), nil
		}
		if hit != "" {
			return reply{}, &apiError{CodeRisky, "risky content"}
		}
		return jsonReply(ok), nil
	case "security.imgSecCheck":
		media, has := a["media"]
		if !has || len(media) == 0 {
			return reply{}, invalid("%s needs media (the image)", api)
		}
		sum := sha256.Sum256(media)
		if slices.Contains(s.cfg.BlockedImages, hex.EncodeToString(sum[:])) {
			return reply{}, &apiError{CodeRisky, "risky content"}
		}
		return jsonReply(ok), nil
	case "wxacode.get", "wxacode.createQRCode", "wxacode.getUnlimited":
		text, err := qrText(api, a)
		if err != nil {
			return reply{}, err
		}
		width := 430
		if v, has := a["width"]; has {
			if json.Unmarshal(v, &width) != nil || width < 280 || width > 1280 {
				return reply{}, invalid("%s: width must be 280 to 1280 pixels, got %s", api, v)
			}
		}
		png, qerr := qrcode.Encode(text, qrcode.Medium, width)
		if qerr != nil {
			return reply{}, invalid("%s: %v", api, qerr)
		}
		return reply{"image/png", png}, nil
	}
	if r, has := s.cfg.Responses[api]; has {
		return reply{"application/json; charset=utf-8", r}, nil
	}
	return reply{}, &apiError{CodeNotFound, fmt.Sprintf("not emulated: %s (fn answers it offline only with a canned response: add one under wx.openapi.responses in fn.yaml)", api)}
}

// QRText is what a wxacode call's QR code encodes: the path (get, createQRCode) or
// page?scene=<scene> (getUnlimited).
func qrText(api string, a args) (string, *apiError) {
	if api == "wxacode.getUnlimited" {
		scene, has := a.str("scene")
		if !has || scene == "" || len(scene) > 32 {
			return "", invalid("%s needs scene (1 to 32 characters)", api)
		}
		page, _ := a.str("page")
		if page == "" {
			page = "pages/index/index"
		}
		return page + "?scene=" + scene, nil
	}
	p, has := a.str("path")
	if !has || p == "" || len(p) > 1024 {
		return "", invalid("%s needs path (1 to 1024 characters)", api)
	}
	return p, nil
}

func templateData(api string, a args) *apiError {
	data, has := a.object("data")
	if !has {
		return invalid("%s needs data (an object of {key: {value}})", api)
	}
	for k, v := range data {
		var item struct {
			Value *json.RawMessage `json:"value"`
		}
		if json.Unmarshal(v, &item) != nil || item.Value == nil {
			return invalid("%s: data.%s needs a value", api, k)
		}
	}
	return nil
}

func (s *Service) send(env string, c Caller, api string, a args) reply {
	to, _ := a.str("touser")
	data := a.json()
	if len(data) > maxKept {
		// the outbox keeps 1000 messages: each is bounded so that it stays small
		data, _ = json.Marshal(map[string]any{"truncated": fmt.Sprintf("the message's %d bytes are over the outbox's %d-byte limit", len(data), maxKept)})
	}
	m := Message{Time: s.cfg.Now(), Env: env, API: api, Function: c.Function, OpenID: c.OpenID, ToUser: to, Data: data}
	s.mu.Lock()
	s.outbox = append(s.outbox, m)
	if len(s.outbox) > s.cfg.MaxOutbox {
		s.outbox = slices.Clone(s.outbox[len(s.outbox)-s.cfg.MaxOutbox:])
	}
	s.msgID++
	id := s.msgID
	s.mu.Unlock()
	if s.cfg.Note != nil {
		s.cfg.Note(m)
	}
	r := map[string]any{"errcode": 0, "errmsg": "ok"}
	if api == "customerServiceMessage.send" || api == "uniformMessage.send" {
		return jsonReply(r)
	}
	r["msgid"] = 1_000_000 + id
	return jsonReply(r)
}

func traceID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// svrkit answers the SDK's internal calls: ApiGetOpenDataByCloudId (getOpenData) resolves each
// cloudID to configured data or the caller's identity.
func (s *Service) svrkit(c Caller, req *commApiData) []byte {
	if req.svrkitAPI != "ApiGetOpenDataByCloudId" {
		return encodeCommOpenApiResp(nil, "", 0, 200, CodeNotFound)
	}
	ids, err := decodeCloudIDs(req.svrkitReq)
	if err != nil {
		return encodeCommOpenApiResp(nil, "", 0, 200, -601002)
	}
	var items [][2]string
	for i, d := range s.OpenData(c, ids) {
		items = append(items, [2]string{ids[i], string(d)})
	}
	return encodeCommOpenApiResp(encodeOpenDataResp(items), "application/octet-stream", 0, 200, 0)
}

// OpenData resolves cloudIDs to {cloudID, data}: the configured data of the id, otherwise the
// caller's identity (openId, appId, unionId, watermark).
func (s *Service) OpenData(c Caller, ids []string) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		data, has := s.cfg.OpenData[id]
		if !has {
			m := map[string]any{"openId": c.OpenID, "appId": c.AppID,
				"watermark": map[string]any{"appid": c.AppID, "timestamp": s.cfg.Now().Unix()}}
			if c.UnionID != "" {
				m["unionId"] = c.UnionID
			}
			data, _ = json.Marshal(m)
		}
		var b bytes.Buffer
		json.NewEncoder(&b).Encode(map[string]any{"cloudID": id, "data": data})
		out = append(out, json.RawMessage(bytes.TrimSpace(b.Bytes())))
	}
	return out
}

// HandleJSON answers one call of WeChat's HTTP API (the JSON body as sent to
// api.weixin.qq.com). Permissions are not checked: a direct HTTP call needs none on the platform.
func (s *Service) HandleJSON(ctx context.Context, env string, c Caller, apiName string, body []byte) (contentType string, reply []byte) {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		m = map[string]json.RawMessage{}
	} else if err := json.Unmarshal(body, &m); err != nil {
		b, _ := json.Marshal(map[string]any{"errcode": 47001, "errmsg": "data format error: the body is not a JSON object: " + err.Error()})
		return "application/json; charset=utf-8", b
	}
	a := args{}
	for k, v := range m {
		a[k] = v
	}
	if len(a) > maxPairs {
		b, _ := json.Marshal(map[string]any{"errcode": 47001, "errmsg": "data format error: too many parameters"})
		return "application/json; charset=utf-8", b
	}
	name := strings.TrimPrefix(apiName, "http:")
	r, err := s.call(env, c, name, a)
	if err != nil {
		b, _ := json.Marshal(map[string]any{"errcode": err.Code, "errmsg": err.Msg})
		return "application/json; charset=utf-8", b
	}
	return r.contentType, r.body
}
