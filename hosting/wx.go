package hosting

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/fnhq/fn/engine"
)

// wxSessions binds tokens the runtime issued to the WeChat users they were issued for.
type wxSessions struct {
	mu     sync.Mutex
	tokens map[string]engine.WXIdentity
}

func newWXSessions() *wxSessions { return &wxSessions{tokens: map[string]engine.WXIdentity{}} }

func (s *wxSessions) get(token string) (engine.WXIdentity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.tokens[token]
	return id, ok
}

// WXLogin exchanges a wx.login code for a token: WeChat's jscode2session says who the user is.
func (rt *Runtime) WXLogin(ctx context.Context, appID, code string) (string, engine.WXIdentity, error) {
	app, err := rt.App(appID)
	if err != nil {
		return "", engine.WXIdentity{}, err
	}
	rt.state.mu.Lock()
	secret := rt.state.s.WXSecrets[app.ID]
	rt.state.mu.Unlock()
	if app.WXAppID == "" || secret == "" {
		return "", engine.WXIdentity{}, badf("app %s has no WeChat appid/secret (fn apps create --wx-appid … --wx-secret …)", app.Name)
	}
	if code == "" {
		return "", engine.WXIdentity{}, badf("missing code (from wx.login)")
	}
	q := url.Values{"appid": {app.WXAppID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rt.cfg.WeChatAPIBase+"/sns/jscode2session?"+q.Encode(), nil)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return "", engine.WXIdentity{}, fmt.Errorf("calling WeChat's jscode2session: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid"`
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", engine.WXIdentity{}, fmt.Errorf("WeChat's jscode2session answered non-JSON: %w", err)
	}
	if out.ErrCode != 0 || out.OpenID == "" {
		return "", engine.WXIdentity{}, &BadRequest{Msg: fmt.Sprintf("WeChat refused the code: %d %s", out.ErrCode, out.ErrMsg)}
	}
	ar, err := rt.appRuntime(app.ID)
	if err != nil {
		return "", engine.WXIdentity{}, err
	}
	id := engine.WXIdentity{OpenID: out.OpenID, AppID: app.WXAppID, UnionID: out.UnionID}
	token := "fnwx_" + randomHex(24)
	ar.wx.mu.Lock()
	ar.wx.tokens[token] = id
	ar.wx.mu.Unlock()
	return token, id, nil
}
