package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	esbuild "github.com/evanw/esbuild/pkg/api"

	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/cron"
	"github.com/fnhq/fn/project"
)

// SourceBackend is implemented by fn dev: the project on disk whose source the console reads
// and edits (a save hot-reloads through fn dev's watcher).
type SourceBackend interface {
	// Project is the project as last loaded.
	Project() *project.Project
}

// Limits of the source routes.
const (
	maxSourceFile  = 1 << 20
	maxSourceFiles = 2000
	maxSourceDepth = 8
)

// SourceFile is one editable file of the project.
type SourceFile struct {
	Path     string `json:"path"`               // slash-separated, relative to the project
	Function string `json:"function,omitempty"` // wx: the function it belongs to
}

// BuildMessage is one esbuild error of a file that did not check.
type BuildMessage struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Text   string `json:"text"`
}

// BuildFailed is the 422 body of a save with syntax errors.
type BuildFailed struct {
	Error  string         `json:"error"`
	Code   string         `json:"code"` // build_failed
	Errors []BuildMessage `json:"errors"`
}

func (h *handler) sourceRoutes(route func(string, bool, http.HandlerFunc)) {
	route("GET /__fn/apps/{app}/source/{env}", true, h.sourceList)
	route("GET /__fn/apps/{app}/source/{env}/file", true, h.sourceRead)
	route("PUT /__fn/apps/{app}/source/{env}/file", true, h.sourceWrite)
	route("POST /__fn/apps/{app}/source/{env}/functions", true, h.sourceCreate)
}

// sourceProject is the project of a source route: fn dev only, its one app and env dev.
func (h *handler) sourceProject(w http.ResponseWriter, r *http.Request) (*project.Project, bool) {
	sb, ok := h.o.Backend.(SourceBackend)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody("the source routes are fn dev's: on fn serve, edit functions online (/__fn/apps/{app}/online)", "not-found"))
		return nil, false
	}
	if _, ok := h.env(w, r); !ok {
		return nil, false
	}
	p := sb.Project()
	if p == nil || p.Detected && p.App != nil {
		Fail(w, &appenv.BadRequest{Msg: "this project runs as an app process: edit it in your editor"})
		return nil, false
	}
	return p, true
}

var codeExt = map[string]esbuild.Loader{".js": esbuild.LoaderJS, ".mjs": esbuild.LoaderJS, ".cjs": esbuild.LoaderJS,
	".ts": esbuild.LoaderTS, ".mts": esbuild.LoaderTS, ".cts": esbuild.LoaderTS, ".json": esbuild.LoaderJSON}

// sourceRoots are the directories (relative, slash-separated) whose code files the console
// may edit: wx functions, or a lean project's cloud code (the entry's directory).
func sourceRoots(p *project.Project) []string {
	if p.Dialect == project.WX {
		return []string{path.Clean(filepath.ToSlash(p.FunctionsDir))}
	}
	return []string{path.Dir(filepath.ToSlash(p.Entry))}
}

// confine checks a client's relative path and answers the absolute file inside the project:
// no absolute paths, no .., nothing under node_modules, .fn or a dot directory, only code
// files under the source roots, and no symlink that leads out of the project.
func confine(p *project.Project, rel string) (string, string, error) {
	bad := func(why string) (string, string, error) {
		return "", "", &appenv.BadRequest{Msg: fmt.Sprintf("path %q: %s", rel, why)}
	}
	switch {
	case rel == "":
		return bad("is required (a file of the project, e.g. functions/hello/index.js)")
	case len(rel) > 512:
		return bad("is longer than 512 bytes")
	case strings.ContainsAny(rel, "\\\x00:"):
		return bad("must be slash-separated, without backslashes, colons or NUL")
	case strings.HasPrefix(rel, "/") || filepath.IsAbs(rel):
		return bad("must be relative to the project, not absolute")
	}
	parts := strings.Split(rel, "/")
	for _, part := range parts {
		switch {
		case part == "..":
			return bad("must not contain ..")
		case part == "" || part == ".":
			return bad("must not contain empty or . elements")
		case part == "node_modules":
			return bad("is inside node_modules (installed packages are not edited here)")
		case strings.HasPrefix(part, "."):
			return bad("is inside a hidden file or directory such as .fn")
		}
	}
	if _, ok := codeExt[path.Ext(rel)]; !ok {
		return bad("is not a code file (.js, .mjs, .cjs, .ts, .mts, .cts, .json)")
	}
	inRoot := false
	for _, root := range sourceRoots(p) {
		if root == "." || strings.HasPrefix(rel, root+"/") {
			inRoot = true
		}
	}
	if !inRoot {
		return bad("is not a source file of the project's functions (" + strings.Join(sourceRoots(p), ", ") + ")")
	}
	if p.Dialect == project.Lean && path.Ext(rel) == ".json" && path.Dir(rel) == path.Dir(filepath.ToSlash(p.Entry)) {
		return bad("is the project's configuration, not cloud code")
	}
	fnName := ""
	if p.Dialect == project.WX {
		root := sourceRoots(p)[0]
		rest := strings.TrimPrefix(rel, root+"/")
		if root == "." {
			rest = rel
		}
		first, _, nested := strings.Cut(rest, "/")
		if !nested {
			return bad("is not inside a function's directory")
		}
		fnName = first
	}
	realRoot, err := filepath.EvalSymlinks(p.Dir)
	if err != nil {
		return "", "", err
	}
	abs := filepath.Join(realRoot, filepath.FromSlash(rel))
	// the deepest directory that exists must resolve inside the project; a file that exists must
	// not be a symlink at all
	dir := filepath.Dir(abs)
	for {
		if _, err := os.Lstat(dir); err == nil {
			break
		}
		if dir == realRoot {
			break
		}
		dir = filepath.Dir(dir)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return bad("cannot be resolved: " + err.Error())
	}
	if realDir != realRoot && !strings.HasPrefix(realDir, realRoot+string(filepath.Separator)) {
		return bad("leads out of the project through a symlink")
	}
	if realDir != dir {
		return bad("passes through a symlink")
	}
	if st, err := os.Lstat(abs); err == nil {
		if st.Mode()&fs.ModeSymlink != 0 {
			return bad("is a symlink")
		}
		if !st.Mode().IsRegular() {
			return bad("is not a regular file")
		}
	}
	return abs, fnName, nil
}

