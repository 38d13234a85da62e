package leanstorage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// AuthVerifier checks one platform's authData (what a client sends to log in with a third-party
// account) with the platform itself, so that naming someone's openid is not enough to become them.
type AuthVerifier interface {
	// VerifyAuthData answers the platform's user id and the authData to store, or an *Error
	// (251 when the platform refuses the credentials).
	VerifyAuthData(ctx context.Context, data map[string]any) (uid string, stored map[string]any, err error)
}

func invalidLinked(platform, why string) *Error {
	return apiErr(http.StatusBadRequest, 251, "Invalid authData for %s: %s", platform, why)
}

func str(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprintf("%.0f", v)
	}
	return ""
}

// getJSON fetches a platform API and decodes its JSON answer; the URL (it carries the access
// token) never appears in errors.
func getJSON(ctx context.Context, client *http.Client, method, u string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("bad verifier URL")
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("the platform could not be reached")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("the platform's answer could not be read")
	}
	// QQ wraps JSON in callback( … ) unless fmt=json is honoured
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "callback(") {
		s = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(s, "callback("), ";"), ")")
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		return fmt.Errorf("the platform answered %d with no JSON", resp.StatusCode)
	}
	return nil
}

func base(u, def string) string {
	if u == "" {
		return def
	}
	return strings.TrimRight(u, "/")
}

// WeChatVerifier checks weixin authData {openid, access_token} with WeChat's sns/auth.
type WeChatVerifier struct {
	BaseURL string // https://api.weixin.qq.com
	Client  *http.Client
}

// VerifyAuthData implements AuthVerifier.
func (v *WeChatVerifier) VerifyAuthData(ctx context.Context, data map[string]any) (string, map[string]any, error) {
	openid, token := str(data, "openid"), str(data, "access_token")
	if openid == "" || token == "" {
		return "", nil, apiErr(http.StatusBadRequest, 250, "Invalid authData for weixin: openid and access_token are required.")
	}
	var r struct {
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
	}
	q := url.Values{"access_token": {token}, "openid": {openid}}
	if err := getJSON(ctx, v.Client, http.MethodGet, base(v.BaseURL, "https://api.weixin.qq.com")+"/sns/auth?"+q.Encode(), nil, &r); err != nil {
		return "", nil, invalidLinked("weixin", err.Error())
	}
	if r.Errcode != 0 {
		return "", nil, invalidLinked("weixin", fmt.Sprintf("WeChat answered %d %s", r.Errcode, r.Errmsg))
	}
	return openid, data, nil
}

// QQVerifier checks qq authData {openid, access_token} with QQ's oauth2.0/me, which names the
// token's openid.
type QQVerifier struct {
	BaseURL string // https://graph.qq.com
	Client  *http.Client
}

// VerifyAuthData implements AuthVerifier.
func (v *QQVerifier) VerifyAuthData(ctx context.Context, data map[string]any) (string, map[string]any, error) {
	openid, token := str(data, "openid"), str(data, "access_token")
	if openid == "" || token == "" {
		return "", nil, apiErr(http.StatusBadRequest, 250, "Invalid authData for qq: openid and access_token are required.")
	}
	var r struct {
		OpenID string `json:"openid"`
		Error  int    `json:"error"`
	}
	q := url.Values{"access_token": {token}, "fmt": {"json"}}
	if err := getJSON(ctx, v.Client, http.MethodGet, base(v.BaseURL, "https://graph.qq.com")+"/oauth2.0/me?"+q.Encode(), nil, &r); err != nil {
		return "", nil, invalidLinked("qq", err.Error())
	}
	if r.Error != 0 || r.OpenID != openid {
		return "", nil, invalidLinked("qq", "the access_token does not belong to this openid")
	}
	return openid, data, nil
}

// WeiboVerifier checks weibo authData {uid, access_token} with Weibo's get_token_info.
type WeiboVerifier struct {
	BaseURL string // https://api.weibo.com
	Client  *http.Client
}

// VerifyAuthData implements AuthVerifier.
func (v *WeiboVerifier) VerifyAuthData(ctx context.Context, data map[string]any) (string, map[string]any, error) {
	uid, token := str(data, "uid"), str(data, "access_token")
	if uid == "" || token == "" {
		return "", nil, apiErr(http.StatusBadRequest, 250, "Invalid authData for weibo: uid and access_token are required.")
	}
	var r struct {
		UID json.Number `json:"uid"`
	}
	if err := getJSON(ctx, v.Client, http.MethodPost, base(v.BaseURL, "https://api.weibo.com")+"/oauth2/get_token_info", url.Values{"access_token": {token}}, &r); err != nil {
		return "", nil, invalidLinked("weibo", err.Error())
	}
	if r.UID.String() != uid {
		return "", nil, invalidLinked("weibo", "the access_token does not belong to this uid")
	}
	return uid, data, nil
}

// MiniAppVerifier is the WeChat mini program login (lc_weapp): the client sends the code of
// wx.login and the server exchanges it for the openid with its own appid and secret, so an openid
// a client names is never trusted.
type MiniAppVerifier struct {
	BaseURL string // https://api.weixin.qq.com
	AppID   string
	Secret  string
	Client  *http.Client
}

