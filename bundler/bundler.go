// Package bundler turns a project's function entries into one CommonJS file per bundle with the
// esbuild Go API. It keeps one incremental esbuild context per bundle so that fn dev can rebuild
// only what changed, and it writes output atomically: a failed build leaves the last good output.
package bundler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/fnhq/fn/project"
)

// Mode decides what goes into a bundle.
type Mode string

const (
	// Production bundles every dependency: one self-contained file per bundle.
	Production Mode = "production"
	// Dev leaves packages in node_modules (required at run time), so that a rebuild takes a
	// millisecond and a worker loads its dependencies once.
	Dev Mode = "dev"
)

// ManifestFile is the name of the manifest inside the output directory.
const ManifestFile = "manifest.json"

// Options configure a Bundler.
type Options struct {
	ProjectDir string
	OutDir     string
	Dialect    project.Dialect
	Target     string // e.g. node18
	Mode       Mode
	Minify     bool
	External   []string // packages never bundled (loaded from node_modules at run time)
	// DepsCache, for production builds, is a directory where the packages a bundle requires
	// are kept built, so that a build after an edit only compiles the function's own code (see
	// depscache.go). Empty: every build bundles everything.
	DepsCache string
}

// Artifact is one built bundle.
type Artifact struct {
	Name      string `json:"name"`
	Entry     string `json:"entry"`     // source entry, relative to the project
	File      string `json:"file"`      // bundle file, relative to the output directory
	SourceMap string `json:"sourceMap"` // source map file, relative to the output directory
	Hash      string `json:"hash"`      // sha256 of the bundle file
	Size      int64  `json:"size"`      // bytes of the bundle file
}

// Manifest describes a complete build.
type Manifest struct {
	Dialect  string     `json:"dialect"`
	Mode     Mode       `json:"mode"`
	Target   string     `json:"target"`
	Bundles  []Artifact `json:"bundles"`
	BuildMs  float64    `json:"buildMs"`
	Warnings []string   `json:"warnings,omitempty"`
}

// Bundle returns the named artifact.
func (m *Manifest) Bundle(name string) (Artifact, bool) {
	for _, a := range m.Bundles {
		if a.Name == name {
			return a, true
		}
	}
	return Artifact{}, false
}

// BuildError carries esbuild's messages for a failed build.
type BuildError struct {
	Bundle   string
	Messages []api.Message
}

func (e *BuildError) Error() string { return e.Format(false) }

// Format renders the messages as esbuild does (file:line:col and a code frame).
func (e *BuildError) Format(color bool) string {
	text := api.FormatMessages(e.Messages, api.FormatMessagesOptions{Kind: api.ErrorMessage, Color: color, TerminalWidth: 100})
	return strings.TrimRight(strings.Join(text, ""), "\n")
}

// Bundler owns the esbuild contexts of a project's bundles.
type Bundler struct {
	opts    Options
	mu      sync.Mutex
	bundles map[string]*bundle
	last    *Manifest
	// shared is one context over every wx entry for production builds: the functions' common
	// dependencies (wx-server-sdk is 2.7 MB) are parsed once instead of once per function.
	shared api.BuildContext
	// depLocks holds a mutex per dependency bundle of the cache (depscache.go)
	depLocks sync.Map
}

type bundle struct {
	entry  project.Entry
	ctx    api.BuildContext
	out    map[string][]byte // last good output: file name → content
	art    Artifact
	inputs map[string]bool // absolute paths of the source files in the last good build
	// inPlace: the entry runs from the project directory (dev, lean JavaScript); no esbuild context
	inPlace bool
}

// New creates one esbuild context per entry. Nothing is built yet.
func New(opts Options, entries []project.Entry) (*Bundler, error) {
	if opts.Mode == "" {
		opts.Mode = Production
	}
	b := &Bundler{opts: opts, bundles: map[string]*bundle{}}
	for _, e := range entries {
		if err := b.add(e); err != nil {
			b.Dispose()
			return nil, err
		}
	}
	return b, nil
}

func (b *Bundler) add(e project.Entry) error {
	if b.sharedMode() {
		b.bundles[e.Name] = &bundle{entry: e}
		return b.resetShared()
	}
	if b.runsInPlace(e) {
		b.bundles[e.Name] = &bundle{entry: e, inPlace: true}
		return nil
	}
	ctx, cerr := api.Context(b.buildOptions(e))
	if cerr != nil {
		return &BuildError{Bundle: e.Name, Messages: cerr.Errors}
	}
	b.bundles[e.Name] = &bundle{entry: e, ctx: ctx}
	return nil
}

func (b *Bundler) sharedMode() bool {
	return b.opts.Mode == Production && b.opts.Dialect == project.WX
}

