// Package leanstorage is the LeanStorage REST API over a store: objects, queries (CQL and scans
// too), users and sessions, third-party logins verified with their platforms, ACLs with roles,
// relations, verification codes (kept in a local Outbox, never sent), statuses, leaderboards, and
// the LeanEngine hooks that fire on writes (beforeSave … afterDelete, onLogin, onVerified), with
// LeanCloud's error codes. It is transport-neutral: the server package routes
// HTTP requests here after authenticating them; fn dev and fn serve share it.
package leanstorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/randid"
	"github.com/fnhq/fn/store"
)

// Hooks runs cloud code hooks: the engine of a lean project.
type Hooks interface {
	InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult
	Functions() []string
}

// Auth is who makes a storage request.
type Auth struct {
	Master       bool   // the master key: ACLs do not apply
	HookKey      bool   // the hook key: __ignore_hooks is honoured
	SessionToken string // X-LC-Session
	RemoteAddr   string
	// Deadline is when the cloud function that made this request runs out of time (zero for
	// clients): the hooks the write fires get no more than what is left.
	Deadline time.Time
}

// Error is a LeanCloud API error.
type Error struct {
	Status  int
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

func apiErr(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Logger receives notes such as failed after-hooks.
type Logger func(level, msg string)

// Service serves LeanStorage over a store.
type Service struct {
	st          store.Store
	hooks       Hooks
	log         Logger
	opts        Options
	HookTimeout time.Duration // 3 s
	// OnHook, if set, is told about every hook run (for the request log).
	OnHook func(req engine.LeanRequest, res *engine.LeanResult)

	mu       sync.Mutex
	lockouts map[lockKey]*lockout // login failures per (user, client address)
	outbox   *Outbox
	codes    codeBook // pending SMS codes and email tokens

	bcryptCost int // bcrypt.DefaultCost; tests lower it

	// onEvaluate, if set, is told each time a query evaluates an object (tests).
	onEvaluate func()
}

// New returns a service with default options; hooks and log may be nil.
func New(st store.Store, hooks Hooks, log Logger) *Service {
	return NewWithOptions(st, hooks, log, Options{})
}

// Response is what a request answers.
type Response struct {
	Status   int
	Body     any
	Location string
}

func ok(body any) *Response { return &Response{Status: http.StatusOK, Body: body} }

// ErrorBody is how errors are sent.
func ErrorBody(e *Error) map[string]any { return map[string]any{"code": e.Code, "error": e.Message} }

// Serve handles one storage request; path is below the API version (e.g. "classes/Review/xyz").
func (s *Service) Serve(ctx context.Context, method, path string, query url.Values, body []byte, auth Auth) *Response {
	if !auth.Deadline.IsZero() {
		ctx = context.WithValue(ctx, deadlineKey{}, auth.Deadline)
	}
	resp, err := s.route(ctx, method, path, query, body, auth)
	if err != nil {
		var ae *Error
		var taken *store.TakenError
		switch {
		case errors.As(err, &ae):
		case errors.As(err, &taken):
			// a store that enforces unique user fields itself (PostgreSQL, across replicas) caught
			// what the check before the write could not see
			ae = takenErr(taken.Field)
		default:
			ae = apiErr(http.StatusInternalServerError, 1, "%v", err)
		}
		return &Response{Status: ae.Status, Body: ErrorBody(ae)}
	}
	return resp
}

// takenErr is LeanCloud's answer to a unique user field already in use.
func takenErr(field string) *Error {
	switch field {
	case "email":
		return apiErr(http.StatusBadRequest, 203, "This email address has already been taken.")
	case "mobilePhoneNumber":
		return apiErr(http.StatusBadRequest, 214, "Mobile phone number has already been taken.")
	}
	return apiErr(http.StatusBadRequest, 202, "Username has already been taken.")
}

var classNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$|^_(User|Role|Installation|File|Conversation|Status|Followee|Follower)$`)
})

// internalClasses hold what the service keeps for its own APIs (inboxes, leaderboards): clients
// cannot address them; export and import carry them.
var internalClasses = map[string]bool{inboxClass: true, leaderboardClass: true, statisticClass: true}

var keyNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`) })

