// Package controltest is the conformance suite of control.Plane: every backend runs it, so
// that the embedded SQLite plane and a PostgreSQL one keep the same contract.
package controltest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/project"
)

// Options describe what a backend can do beyond the interface.
type Options struct {
	// Reopen opens again the storage that p was opened on; the suite has closed p. nil when the
	// backend keeps nothing (those tests are skipped).
	Reopen func(t *testing.T, p control.Plane) control.Plane
}

// Run runs the suite; open returns a plane over new, empty storage for one test (the suite
// closes it). Times a backend returns are compared with reflect.DeepEqual inside api types,
// so a backend returns them in UTC; the suite only stores whole seconds.
func Run(t *testing.T, open func(t *testing.T) control.Plane, o Options) {
	s := &suite{open: open, o: o}
	t.Run("AdminToken", s.adminToken)
	t.Run("Apps", s.apps)
	t.Run("UnknownApp", s.unknownApp)
	t.Run("Versions", s.versions)
	t.Run("Activate", s.activate)
	t.Run("Discard", s.discard)
	t.Run("ConcurrentVersions", s.concurrentVersions)
	t.Run("Secrets", s.secrets)
	t.Run("Sessions", s.sessions)
	t.Run("ConsoleSessions", s.consoleSessions)
	t.Run("Online", s.online)
	t.Run("ConcurrentOnline", s.concurrentOnline)
	t.Run("DeleteApp", s.deleteApp)
	t.Run("Cancelled", s.cancelled)
	t.Run("Reopen", s.reopen)
	t.Run("ImportStateJSON", s.importStateJSON)
}

type suite struct {
	open func(t *testing.T) control.Plane
	o    Options
}

var ctx = context.Background()

// plane opens a plane the test closes at its end.
func (s *suite) plane(t *testing.T) *handle {
	h := &handle{Plane: s.open(t)}
	t.Cleanup(func() { h.close(t) })
	return h
}

type handle struct {
	control.Plane
	closed bool
}

func (h *handle) close(t *testing.T) {
	if h.closed {
		return
	}
	h.closed = true
	if err := h.Plane.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// reopen closes h and opens its storage again.
func (s *suite) reopen(t *testing.T) {
	if s.o.Reopen == nil {
		t.Skip("the backend keeps nothing across a reopen")
	}
	h := s.plane(t)
	a := mkApp(t, h, "kept")
	b := mkApp(t, h, "other")
	must(t, h.SetAdminTokenHash(ctx, "f00d"))
	must(t, h.SetSecret(ctx, a.ID, "API_KEY", "s3cret"))
	v1 := mkVersion(t, h, a.ID, "production", "one")
	v2 := mkVersion(t, h, a.ID, "staging", "two")
	v3 := mkVersion(t, h, a.ID, "production", "three")
	must(t, h.Activate(ctx, a.ID, "production", v1.ID))
	must(t, h.Activate(ctx, a.ID, "staging", v2.ID))
	must(t, h.DiscardVersion(ctx, a.ID, v3.ID)) // its id must not come back
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	must(t, h.PutSession(ctx, "tok", control.Session{AppID: a.ID, OpenID: "o1", WXAppID: "wx1", Expires: exp}))
	before, err := h.Versions(ctx, a.ID)
	must(t, err)

	h.close(t)
	p := &handle{Plane: s.o.Reopen(t, h.Plane)}
	t.Cleanup(func() { p.close(t) })

	if got, err := p.AdminTokenHash(ctx); err != nil || got != "f00d" {
		t.Errorf("AdminTokenHash after reopen = %q, %v", got, err)
	}
	apps, err := p.Apps(ctx)
	must(t, err)
	if !reflect.DeepEqual(apps, []api.App{a, b}) {
		t.Errorf("Apps after reopen = %+v, want %+v", apps, []api.App{a, b})
	}
	if sec, err := p.WXSecret(ctx, a.ID); err != nil || sec != "wxsecret-kept" {
		t.Errorf("WXSecret after reopen = %q, %v", sec, err)
	}
	after, err := p.Versions(ctx, a.ID)
	must(t, err)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("Versions after reopen:\n%+v\nwant\n%+v", after, before)
	}
	if act, err := p.Active(ctx, a.ID, "production"); err != nil || act.ID != v1.ID {
		t.Errorf("Active production after reopen = %d, %v; want %d", act.ID, err, v1.ID)
	}
	if sec, err := p.Secrets(ctx, a.ID); err != nil || !reflect.DeepEqual(sec, map[string]string{"API_KEY": "s3cret"}) {
		t.Errorf("Secrets after reopen = %v, %v", sec, err)
	}
	if sess, err := p.Session(ctx, "tok"); err != nil || sess.OpenID != "o1" || !sess.Expires.Equal(exp) {
		t.Errorf("Session after reopen = %+v, %v", sess, err)
	}
	if v := mkVersion(t, p, a.ID, "staging", "four"); v.ID != v3.ID+1 {
		t.Errorf("the first version after reopen got id %d, want %d (ids are never reused)", v.ID, v3.ID+1)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want one wrapping %q", what, err, want)
	}
}

