package appenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/randid"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/server"
	"github.com/fnhq/fn/store"
)

// Unprocessable is a request that was understood but cannot be done (422), with a stable code
// such as not_replayable.
type Unprocessable struct{ Code, Msg string }

func (e *Unprocessable) Error() string { return e.Msg }

// replayInfo fills what a record keeps of an invocation's request and caller: the request when
// it is valid JSON of at most api.MaxReplayRequest bytes (then a call is replayable), the wx
// user or the lean user a session belongs to (never the token itself).
func (e *Env) replayInfo(inv server.Invocation, rec *api.LogRecord) {
	if len(inv.Request) > 0 && len(inv.Request) <= api.MaxReplayRequest && json.Valid(inv.Request) {
		rec.Request = append(json.RawMessage(nil), inv.Request...)
		rec.Replayable = rec.Kind == "call" || rec.Kind == "hook"
	}
	switch {
	case inv.WX != nil:
		rec.Caller = &api.Caller{OpenID: inv.WX.OpenID, AppID: inv.WX.AppID, UnionID: inv.WX.UnionID}
	case inv.SessionToken != "" && e.cfg.Data != nil:
		// the deadline only where there is a lookup: a context and timer per call cost more than
		// the rest of the record
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if uid, err := e.cfg.Data.Store().SessionUser(ctx, inv.SessionToken); err == nil {
			rec.Caller = &api.Caller{User: uid}
		}
	}
}

// Replay runs the call a record describes again: the same function, event and identity, as a
// new call with its own request id. A record that is no call, or kept no request, is
// *Unprocessable (not_replayable).
func (e *Env) Replay(ctx context.Context, rec api.LogRecord, timeout time.Duration) (*api.Outcome, error) {
	if !rec.Invocation || !rec.Replayable || rec.Request == nil {
		why := "it kept no request"
		if !rec.Invocation {
			why = "it is not an invocation record"
		} else if rec.Kind != "" && rec.Kind != "call" && rec.Kind != "hook" {
			why = "it is a " + rec.Kind + " run (trigger the timer instead)"
		} else if rec.Request == nil {
			why = fmt.Sprintf("its request was not kept (over %d KB, or not JSON)", api.MaxReplayRequest>>10)
		}
		return nil, &Unprocessable{Code: "not_replayable", Msg: "request " + rec.RequestID + " cannot be replayed: " + why}
	}
	if e.Release() == nil {
		return nil, &NotFound{Msg: e.notDeployed()}
	}
	c := Caller{Name: rec.Identity}
	if rec.Caller != nil {
		if rec.Caller.OpenID != "" {
			c.WX = &engine.WXIdentity{OpenID: rec.Caller.OpenID, AppID: rec.Caller.AppID, UnionID: rec.Caller.UnionID}
		}
		if rec.Caller.User != "" {
			tok, _, err := e.UserSession(ctx, rec.Caller.User)
			if err != nil {
				return nil, &Unprocessable{Code: "not_replayable", Msg: "request " + rec.RequestID + " ran as user " + rec.Caller.User + ": " + err.Error()}
			}
			c.SessionToken = tok
		}
	}
	if rec.Kind == "hook" {
		class, hook, ok := splitHook(rec.Function)
		if !ok {
			return nil, &Unprocessable{Code: "not_replayable", Msg: "request " + rec.RequestID + " is a hook run of " + rec.Function + ", which names no class hook"}
		}
		var body struct {
			Object map[string]any `json:"object"`
		}
		json.Unmarshal(rec.Request, &body)
		return e.InvokeHook(ctx, class, hook, body.Object, timeout)
	}
	return e.Invoke(ctx, rec.Function, rec.Request, c, timeout), nil
}

// UserSession is a session token of a lean user (the user's current one, or a new one) and
// the user as LeanStorage shows it to the master key: the console's impersonation.
func (e *Env) UserSession(ctx context.Context, userID string) (string, map[string]any, error) {
	if e.cfg.Data == nil {
		return "", nil, &BadRequest{Msg: "this environment keeps no LeanStorage users (a wx app)"}
	}
	st := e.cfg.Data.Store()
	u, err := st.Get(ctx, "_User", userID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, &NotFound{Msg: "no user with objectId " + userID}
	}
	if err != nil {
		return "", nil, err
	}
	tok, err := st.UserSession(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		tok = randid.Hex(16) // as leanstorage opens sessions
		err = st.PutSession(ctx, tok, userID)
	}
	if err != nil {
		return "", nil, err
	}
	return tok, leanstorage.JSON(u), nil
}