func (s *Service) route(ctx context.Context, method, path string, query url.Values, body []byte, auth Auth) (*Response, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case parts[0] == "date" && len(parts) == 1 && method == http.MethodGet:
		return ok(dateValue(time.Now())), nil
	case parts[0] == "batch" && len(parts) == 1 && method == http.MethodPost:
		return s.batch(ctx, body, auth)
	case parts[0] == "login" && len(parts) == 1 && method == http.MethodPost:
		return s.login(ctx, body, auth)
	case parts[0] == "users":
		switch {
		case len(parts) == 1 && method == http.MethodPost:
			return s.signup(ctx, query, body, auth)
		case len(parts) == 2 && parts[1] == "me" && method == http.MethodGet:
			return s.me(ctx, auth)
		case len(parts) == 3 && parts[2] == "refreshSessionToken" && method == http.MethodPut:
			return s.refreshSession(ctx, parts[1], auth)
		case len(parts) == 3 && parts[2] == "updatePassword" && method == http.MethodPut:
			return s.updatePassword(ctx, parts[1], body, auth)
		case len(parts) == 3 && parts[2] == "followersAndFollowees" && method == http.MethodGet:
			return s.friendship(ctx, method, parts[1], "", body, query, auth)
		case len(parts) == 4 && parts[2] == "friendship" && (method == http.MethodPost || method == http.MethodDelete):
			return s.friendship(ctx, method, parts[1], parts[3], body, query, auth)
		}
		return s.classRoute(ctx, method, append([]string{"classes", "_User"}, parts[1:]...), query, body, auth)
	case verificationRoutes[parts[0]]:
		if r, handled, err := s.verification(ctx, method, parts, body, auth); handled {
			return r, err
		}
	case parts[0] == "statuses" && len(parts) == 1 && method == http.MethodPost:
		return s.postStatus(ctx, body, auth)
	case parts[0] == "statuses" && len(parts) == 2 && method == http.MethodDelete:
		return s.deleteStatus(ctx, parts[1], auth)
	case parts[0] == "subscribe" && len(parts) >= 2 && parts[1] == "statuses":
		switch {
		case len(parts) == 2 && method == http.MethodGet:
			return s.inbox(ctx, query, auth)
		case len(parts) == 3 && parts[2] == "count" && method == http.MethodGet:
			return s.inboxCount(ctx, query, body, false, auth)
		case len(parts) == 3 && parts[2] == "resetUnreadCount" && method == http.MethodPost:
			return s.inboxCount(ctx, query, body, true, auth)
		}
	case parts[0] == "leaderboard" && len(parts) >= 2:
		return s.leaderboardRoute(ctx, method, parts[1:], query, body, auth)
	case parts[0] == "cloudQuery" && len(parts) == 1 && method == http.MethodGet:
		return s.cloudQuery(ctx, query, auth)
	case parts[0] == "scan" && len(parts) == 3 && parts[1] == "classes" && method == http.MethodGet:
		return s.scan(ctx, parts[2], query, auth)
	case parts[0] == "fileTokens" || parts[0] == "fileCallback" || parts[0] == "files":
		return s.fileRoute(ctx, method, parts, query, body, auth)
	case parts[0] == "classes" && len(parts) == 3 && parts[1] == "_File" && method == http.MethodDelete && s.filesOn() && !strings.Contains(parts[2], ","):
		return s.deleteFile(ctx, parts[2], query, auth)
	case parts[0] == "classes" && len(parts) >= 2:
		return s.classRoute(ctx, method, parts, query, body, auth)
	}
	return nil, apiErr(http.StatusNotFound, 1, "no such API: %s /%s", method, path)
}

var verificationRoutes = map[string]bool{"requestMobilePhoneVerify": true, "requestLoginSmsCode": true,
	"requestPasswordResetBySmsCode": true, "requestSmsCode": true, "requestChangePhoneNumber": true, "verifyMobilePhone": true,
	"verifySmsCode": true, "resetPasswordBySmsCode": true, "changePhoneNumber": true, "usersByMobilePhone": true,
	"requestEmailVerify": true, "requestPasswordReset": true, "verifyEmail": true, "resetPassword": true}

// serverWritten are the classes that only their own APIs (follow, statuses) or the master key
// write: a forged _Follower row would subscribe someone to a stranger's statuses.
var serverWritten = map[string]bool{"_Follower": true, "_Followee": true, "_Status": true}