func newApp(name string) api.App {
	return api.App{ID: name + "-id-fnSrv", Name: name, AppKey: name + "-ak", MasterKey: name + "-mk", HookKey: name + "-hk",
		EnvID: name + "-abc123", WXAppID: "wx" + name, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func mkApp(t *testing.T, p control.Plane, name string) api.App {
	t.Helper()
	a := newApp(name)
	must(t, p.CreateApp(ctx, a, "wxsecret-"+name))
	return a
}

func manifest(tag string) api.Manifest {
	return api.Manifest{
		Dialect: "wx",
		Bundles: []api.Bundle{{Name: "hello", Hash: fmt.Sprintf("%064x", len(tag)), MapHash: fmt.Sprintf("%064x", len(tag)+1), Size: 42,
			Config: project.FunctionConfig{Timeout: 3, Memory: 256, MaxInstances: 10, Concurrency: 2, Env: map[string]string{"TAG": tag}}}},
		Timers:   []project.Timer{{Name: "nightly", Function: "hello", Cron: "0 0 3 * * * *", Params: `{"t":"` + tag + `"}`, Environments: []string{"production"}}},
		Timezone: "Asia/Shanghai",
	}
}

func mkVersion(t *testing.T, p control.Plane, appID, env, tag string) api.Version {
	t.Helper()
	m := manifest(tag)
	v, err := p.CreateVersion(ctx, appID, api.Version{Env: env, CreatedAt: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC),
		Message: "deploy " + tag, Who: "alice", Digest: m.Digest(), Manifest: m})
	must(t, err)
	return v
}

func (s *suite) adminToken(t *testing.T) {
	p := s.plane(t)
	if h, err := p.AdminTokenHash(ctx); err != nil || h != "" {
		t.Fatalf("AdminTokenHash of a new plane = %q, %v; want \"\"", h, err)
	}
	must(t, p.SetAdminTokenHash(ctx, "aaaa"))
	must(t, p.SetAdminTokenHash(ctx, "bbbb"))
	if h, err := p.AdminTokenHash(ctx); err != nil || h != "bbbb" {
		t.Fatalf("AdminTokenHash = %q, %v; want the latest, bbbb", h, err)
	}
}

func (s *suite) apps(t *testing.T) {
	p := s.plane(t)
	if apps, err := p.Apps(ctx); err != nil || len(apps) != 0 {
		t.Fatalf("Apps of a new plane = %v, %v", apps, err)
	}
	zeta := mkApp(t, p, "zeta")
	alpha := mkApp(t, p, "alpha")
	noWX := newApp("plain")
	noWX.WXAppID = ""
	must(t, p.CreateApp(ctx, noWX, ""))

	apps, err := p.Apps(ctx)
	must(t, err)
	if want := []api.App{alpha, noWX, zeta}; !reflect.DeepEqual(apps, want) {
		t.Fatalf("Apps = %+v, want by name %+v", apps, want)
	}
	for _, key := range []string{zeta.ID, zeta.Name} {
		got, err := p.App(ctx, key)
		if err != nil || !reflect.DeepEqual(got, zeta) {
			t.Errorf("App(%q) = %+v, %v; want %+v", key, got, err, zeta)
		}
	}
	_, err = p.App(ctx, "nope")
	wantErr(t, "App of an unknown name", err, control.ErrNotFound)

	if sec, err := p.WXSecret(ctx, zeta.ID); err != nil || sec != "wxsecret-zeta" {
		t.Errorf("WXSecret = %q, %v", sec, err)
	}
	if sec, err := p.WXSecret(ctx, noWX.ID); err != nil || sec != "" {
		t.Errorf("WXSecret of an app without one = %q, %v", sec, err)
	}

	sameID := newApp("fresh")
	sameID.ID = zeta.ID
	wantErr(t, "CreateApp with a taken id", p.CreateApp(ctx, sameID, ""), control.ErrExists)
	sameName := newApp("alpha")
	sameName.ID = "another-id"
	wantErr(t, "CreateApp with a taken name", p.CreateApp(ctx, sameName, ""), control.ErrExists)
	if apps, _ := p.Apps(ctx); len(apps) != 3 {
		t.Errorf("failed creates changed the apps: %+v", apps)
	}
	if got, _ := p.App(ctx, zeta.ID); !reflect.DeepEqual(got, zeta) {
		t.Errorf("a failed create changed the app it collided with: %+v", got)
	}
	for _, bad := range []api.App{{Name: "noid"}, {ID: "noname"}} {
		if err := p.CreateApp(ctx, bad, ""); err == nil {
			t.Errorf("CreateApp(%+v) without an id or name succeeded", bad)
		}
	}
}

func (s *suite) unknownApp(t *testing.T) {
	p := s.plane(t)
	mkApp(t, p, "known")
	const id = "missing-fnSrv"
	calls := map[string]func() error{
		"DeleteApp":      func() error { return p.DeleteApp(ctx, id) },
		"WXSecret":       func() error { _, err := p.WXSecret(ctx, id); return err },
		"CreateVersion":  func() error { _, err := p.CreateVersion(ctx, id, api.Version{Env: "production"}); return err },
		"DiscardVersion": func() error { return p.DiscardVersion(ctx, id, 1) },
		"Activate":       func() error { return p.Activate(ctx, id, "production", 1) },
		"Versions":       func() error { _, err := p.Versions(ctx, id); return err },
		"Version":        func() error { _, err := p.Version(ctx, id, 1); return err },
		"Active":         func() error { _, err := p.Active(ctx, id, "production"); return err },
		"SetSecret":      func() error { return p.SetSecret(ctx, id, "A", "b") },
		"DeleteSecret":   func() error { return p.DeleteSecret(ctx, id, "A") },
		"Secrets":        func() error { _, err := p.Secrets(ctx, id); return err },
		"PutSession": func() error {
			return p.PutSession(ctx, "t", control.Session{AppID: id, OpenID: "o", Expires: time.Now().Add(time.Hour)})
		},
	}
	for name, call := range calls {
		wantErr(t, name+" of an unknown app", call(), control.ErrNotFound)
	}
}

func (s *suite) versions(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	if vs, err := p.Versions(ctx, a.ID); err != nil || len(vs) != 0 {
		t.Fatalf("Versions of a new app = %v, %v", vs, err)
	}
	m := manifest("first")
	in := api.Version{ID: 99, Env: "staging", CreatedAt: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), Message: "first deploy",
		Who: "bob", Digest: m.Digest(), Manifest: m, Active: true, Promoted: 7}
	v1, err := p.CreateVersion(ctx, a.ID, in)
	must(t, err)
	want := in
	want.ID, want.Active = 1, false // the id is the plane's; a new version is not active
	if !reflect.DeepEqual(v1, want) {
		t.Fatalf("CreateVersion = %+v\nwant %+v", v1, want)
	}
	v2 := mkVersion(t, p, a.ID, "production", "second")
	v3 := mkVersion(t, p, a.ID, "staging", "third")
	if v2.ID != 2 || v3.ID != 3 {
		t.Fatalf("ids %d, %d; want 2, 3 (the next integer per app, whatever the environment)", v2.ID, v3.ID)
	}
	// another app counts on its own
	b := mkApp(t, p, "bpp")
	if vb := mkVersion(t, p, b.ID, "production", "b"); vb.ID != 1 {
		t.Fatalf("the first version of a second app has id %d, want 1", vb.ID)
	}
	vs, err := p.Versions(ctx, a.ID)
	must(t, err)
	if !reflect.DeepEqual(vs, []api.Version{v1, v2, v3}) {
		t.Fatalf("Versions = %+v\nwant oldest first %+v", vs, []api.Version{v1, v2, v3})
	}
	got, err := p.Version(ctx, a.ID, 2)
	must(t, err)
	if !reflect.DeepEqual(got, v2) || got.Manifest.Digest() != v2.Digest {
		t.Fatalf("Version(2) = %+v, want %+v", got, v2)
	}
	_, err = p.Version(ctx, a.ID, 4)
	wantErr(t, "Version of an unknown id", err, control.ErrNotFound)
	_, err = p.Version(ctx, b.ID, 2)
	wantErr(t, "Version of another app's id", err, control.ErrNotFound)
	if _, err := p.CreateVersion(ctx, a.ID, api.Version{Manifest: m}); err == nil {
		t.Error("CreateVersion without an environment succeeded")
	}
}

