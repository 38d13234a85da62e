package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

// The page: hand-written modules, embedded as they are.
//
//go:embed web/*.html web/*.js web/*.css
var webFS embed.FS

// The code editor: CodeMirror bundled by esbuild into dist/ at build time (make console); a plain
// go build embeds only the placeholder, and the page falls back to a textarea.
//
//go:embed all:dist
var distFS embed.FS

type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

var (
	assetsMu sync.Mutex
	assets   = map[string]*asset{}
)

// load reads an embedded file once, with its gzipped form.
func load(name string) *asset {
	assetsMu.Lock()
	defer assetsMu.Unlock()
	if a, ok := assets[name]; ok {
		return a
	}
	var b []byte
	var err error
	if strings.HasPrefix(name, "dist/") {
		b, err = fs.ReadFile(distFS, name)
	} else {
		b, err = fs.ReadFile(webFS, "web/"+name)
	}
	if err != nil {
		return nil // not kept: the names asked for come from clients
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	sum := sha256.Sum256(b)
	ct := mime.TypeByExtension(path.Ext(name))
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	a := &asset{body: b, gz: buf.Bytes(), ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	assets[name] = a
	return a
}

func hasEditor() bool { return load("dist/editor.js") != nil }

func write(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// csp allows the page's own scripts only; styles inline too (CodeMirror injects its own).
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func servePage(w http.ResponseWriter, r *http.Request) {
	a := load("index.html")
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-cache")
	write(w, r, a)
}

var assetName = func(s string) bool {
	if s == "" || len(s) > 64 || strings.Contains(s, "..") || strings.Contains(s, "/") {
		return false
	}
	return strings.HasSuffix(s, ".js") || strings.HasSuffix(s, ".css")
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if !assetName(name) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such asset", "code": "not-found"})
		return
	}
	var a *asset
	if name == "editor.js" || name == "editor.css" {
		a = load("dist/" + name)
	} else {
		a = load(name)
	}
	if a == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such asset: " + name, "code": "not-found"})
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	write(w, r, a)
}