func (s *Service) classRoute(ctx context.Context, method string, parts []string, query url.Values, body []byte, auth Auth) (*Response, error) {
	class := parts[1]
	if !classNameRE().MatchString(class) {
		return nil, apiErr(http.StatusBadRequest, 103, "Invalid class name: %s. Class names start with a letter and contain letters, digits and '_'.", class)
	}
	if serverWritten[class] && method != http.MethodGet && !auth.Master {
		return nil, errClientsNotAllowed
	}
	switch {
	case len(parts) == 2 && method == http.MethodPost:
		if class == "_User" {
			return s.signup(ctx, query, body, auth)
		}
		return s.create(ctx, class, query, body, auth)
	case len(parts) == 2 && method == http.MethodGet:
		return s.find(ctx, class, query, auth)
	case len(parts) == 3 && method == http.MethodGet:
		return s.get(ctx, class, parts[2], query, auth)
	case len(parts) == 3 && method == http.MethodPut:
		return s.update(ctx, class, parts[2], query, body, auth)
	case len(parts) == 3 && method == http.MethodDelete:
		// AV.Object.destroyAll sends one DELETE with the ids joined by commas
		var resp *Response
		for _, id := range strings.Split(parts[2], ",") {
			r, err := s.remove(ctx, class, id, query, body, auth)
			if err != nil {
				return nil, err
			}
			resp = r
		}
		return resp, nil
	}
	return nil, apiErr(http.StatusNotFound, 1, "no such API: %s /%s", method, strings.Join(parts, "/"))
}

// ---- helpers

func newID() string { return randid.Hex(12) }

func newToken() string { return randid.Hex(16) }

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func dateValue(t time.Time) map[string]any {
	return map[string]any{"__type": "Date", "iso": isoTime(t)}
}

func parseObject(body []byte) (map[string]any, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, apiErr(http.StatusBadRequest, 107, "Malformed json object. A json dictionary is expected.")
	}
	return m, nil
}

// JSON renders a stored object as the API returns it.
func JSON(o *store.Object) map[string]any {
	out := make(map[string]any, len(o.Fields)+3)
	for k, v := range o.Fields {
		if strings.HasPrefix(k, "_") {
			continue // hidden fields (_hashed_password)
		}
		out[k] = v
	}
	out["objectId"] = o.ID
	out["createdAt"] = isoTime(o.CreatedAt)
	out["updatedAt"] = isoTime(o.UpdatedAt)
	return out
}

// ---- ACL

func (s *Service) currentUser(ctx context.Context, auth Auth) (*store.Object, error) {
	if auth.SessionToken == "" {
		return nil, nil
	}
	id, err := s.st.SessionUser(ctx, auth.SessionToken)
	if errors.Is(err, store.ErrNotFound) {
		if auth.Master {
			return nil, nil // LeanCloud ignores a stale session token next to the master key
		}
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	if err != nil {
		return nil, err
	}
	u, err := s.st.Get(ctx, "_User", id)
	if errors.Is(err, store.ErrNotFound) {
		if auth.Master {
			return nil, nil
		}
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	return u, err
}

// ---- objects

// readWrite reads the body of a create or update: its fields (checked), the calling user, and the
// hooks the request may skip.
func (s *Service) readWrite(ctx context.Context, body []byte, auth Auth) (map[string]any, *store.Object, map[string]bool, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, nil, nil, err
	}
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, nil, nil, err
	}
	ignore := s.ignoredHooks(fields, auth)
	if err := checkKeys(fields); err != nil {
		return nil, nil, nil, err
	}
	return fields, user, ignore, nil
}