func (s *suite) activate(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	_, err := p.Active(ctx, a.ID, "production")
	wantErr(t, "Active before any activation", err, control.ErrNotFound)

	p1 := mkVersion(t, p, a.ID, "production", "p1")
	s1 := mkVersion(t, p, a.ID, "staging", "s1")
	p2 := mkVersion(t, p, a.ID, "production", "p2")
	_, err = p.Active(ctx, a.ID, "production")
	wantErr(t, "Active when versions exist but none is active", err, control.ErrNotFound)

	must(t, p.Activate(ctx, a.ID, "production", p1.ID))
	must(t, p.Activate(ctx, a.ID, "staging", s1.ID))
	s.wantActive(t, p, a.ID, map[int]bool{p1.ID: true, s1.ID: true})

	must(t, p.Activate(ctx, a.ID, "production", p2.ID))
	s.wantActive(t, p, a.ID, map[int]bool{p2.ID: true, s1.ID: true}) // staging untouched

	// rollback: an older version becomes active again
	must(t, p.Activate(ctx, a.ID, "production", p1.ID))
	s.wantActive(t, p, a.ID, map[int]bool{p1.ID: true, s1.ID: true})
	// activating the active version changes nothing
	must(t, p.Activate(ctx, a.ID, "production", p1.ID))
	s.wantActive(t, p, a.ID, map[int]bool{p1.ID: true, s1.ID: true})

	wantErr(t, "Activate of a staging version in production", p.Activate(ctx, a.ID, "production", s1.ID), control.ErrConflict)
	wantErr(t, "Activate of an unknown version", p.Activate(ctx, a.ID, "production", 42), control.ErrNotFound)
	s.wantActive(t, p, a.ID, map[int]bool{p1.ID: true, s1.ID: true})

	got, err := p.Active(ctx, a.ID, "production")
	must(t, err)
	want := p1
	want.Active = true
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Active = %+v\nwant %+v", got, want)
	}
	// another app's environments are its own
	b := mkApp(t, p, "bpp")
	_, err = p.Active(ctx, b.ID, "production")
	wantErr(t, "Active of an app that never deployed", err, control.ErrNotFound)
}

