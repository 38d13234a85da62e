// Package api holds the wire types of fn's admin API under /__fn/: what fn dev and fn serve
// answer and what the CLI (deployer) and the web console send. Field names are a contract; the
// package has no behaviour beyond small helpers on the types, so both sides can import it.
package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/fnhq/fn/project"
)

// Environments a hosted app has; fn dev runs one environment named DevEnv.
var Environments = []string{"production", "staging"}

// DevEnv is the name of fn dev's only environment.
const DevEnv = "dev"

// DefaultEnv is the environment commands use when none is named: LeanCloud clients reach
// production unless they send X-LC-Prod: 0, so production is what "the app" means.
const DefaultEnv = "production"

// App is one hosted application.
type App struct {
	ID        string    `json:"appId"`
	Name      string    `json:"name"`
	AppKey    string    `json:"appKey"`
	MasterKey string    `json:"masterKey"`
	HookKey   string    `json:"hookKey"`
	EnvID     string    `json:"envId"`             // the wx environment id
	WXAppID   string    `json:"wxAppId,omitempty"` // mini-program appid for the login exchange
	CreatedAt time.Time `json:"createdAt"`
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
	// SDKVersion is the leanengine version the bundle was built with (the ping endpoint's).
	SDKVersion string `json:"sdkVersion,omitempty"`
	// Files is the project tree a LeanEngine project deployed as it is runs from (node_modules
	// included: fn serve installs nothing); the bundle then only loads it in place.
	Files []File `json:"files,omitempty"`
	// App is the app process's command (a LeanEngine project with its own web server, run from
	// Files); empty runs the cloud code in shared workers.
	App []string `json:"app,omitempty"`
}

// File is one file of a deployed project tree.
type File struct {
	Path string `json:"path"` // relative, slash-separated
	Hash string `json:"hash"` // sha256 of the content (an artifact)
	Size int64  `json:"size"`
	Exec bool   `json:"exec,omitempty"`
}

// Digest identifies a manifest's content: equal digests mean nothing to deploy.
func (m Manifest) Digest() string {
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Version is one deployed manifest of an app environment. IDs are per app, increasing and never
// reused, whichever environment they belong to.
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

// DeployRequest is the body of POST /__fn/apps/{app}/deploy.
type DeployRequest struct {
	Env      string   `json:"env"`
	Message  string   `json:"message"`
	Who      string   `json:"who"`
	DryRun   bool     `json:"dryRun"`
	Manifest Manifest `json:"manifest"`
}

// DeployResult says what a deploy did.
type DeployResult struct {
	Changed bool     `json:"changed"`
	Env     string   `json:"env,omitempty"`
	Version *Version `json:"version,omitempty"`
	Added   []string `json:"added,omitempty"`
	Changes []string `json:"changed_functions,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// InvokeRequest is the body of POST /__fn/apps/{app}/invoke/{env}/{name}.
type InvokeRequest struct {
	Data json.RawMessage `json:"data,omitempty"`
	// Identity names a fake caller (fn.yaml identities in fn dev); empty for the default.
	Identity string `json:"identity,omitempty"`
	// TimeoutMs shortens the function's deadline (0: its configured timeout).
	TimeoutMs int64 `json:"timeoutMs,omitempty"`
	// SessionToken runs a lean call as that user (the console's impersonation).
	SessionToken string `json:"sessionToken,omitempty"`
}

// FunctionError is why a call failed.
type FunctionError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

// Outcome is the result of one invocation, the same from fn invoke one-shot, against fn dev and
// against fn serve.
type Outcome struct {
	Function  string          `json:"function"`
	Dialect   string          `json:"dialect"`
	Env       string          `json:"env,omitempty"`
	Version   int             `json:"version"` // 0 in fn dev and fn invoke
	RequestID string          `json:"requestId"`
	Identity  string          `json:"identity,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *FunctionError  `json:"error,omitempty"`
	// lean: the HTTP status and body LeanEngine answers with
	Status     int             `json:"status,omitempty"`
	Body       json.RawMessage `json:"body,omitempty"`
	DurationMs float64         `json:"durationMs"`
	MemoryMB   int             `json:"memoryMB,omitempty"`
	// Logs are the call's own records (console output), when asked for.
	Logs []LogRecord `json:"logs,omitempty"`
}

// Failed reports whether the function failed.
func (o *Outcome) Failed() bool { return o.Error != nil }

// LogRecord is one log line of an app: a function's output, an invocation, or a note of the
// runtime. IDs increase per log sink and are never reused, also across restarts, so a follower
// resumes after the last id it saw without gaps or duplicates.
type LogRecord struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	App        string    `json:"app,omitempty"`
	Env        string    `json:"env"`
	Version    int       `json:"version"` // 0 in fn dev
	Function   string    `json:"function,omitempty"`
	RequestID  string    `json:"requestId,omitempty"`
	Level      string    `json:"level"` // debug, info, warn, error
	Message    string    `json:"message"`
	Stream     string    `json:"stream,omitempty"` // console, stdout, stderr, fn
	Invocation bool      `json:"invocation,omitempty"`
	Status     int       `json:"status,omitempty"`
	DurationMs float64   `json:"durationMs,omitempty"`
	Identity   string    `json:"identity,omitempty"`
	Kind       string    `json:"kind,omitempty"` // invocations: call, hook, timer
	// Request is what an invocation received (the event, the params, a hook's object) when it
	// is at most MaxReplayRequest bytes; Replayable says the call can be repeated from it, as
	// Caller.
	Request    json.RawMessage `json:"request,omitempty"`
	Replayable bool            `json:"replayable,omitempty"`
	Caller     *Caller         `json:"caller,omitempty"`
}

