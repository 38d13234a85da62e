package admin

import (
	"context"
	"net/http"
	"regexp"
	"sync"

	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/logsink"
)

// requestIDPattern bounds what a request id in a path may be (engine ids are hex; LeanCloud
// and wx ones letters, digits and dashes).
var requestIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`) })

// replay repeats a logged call: the same function, event and identity, as a new call.
func (h *handler) replay(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	rid := r.PathValue("requestId")
	if !requestIDPattern().MatchString(rid) {
		Fail(w, &appenv.BadRequest{Msg: "requestId must be 1 to 128 letters, digits, - or _"})
		return
	}
	id, err := h.o.Backend.AppID(r.Context(), r.PathValue("app"))
	if err != nil {
		Fail(w, err)
		return
	}
	recs, err := h.o.Backend.Logs().Query(r.Context(), logsink.Filter{App: id, Env: e.Name(), RequestID: rid}, 200)
	if err != nil {
		Fail(w, err)
		return
	}
	for _, rec := range recs {
		if !rec.Invocation {
			continue
		}
		out, err := e.Replay(r.Context(), rec, 0)
		if err != nil {
			Fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	Fail(w, &appenv.NotFound{Msg: "no invocation with request id " + rid + " in " + e.Name() + " (its record may have aged out of the log)"})
}

var sessionTokenPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`) })

// sessionCaller makes an admin invocation run as the user a session token belongs to (the
// console's impersonation); the token must be a session of the environment's app.
func sessionCaller(ctx context.Context, e *appenv.Env, token string, c *appenv.Caller) error {
	if !sessionTokenPattern().MatchString(token) {
		return &appenv.BadRequest{Msg: "sessionToken must be 1 to 256 letters, digits, - or _"}
	}
	if e.Data() == nil {
		return &appenv.BadRequest{Msg: "sessionToken is for lean apps: this environment keeps no LeanStorage users"}
	}
	uid, err := e.Data().Store().SessionUser(ctx, token)
	if err != nil {
		return &appenv.BadRequest{Msg: "sessionToken is not a session of this app"}
	}
	c.SessionToken, c.Name = token, "user "+uid
	return nil
}