// wantActive checks the Active flags Versions and Version report.
func (s *suite) wantActive(t *testing.T, p control.Plane, appID string, active map[int]bool) {
	t.Helper()
	vs, err := p.Versions(ctx, appID)
	must(t, err)
	for _, v := range vs {
		if v.Active != active[v.ID] {
			t.Errorf("Versions: version %d (%s) active = %v, want %v", v.ID, v.Env, v.Active, active[v.ID])
		}
		one, err := p.Version(ctx, appID, v.ID)
		must(t, err)
		if one.Active != active[v.ID] {
			t.Errorf("Version(%d).Active = %v, want %v", v.ID, one.Active, active[v.ID])
		}
	}
}

func (s *suite) discard(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	v1 := mkVersion(t, p, a.ID, "production", "v1")
	v2 := mkVersion(t, p, a.ID, "production", "v2")
	must(t, p.DiscardVersion(ctx, a.ID, v2.ID))
	_, err := p.Version(ctx, a.ID, v2.ID)
	wantErr(t, "Version of a discarded version", err, control.ErrNotFound)
	wantErr(t, "Activate of a discarded version", p.Activate(ctx, a.ID, "production", v2.ID), control.ErrNotFound)
	wantErr(t, "DiscardVersion twice", p.DiscardVersion(ctx, a.ID, v2.ID), control.ErrNotFound)
	if v3 := mkVersion(t, p, a.ID, "production", "v3"); v3.ID != 3 {
		t.Fatalf("the version after a discarded 2 got id %d, want 3 (ids are never reused)", v3.ID)
	}
	// the discarded id is not reused even when it was the latest
	v4 := mkVersion(t, p, a.ID, "production", "v4")
	must(t, p.DiscardVersion(ctx, a.ID, v4.ID))
	if v5 := mkVersion(t, p, a.ID, "production", "v5"); v5.ID != 5 {
		t.Fatalf("the version after the discarded latest 4 got id %d, want 5", v5.ID)
	}
	// active and formerly active versions are history
	must(t, p.Activate(ctx, a.ID, "production", v1.ID))
	wantErr(t, "DiscardVersion of the active version", p.DiscardVersion(ctx, a.ID, v1.ID), control.ErrConflict)
	must(t, p.Activate(ctx, a.ID, "production", 5))
	wantErr(t, "DiscardVersion of a formerly active version", p.DiscardVersion(ctx, a.ID, v1.ID), control.ErrConflict)
	vs, err := p.Versions(ctx, a.ID)
	must(t, err)
	var ids []int
	for _, v := range vs {
		ids = append(ids, v.ID)
	}
	if !reflect.DeepEqual(ids, []int{1, 3, 5}) {
		t.Fatalf("versions %v, want [1 3 5]", ids)
	}
}

func (s *suite) concurrentVersions(t *testing.T) {
	p := s.plane(t)
	apps := []api.App{mkApp(t, p, "one"), mkApp(t, p, "two")}
	envs := []string{"production", "staging"}
	const workers, each = 20, 5
	type made struct {
		app string
		v   api.Version
	}
	results := make(chan made, workers*each)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			app, env := apps[w%2].ID, envs[(w/2)%2]
			for i := 0; i < each; i++ {
				m := manifest(fmt.Sprintf("w%d-%d", w, i))
				v, err := p.CreateVersion(ctx, app, api.Version{Env: env, Digest: m.Digest(), Manifest: m, CreatedAt: time.Now().UTC().Truncate(time.Second)})
				if err != nil {
					t.Errorf("CreateVersion: %v", err)
					return
				}
				if err := p.Activate(ctx, app, env, v.ID); err != nil {
					t.Errorf("Activate: %v", err)
					return
				}
				results <- made{app, v}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	byApp := map[string][]int{}
	env := map[string]map[int]string{}
	digest := map[string]map[int]string{}
	for r := range results {
		byApp[r.app] = append(byApp[r.app], r.v.ID)
		if env[r.app] == nil {
			env[r.app], digest[r.app] = map[int]string{}, map[int]string{}
		}
		env[r.app][r.v.ID], digest[r.app][r.v.ID] = r.v.Env, r.v.Digest
	}
	for _, a := range apps {
		ids := byApp[a.ID]
		sort.Ints(ids)
		want := make([]int, workers/2*each)
		for i := range want {
			want[i] = i + 1
		}
		if !reflect.DeepEqual(ids, want) {
			t.Errorf("app %s: ids %v, want each of 1..%d once", a.Name, ids, len(want))
		}
		stored, err := p.Versions(ctx, a.ID)
		must(t, err)
		if len(stored) != len(want) {
			t.Errorf("app %s: %d versions stored, want %d", a.Name, len(stored), len(want))
		}
		for _, v := range stored {
			if v.Env != env[a.ID][v.ID] || v.Digest != digest[a.ID][v.ID] || v.Manifest.Digest() != v.Digest {
				t.Errorf("app %s version %d: stored %s/%s, created %s/%s", a.Name, v.ID, v.Env, v.Digest[:8], env[a.ID][v.ID], digest[a.ID][v.ID][:8])
			}
		}
		// each environment runs one of its own versions
		for _, e := range envs {
			act, err := p.Active(ctx, a.ID, e)
			must(t, err)
			if act.Env != e || env[a.ID][act.ID] != e {
				t.Errorf("app %s: the active version of %s is %d of %s", a.Name, e, act.ID, act.Env)
			}
		}
	}
}

func (s *suite) secrets(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	b := mkApp(t, p, "bpp")
	if sec, err := p.Secrets(ctx, a.ID); err != nil || len(sec) != 0 {
		t.Fatalf("Secrets of a new app = %v, %v", sec, err)
	}
	must(t, p.SetSecret(ctx, a.ID, "DB_URL", "postgres://x"))
	must(t, p.SetSecret(ctx, a.ID, "TOKEN", "one"))
	must(t, p.SetSecret(ctx, a.ID, "TOKEN", "two"))
	must(t, p.SetSecret(ctx, a.ID, "EMPTY", ""))
	must(t, p.SetSecret(ctx, b.ID, "TOKEN", "b's"))
	got, err := p.Secrets(ctx, a.ID)
	must(t, err)
	if want := map[string]string{"DB_URL": "postgres://x", "TOKEN": "two", "EMPTY": ""}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Secrets = %v, want %v", got, want)
	}
	must(t, p.DeleteSecret(ctx, a.ID, "DB_URL"))
	wantErr(t, "DeleteSecret of a deleted secret", p.DeleteSecret(ctx, a.ID, "DB_URL"), control.ErrNotFound)
	wantErr(t, "DeleteSecret of another app's secret", p.DeleteSecret(ctx, a.ID, "NOPE"), control.ErrNotFound)
	got, err = p.Secrets(ctx, a.ID)
	must(t, err)
	if want := map[string]string{"TOKEN": "two", "EMPTY": ""}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Secrets after delete = %v, want %v", got, want)
	}
	if got, _ := p.Secrets(ctx, b.ID); !reflect.DeepEqual(got, map[string]string{"TOKEN": "b's"}) {
		t.Fatalf("the other app's secrets = %v", got)
	}
}

