// Package hosting is the self-hosted runtime behind fn serve: apps with their keys and two
// environments, content-addressed artifacts, versions that are validated in fresh workers before
// they switch atomically, rollback and promotion, secrets, and a log stream per app. Each app
// environment runs its own engine; each app has its own LeanStorage. It never prints.
package hosting

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fnhq/fn/internal/randid"
	"github.com/fnhq/fn/project"
)

// Environments an app has.
var Environments = []string{"production", "staging"}

// App is one hosted application.
type App struct {
	ID        string            `json:"appId"`
	Name      string            `json:"name"`
	AppKey    string            `json:"appKey"`
	MasterKey string            `json:"masterKey"`
	HookKey   string            `json:"hookKey"`
	EnvID     string            `json:"envId"`             // the wx environment id
	WXAppID   string            `json:"wxAppId,omitempty"` // mini-program appid for the login exchange
	WXSecret  string            `json:"-"`
	Secrets   map[string]string `json:"-"`
	CreatedAt time.Time         `json:"createdAt"`
}

// Bundle is one artifact of a version.
type Bundle struct {
	Name    string                 `json:"name"`
	Hash    string                 `json:"hash"`    // sha256 of the bundle
	MapHash string                 `json:"mapHash"` // sha256 of its source map
	Size    int64                  `json:"size"`
	Config  project.FunctionConfig `json:"config"`
}

// Manifest is what a deploy asks for.
type Manifest struct {
	Dialect  string          `json:"dialect"`
	Bundles  []Bundle        `json:"bundles"`
	Timers   []project.Timer `json:"timers,omitempty"`
	Timezone string          `json:"timezone,omitempty"` // where timers are evaluated
}

// Digest identifies a manifest's content: equal digests mean nothing to deploy.
func (m Manifest) Digest() string {
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Version is one deployed manifest of an app environment.
type Version struct {
	ID        int       `json:"id"`
	Env       string    `json:"env"`
	CreatedAt time.Time `json:"createdAt"`
	Message   string    `json:"message,omitempty"`
	Who       string    `json:"who,omitempty"`
	Digest    string    `json:"digest"`
	Manifest  Manifest  `json:"manifest"`
	Active    bool      `json:"active"`
	Promoted  int       `json:"promotedFrom,omitempty"`
}

// state is the control plane, kept in one JSON file written atomically.
type state struct {
	AdminTokenHash string                `json:"adminTokenHash"`
	Apps           map[string]*App       `json:"apps"`
	Versions       map[string][]*Version `json:"versions"` // app id → versions, oldest first
	Secrets        map[string]map[string]string
	WXSecrets      map[string]string
}

type stateFile struct {
	mu   sync.Mutex
	path string
	s    state
}

func openState(dir string) (*stateFile, error) {
	sf := &stateFile{path: filepath.Join(dir, "state.json")}
	b, err := os.ReadFile(sf.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &sf.s); err != nil {
			return nil, fmt.Errorf("%s: %w", sf.path, err)
		}
	}
	if sf.s.Apps == nil {
		sf.s.Apps = map[string]*App{}
	}
	if sf.s.Versions == nil {
		sf.s.Versions = map[string][]*Version{}
	}
	if sf.s.Secrets == nil {
		sf.s.Secrets = map[string]map[string]string{}
	}
	if sf.s.WXSecrets == nil {
		sf.s.WXSecrets = map[string]string{}
	}
	return sf, nil
}

// saveLocked writes the state atomically; the caller holds mu.
func (sf *stateFile) saveLocked() error {
	b, err := json.MarshalIndent(sf.s, "", "  ")
	if err != nil {
		return err
	}
	tmp := sf.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, sf.path)
}

func randomHex(n int) string { return randid.Hex(n) }

func randomKey(n int) string { return randid.Key(n) }

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}