// MaxReplayRequest bounds the request an invocation record keeps.
const MaxReplayRequest = 64 << 10

// Caller is who an invocation ran as, as a record keeps it for a replay: the mini-program
// user (wx) or the user's objectId (lean); never a session token.
type Caller struct {
	OpenID  string `json:"openId,omitempty"`
	AppID   string `json:"appId,omitempty"`
	UnionID string `json:"unionId,omitempty"`
	User    string `json:"user,omitempty"`
}

// TimerStatus is one timer as the admin API reports it.
type TimerStatus struct {
	Name           string    `json:"name"`
	Function       string    `json:"function"`
	Cron           string    `json:"cron,omitempty"`
	Interval       int       `json:"interval,omitempty"`
	Enabled        bool      `json:"enabled"`
	ShortCircuited bool      `json:"shortCircuited"`
	Running        bool      `json:"running"`
	Next           time.Time `json:"next,omitempty"`
	// LastScheduled is the fire time of the latest run the scheduler started (its decision,
	// not the wall clock of the run).
	LastScheduled time.Time `json:"lastScheduled,omitempty"`
	Runs          int       `json:"runs"`
}

// Function is one function of an environment as the admin API lists it.
type Function struct {
	Name    string                 `json:"name"`
	Dialect string                 `json:"dialect"`
	Kind    string                 `json:"kind,omitempty"` // lean: function, hook
	Config  project.FunctionConfig `json:"config"`
}

// ErrorBody is how the admin API answers a failure.
type ErrorBody struct {
	Error string `json:"error"`
	// Code is a stable machine-readable reason: bad-request, unauthorized, not-found,
	// load-failed, conflict, internal.
	Code string `json:"code,omitempty"`
	Hint string `json:"hint,omitempty"`
}

// OnlineFunction is one function of an app edited online in the console (LeanCloud's 在线编辑),
// at its latest revision: a function, a class hook or a timer's function, with its code.
type OnlineFunction struct {
	Name     string    `json:"name"`
	Type     string    `json:"type"` // function, hook, timer
	Class    string    `json:"class,omitempty"`
	Hook     string    `json:"hook,omitempty"`
	Cron     string    `json:"cron,omitempty"`
	Code     string    `json:"code,omitempty"`
	Revision int       `json:"revision"`
	Updated  time.Time `json:"updated"`
}

// OnlineRevision is one saved revision of an online function.
type OnlineRevision struct {
	Revision int       `json:"revision"`
	Time     time.Time `json:"time"`
	Code     string    `json:"code"`
}