func (s *suite) sessions(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	want := control.Session{AppID: a.ID, OpenID: "oABC", WXAppID: "wxapp", UnionID: "uXYZ", Expires: exp}
	must(t, p.PutSession(ctx, "fnwx_token1", want))
	got, err := p.Session(ctx, "fnwx_token1")
	must(t, err)
	if got.AppID != want.AppID || got.OpenID != want.OpenID || got.WXAppID != want.WXAppID || got.UnionID != want.UnionID || !got.Expires.Equal(exp) {
		t.Fatalf("Session = %+v, want %+v", got, want)
	}
	_, err = p.Session(ctx, "fnwx_other")
	wantErr(t, "Session of an unknown token", err, control.ErrNotFound)
	_, err = p.Session(ctx, "")
	wantErr(t, "Session of an empty token", err, control.ErrNotFound)

	expired := control.Session{AppID: a.ID, OpenID: "old", Expires: time.Now().Add(-time.Second)}
	must(t, p.PutSession(ctx, "fnwx_expired", expired))
	_, err = p.Session(ctx, "fnwx_expired")
	wantErr(t, "Session of an expired token", err, control.ErrNotFound)

	// putting a token again replaces its session; here with one that has expired
	must(t, p.PutSession(ctx, "fnwx_token1", control.Session{AppID: a.ID, OpenID: "oABC", Expires: time.Now().Add(-time.Minute)}))
	_, err = p.Session(ctx, "fnwx_token1")
	wantErr(t, "Session of a token replaced by an expired session", err, control.ErrNotFound)
	if err := p.PutSession(ctx, "", want); err == nil {
		t.Error("PutSession with an empty token succeeded")
	}
}

func (s *suite) consoleSessions(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	admin := control.ConsoleSession{Admin: true, CSRF: "c1", Expires: exp}
	scoped := control.ConsoleSession{AppID: a.ID, AppName: "app", CSRF: "c2", Expires: exp}
	must(t, p.PutConsoleSession(ctx, "cookie-admin", admin))
	must(t, p.PutConsoleSession(ctx, "cookie-app", scoped))
	for tok, want := range map[string]control.ConsoleSession{"cookie-admin": admin, "cookie-app": scoped} {
		got, err := p.ConsoleSession(ctx, tok)
		must(t, err)
		if got.Admin != want.Admin || got.AppID != want.AppID || got.AppName != want.AppName || got.CSRF != want.CSRF || !got.Expires.Equal(exp) {
			t.Fatalf("ConsoleSession(%s) = %+v, want %+v", tok, got, want)
		}
	}
	_, err := p.ConsoleSession(ctx, "cookie-other")
	wantErr(t, "ConsoleSession of an unknown cookie", err, control.ErrNotFound)
	// a wx session token is not a console session, nor the other way round
	_, err = p.Session(ctx, "cookie-app")
	wantErr(t, "Session of a console cookie", err, control.ErrNotFound)
	// an app-scoped session needs the app
	err = p.PutConsoleSession(ctx, "cookie-ghost", control.ConsoleSession{AppID: "nope", CSRF: "c", Expires: exp})
	wantErr(t, "PutConsoleSession for an unknown app", err, control.ErrNotFound)
	if err := p.PutConsoleSession(ctx, "", admin); err == nil {
		t.Error("PutConsoleSession with an empty token succeeded")
	}
	// expiry and logout
	must(t, p.PutConsoleSession(ctx, "cookie-old", control.ConsoleSession{Admin: true, CSRF: "c", Expires: time.Now().Add(-time.Second)}))
	_, err = p.ConsoleSession(ctx, "cookie-old")
	wantErr(t, "ConsoleSession of an expired cookie", err, control.ErrNotFound)
	must(t, p.DeleteConsoleSession(ctx, "cookie-admin"))
	_, err = p.ConsoleSession(ctx, "cookie-admin")
	wantErr(t, "ConsoleSession after logout", err, control.ErrNotFound)
	must(t, p.DeleteConsoleSession(ctx, "cookie-admin")) // gone already: no error
	if _, err := p.ConsoleSession(ctx, "cookie-app"); err != nil {
		t.Fatalf("the other session after a logout: %v", err)
	}
}