func (h *handler) sourceList(w http.ResponseWriter, r *http.Request) {
	p, ok := h.sourceProject(w, r)
	if !ok {
		return
	}
	files := []SourceFile{}
	for _, root := range sourceRoots(p) {
		base := filepath.Join(p.Dir, filepath.FromSlash(root))
		filepath.WalkDir(base, func(full string, d fs.DirEntry, err error) error {
			if err != nil || len(files) >= maxSourceFiles {
				return filepath.SkipDir
			}
			rel, _ := filepath.Rel(p.Dir, full)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if full != base && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") || strings.Count(rel, "/") >= maxSourceDepth) {
					return filepath.SkipDir
				}
				return nil
			}
			if _, fn, err := confine(p, rel); err == nil {
				files = append(files, SourceFile{Path: rel, Function: fn})
			}
			return nil
		})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	writeJSON(w, http.StatusOK, map[string]any{"files": files})
}

// sourceFile is the project file a source route's ?path= names, confined to the project (an
// error has been answered when ok is false).
func (h *handler) sourceFile(w http.ResponseWriter, r *http.Request) (abs, rel string, ok bool) {
	p, ok := h.sourceProject(w, r)
	if !ok {
		return "", "", false
	}
	rel = r.URL.Query().Get("path")
	abs, _, err := confine(p, rel)
	if err != nil {
		Fail(w, err)
		return "", "", false
	}
	return abs, rel, true
}

func (h *handler) sourceRead(w http.ResponseWriter, r *http.Request) {
	abs, rel, ok := h.sourceFile(w, r)
	if !ok {
		return
	}
	f, err := os.Open(abs)
	if errors.Is(err, fs.ErrNotExist) {
		Fail(w, &appenv.NotFound{Msg: "no file " + rel + " in the project"})
		return
	}
	if err != nil {
		Fail(w, err)
		return
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSourceFile+1))
	if err != nil {
		Fail(w, err)
		return
	}
	if len(b) > maxSourceFile {
		Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("path %q: the file is larger than %d KB", rel, maxSourceFile>>10)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": rel, "content": string(b)})
}

// CheckSource runs esbuild's parser over a file's content: its syntax errors, with positions.
func CheckSource(rel, content string) []BuildMessage {
	loader, ok := codeExt[path.Ext(rel)]
	if !ok {
		loader = esbuild.LoaderJS
	}
	res := esbuild.Transform(content, esbuild.TransformOptions{Loader: loader, Sourcefile: rel, LogLevel: esbuild.LogLevelSilent,
		Format: esbuild.FormatDefault, Target: esbuild.ESNext})
	out := []BuildMessage{}
	for _, m := range res.Errors {
		bm := BuildMessage{File: rel, Text: m.Text}
		if m.Location != nil {
			bm.Line, bm.Column = m.Location.Line, m.Location.Column+1
		}
		out = append(out, bm)
	}
	return out
}

func buildFailed(w http.ResponseWriter, msgs []BuildMessage) {
	first := msgs[0]
	writeJSON(w, http.StatusUnprocessableEntity, BuildFailed{Code: "build_failed", Errors: msgs,
		Error: fmt.Sprintf("%s:%d:%d: %s (nothing was written)", first.File, first.Line, first.Column, first.Text)})
}

