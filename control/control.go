// Package control is fn serve's control plane: the admin token, apps and their keys, versions
// and which one each environment runs, secrets, and wx sessions. The Plane interface is what a
// backend implements (SQLite embedded by default, PostgreSQL for several replicas); every
// backend passes the suite in control/controltest. All writes are transactional: a method
// either did everything it says or returned an error and changed nothing.
package control

import (
	"context"
	"errors"
	"time"

	"github.com/fnhq/fn/api"
)

// Errors a backend returns (wrapped with detail where useful).
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict: the call contradicts the current state (activating a version in another
	// environment than its own, discarding a version that has been active).
	ErrConflict = errors.New("conflicts with the current state")
)

// Session is a wx client session minted by the login exchange (POST /wx/{app}/login).
type Session struct {
	AppID   string    // the fn app
	OpenID  string    // the WeChat user
	WXAppID string    // the mini-program
	UnionID string    // empty when WeChat gave none
	Expires time.Time // after this the session is gone
}

// ConsoleSession is a web console login on fn serve (POST /__fn/console/login): kept in the
// control plane so that every replica knows it and a logout ends it everywhere.
type ConsoleSession struct {
	Admin   bool      // logged in with the admin token: every app
	AppID   string    // logged in with this app's master key (Admin false)
	AppName string    // the app's name at login
	CSRF    string    // the double-submit token the page sends back on every write
	Expires time.Time // after this the session is gone
}

// MaxOnlineRevisions is how many revisions of an online function a backend keeps.
const MaxOnlineRevisions = 50

// Plane is a control-plane backend. Methods that take an appID return ErrNotFound for an app
// that does not exist; errors wrap the sentinels above so that errors.Is tells them apart.
type Plane interface {
	// AdminTokenHash is the sha256 (hex) of the admin token; "" when none is set yet.
	AdminTokenHash(ctx context.Context) (string, error)
	SetAdminTokenHash(ctx context.Context, hash string) error

	// CreateApp stores a new app (ErrExists when its id or name is taken) with its WeChat
	// secret ("" for none).
	CreateApp(ctx context.Context, app api.App, wxSecret string) error
	// Apps lists every app, by name.
	Apps(ctx context.Context) ([]api.App, error)
	// App finds an app by id or by name (ErrNotFound).
	App(ctx context.Context, idOrName string) (api.App, error)
	// DeleteApp removes an app with its versions, secrets and sessions (ErrNotFound).
	DeleteApp(ctx context.Context, id string) error
	// WXSecret is an app's WeChat secret ("" when none).
	WXSecret(ctx context.Context, appID string) (string, error)

	// CreateVersion records a new, not yet active version and returns it with its ID: the next
	// integer for the app, assigned atomically (two concurrent calls never get the same ID,
	// whatever environments they are for; IDs are never reused, also after DiscardVersion).
	CreateVersion(ctx context.Context, appID string, v api.Version) (api.Version, error)
	// DiscardVersion forgets a version that never became active (its activation failed):
	// ErrNotFound when there is none, ErrConflict when it has been active.
	DiscardVersion(ctx context.Context, appID string, id int) error
	// Activate makes version id the active one of its environment env (it must belong to env);
	// the previously active version of env is no longer active. ErrNotFound for an unknown app
	// or version, ErrConflict for a version of another environment.
	Activate(ctx context.Context, appID, env string, id int) error
	// Versions lists an app's versions, oldest first, manifests included.
	Versions(ctx context.Context, appID string) ([]api.Version, error)
	// Version returns one version (ErrNotFound).
	Version(ctx context.Context, appID string, id int) (api.Version, error)
	// Active returns the active version of an environment (ErrNotFound when none).
	Active(ctx context.Context, appID, env string) (api.Version, error)

	// Secrets are env vars of every function of an app.
	SetSecret(ctx context.Context, appID, name, value string) error
	DeleteSecret(ctx context.Context, appID, name string) error // ErrNotFound
	Secrets(ctx context.Context, appID string) (map[string]string, error)

	// PutSession stores a session under the sha256 of its token (the token itself is never
	// stored); Session finds it (ErrNotFound when unknown or expired).
	PutSession(ctx context.Context, token string, s Session) error
	Session(ctx context.Context, token string) (Session, error)

	// PutConsoleSession stores a console login under the sha256 of its cookie value (expired
	// ones are dropped on the way); ConsoleSession finds a live one (ErrNotFound);
	// DeleteConsoleSession ends one (no error when it is gone already).
	PutConsoleSession(ctx context.Context, token string, s ConsoleSession) error
	ConsoleSession(ctx context.Context, token string) (ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, token string) error

	// SaveOnline stores a new revision of an app's online function (the next integer for the
	// function, assigned atomically; the first is 1), keeping the newest MaxOnlineRevisions,
	// and returns it with its revision and time.
	SaveOnline(ctx context.Context, appID string, f api.OnlineFunction) (api.OnlineFunction, error)
	// OnlineFunctions lists an app's online functions at their latest revisions, by name.
	OnlineFunctions(ctx context.Context, appID string) ([]api.OnlineFunction, error)
	// OnlineFunction is one at its latest revision (ErrNotFound).
	OnlineFunction(ctx context.Context, appID, name string) (api.OnlineFunction, error)
	// OnlineHistory lists a function's kept revisions, newest first (ErrNotFound).
	OnlineHistory(ctx context.Context, appID, name string) ([]api.OnlineRevision, error)
	// DeleteOnline removes a function with its history (ErrNotFound).
	DeleteOnline(ctx context.Context, appID, name string) error

	Close() error
}