func (s *suite) deleteApp(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "gone")
	b := mkApp(t, p, "stays")
	for _, app := range []api.App{a, b} {
		v := mkVersion(t, p, app.ID, "production", app.Name)
		must(t, p.Activate(ctx, app.ID, "production", v.ID))
		mkVersion(t, p, app.ID, "staging", app.Name+"2")
		must(t, p.SetSecret(ctx, app.ID, "K", app.Name))
		must(t, p.PutSession(ctx, "tok-"+app.Name, control.Session{AppID: app.ID, OpenID: "o", Expires: time.Now().Add(time.Hour)}))
	}
	must(t, p.DeleteApp(ctx, a.ID))
	wantErr(t, "DeleteApp twice", p.DeleteApp(ctx, a.ID), control.ErrNotFound)
	for _, key := range []string{a.ID, a.Name} {
		_, err := p.App(ctx, key)
		wantErr(t, "App of a deleted app", err, control.ErrNotFound)
	}
	_, err := p.Session(ctx, "tok-gone")
	wantErr(t, "Session of a deleted app", err, control.ErrNotFound)
	apps, err := p.Apps(ctx)
	must(t, err)
	if !reflect.DeepEqual(apps, []api.App{b}) {
		t.Fatalf("Apps after delete = %+v", apps)
	}
	// the other app is untouched
	if vs, err := p.Versions(ctx, b.ID); err != nil || len(vs) != 2 {
		t.Errorf("the other app's versions = %v, %v", vs, err)
	}
	if sec, err := p.Secrets(ctx, b.ID); err != nil || sec["K"] != "stays" {
		t.Errorf("the other app's secrets = %v, %v", sec, err)
	}
	if _, err := p.Session(ctx, "tok-stays"); err != nil {
		t.Errorf("the other app's session: %v", err)
	}
	if act, err := p.Active(ctx, b.ID, "production"); err != nil || act.ID != 1 {
		t.Errorf("the other app's active version = %d, %v", act.ID, err)
	}

	// an app created again under the same id and name starts empty, and its version ids do not
	// repeat the deleted app's (logs and caches name versions by id)
	must(t, p.CreateApp(ctx, a, ""))
	if vs, err := p.Versions(ctx, a.ID); err != nil || len(vs) != 0 {
		t.Fatalf("versions of the recreated app = %v, %v", vs, err)
	}
	if sec, err := p.Secrets(ctx, a.ID); err != nil || len(sec) != 0 {
		t.Fatalf("secrets of the recreated app = %v, %v", sec, err)
	}
	if sec, err := p.WXSecret(ctx, a.ID); err != nil || sec != "" {
		t.Fatalf("WeChat secret of the recreated app = %q, %v", sec, err)
	}
	_, err = p.Active(ctx, a.ID, "production")
	wantErr(t, "Active of the recreated app", err, control.ErrNotFound)
	if v := mkVersion(t, p, a.ID, "production", "again"); v.ID <= 2 {
		t.Fatalf("the recreated app's first version got id %d, which the deleted app used", v.ID)
	}
}

func (s *suite) cancelled(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.CreateVersion(cctx, a.ID, api.Version{Env: "production"}); err == nil {
		t.Error("CreateVersion with a cancelled context succeeded")
	}
	if err := p.CreateApp(cctx, newApp("late"), ""); err == nil {
		t.Error("CreateApp with a cancelled context succeeded")
	}
	if vs, err := p.Versions(ctx, a.ID); err != nil || len(vs) != 0 {
		t.Errorf("versions after a cancelled create = %v, %v", vs, err)
	}
	if _, err := p.App(ctx, "late"); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("an app created with a cancelled context exists: %v", err)
	}
}