// VerifyAuthData implements AuthVerifier.
func (v *MiniAppVerifier) VerifyAuthData(ctx context.Context, data map[string]any) (string, map[string]any, error) {
	code := str(data, "code")
	if code == "" {
		return "", nil, apiErr(http.StatusBadRequest, 250, "Invalid authData for lc_weapp: the code of wx.login is required.")
	}
	if v.AppID == "" || v.Secret == "" {
		return "", nil, invalidLinked("lc_weapp", "the mini program's appid and secret are not configured")
	}
	var r struct {
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid"`
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
	}
	q := url.Values{"appid": {v.AppID}, "secret": {v.Secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	if err := getJSON(ctx, v.Client, http.MethodGet, base(v.BaseURL, "https://api.weixin.qq.com")+"/sns/jscode2session?"+q.Encode(), nil, &r); err != nil {
		return "", nil, invalidLinked("lc_weapp", err.Error())
	}
	if r.Errcode != 0 || r.OpenID == "" {
		return "", nil, invalidLinked("lc_weapp", fmt.Sprintf("WeChat answered %d %s", r.Errcode, r.Errmsg))
	}
	stored := map[string]any{"openid": r.OpenID}
	if r.UnionID != "" {
		stored["unionid"] = r.UnionID
	}
	return r.OpenID, stored, nil
}

// OAuthVerifier checks a generic platform's authData {uid, access_token} with a configured
// endpoint: GET URL?access_token=… must answer 200 with JSON whose "uid", "openid", "id" or
// "sub" is the authData's uid.
type OAuthVerifier struct {
	Platform string
	URL      string
	Client   *http.Client
}

// VerifyAuthData implements AuthVerifier.
func (v *OAuthVerifier) VerifyAuthData(ctx context.Context, data map[string]any) (string, map[string]any, error) {
	uid, token := authUID(data), str(data, "access_token")
	if uid == "" || token == "" {
		return "", nil, apiErr(http.StatusBadRequest, 250, "Invalid authData for %s: uid and access_token are required.", v.Platform)
	}
	var r map[string]any
	sep := "?"
	if strings.Contains(v.URL, "?") {
		sep = "&"
	}
	if err := getJSON(ctx, v.Client, http.MethodGet, v.URL+sep+url.Values{"access_token": {token}}.Encode(), nil, &r); err != nil {
		return "", nil, invalidLinked(v.Platform, err.Error())
	}
	for _, k := range []string{"uid", "openid", "id", "sub"} {
		if s := str(r, k); s != "" && s == uid {
			return uid, data, nil
		}
	}
	return "", nil, invalidLinked(v.Platform, "the access_token does not belong to this uid")
}

// authUID is the platform user id inside stored authData.
func authUID(data any) string {
	m, _ := data.(map[string]any)
	for _, k := range []string{"uid", "openid", "id"} {
		if v := str(m, k); v != "" {
			return v
		}
	}
	return ""
}

// verifyAuthData checks every platform of a client's authData; null entries (unlinking) pass.
// The master key and cloud code (hook key) are trusted: they verified the account themselves.
// It answers the authData to store and each platform's uid.
func (s *Service) verifyAuthData(ctx context.Context, authData map[string]any, auth Auth, hookDecides bool) (map[string]any, map[string]string, error) {
	out := make(map[string]any, len(authData))
	uids := map[string]string{}
	for platform, raw := range authData {
		if raw == nil {
			out[platform] = nil
			continue
		}
		data, ok := raw.(map[string]any)
		if !ok {
			return nil, nil, apiErr(http.StatusBadRequest, 1, "Invalid authData for %s: an object is expected.", platform)
		}
		if auth.Master || auth.HookKey {
			out[platform], uids[platform] = data, authUID(data)
			continue
		}
		v := s.opts.AuthVerifiers[platform]
		if v == nil {
			if hookDecides {
				out[platform], uids[platform] = data, authUID(data)
				continue
			}
			return nil, nil, apiErr(http.StatusBadRequest, 252, "Unsupported authData platform %q: it cannot be verified here (configure a verifier, or check it in an onAuthData hook).", platform)
		}
		uid, stored, err := v.VerifyAuthData(ctx, data)
		if err != nil {
			return nil, nil, err
		}
		out[platform], uids[platform] = stored, uid
	}
	return out, uids, nil
}

// trustingVerifier takes a platform's uid as the client states it: fn dev's local logins with
// fake third-party accounts (never fn serve's).
type trustingVerifier struct{ platform string }

func (v trustingVerifier) VerifyAuthData(ctx context.Context, data map[string]any) (string, map[string]any, error) {
	for _, k := range []string{"openid", "uid", "unionid"} {
		if id := str(data, k); id != "" {
			return id, data, nil
		}
	}
	return "", nil, apiErr(http.StatusBadRequest, 250, "authData for %s needs an openid or uid", v.platform)
}

// TrustingVerifiers accepts the usual platforms' authData without asking them: for fn dev and
// fn invoke, where identities are fake by design. fn serve verifies with the platforms.
func TrustingVerifiers() map[string]AuthVerifier {
	out := map[string]AuthVerifier{}
	for _, p := range []string{"weixin", "qq", "weibo", "lc_weapp", "lc_qqapp", "weixinapp"} {
		out[p] = trustingVerifier{platform: p}
	}
	return out
}
