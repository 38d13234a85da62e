package bundler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/fnhq/fn/project"
)

// A production bundle with Options.DepsCache set is built in two parts that end up in the same
// single file: the packages from node_modules the function requires (wx-server-sdk, leanengine:
// megabytes that do not change between edits) as one dependency bundle, built once per set of
// packages and kept in the cache directory, and the function's own code, built on every run with
// those packages left as requires that the file's first part answers. The file stays
// self-contained, so deploying, hosting and running it are unchanged.
//
// Anything the split cannot reproduce exactly (a dynamic import or require.resolve of a package,
// ES-module-mode importers whose default-import rules differ, a hashbang, a failed resolution)
// falls back to the whole-project build, which also reports the errors as before.

// depPrefix marks a require of a dependency-bundle module in the function part.
const depPrefix = "fn-dep:"

var errNoSplit = errors.New("bundle cannot be split")

// esbuildVersion keys the cache: another esbuild may emit other code for the same packages.
var esbuildVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/evanw/esbuild" {
				return m.Version
			}
		}
	}
	return "unknown"
})

// depSet collects the package modules a function build left to the dependency bundle.
type depSet struct {
	mu      sync.Mutex
	modules map[string]string // key (path relative to the project) → absolute path
	noSplit bool
}

func (b *Bundler) depsPlugin(ds *depSet) api.Plugin {
	type marker struct{}
	return api.Plugin{Name: "fn-deps-split", Setup: func(pb api.PluginBuild) {
		pb.OnResolve(api.OnResolveOptions{Filter: `^[^./]`}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
			if _, ok := a.PluginData.(marker); ok || a.Kind == api.ResolveEntryPoint || a.Namespace != "file" {
				return api.OnResolveResult{}, nil
			}
			for _, ext := range b.opts.External {
				if a.Path == ext || strings.HasPrefix(a.Path, ext+"/") {
					return api.OnResolveResult{}, nil
				}
			}
			r := pb.Resolve(a.Path, api.ResolveOptions{Importer: a.Importer, ResolveDir: a.ResolveDir, Kind: a.Kind,
				Namespace: a.Namespace, PluginData: marker{}})
			if len(r.Errors) > 0 || r.External || r.Namespace != "file" ||
				!strings.Contains(filepath.ToSlash(r.Path), "/node_modules/") {
				return api.OnResolveResult{}, nil // a builtin, an alias into the project, or an error esbuild reports
			}
			ds.mu.Lock()
			defer ds.mu.Unlock()
			ext := filepath.Ext(a.Importer)
			if (a.Kind != api.ResolveJSImportStatement && a.Kind != api.ResolveJSRequireCall) || ext == ".mjs" || ext == ".mts" {
				ds.noSplit = true
				return api.OnResolveResult{}, nil
			}
			rel, err := filepath.Rel(b.opts.ProjectDir, r.Path)
			if err != nil {
				ds.noSplit = true
				return api.OnResolveResult{}, nil
			}
			key := filepath.ToSlash(rel)
			ds.modules[key] = r.Path
			return api.OnResolveResult{Path: depPrefix + key, External: true}, nil
		})
	}}
}