// oldState is a state.json as fn serve wrote it before the control plane had a database, with
// the duplicate ids its deploy race could produce.
const oldState = `{
  "adminTokenHash": "0123abcd",
  "apps": {
    "AAA-fnSrv": {"appId": "AAA-fnSrv", "name": "shop", "appKey": "ak1", "masterKey": "mk1", "hookKey": "hk1", "envId": "shop-1a2b3c", "wxAppId": "wx111", "createdAt": "2026-01-02T03:04:05.123456789Z"},
    "BBB-fnSrv": {"appId": "BBB-fnSrv", "name": "blog", "appKey": "ak2", "masterKey": "mk2", "hookKey": "hk2", "envId": "blog-4d5e6f", "createdAt": "2026-01-03T00:00:00Z"}
  },
  "versions": {
    "AAA-fnSrv": [
      {"id": 1, "env": "production", "createdAt": "2026-01-05T00:00:00Z", "message": "first", "who": "ann", "digest": "d1", "manifest": {"dialect": "wx", "bundles": [{"name": "hello", "hash": "h1", "mapHash": "m1", "size": 10, "config": {"timeout": 3, "memory": 256, "maxInstances": 10}}]}, "active": false},
      {"id": 2, "env": "production", "createdAt": "2026-01-06T00:00:00Z", "digest": "d2", "manifest": {"dialect": "wx", "bundles": []}, "active": true},
      {"id": 2, "env": "staging", "createdAt": "2026-01-06T00:00:00Z", "digest": "d2s", "manifest": {"dialect": "wx", "bundles": []}, "active": true},
      {"id": 5, "env": "staging", "createdAt": "2026-01-07T00:00:00Z", "digest": "d5", "manifest": {"dialect": "wx", "bundles": []}, "active": false, "promotedFrom": 0}
    ]
  },
  "Secrets": {"AAA-fnSrv": {"API_KEY": "k", "OTHER": "v"}},
  "WXSecrets": {"AAA-fnSrv": "wxsec"}
}`

func (s *suite) importStateJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	must(t, os.WriteFile(path, []byte(oldState), 0o600))

	t.Run("NoFile", func(t *testing.T) {
		p := s.plane(t)
		must(t, control.ImportStateJSON(ctx, p, filepath.Join(dir, "absent.json")))
		if h, _ := p.AdminTokenHash(ctx); h != "" {
			t.Fatalf("admin token %q after importing nothing", h)
		}
	})

	t.Run("Import", func(t *testing.T) {
		p := s.plane(t)
		must(t, control.ImportStateJSON(ctx, p, path))
		if h, err := p.AdminTokenHash(ctx); err != nil || h != "0123abcd" {
			t.Fatalf("AdminTokenHash = %q, %v", h, err)
		}
		apps, err := p.Apps(ctx)
		must(t, err)
		if len(apps) != 2 || apps[0].Name != "blog" || apps[1].Name != "shop" {
			t.Fatalf("apps %+v", apps)
		}
		shop := apps[1]
		wantCreated := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
		if shop.ID != "AAA-fnSrv" || shop.MasterKey != "mk1" || shop.WXAppID != "wx111" || shop.EnvID != "shop-1a2b3c" ||
			shop.CreatedAt.Sub(wantCreated).Abs() > time.Microsecond {
			t.Fatalf("shop imported as %+v", shop)
		}
		if sec, err := p.WXSecret(ctx, shop.ID); err != nil || sec != "wxsec" {
			t.Fatalf("WXSecret = %q, %v", sec, err)
		}
		if sec, err := p.Secrets(ctx, shop.ID); err != nil || !reflect.DeepEqual(sec, map[string]string{"API_KEY": "k", "OTHER": "v"}) {
			t.Fatalf("Secrets = %v, %v", sec, err)
		}
		vs, err := p.Versions(ctx, shop.ID)
		must(t, err)
		type row struct {
			ID     int
			Env    string
			Digest string
			Active bool
		}
		var got []row
		for _, v := range vs {
			got = append(got, row{v.ID, v.Env, v.Digest, v.Active})
		}
		// ids kept; the repeated 2 (staging) gets the next free id
		want := []row{{1, "production", "d1", false}, {2, "production", "d2", true}, {5, "staging", "d5", false}, {6, "staging", "d2s", true}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("imported versions %+v\nwant %+v", got, want)
		}
		if vs[0].Message != "first" || vs[0].Who != "ann" || len(vs[0].Manifest.Bundles) != 1 || vs[0].Manifest.Bundles[0].Config.Memory != 256 {
			t.Fatalf("version 1 imported as %+v", vs[0])
		}
		if v := mkVersion(t, p, shop.ID, "production", "new"); v.ID != 7 {
			t.Fatalf("the first version after the import got id %d, want 7", v.ID)
		}
		// importing again does nothing
		must(t, control.ImportStateJSON(ctx, p, path))
		if vs2, _ := p.Versions(ctx, shop.ID); len(vs2) != 5 {
			t.Fatalf("a second import changed the versions: %d", len(vs2))
		}
	})

	t.Run("NotNew", func(t *testing.T) {
		p := s.plane(t)
		must(t, p.SetAdminTokenHash(ctx, "current"))
		must(t, control.ImportStateJSON(ctx, p, path))
		if apps, _ := p.Apps(ctx); len(apps) != 0 {
			t.Fatalf("imported into a plane in use: %+v", apps)
		}
		if h, _ := p.AdminTokenHash(ctx); h != "current" {
			t.Fatalf("the import replaced the admin token: %q", h)
		}
	})

	t.Run("Unfinished", func(t *testing.T) {
		p := s.plane(t)
		mkApp(t, p, "half")
		if err := control.ImportStateJSON(ctx, p, path); err == nil {
			t.Fatal("an import over apps without an admin token (an unfinished import) succeeded")
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		p := s.plane(t)
		bad := filepath.Join(dir, "bad.json")
		must(t, os.WriteFile(bad, []byte(`{"apps": [`), 0o600))
		if err := control.ImportStateJSON(ctx, p, bad); err == nil {
			t.Fatal("importing malformed JSON succeeded")
		}
		if h, _ := p.AdminTokenHash(ctx); h != "" {
			t.Fatalf("a failed import set the admin token %q", h)
		}
	})
}

