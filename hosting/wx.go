package hosting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/randid"
)

// wxSessionTTL is how long a wx client session lasts (WeChat's session_key lives about as long).
const wxSessionTTL = 30 * 24 * time.Hour

// WXLogin exchanges a wx.login code for a session token: WeChat's jscode2session says who the
// user is. The session is kept in the control plane (it survives restarts, expires).
func (rt *Runtime) WXLogin(ctx context.Context, appID, code string) (string, control.Session, error) {
	app, err := rt.App(ctx, appID)
	if err != nil {
		return "", control.Session{}, err
	}
	secret, err := rt.cp.WXSecret(ctx, app.ID)
	if err != nil {
		return "", control.Session{}, err
	}
	if app.WXAppID == "" || secret == "" {
		return "", control.Session{}, badf("app %s has no WeChat appid/secret (fn apps create --wx-appid … --wx-secret …)", app.Name)
	}
	if code == "" || len(code) > 256 {
		return "", control.Session{}, badf("missing or oversized code (from wx.login)")
	}
	q := url.Values{"appid": {app.WXAppID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rt.cfg.WeChatAPIBase+"/sns/jscode2session?"+q.Encode(), nil)
	if err != nil {
		return "", control.Session{}, errors.New("the WeChat API base URL is invalid")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		// never the URL: it carries the app secret
		return "", control.Session{}, errors.New("WeChat's jscode2session could not be reached")
	}
	defer resp.Body.Close()
	var out struct {
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid"`
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&out); err != nil {
		return "", control.Session{}, fmt.Errorf("WeChat's jscode2session answered %d with a body that is not JSON", resp.StatusCode)
	}
	if out.ErrCode != 0 || out.OpenID == "" {
		return "", control.Session{}, badf("WeChat refused the code: %d %s", out.ErrCode, out.ErrMsg)
	}
	s := control.Session{AppID: app.ID, OpenID: out.OpenID, WXAppID: app.WXAppID, UnionID: out.UnionID, Expires: time.Now().Add(wxSessionTTL)}
	token := "fnwx_" + randid.Hex(24)
	if err := rt.cp.PutSession(ctx, token, s); err != nil {
		return "", control.Session{}, err
	}
	return token, s, nil
}

// wxIdentity resolves a wx client call's user from its session token (Authorization: Bearer).
func (rt *Runtime) wxIdentity(appID string) func(r *http.Request) (*engine.WXIdentity, string, error) {
	return func(r *http.Request) (*engine.WXIdentity, string, error) {
		s, err := rt.session(r.Context(), bearer(r))
		if err != nil || s.AppID != appID {
			return nil, "", errors.New("a session token from POST /wx/{app}/login is required (Authorization: Bearer …)")
		}
		return &engine.WXIdentity{OpenID: s.OpenID, AppID: s.WXAppID, UnionID: s.UnionID}, s.OpenID, nil
	}
}