// splitBuild builds one bundle as dependency part plus own code (splitAll has checked the project
// is not ESM); errNoSplit means use the whole-project build instead.
func (b *Bundler) splitBuild(e project.Entry) (out map[string][]byte, inputs map[string]bool, warns []string, err error) {
	ds := &depSet{modules: map[string]string{}}
	o := b.buildOptions(e)
	o.Plugins = append([]api.Plugin{b.depsPlugin(ds)}, o.Plugins...)
	r := api.Build(o)
	if len(r.Errors) > 0 || ds.noSplit {
		return nil, nil, nil, errNoSplit
	}
	var fnJS, fnMap []byte
	for _, f := range r.OutputFiles {
		if strings.HasSuffix(f.Path, ".map") {
			fnMap = f.Contents
		} else {
			fnJS = f.Contents
		}
	}
	if fnJS == nil || fnMap == nil || strings.HasPrefix(string(fnJS), "#!") {
		return nil, nil, nil, errNoSplit
	}
	warns = append(warns, api.FormatMessages(r.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage})...)
	inputs = b.inputsOf(r.Metafile)
	if len(ds.modules) == 0 {
		// nothing from node_modules: the function build is the whole bundle
		return map[string][]byte{e.Name + ".js": fnJS, e.Name + ".js.map": fnMap}, inputs, warns, nil
	}
	dep, err := b.depBundle(ds.modules)
	if err != nil {
		return nil, nil, nil, err
	}
	warns = append(warns, dep.Warnings...)
	for _, in := range dep.Inputs {
		inputs[in.Path] = true
	}
	js, sm := joinParts(e.Name, dep.js, dep.sourceMap, fnJS, fnMap)
	return map[string][]byte{e.Name + ".js": js, e.Name + ".js.map": sm}, inputs, warns, nil
}

// moduleMode reports a project whose package.json says "type": "module": its importers follow
// Node's ES-module interop, which a bundle split at require() would not reproduce.
func moduleMode(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return false
	}
	var pkg struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(data, &pkg) == nil && pkg.Type == "module"
}

// depEntry is a cached dependency bundle and what it was built from.
type depEntry struct {
	Inputs    []depInput `json:"inputs"`
	Warnings  []string   `json:"warnings,omitempty"`
	js        []byte
	sourceMap []byte
}

type depInput struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime"` // ns
	Ino   uint64 `json:"ino,omitempty"`
	CTime int64  `json:"ctime,omitempty"` // ns
}

func statInput(path string) (depInput, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return depInput{}, err
	}
	ino, ctime := fileIdentity(fi)
	return depInput{Path: path, Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Ino: ino, CTime: ctime}, nil
}

// depBundle returns the dependency bundle of the given modules from the cache, building it when
// it is missing or any file it was built from has changed since.
func (b *Bundler) depBundle(modules map[string]string) (*depEntry, error) {
	keys := make([]string, 0, len(modules))
	for k := range modules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	fmt.Fprintf(h, "esbuild %s\ntarget %s\nminify %v\ndialect %s\nout %s\nproject %s\nexternal %q\n", esbuildVersion(),
		b.opts.Target, b.opts.Minify, b.opts.Dialect, b.opts.OutDir, b.opts.ProjectDir, b.opts.External)
	for _, k := range keys {
		fmt.Fprintf(h, "%s\n", k)
	}
	id := hex.EncodeToString(h.Sum(nil))[:32]
	base := filepath.Join(b.opts.DepsCache, id)
	// functions with the same packages wait for one build of them instead of each making it
	l, _ := b.depLocks.LoadOrStore(id, &sync.Mutex{})
	l.(*sync.Mutex).Lock()
	defer l.(*sync.Mutex).Unlock()
	if d, ok := readDepEntry(base); ok {
		return d, nil
	}
	var stub strings.Builder
	stub.WriteString("module.exports = {\n")
	for _, k := range keys {
		fmt.Fprintf(&stub, "  %s: () => require(%s),\n", jsString(k), jsString(modules[k]))
	}
	stub.WriteString("};\n")
	o := b.buildOptions(project.Entry{Name: "fn-deps"})
	o.EntryPoints = nil
	o.Stdin = &api.StdinOptions{Contents: stub.String(), ResolveDir: b.opts.ProjectDir, Sourcefile: "fn:deps.js", Loader: api.LoaderJS}
	r := api.Build(o)
	if len(r.Errors) > 0 {
		return nil, errNoSplit
	}
	d := &depEntry{}
	for _, f := range r.OutputFiles {
		if strings.HasSuffix(f.Path, ".map") {
			d.sourceMap = f.Contents
		} else {
			d.js = f.Contents
		}
	}
	if d.js == nil || d.sourceMap == nil {
		return nil, errNoSplit
	}
	if len(r.Warnings) > 0 {
		d.Warnings = api.FormatMessages(r.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage})
	}
	for in := range b.inputsOf(r.Metafile) {
		st, err := statInput(in)
		if err != nil {
			return d, nil // a file gone already: use the bundle, do not cache it
		}
		d.Inputs = append(d.Inputs, st)
	}
	sort.Slice(d.Inputs, func(i, j int) bool { return d.Inputs[i].Path < d.Inputs[j].Path })
	meta, err := json.Marshal(d)
	if err == nil && os.MkdirAll(b.opts.DepsCache, 0o755) == nil {
		// the metadata last: an entry without it is never read
		if writeAtomic(base+".js", d.js) == nil && writeAtomic(base+".js.map", d.sourceMap) == nil {
			writeAtomic(base+".json", meta)
		}
	}
	return d, nil
}