func (h *handler) sourceWrite(w http.ResponseWriter, r *http.Request) {
	abs, rel, ok := h.sourceFile(w, r)
	if !ok {
		return
	}
	var body struct {
		Content *string `json:"content"`
	}
	if !h.decodeBounded(w, r, &body, maxSourceFile+64<<10) {
		return
	}
	if body.Content == nil {
		Fail(w, &appenv.BadRequest{Msg: "content is required (the file's new text)"})
		return
	}
	if len(*body.Content) > maxSourceFile {
		Fail(w, &appenv.BadRequest{Msg: fmt.Sprintf("content is larger than %d KB", maxSourceFile>>10)})
		return
	}
	force := r.URL.Query().Get("force") == "1"
	if msgs := CheckSource(rel, *body.Content); len(msgs) > 0 && !force {
		buildFailed(w, msgs)
		return
	}
	if _, err := os.Stat(filepath.Dir(abs)); err != nil {
		Fail(w, &appenv.NotFound{Msg: "path " + rel + ": its directory does not exist (create a function first)"})
		return
	}
	if err := writeAtomic(abs, []byte(*body.Content)); err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// writeAtomic replaces a file by renaming a complete temporary one over it (a watcher never
// sees half a file), keeping the old file's mode.
func writeAtomic(abs string, b []byte) error {
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(abs); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(abs), ".fn-save-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), abs)
}

// NewFunction is the body of POST /__fn/apps/-/source/dev/functions.
type NewFunction struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // function, hook, timer
	Class string `json:"class,omitempty"`
	Hook  string `json:"hook,omitempty"`
	Cron  string `json:"cron,omitempty"`
}

var classNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$|^_User$`) })

// Validate checks a new function's fields as fn.yaml would.
func (n NewFunction) Validate(dialect project.Dialect) error {
	bad := func(format string, args ...any) error { return &appenv.BadRequest{Msg: fmt.Sprintf(format, args...)} }
	switch n.Type {
	case "function", "timer":
		if err := project.ValidateFunctionName(n.Name); err != nil {
			return bad("name: %v", err)
		}
	case "hook":
		if dialect != project.Lean {
			return bad("type hook: class hooks are LeanEngine's, this is a wx project")
		}
		if !classNamePattern().MatchString(n.Class) {
			return bad("class: %q is not a class name", n.Class)
		}
		if _, ok := appenv.ClassHooks[n.Hook]; !ok {
			return bad("hook: must be one of beforeSave, afterSave, beforeUpdate, afterUpdate, beforeDelete, afterDelete (got %q)", n.Hook)
		}
		if n.Name == "" {
			return nil
		}
		if err := project.ValidateFunctionName(n.Name); err != nil {
			return bad("name: %v", err)
		}
	default:
		return bad("type: must be function, hook or timer (got %q)", n.Type)
	}
	if n.Type == "timer" {
		if n.Cron == "" {
			return bad("cron: a timer needs a cron expression, e.g. 0 * * * * ?")
		}
		if len(n.Cron) > 200 {
			return bad("cron: longer than 200 characters")
		}
		if _, err := cron.Parse(n.Cron); err != nil {
			return bad("cron: %v", err)
		}
	} else if n.Cron != "" {
		return bad("cron: only a timer has one")
	}
	return nil
}

// Code is the template of a new function: the file's text in the project's dialect.
func (n NewFunction) Code(dialect project.Dialect) string {
	if dialect == project.WX {
		what := "Called by wx.cloud.callFunction"
		if n.Type == "timer" {
			what = "Run by the timer " + n.Name + " (" + n.Cron + ")"
		}
		return fmt.Sprintf(`const cloud = require('wx-server-sdk')

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })

// %s.
exports.main = async (event, context) => {
  const { OPENID } = cloud.getWXContext()
  return { event, openid: OPENID }
}
`, what)
	}
	if n.Type == "hook" {
		return fmt.Sprintf(`const AV = require('leanengine')

AV.Cloud.%s(%q, async (request) => {
  // request.object is the object being written; throw an AV.Cloud.Error to refuse the write
  console.log(%q, request.object.id)
})
`, n.Hook, n.Class, n.Class+"."+n.Hook)
	}
	return fmt.Sprintf(`const AV = require('leanengine')