func (s *Service) create(ctx context.Context, class string, query url.Values, body []byte, auth Auth) (*Response, error) {
	fields, user, ignore, err := s.readWrite(ctx, body, auth)
	if err != nil {
		return nil, err
	}
	rels, err := relationOps(fields)
	if err != nil {
		return nil, err
	}
	if class == "_Role" {
		if err := s.checkRole(ctx, fields, nil); err != nil {
			return nil, err
		}
	}
	now := s.opts.Now()
	o := &store.Object{Class: class, ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}}
	if err := applyOps(o.Fields, fields); err != nil {
		return nil, err
	}
	if !ignore["beforeSave"] {
		changed, err := s.beforeHook(ctx, class, "beforeSave", objectForHook(o, nil), user)
		if err != nil {
			return nil, err
		}
		if changed != nil {
			o.Fields = stripMeta(changed)
		}
	}
	if err := s.st.Insert(ctx, o); err != nil {
		return nil, err
	}
	if err := s.applyRelations(ctx, class, o.ID, rels); err != nil {
		return nil, err
	}
	if !ignore["afterSave"] {
		s.afterHook(ctx, class, "afterSave", JSON(o), user)
	}
	resp := &Response{Status: http.StatusCreated, Location: fmt.Sprintf("/1.1/classes/%s/%s", class, o.ID)}
	if fetchWhenSave(query, fields) {
		resp.Body = JSON(o)
	} else {
		resp.Body = map[string]any{"objectId": o.ID, "createdAt": isoTime(o.CreatedAt)}
	}
	return resp, nil
}

func fetchWhenSave(query url.Values, fields map[string]any) bool {
	return query.Get("new") == "true" || query.Get("fetchWhenSave") == "true" || fields["fetchWhenSave"] == true
}

var metaKeys = map[string]bool{"objectId": true, "createdAt": true, "updatedAt": true, "__type": true, "className": true}

func stripMeta(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if !metaKeys[k] && !strings.HasPrefix(k, "_") {
			out[k] = v
		}
	}
	return out
}

// checkKeys rejects field names LeanCloud does not allow.
func checkKeys(fields map[string]any) error {
	for k := range fields {
		if metaKeys[k] || k == "ACL" || k == "fetchWhenSave" || k == "__ignore_hooks" {
			continue
		}
		if !keyNameRE().MatchString(k) {
			return apiErr(http.StatusBadRequest, 105, "Invalid key name: %s. Keys start with a letter and contain letters, digits and '_'.", k)
		}
		if m, ok := fields[k].(map[string]any); ok && m["__type"] == "GeoPoint" {
			if _, err := parsePoint(m, k); err != nil {
				return apiErr(http.StatusBadRequest, 111, "Invalid value for %s: a GeoPoint has a latitude from -90 to 90 and a longitude from -180 to 180.", k)
			}
		}
	}
	return nil
}

// ignoredHooks reads __ignore_hooks, honoured only with the hook key or the master key.
func (s *Service) ignoredHooks(fields map[string]any, auth Auth) map[string]bool {
	out := map[string]bool{}
	raw, ok := fields["__ignore_hooks"]
	delete(fields, "__ignore_hooks")
	delete(fields, "fetchWhenSave")
	if !ok || !(auth.HookKey || auth.Master) {
		return out
	}
	if list, ok := raw.([]any); ok {
		for _, h := range list {
			if name, ok := h.(string); ok {
				out[name] = true
			}
		}
	}
	return out
}