func readDepEntry(base string) (*depEntry, bool) {
	meta, err := os.ReadFile(base + ".json")
	if err != nil {
		return nil, false
	}
	d := &depEntry{}
	if json.Unmarshal(meta, d) != nil || len(d.Inputs) == 0 {
		return nil, false
	}
	for _, in := range d.Inputs {
		if st, err := statInput(in.Path); err != nil || st != in {
			return nil, false
		}
	}
	if d.js, err = os.ReadFile(base + ".js"); err != nil {
		return nil, false
	}
	if d.sourceMap, err = os.ReadFile(base + ".js.map"); err != nil {
		return nil, false
	}
	return d, true
}

// joinParts writes the dependency part and the function part into one file with one source map
// (an index map with a section per part). The function part runs in a function of its own whose
// require answers the dependency keys from the first part and passes anything else to Node's.
func joinParts(name string, depJS, depMap, fnJS, fnMap []byte) ([]byte, []byte) {
	var js bytes.Buffer
	js.Grow(len(depJS) + len(fnJS) + 512)
	js.WriteString("var __fnDeps$ = (function () { var module = { exports: {} }, exports = module.exports;\n")
	depLine := 1
	part := stripMapURL(depJS)
	js.Write(part)
	js.WriteString("\nreturn module.exports; })();\n(function (require) {\n")
	fnLine := depLine + bytes.Count(part, []byte("\n")) + 3
	js.Write(stripMapURL(fnJS))
	js.WriteString("\n}).call(this, (function (req) {\n" +
		"  var own = function require(id) {\n" +
		"    if (typeof id === \"string\" && id.startsWith(" + strconv.Quote(depPrefix) + ")) return __fnDeps$[id.slice(" +
		strconv.Itoa(len(depPrefix)) + ")]();\n" +
		"    return req(id);\n" +
		"  };\n" +
		"  Object.setPrototypeOf(own, req);\n" +
		"  return own;\n" +
		"})(require));\n")
	js.WriteString("//# sourceMappingURL=" + name + ".js.map\n")
	// an index map, written by hand: encoding/json would validate and copy both maps again
	var sm []byte
	sm = append(sm, `{"version":3,"file":`...)
	sm = append(sm, jsString(name+".js")...)
	sm = append(sm, `,"sections":[{"offset":{"line":`+strconv.Itoa(depLine)+`,"column":0},"map":`...)
	sm = append(sm, bytes.TrimSpace(depMap)...)
	sm = append(sm, `},{"offset":{"line":`+strconv.Itoa(fnLine)+`,"column":0},"map":`...)
	sm = append(sm, bytes.TrimSpace(fnMap)...)
	sm = append(sm, "}]}\n"...)
	return js.Bytes(), sm
}

// stripMapURL drops esbuild's trailing sourceMappingURL comment (the joined file has its own).
func stripMapURL(js []byte) []byte {
	s := bytes.TrimRight(js, "\n")
	if i := bytes.LastIndex(s, []byte("\n//# sourceMappingURL=")); i >= 0 && bytes.IndexByte(s[i+1:], '\n') < 0 {
		s = s[:i]
	}
	return s
}
