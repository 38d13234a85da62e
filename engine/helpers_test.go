package engine

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

// fixture is a project on disk with an engine running its dev build.
type fixture struct {
	t    *testing.T
	dir  string
	p    *project.Project
	b    *bundler.Bundler
	e    *Engine
	mu   sync.Mutex
	logs []Record

	storageURL string
}

// newFixture writes files (fn.yaml included) into a temp project linked to the npm fixture.
func newFixture(t *testing.T, files map[string]string, mode bundler.Mode, cfg Config) *fixture {
	t.Helper()
	dir := t.TempDir()
	for rel, content := range files {
		testutil.WriteFile(t, dir, rel, content)
	}
	testutil.LinkNodeModules(t, dir)
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := p.Entries()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundler.New(bundler.Options{ProjectDir: dir, OutDir: p.StatePath("build"), Dialect: p.Dialect, Target: p.Runtime, Mode: mode}, entries)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Dispose)
	f := &fixture{t: t, dir: dir, p: p, b: b}
	cfg.Node = "node"
	cfg.Dir = dir
	cfg.Dialect = p.Dialect
	cfg.EnvID = p.EnvID
	cfg.RunnerDir = t.TempDir()
	if cfg.Logs == nil {
		cfg.Logs = func(r Record) {
			f.mu.Lock()
			f.logs = append(f.logs, r)
			f.mu.Unlock()
		}
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(2 * time.Second) })
	f.e = e
	if _, err := f.build(); err != nil {
		t.Fatalf("initial load: %v", err)
	}
	return f
}

// swapEngine makes a new engine with cfg on the fixture's project (so new workers; cfg's
// project fields are filled in, its Logs default to none), loads the build into it and makes it
// the fixture's engine. done closes it and puts the previous engine back.
func (f *fixture) swapEngine(cfg Config) (done func()) {
	f.t.Helper()
	cfg.Node, cfg.Dir, cfg.Dialect, cfg.EnvID, cfg.RunnerDir = "node", f.dir, f.p.Dialect, f.p.EnvID, f.t.TempDir()
	if cfg.Logs == nil {
		cfg.Logs = func(Record) {}
	}
	e, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	old := f.e
	f.e = e
	if _, err := f.build(); err != nil {
		e.Close(2 * time.Second)
		f.e = old
		f.t.Fatal(err)
	}
	return func() {
		e.Close(2 * time.Second)
		f.e = old
	}
}

// build rebuilds the bundles and loads them.
func (f *fixture) build() (*LoadReport, error) {
	f.t.Helper()
	return f.e.Load(context.Background(), f.bundlesExcept(""), LoadOptions{})
}

// bundlesExcept rebuilds the bundles and returns them without the named one.
func (f *fixture) bundlesExcept(name string) []Bundle {
	f.t.Helper()
	m, _, err := f.b.Build()
	if err != nil {
		f.t.Fatalf("build: %v", err)
	}
	var bundles []Bundle
	for _, a := range m.Bundles {
		if a.Name != name {
			bundles = append(bundles, Bundle{Name: a.Name, File: f.p.StatePath("build", a.File), Hash: a.Hash, Config: f.p.Function(a.Name)})
		}
	}
	return bundles
}

func (f *fixture) write(rel, content string) { testutil.WriteFile(f.t, f.dir, rel, content) }

func (f *fixture) wx(fn string, data string, id *WXIdentity) *Result {
	return f.e.InvokeWX(context.Background(), WXRequest{Function: fn, Data: json.RawMessage(data), Identity: id, UserInfo: id != nil})
}

func (f *fixture) logsFor(rid string) []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for _, r := range f.logs {
		if r.RequestID == rid {
			out = append(out, r)
		}
	}
	return out
}

func (f *fixture) hasLog(substr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.logs {
		if strings.Contains(r.Message, substr) {
			return true
		}
	}
	return false
}

func decode(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("result %s: %v", raw, err)
	}
	return m
}

func mustOK(t *testing.T, r *Result) map[string]any {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("invocation failed: %s: %s\n%s", r.Err.Kind, r.Err.Message, r.Err.Stack)
	}
	return decode(t, r.Value)
}

func mustEntries(t *testing.T, f *fixture) []project.Entry {
	t.Helper()
	entries, err := f.p.Entries()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func withEnv(c project.FunctionConfig, k, v string) project.FunctionConfig {
	env := map[string]string{k: v}
	for kk, vv := range c.Env {
		env[kk] = vv
	}
	c.Env = env
	return c
}