// resetShared recreates the shared context over the current entries.
func (b *Bundler) resetShared() error {
	if b.shared != nil {
		b.shared.Dispose()
		b.shared = nil
	}
	if len(b.bundles) == 0 {
		return nil
	}
	o := b.buildOptions(project.Entry{})
	o.Outfile, o.EntryPoints = "", nil
	o.Outdir = b.opts.OutDir
	for _, name := range b.namesLocked() {
		o.EntryPointsAdvanced = append(o.EntryPointsAdvanced, api.EntryPoint{InputPath: b.bundles[name].entry.Path, OutputPath: name})
	}
	ctx, cerr := api.Context(o)
	if cerr != nil {
		return &BuildError{Bundle: "functions", Messages: cerr.Errors}
	}
	b.shared = ctx
	return nil
}

// SetEntries adds contexts for new entries and disposes of those that are gone.
func (b *Bundler) SetEntries(entries []project.Entry) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]project.Entry{}
	for _, e := range entries {
		want[e.Name] = e
	}
	changed := false
	for name, bd := range b.bundles {
		if e, ok := want[name]; !ok || e.Path != bd.entry.Path {
			if bd.ctx != nil {
				bd.ctx.Dispose()
			}
			delete(b.bundles, name)
			changed = true
		}
	}
	for _, e := range entries {
		if _, ok := b.bundles[e.Name]; !ok {
			if err := b.add(e); err != nil {
				return err
			}
		}
	}
	if changed && b.sharedMode() {
		return b.resetShared()
	}
	return nil
}

var nodeMajorRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^node(\d+)$`) })

func (b *Bundler) buildOptions(e project.Entry) api.BuildOptions {
	version := "18"
	if m := nodeMajorRE().FindStringSubmatch(b.opts.Target); m != nil {
		version = m[1]
	}
	o := api.BuildOptions{
		AbsWorkingDir: b.opts.ProjectDir,
		Bundle:        true,
		Platform:      api.PlatformNode,
		Format:        api.FormatCommonJS,
		// Packages resolve as Node resolves them for the CommonJS code the bundle becomes: "main"
		// first, and in "exports" the require/node/default conditions only. esbuild otherwise adds
		// the bundler-only "module" condition, which sends require('underscore') (leancloud-storage
		// 3.x) to an ES module build that breaks at run time.
		MainFields:        []string{"main", "module"},
		Conditions:        []string{},
		Engines:           []api.Engine{{Name: api.EngineNode, Version: version}},
		Outfile:           filepath.Join(b.opts.OutDir, e.Name+".js"),
		Sourcemap:         api.SourceMapLinked,
		SourcesContent:    api.SourcesContentExclude,
		Write:             false,
		LogLevel:          api.LogLevelSilent,
		External:          append([]string(nil), b.opts.External...),
		MinifyWhitespace:  b.opts.Minify,
		MinifySyntax:      b.opts.Minify,
		MinifyIdentifiers: b.opts.Minify,
		KeepNames:         true, // function names stay readable in stack traces and logs
		Plugins:           []api.Plugin{nativeAddonPlugin()},
		Metafile:          true, // which source files each bundle uses, so a save rebuilds only those
	}
	if b.opts.Mode == Dev {
		o.Packages = api.PackagesExternal
	}
	if b.opts.Dialect == project.Lean {
		// The generated entry loads the user's cloud code and exports the SAME leanengine module
		// instance it registered its functions with, so the runner dispatches from that registry.
		rel, _ := filepath.Rel(b.opts.ProjectDir, e.Path)
		o.Stdin = &api.StdinOptions{
			Contents: "const AV = require('leanengine');\n" +
				"require(" + jsString("./"+filepath.ToSlash(rel)) + ");\n" +
				"module.exports = AV;\n",
			ResolveDir: b.opts.ProjectDir,
			Sourcefile: "fn-lean-entry.js",
			Loader:     api.LoaderJS,
		}
	} else {
		o.EntryPoints = []string{e.Path}
	}
	return o
}

func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// nativeAddonPlugin rejects compiled .node addons, which cannot live inside a single-file bundle.
func nativeAddonPlugin() api.Plugin {
	return api.Plugin{Name: "fn-native-addons", Setup: func(pb api.PluginBuild) {
		pb.OnResolve(api.OnResolveOptions{Filter: `\.node$`}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
			pkg := packageOf(args.Importer)
			return api.OnResolveResult{}, fmt.Errorf("native addon %q (required by package %s) cannot be bundled: fn ships each "+
				"function as one JavaScript file and a compiled .node file cannot go inside it. Use a pure-JavaScript "+
				"alternative, or list %q under build.external in fn.yaml to load it from node_modules at run time", args.Path, pkg, pkg)
		})
	}}
}

// packageOf names the npm package a file belongs to, from its last node_modules segment.
func packageOf(file string) string {
	parts := strings.Split(filepath.ToSlash(file), "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == "node_modules" {
			if strings.HasPrefix(parts[i+1], "@") && i+2 < len(parts) {
				return parts[i+1] + "/" + parts[i+2]
			}
			return parts[i+1]
		}
	}
	return "your code (" + filepath.Base(file) + ")"
}

// inputsOf reads the source files of a build from esbuild's metafile.
func (b *Bundler) inputsOf(metafile string) map[string]bool {
	var meta struct {
		Inputs map[string]json.RawMessage `json:"inputs"`
	}
	if json.Unmarshal([]byte(metafile), &meta) != nil {
		return nil
	}
	inputs := make(map[string]bool, len(meta.Inputs))
	for rel := range meta.Inputs {
		if strings.Contains(rel, ":") { // <stdin> and namespaced virtual modules
			continue
		}
		inputs[filepath.Join(b.opts.ProjectDir, filepath.FromSlash(rel))] = true
	}
	return inputs
}

// Affected returns the bundles whose last good build read any of the given files, and the
// bundles that have never built successfully (a save may be what fixes them).
func (b *Bundler) Affected(paths []string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var names []string
	for _, name := range b.namesLocked() {
		bd := b.bundles[name]
		hit := bd.art.Hash == ""
		for _, p := range paths {
			if hit {
				break
			}
			hit = bd.inputs[p] || (bd.inPlace && InProjectTree(b.opts.ProjectDir, p))
		}
		if hit {
			names = append(names, name)
		}
	}
	return names
}

// Names lists the bundles, sorted.
func (b *Bundler) Names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.namesLocked()
}

func (b *Bundler) namesLocked() []string {
	names := make([]string, 0, len(b.bundles))
	for n := range b.bundles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build rebuilds every bundle and writes the output. See Rebuild.
func (b *Bundler) Build() (*Manifest, []string, error) {
	return b.Rebuild(nil)
}

// result is one bundle's build within a Rebuild.
type result struct {
	name   string
	out    map[string][]byte
	warns  []string
	err    error
	inputs map[string]bool
}

// splitAll builds every named bundle in two parts (depscache.go), in parallel; false when one of
// them cannot be (unknown, an ESM project, a case the split does not reproduce exactly): the
// caller builds them whole instead.
func (b *Bundler) splitAll(names []string) ([]result, bool) {
	if moduleMode(b.opts.ProjectDir) {
		return nil, false
	}
	entries := make([]project.Entry, len(names))
	for i, name := range names {
		bd, ok := b.bundles[name]
		if !ok {
			return nil, false
		}
		entries[i] = bd.entry
	}
	results := make([]result, len(names))
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i := range names {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, inputs, warns, err := b.splitBuild(entries[i])
			if err != nil {
				failed.Store(true)
				return
			}
			results[i] = result{name: names[i], out: out, warns: warns, inputs: inputs}
		}(i)
	}
	wg.Wait()
	return results, !failed.Load()
}

// Rebuild rebuilds the named bundles (all when names is nil) and, only if every one of them
// succeeds, writes their files and a new manifest atomically. It returns the manifest and the
// names of bundles whose output changed. On error nothing is written.
func (b *Bundler) Rebuild(names []string) (*Manifest, []string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()
	if names == nil {
		names = b.namesLocked()
	}
	results := make([]result, len(names))
	split := false
	if b.opts.DepsCache != "" && b.opts.Mode == Production {
		if b.shared != nil {
			names = b.namesLocked()
		}
		if out, ok := b.splitAll(names); ok {
			results, split = out, true
		}
	}
	if b.shared != nil && !split {
		// one build emits every bundle
		names = b.namesLocked()
		results = make([]result, len(names))
		r := b.shared.Rebuild()
		var warns []string
		if len(r.Warnings) > 0 {
			warns = api.FormatMessages(r.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage})
		}
		for i, name := range names {
			results[i] = result{name: name, out: map[string][]byte{}}
			if len(r.Errors) > 0 && i == 0 {
				results[i].err = &BuildError{Bundle: name, Messages: r.Errors}
			}
		}
		if len(results) > 0 {
			results[0].warns = warns
		}
		for _, f := range r.OutputFiles {
			base := filepath.Base(f.Path)
			name := strings.TrimSuffix(strings.TrimSuffix(base, ".map"), ".js")
			for i := range results {
				if results[i].name == name {
					results[i].out[base] = f.Contents
				}
			}
		}
	}
	var wg sync.WaitGroup
	for i, name := range names {
		if b.shared != nil || split {
			break
		}
		bd, ok := b.bundles[name]
		if !ok {
			results[i] = result{name: name, err: fmt.Errorf("unknown bundle %q", name)}
			continue
		}
		wg.Add(1)
		go func(i int, name string, bd *bundle) {
			defer wg.Done()
			if bd.inPlace {
				out, inputs, err := b.inPlaceLoader(bd.entry)
				results[i] = result{name: name, out: out, inputs: inputs, err: err}
				return
			}
			r := bd.ctx.Rebuild()
			res := result{name: name}
			if len(r.Errors) > 0 {
				res.err = &BuildError{Bundle: name, Messages: r.Errors}
			} else {
				res.out = map[string][]byte{}
				for _, f := range r.OutputFiles {
					res.out[filepath.Base(f.Path)] = f.Contents
				}
				res.inputs = b.inputsOf(r.Metafile)
			}
			if len(r.Warnings) > 0 {
				res.warns = api.FormatMessages(r.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage})
			}
			results[i] = res
		}(i, name, bd)
	}
	wg.Wait()
	var warnings []string
	var errs []error
	for _, r := range results {
		warnings = append(warnings, r.warns...)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		return nil, nil, joinBuildErrors(errs)
	}
	if err := os.MkdirAll(b.opts.OutDir, 0o755); err != nil {
		return nil, nil, err
	}
	var changed []string
	for _, r := range results {
		bd := b.bundles[r.name]
		if r.inputs != nil {
			bd.inputs = r.inputs
		}
		js := r.out[r.name+".js"]
		sum := sha256.Sum256(js)
		art := Artifact{
			Name: r.name, File: r.name + ".js", SourceMap: r.name + ".js.map",
			Hash: hex.EncodeToString(sum[:]), Size: int64(len(js)),
		}
		if rel, err := filepath.Rel(b.opts.ProjectDir, bd.entry.Path); err == nil {
			art.Entry = filepath.ToSlash(rel)
		}
		if art.Hash == bd.art.Hash && b.filesPresent(art) {
			continue
		}
		for file, content := range r.out {
			if err := writeAtomic(filepath.Join(b.opts.OutDir, file), content); err != nil {
				return nil, nil, err
			}
		}
		bd.out, bd.art = r.out, art
		changed = append(changed, r.name)
	}
	m := &Manifest{Dialect: string(b.opts.Dialect), Mode: b.opts.Mode, Target: b.opts.Target, Warnings: warnings}
	for _, name := range b.namesLocked() {
		if art := b.bundles[name].art; art.Hash != "" {
			m.Bundles = append(m.Bundles, art)
		}
	}
	m.BuildMs = float64(time.Since(start).Microseconds()) / 1000
	if err := b.writeManifest(m); err != nil {
		return nil, nil, err
	}
	b.last = m
	return m, changed, nil
}

func (b *Bundler) filesPresent(a Artifact) bool {
	_, err1 := os.Stat(filepath.Join(b.opts.OutDir, a.File))
	_, err2 := os.Stat(filepath.Join(b.opts.OutDir, a.SourceMap))
	return err1 == nil && err2 == nil
}

// writeManifest writes the manifest and removes bundle files that the previous manifest had and
// this one does not (functions that were deleted).
func (b *Bundler) writeManifest(m *Manifest) error {
	prev, _ := ReadManifest(b.opts.OutDir)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(b.opts.OutDir, ManifestFile), append(data, '\n')); err != nil {
		return err
	}
	if prev != nil {
		for _, a := range prev.Bundles {
			if _, ok := m.Bundle(a.Name); !ok {
				os.Remove(filepath.Join(b.opts.OutDir, a.File))
				os.Remove(filepath.Join(b.opts.OutDir, a.SourceMap))
			}
		}
	}
	return nil
}

// ReadManifest reads the manifest of a build directory.
func ReadManifest(outDir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(outDir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(outDir, ManifestFile), err)
	}
	return &m, nil
}

// Dispose releases every esbuild context.
func (b *Bundler) Dispose() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bd := range b.bundles {
		if bd.ctx != nil {
			bd.ctx.Dispose()
		}
	}
	if b.shared != nil {
		b.shared.Dispose()
		b.shared = nil
	}
	b.bundles = map[string]*bundle{}
}

func writeAtomic(path string, content []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// MultiBuildError is the failure of several bundles at once.
type MultiBuildError struct{ Errors []*BuildError }

func (e *MultiBuildError) Error() string { return e.Format(false) }

// Format renders every bundle's messages.
func (e *MultiBuildError) Format(color bool) string {
	parts := make([]string, len(e.Errors))
	for i, be := range e.Errors {
		parts[i] = be.Format(color)
	}
	return strings.Join(parts, "\n\n")
}

func joinBuildErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	m := &MultiBuildError{}
	for _, err := range errs {
		var be *BuildError
		if errors.As(err, &be) {
			m.Errors = append(m.Errors, be)
		} else {
			return errors.Join(errs...)
		}
	}
	return m
}
