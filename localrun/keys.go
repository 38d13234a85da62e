// Package localrun is the local emulator: it builds a project in dev mode, runs it in the
// engine, and (in later layers) serves it over HTTP with hot reload and fake identities. This
// file and oneshot.go hold what fn invoke needs without a server.
package localrun

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/internal/randid"
	"github.com/fnhq/fn/project"
)

// Keys are a lean dev app's credentials.
// Keys are the dev app's LeanCloud credentials.
type Keys = appenv.Keys

// DevKeys returns the dev app's keys: those in fn.yaml (lean:), else ones generated on first use
// and kept in .fn/keys.json so that clients keep working across restarts.
func DevKeys(p *project.Project) (Keys, bool, error) {
	k := Keys{AppID: p.Lean.AppID, AppKey: p.Lean.AppKey, MasterKey: p.Lean.MasterKey, HookKey: p.Lean.HookKey}
	path := p.StatePath("keys.json")
	var stored Keys
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &stored)
	}
	generated := false
	fill := func(dst *string, kept string, n int, suffix string) {
		if *dst != "" {
			return
		}
		if kept != "" {
			*dst = kept
			return
		}
		*dst = randomKey(n) + suffix
		generated = true
	}
	fill(&k.AppID, stored.AppID, 18, "-fnDev")
	fill(&k.AppKey, stored.AppKey, 24, "")
	fill(&k.MasterKey, stored.MasterKey, 24, "")
	fill(&k.HookKey, stored.HookKey, 24, "")
	if generated {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return k, false, err
		}
		b, _ := json.MarshalIndent(k, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
			return k, false, err
		}
	}
	return k, generated, nil
}

func randomKey(n int) string { return randid.Key(n) }

// hexID is a short random id.
func hexID() string { return randid.Hex(8) }