AV.Cloud.define(%q, async (request) => {
  return { params: request.params, user: request.currentUser ? request.currentUser.id : null }
})
`, n.Name)
}

func (h *handler) sourceCreate(w http.ResponseWriter, r *http.Request) {
	p, ok := h.sourceProject(w, r)
	if !ok {
		return
	}
	var n NewFunction
	if !h.decodeBounded(w, r, &n, 16<<10) {
		return
	}
	if err := n.Validate(p.Dialect); err != nil {
		Fail(w, err)
		return
	}
	rel, err := createFunction(p, n)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"path": rel})
}

// Conflict is a request for something that exists already (409).
type conflict struct{ msg string }

func (c *conflict) Error() string { return c.msg }

// createFunction writes a new function's file (wx: functions/<name>/index.js; lean: a file in
// the cloud code's cloud/ directory, required from the entry), and a timer's entry in fn.yaml.
func createFunction(p *project.Project, n NewFunction) (string, error) {
	var rel string
	if p.Dialect == project.WX {
		if dirExists(filepath.Join(p.Dir, p.FunctionsDir, n.Name)) {
			return "", &conflict{"the function " + n.Name + " exists already"}
		}
		rel = path.Join(filepath.ToSlash(p.FunctionsDir), n.Name, "index.js")
	} else {
		file := n.Name
		if n.Type == "hook" && file == "" {
			file = n.Class + "-" + n.Hook
		}
		rel = path.Join(path.Dir(filepath.ToSlash(p.Entry)), "cloud", file+".js")
	}
	abs, _, err := confine(p, rel)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(abs); err == nil {
		return "", &conflict{rel + " exists already"}
	}
	if n.Type == "timer" {
		if err := checkTimerName(p, n); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", err
	}
	undo := func() {
		os.Remove(abs)
		if p.Dialect == project.WX {
			os.Remove(filepath.Dir(abs))
		}
	}
	if err := writeAtomic(abs, []byte(n.Code(p.Dialect))); err != nil {
		undo()
		return "", err
	}
	if p.Dialect == project.Lean {
		if err := requireFromEntry(p, rel); err != nil {
			undo()
			return "", err
		}
	}
	if n.Type == "timer" {
		if err := addTimer(p, n); err != nil {
			undo()
			return "", err
		}
	}
	return rel, nil
}

func dirExists(dir string) bool { st, err := os.Stat(dir); return err == nil && st.IsDir() }

// requireFromEntry registers a new cloud code file: the entry requires it (once).
func requireFromEntry(p *project.Project, rel string) error {
	entry := filepath.Join(p.Dir, filepath.FromSlash(p.Entry))
	b, err := os.ReadFile(entry)
	if err != nil {
		return err
	}
	from := path.Dir(filepath.ToSlash(p.Entry))
	target := strings.TrimSuffix(strings.TrimPrefix(rel, from+"/"), ".js")
	if from == "." {
		target = strings.TrimSuffix(rel, ".js")
	}
	line := fmt.Sprintf("require('./%s')\n", target)
	if strings.Contains(string(b), line) {
		return nil
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return writeAtomic(entry, append(b, line...))
}

func checkTimerName(p *project.Project, n NewFunction) error {
	if p.Detected || p.File == "" || filepath.Base(p.File) != "fn.yaml" {
		return &appenv.BadRequest{Msg: "type timer: timers are declared in fn.yaml, and this project has none"}
	}
	for _, t := range p.Timers {
		if t.Name == n.Name {
			return &conflict{"a timer named " + n.Name + " exists already"}
		}
	}
	return nil
}

// addTimer adds a timer for the new function to fn.yaml's timers (a block mapping at the top
// level), and checks that fn.yaml still loads, restoring it when not.
func addTimer(p *project.Project, n NewFunction) error {
	old, err := os.ReadFile(p.File)
	if err != nil {
		return err
	}
	cronText, _ := json.Marshal(n.Cron) // a JSON string is a YAML string
	text := string(old)
	if len(text) > 0 && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	lines := strings.SplitAfter(text, "\n")
	at := -1
	for i, l := range lines {
		if strings.TrimRight(l, " \r\n") == "timers:" {
			at = i
		}
	}
	entry := func(ind string) string {
		return fmt.Sprintf("%s%s:\n%s%sfunction: %s\n%s%scron: %s\n", ind, n.Name, ind, ind, n.Name, ind, ind, cronText)
	}
	if at < 0 {
		text += "timers:\n" + entry("  ")
	} else {
		ind := "  "
		if at+1 < len(lines) {
			next := lines[at+1]
			if k := len(next) - len(strings.TrimLeft(next, " ")); k > 0 {
				ind = next[:k]
			}
		}
		text = strings.Join(lines[:at+1], "") + entry(ind) + strings.Join(lines[at+1:], "")
	}
	if err := writeAtomic(p.File, []byte(text)); err != nil {
		return err
	}
	if _, err := project.Load(p.Dir); err != nil {
		writeAtomic(p.File, old)
		return &appenv.BadRequest{Msg: "type timer: fn.yaml would not load with the new timer, it was left as it was: " + err.Error()}
	}
	return nil
}

func errorBody(msg, code string) map[string]string {
	return map[string]string{"error": msg, "code": code}
}