func (s *Service) get(ctx context.Context, class, id string, query url.Values, auth Auth) (*Response, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	o, err := s.st.Get(ctx, class, id)
	if errors.Is(err, store.ErrNotFound) {
		// LeanCloud answers an unknown id with {}, and an unknown class with 101
		classes, err := s.st.Classes(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range classes {
			if c == class {
				return ok(map[string]any{}), nil
			}
		}
		return nil, apiErr(http.StatusNotFound, 101, "Class or object doesn't exists.")
	}
	if err != nil {
		return nil, err
	}
	if !s.allowed(ctx, o, user, "read", auth) {
		return ok(map[string]any{}), nil
	}
	out := s.present(ctx, o, user, auth)
	if inc := query.Get("include"); inc != "" {
		s.include(ctx, []map[string]any{out}, strings.Split(inc, ","), user, auth)
	}
	if keys := query.Get("keys"); keys != "" {
		out = selectKeys(out, strings.Split(keys, ","))
	}
	return ok(out), nil
}

// present renders an object for a reader: a user's session token, authData, email and phone
// number only to that user (or the master key).
func (s *Service) present(ctx context.Context, o *store.Object, user *store.Object, auth Auth) map[string]any {
	out := JSON(o)
	delete(out, "sessionToken")
	if private(o, user, auth) {
		for k := range privateUserFields {
			delete(out, k)
		}
	}
	return out
}

// private tells whether a reader may not see a user's private fields.
func private(o *store.Object, user *store.Object, auth Auth) bool {
	return o.Class == "_User" && !auth.Master && (user == nil || user.ID != o.ID)
}

func notFoundForUpdate(class, id string) *Error {
	return apiErr(http.StatusNotFound, 1, "Could not find object by id '%s' for class '%s'.", id, class)
}

// errNoEffect answers a conditional write whose where did not match.
var errNoEffect = &Error{Status: http.StatusBadRequest, Code: 305, Message: "No effect on updating/deleting a document."}

// condition reads the where of a conditional update or delete (nil without one).
func condition(query url.Values) (map[string]any, error) {
	w := query.Get("where")
	if w == "" {
		return nil, nil
	}
	var where map[string]any
	if err := json.Unmarshal([]byte(w), &where); err != nil || where == nil {
		return nil, apiErr(http.StatusBadRequest, 107, "Invalid where: malformed JSON (%s).", shortErr(err))
	}
	return where, nil
}

// guard evaluates a write's condition; one matcher serves both checks (before the hooks, and
// inside the atomic update, where its cached sub-queries spare store reads).
func (s *Service) guard(ctx context.Context, where map[string]any, user *store.Object, auth Auth) func(*store.Object) error {
	m := s.newMatcher(ctx, user, auth)
	return func(o *store.Object) error {
		if where == nil {
			return nil
		}
		ok, err := m.matches(m.view(o), where)
		if err != nil {
			return err
		}
		if !ok {
			return errNoEffect
		}
		return nil
	}
}

// checkUniqueUserFields keeps usernames, emails and phone numbers unique across users; a new
// email or phone number is unverified.
func (s *Service) checkUniqueUserFields(ctx context.Context, id string, fields map[string]any, current *store.Object, auth Auth) error {
	for _, f := range []struct {
		key, verified string
		code          int
		msg           string
	}{
		{"username", "", 202, "Username has already been taken."},
		{"email", "emailVerified", 203, "This email address has already been taken."},
		{"mobilePhoneNumber", "mobilePhoneVerified", 214, "Mobile phone number has already been taken."},
	} {
		v, ok := fields[f.key].(string)
		if !ok || v == current.Fields[f.key] {
			continue
		}
		if v == "" && f.key == "username" {
			return apiErr(http.StatusBadRequest, 200, "Username is missing or empty.")
		}
		other, err := s.findUser(ctx, f.key, v)
		if err != nil {
			return err
		}
		if other != nil && other.ID != id {
			return apiErr(http.StatusBadRequest, f.code, "%s", f.msg)
		}
		if _, set := fields[f.verified]; f.verified != "" && !(auth.Master && set) {
			fields[f.verified] = false
		}
	}
	return nil
}

// checkUserWrite refuses changes to a user by anyone but that user or the master key.
func checkUserWrite(class, id string, user *store.Object, auth Auth) error {
	if class == "_User" && !auth.Master && (user == nil || user.ID != id) {
		return apiErr(http.StatusForbidden, 206, "The user cannot be altered by a client without the session.")
	}
	return nil
}

func (s *Service) update(ctx context.Context, class, id string, query url.Values, body []byte, auth Auth) (*Response, error) {
	fields, user, ignore, err := s.readWrite(ctx, body, auth)
	if err != nil {
		return nil, err
	}
	where, err := condition(query)
	if err != nil {
		return nil, err
	}
	current, err := s.st.Get(ctx, class, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFoundForUpdate(class, id)
	}
	if err != nil {
		return nil, err
	}
	if err := checkUserWrite(class, id, user, auth); err != nil {
		return nil, err
	}
	if !s.allowed(ctx, current, user, "write", auth) {
		return nil, apiErr(http.StatusForbidden, 1, "Forbidden writing by object's ACL.")
	}
	if class == "_User" {
		dropServerOwned(fields, auth)
		if err := s.checkUniqueUserFields(ctx, id, fields, current, auth); err != nil {
			return nil, err
		}
		if pw, ok := fields["password"].(string); ok {
			hash, err := s.hashPassword(pw)
			if err != nil {
				return nil, err
			}
			delete(fields, "password")
			fields["_hashed_password"] = hash
		}
		if authData, ok := fields["authData"].(map[string]any); ok {
			verified, _, err := s.verifyAuthData(ctx, authData, auth, false)
			if err != nil {
				return nil, err
			}
			// linking adds platforms to the stored ones; null unlinks one
			merged, _ := current.Fields["authData"].(map[string]any)
			out := map[string]any{}
			for k, v := range merged {
				out[k] = v
			}
			for k, v := range verified {
				if v == nil {
					delete(out, k)
				} else {
					out[k] = v
				}
			}
			fields["authData"] = out
		}
	}
	if class == "_Role" {
		if err := s.checkRole(ctx, fields, current); err != nil {
			return nil, err
		}
	}
	rels, err := relationOps(fields)
	if err != nil {
		return nil, err
	}
	if err := checkRelations(rels, current.Fields); err != nil {
		return nil, err
	}
	guard := s.guard(ctx, where, user, auth)
	if err := guard(current); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if !strings.HasPrefix(k, "_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if !ignore["beforeUpdate"] {
		// the hook sees the object with the request's values; what it changes is not saved
		preview := current.Clone()
		for k, v := range fields {
			preview.Fields[k] = v
		}
		obj := objectForHook(preview, keys)
		if _, err := s.beforeHook(ctx, class, "beforeUpdate", obj, user); err != nil {
			return nil, err
		}
	}
	updated, err := s.st.Update(ctx, class, id, func(o *store.Object) error {
		// the condition is checked again inside the atomic update: it is what makes it a guard
		if err := guard(o); err != nil {
			return err
		}
		if err := applyOps(o.Fields, fields); err != nil {
			return err
		}
		o.UpdatedAt = s.opts.Now()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFoundForUpdate(class, id)
	}
	if err != nil {
		return nil, err
	}
	if err := s.applyRelations(ctx, class, id, rels); err != nil {
		return nil, err
	}
	if !ignore["afterUpdate"] {
		obj := JSON(updated)
		obj["_updatedKeys"] = keys
		s.afterHook(ctx, class, "afterUpdate", obj, user)
	}
	if fetchWhenSave(query, fields) {
		return ok(JSON(updated)), nil
	}
	out := map[string]any{"objectId": updated.ID, "updatedAt": isoTime(updated.UpdatedAt)}
	// results of atomic operations come back, as LeanCloud does for Increment
	for _, k := range keys {
		if op, isOp := fields[k].(map[string]any); isOp {
			if name, _ := op["__op"].(string); name == "" || noEcho[name] {
				continue
			}
			out[k] = updated.Fields[k]
		}
	}
	return ok(out), nil
}

// noEcho are the operations whose result an update does not answer.
var noEcho = map[string]bool{"Delete": true, "AddRelation": true, "RemoveRelation": true, "Batch": true}

func (s *Service) remove(ctx context.Context, class, id string, query url.Values, body []byte, auth Auth) (*Response, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	fields, _ := parseObject(body)
	if fields == nil {
		fields = map[string]any{}
	}
	if v := query.Get("__ignore_hooks"); v != "" {
		var list []any
		json.Unmarshal([]byte(v), &list)
		fields["__ignore_hooks"] = list
	}
	ignore := s.ignoredHooks(fields, auth)
	where, err := condition(query)
	if err != nil {
		return nil, err
	}
	o, err := s.st.Get(ctx, class, id)
	if errors.Is(err, store.ErrNotFound) {
		if where != nil {
			return nil, errNoEffect
		}
		return ok(map[string]any{}), nil
	}
	if err != nil {
		return nil, err
	}
	if err := checkUserWrite(class, id, user, auth); err != nil {
		return nil, err
	}
	if !s.allowed(ctx, o, user, "write", auth) {
		return nil, apiErr(http.StatusForbidden, 1, "Forbidden writing by object's ACL.")
	}
	if err := s.guard(ctx, where, user, auth)(o); err != nil {
		return nil, err
	}
	if !ignore["beforeDelete"] {
		if _, err := s.beforeHook(ctx, class, "beforeDelete", objectForHook(o, nil), user); err != nil {
			return nil, err
		}
	}
	if err := s.st.Delete(ctx, class, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if class == "_User" {
		if err := s.st.DeleteSessions(ctx, id); err != nil {
			return nil, err
		}
	}
	if !ignore["afterDelete"] {
		s.afterHook(ctx, class, "afterDelete", JSON(o), user)
	}
	return ok(map[string]any{}), nil
}

// ---- hooks

func objectForHook(o *store.Object, updatedKeys []string) map[string]any {
	obj := JSON(o)
	if updatedKeys != nil {
		obj["_updatedKeys"] = updatedKeys
	}
	return obj
}

// HasHook reports whether the cloud code the service fires hooks in defines a class's hook
// (beforeSave … afterDelete): the admin API reports which hooks a write fired.
func (s *Service) HasHook(class, hook string) bool { return s.hookDefined(class, hook) }

func (s *Service) hookDefined(class, hook string) bool {
	if s.hooks == nil {
		return false
	}
	prefix := map[string]string{"beforeSave": "__before_save_for_", "afterSave": "__after_save_for_", "beforeUpdate": "__before_update_for_",
		"afterUpdate": "__after_update_for_", "beforeDelete": "__before_delete_for_", "afterDelete": "__after_delete_for_"}[hook]
	name := prefix + class
	for _, f := range s.hooks.Functions() {
		if f == name {
			return true
		}
	}
	return false
}

func hookBody(object map[string]any, user *store.Object) json.RawMessage {
	body := map[string]any{"object": object}
	if user != nil {
		u := JSON(user)
		body["user"] = u
	}
	b, _ := json.Marshal(body)
	return b
}

// beforeHook runs a before-hook; an error from it stops the write with code 142. It returns the
// object the hook answered (beforeSave's changes are what gets stored).
func (s *Service) beforeHook(ctx context.Context, class, hook string, object map[string]any, user *store.Object) (map[string]any, error) {
	if class == "_Installation" || !s.hookDefined(class, hook) {
		return nil, nil
	}
	res := s.runHook(ctx, engine.LeanRequest{Kind: engine.LeanClassHook, ClassName: class, Hook: hook, HookKeyOK: true,
		Params: hookBody(object, user), Timeout: s.HookTimeout, URL: "/1.1/functions/" + class + "/" + hook, RemoteAddress: "127.0.0.1"})
	if res.Status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(res.Body, &e)
		return nil, apiErr(http.StatusBadRequest, 142, "Cloud Code validation failed. Error detail : %s", e.Error)
	}
	var out map[string]any
	json.Unmarshal(res.Body, &out)
	return out, nil
}

// afterHook runs an after-hook in the background: it never fails the client's request; its
// errors go to the logs.
func (s *Service) afterHook(ctx context.Context, class, hook string, object map[string]any, user *store.Object) {
	if class == "_Installation" || !s.hookDefined(class, hook) {
		return
	}
	body := hookBody(object, user)
	bg := context.Background()
	if d, ok := ctx.Value(deadlineKey{}).(time.Time); ok {
		bg = context.WithValue(bg, deadlineKey{}, d)
	}
	go func() {
		res := s.runHook(bg, engine.LeanRequest{Kind: engine.LeanClassHook, ClassName: class, Hook: hook, HookKeyOK: true,
			Params: body, Timeout: s.HookTimeout, URL: "/1.1/functions/" + class + "/" + hook, RemoteAddress: "127.0.0.1"})
		if res.Status != http.StatusOK {
			s.log("error", fmt.Sprintf("%s %s hook failed: %s", class, hook, strings.TrimSpace(string(res.Body))))
		}
	}()
}

type deadlineKey struct{}

// hookTimeout is 3 s, or what the calling cloud function has left if that is less.
func (s *Service) hookTimeout(ctx context.Context) time.Duration {
	t := s.HookTimeout
	if d, ok := ctx.Value(deadlineKey{}).(time.Time); ok {
		if left := time.Until(d); left < t {
			t = max(left, time.Millisecond)
		}
	}
	return t
}

func (s *Service) runHook(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	req.RequestID = engine.NewRequestID()
	req.Timeout = s.hookTimeout(ctx)
	res := s.hooks.InvokeLean(ctx, req)
	if s.OnHook != nil {
		s.OnHook(req, res)
	}
	return res
}

// ---- numbers

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}