func (s *suite) online(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	b := mkApp(t, p, "bpp")
	if fs, err := p.OnlineFunctions(ctx, a.ID); err != nil || len(fs) != 0 {
		t.Fatalf("OnlineFunctions of a new app = %v, %v", fs, err)
	}
	_, err := p.OnlineFunction(ctx, a.ID, "hello")
	wantErr(t, "OnlineFunction of none", err, control.ErrNotFound)
	_, err = p.OnlineHistory(ctx, a.ID, "hello")
	wantErr(t, "OnlineHistory of none", err, control.ErrNotFound)
	wantErr(t, "DeleteOnline of none", p.DeleteOnline(ctx, a.ID, "hello"), control.ErrNotFound)
	_, err = p.SaveOnline(ctx, "nope", api.OnlineFunction{Name: "x", Type: "function", Code: "1"})
	wantErr(t, "SaveOnline of an unknown app", err, control.ErrNotFound)

	f1, err := p.SaveOnline(ctx, a.ID, api.OnlineFunction{Name: "hello", Type: "function", Code: "v1"})
	must(t, err)
	f2, err := p.SaveOnline(ctx, a.ID, api.OnlineFunction{Name: "hello", Type: "timer", Cron: "0 * * * * ?", Code: "v2"})
	must(t, err)
	h1, err := p.SaveOnline(ctx, a.ID, api.OnlineFunction{Name: "Todo-beforeSave", Type: "hook", Class: "Todo", Hook: "beforeSave", Code: "h"})
	must(t, err)
	if _, err := p.SaveOnline(ctx, b.ID, api.OnlineFunction{Name: "hello", Type: "function", Code: "b's"}); err != nil {
		t.Fatal(err)
	}
	if f1.Revision != 1 || f2.Revision != 2 || h1.Revision != 1 || f2.Updated.IsZero() || f2.Updated.Location() != time.UTC {
		t.Fatalf("revisions %d %d %d, time %v", f1.Revision, f2.Revision, h1.Revision, f2.Updated)
	}
	got, err := p.OnlineFunction(ctx, a.ID, "hello")
	must(t, err)
	if !reflect.DeepEqual(got, f2) {
		t.Fatalf("OnlineFunction = %+v, want %+v", got, f2)
	}
	list, err := p.OnlineFunctions(ctx, a.ID)
	must(t, err)
	if !reflect.DeepEqual(list, []api.OnlineFunction{h1, f2}) {
		t.Fatalf("OnlineFunctions = %+v, want the latest of each by name", list)
	}
	hist, err := p.OnlineHistory(ctx, a.ID, "hello")
	must(t, err)
	if len(hist) != 2 || hist[0].Revision != 2 || hist[0].Code != "v2" || hist[1].Code != "v1" || !hist[1].Time.Equal(f1.Updated) {
		t.Fatalf("OnlineHistory = %+v", hist)
	}
	// history is bounded: the oldest revisions go
	for i := 0; i < control.MaxOnlineRevisions+3; i++ {
		_, err := p.SaveOnline(ctx, a.ID, api.OnlineFunction{Name: "busy", Type: "function", Code: fmt.Sprint(i)})
		must(t, err)
	}
	hist, err = p.OnlineHistory(ctx, a.ID, "busy")
	must(t, err)
	if len(hist) != control.MaxOnlineRevisions || hist[0].Revision != control.MaxOnlineRevisions+3 || hist[len(hist)-1].Revision != 4 {
		t.Fatalf("bounded history: %d revisions, newest %d, oldest %d", len(hist), hist[0].Revision, hist[len(hist)-1].Revision)
	}
	must(t, p.DeleteOnline(ctx, a.ID, "hello"))
	_, err = p.OnlineFunction(ctx, a.ID, "hello")
	wantErr(t, "OnlineFunction of a deleted one", err, control.ErrNotFound)
	if got, err := p.OnlineFunction(ctx, b.ID, "hello"); err != nil || got.Code != "b's" {
		t.Fatalf("the other app's function = %+v, %v", got, err)
	}
	// deleting the app deletes its online functions
	must(t, p.DeleteApp(ctx, b.ID))
	_, err = p.OnlineFunctions(ctx, b.ID)
	wantErr(t, "OnlineFunctions of a deleted app", err, control.ErrNotFound)
}

func (s *suite) concurrentOnline(t *testing.T) {
	p := s.plane(t)
	a := mkApp(t, p, "app")
	const n = 8
	revs := make([]int, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			f, err := p.SaveOnline(ctx, a.ID, api.OnlineFunction{Name: "hot", Type: "function", Code: fmt.Sprint(i)})
			if err != nil {
				errs <- err
				return
			}
			revs[i] = f.Revision
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent SaveOnline: %v", err)
	}
	sort.Ints(revs)
	for i, r := range revs {
		if r != i+1 {
			t.Fatalf("concurrent saves got revisions %v, want 1..%d", revs, n)
		}
	}
}
