package appenv

import (
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/fnhq/fn/server"
)

// appRouted reports whether a request goes to the app process: everything but LeanStorage
// (/1.1/… and /1/… other than functions and call). The leanengine middleware in the app serves
// /1.1/functions, /1.1/call and /__engine/1/ping itself.
func appRouted(path string) bool {
	for _, v := range []string{"/1.1/", "/1/"} {
		if rest, ok := strings.CutPrefix(path, v); ok {
			return strings.HasPrefix(rest, "functions/") || strings.HasPrefix(rest, "call/") || rest == "functions" || rest == "call"
		}
	}
	return path != "/1.1" && path != "/1"
}

// leanFunctionName is the function or hook a /1.1/functions or /1.1/call path names ("" otherwise).
func leanFunctionName(path string) string {
	for _, pre := range []string{"/1.1/functions/", "/1/functions/", "/1.1/call/", "/1/call/"} {
		if rest, ok := strings.CutPrefix(path, pre); ok {
			return strings.ReplaceAll(rest, "/", ".")
		}
	}
	return ""
}

// appHandler routes a request to the serving app process by reverse proxy, or to the
// environment's own API (LeanStorage). The client's address goes along as X-Real-IP (what
// leanengine reads for meta.remoteAddress) — the one fn decided, from trusted proxies only.
func (e *Env) appHandler(api http.Handler, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := e.cur.Load()
		if a == nil || a.app == nil || !appRouted(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		p := a.app
		if !p.alive() {
			writeAppError(w, http.StatusServiceUnavailable, "the app process is not running ("+exitText(p.exitErr)+"); save a file to restart it")
			return
		}
		p.inflight.Add(1)
		defer p.inflight.Done()
		fn := leanFunctionName(r.URL.Path)
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		client := server.ClientAddress(r, trusted)
		target, _ := url.Parse(p.base)
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host // the app sees the host the client asked for
				pr.Out.Header.Set("X-Real-IP", client)
				pr.Out.Header.Set("X-Forwarded-For", client)
				proto := "http"
				if pr.In.TLS != nil {
					proto = "https"
				}
				if v := pr.In.Header.Get("X-Forwarded-Proto"); (v == "http" || v == "https") && server.TrustedPeer(pr.In, trusted) {
					proto = v // a trusted proxy in front terminated TLS
				}
				pr.Out.Header.Set("X-Forwarded-Proto", proto)
				pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
			},
			Transport:     p.client.Transport,
			FlushInterval: -1, // server-sent events and long polls stream through
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if r.Context().Err() != nil {
					return // the client went away
				}
				writeAppError(w, http.StatusBadGateway, "the app process did not answer: "+err.Error())
			},
		}
		rp.ServeHTTP(rec, r)
		if fn != "" && fn != "_ops.metadatas" {
			inv := server.Invocation{Time: start, Dialect: "lean", Function: fn, Status: rec.status, OK: rec.status == http.StatusOK,
				Duration: time.Since(start), RequestID: r.Header.Get("X-Request-Id")}
			if inv.RequestID == "" {
				inv.RequestID = "app-" + start.Format("150405.000000")
			}
			if r.Header.Get("X-LC-Session") != "" {
				inv.Identity = "session"
			}
			e.Report(inv)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func writeAppError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]any{"code": 1, "error": msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
