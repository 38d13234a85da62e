package leanstorage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/lcpassword"
	"github.com/fnhq/fn/internal/randid"
	"github.com/fnhq/fn/store"
)

// serverOwnedUserFields are set by the server only (verification flows, sessions): a client's
// own signup or update drops them.
var serverOwnedUserFields = []string{"emailVerified", "mobilePhoneVerified", "sessionToken"}

// privateUserFields are shown only to the user themself and the master key, and only they can
// query by them.
var privateUserFields = map[string]bool{"authData": true, "email": true, "mobilePhoneNumber": true}

// prehashMarker starts a password hash made over SHA-256 of the password: bcrypt reads only 72
// bytes, so long passwords are hashed down first. Hashes without it are plain bcrypt (imports and
// older databases) and still verify.
const prehashMarker = "fn-sha256$"

func (s *Service) hashPassword(pw string) (string, error) {
	sum := sha256.Sum256([]byte(pw))
	h, err := bcrypt.GenerateFromPassword([]byte(base64.StdEncoding.EncodeToString(sum[:])), s.bcryptCost)
	if err != nil {
		return "", err
	}
	return prehashMarker + string(h), nil
}

func checkPassword(hash, pw string) bool {
	if rest, ok := strings.CutPrefix(hash, prehashMarker); ok {
		sum := sha256.Sum256([]byte(pw))
		return bcrypt.CompareHashAndPassword([]byte(rest), []byte(base64.StdEncoding.EncodeToString(sum[:]))) == nil
	}
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// dropServerOwned removes what only the server sets from a client's user write.
func dropServerOwned(fields map[string]any, auth Auth) {
	if auth.Master {
		return
	}
	for _, k := range serverOwnedUserFields {
		delete(fields, k)
	}
}

// sessionOf is the user's session token, opened if the user has none: logins share one token
// per user, as LeanCloud's do (refreshSessionToken replaces it).
func (s *Service) sessionOf(ctx context.Context, userID string) (string, error) {
	token, err := s.st.UserSession(ctx, userID)
	if err == nil {
		return token, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	token = newToken()
	return token, s.st.PutSession(ctx, token, userID)
}

func (s *Service) findUser(ctx context.Context, field, value string) (*store.Object, error) {
	users, err := s.st.Scan(ctx, "_User")
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if v, _ := u.Fields[field].(string); v != "" && v == value {
			return u, nil
		}
	}
	return nil, nil
}

// userJSON is a user as its owner sees it: with the session token.
func userJSON(u *store.Object, token string) map[string]any {
	out := JSON(u)
	if token != "" {
		out["sessionToken"] = token
	}
	return out
}

func (s *Service) signup(ctx context.Context, query url.Values, body []byte, auth Auth) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	ignore := s.ignoredHooks(fields, auth)
	if authData, ok := fields["authData"].(map[string]any); ok && fields["password"] == nil {
		return s.loginWithAuthData(ctx, fields, authData, query.Get("failOnNotExist") == "true", auth)
	}
	dropServerOwned(fields, auth)
	if authData, ok := fields["authData"].(map[string]any); ok {
		verified, _, err := s.verifyAuthData(ctx, authData, auth, false)
		if err != nil {
			return nil, err
		}
		fields["authData"] = verified
	}
	username, _ := fields["username"].(string)
	password, _ := fields["password"].(string)
	if username == "" {
		return nil, apiErr(http.StatusBadRequest, 200, "Username is missing or empty.")
	}
	if password == "" {
		return nil, apiErr(http.StatusBadRequest, 201, "Password is missing or empty.")
	}
	if err := checkKeys(fields); err != nil {
		return nil, err
	}
	if u, err := s.findUser(ctx, "username", username); err != nil {
		return nil, err
	} else if u != nil {
		return nil, apiErr(http.StatusBadRequest, 202, "Username has already been taken.")
	}
	if email, _ := fields["email"].(string); email != "" {
		if u, err := s.findUser(ctx, "email", email); err != nil {
			return nil, err
		} else if u != nil {
			return nil, apiErr(http.StatusBadRequest, 203, "This email address has already been taken.")
		}
	}
	if phone, _ := fields["mobilePhoneNumber"].(string); phone != "" {
		if u, err := s.findUser(ctx, "mobilePhoneNumber", phone); err != nil {
			return nil, err
		} else if u != nil {
			return nil, apiErr(http.StatusBadRequest, 214, "Mobile phone number has already been taken.")
		}
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return nil, err
	}
	delete(fields, "password")
	now := time.Now()
	o := &store.Object{Class: "_User", ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}}
	if err := applyOps(o.Fields, fields); err != nil {
		return nil, err
	}
	if _, has := o.Fields["emailVerified"]; !has && o.Fields["email"] != nil {
		o.Fields["emailVerified"] = false
	}
	if _, has := o.Fields["mobilePhoneVerified"]; !has && o.Fields["mobilePhoneNumber"] != nil {
		o.Fields["mobilePhoneVerified"] = false
	}
	if !ignore["beforeSave"] {
		changed, err := s.beforeHook(ctx, "_User", "beforeSave", objectForHook(o, nil), nil)
		if err != nil {
			return nil, err
		}
		if changed != nil {
			o.Fields = stripMeta(changed)
		}
	}
	o.Fields["_hashed_password"] = string(hash)
	if err := s.st.Insert(ctx, o); err != nil {
		return nil, err
	}
	token := newToken()
	if err := s.st.PutSession(ctx, token, o.ID); err != nil {
		return nil, err
	}
	if !ignore["afterSave"] {
		s.afterHook(ctx, "_User", "afterSave", JSON(o), nil)
	}
	return &Response{Status: http.StatusCreated, Location: "/1.1/users/" + o.ID,
		Body: map[string]any{"objectId": o.ID, "createdAt": isoTime(o.CreatedAt), "sessionToken": token}}, nil
}

// loginWithAuthData is a third-party login (POST /users {"authData": {platform: {...}}}): each
// platform's data is verified with the platform (see AuthVerifier); the onAuthData hook may check
// or change it first. A user with the same platform uid logs in, otherwise a user is created.
func (s *Service) loginWithAuthData(ctx context.Context, fields, authData map[string]any, failOnNotExist bool, auth Auth) (*Response, error) {
	if len(authData) == 0 {
		return nil, apiErr(http.StatusBadRequest, 1, "authData is empty")
	}
	hookDefined := s.userHookDefined("__on_authdata__User")
	if hookDefined {
		body, _ := json.Marshal(map[string]any{"authData": authData})
		res := s.runHook(ctx, engine.LeanRequest{Kind: engine.LeanUserHook, Hook: "onAuthData", HookKeyOK: true,
			Params: body, URL: "/1.1/functions/_User/onAuthData", RemoteAddress: auth.RemoteAddr})
		if res.Status != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			json.Unmarshal(res.Body, &e)
			return nil, apiErr(http.StatusBadRequest, 142, "Cloud Code validation failed. Error detail : %s", e.Error)
		}
		var out struct {
			Result map[string]any `json:"result"`
		}
		if json.Unmarshal(res.Body, &out) == nil && out.Result != nil {
			authData = out.Result
		}
	}
	verified, uids, err := s.verifyAuthData(ctx, authData, auth, hookDefined)
	if err != nil {
		return nil, err
	}
	users, err := s.st.Scan(ctx, "_User")
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		existing, _ := u.Fields["authData"].(map[string]any)
		for platform, id := range uids {
			if id != "" && authUID(existing[platform]) == id {
				token, err := s.sessionOf(ctx, u.ID)
				if err != nil {
					return nil, err
				}
				return ok(userJSON(u, token)), nil
			}
		}
	}
	// unionid login (loginWithAuthDataAndUnionId): the main account of the same unionid on the
	// same unionIdPlatform logs in and gets this platform linked. The unionid is the client's
	// word (WeChat's token check does not cover it), so only trusted callers — the master key,
	// cloud code, or an onAuthData hook that checked it — may log in by it.
	if auth.Master || auth.HookKey || hookDefined {
		if u, err := s.unionMainAccount(ctx, users, verified); err != nil || u != nil {
			return u, err
		}
	}
	if failOnNotExist {
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	for platform, id := range uids {
		if id == "" {
			return nil, apiErr(http.StatusBadRequest, 250, "Invalid authData for %s: the platform's user id (uid or openid) is missing.", platform)
		}
	}
	now := s.opts.Now()
	username := newToken()[:25]
	if name, _ := fields["username"].(string); name != "" {
		// new AV.User().setUsername(x).loginWithAuthData(…) names the user it creates
		if taken, err := s.findUser(ctx, "username", name); err != nil {
			return nil, err
		} else if taken != nil {
			return nil, apiErr(http.StatusBadRequest, 202, "Username has already been taken.")
		}
		username = name
	}
	o := &store.Object{Class: "_User", ID: newID(), CreatedAt: now, UpdatedAt: now,
		Fields: map[string]any{"username": username, "authData": verified}}
	if err := s.st.Insert(ctx, o); err != nil {
		return nil, err
	}
	token, err := s.sessionOf(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	s.afterHook(ctx, "_User", "afterSave", JSON(o), nil)
	return &Response{Status: http.StatusCreated, Location: "/1.1/users/" + o.ID, Body: userJSON(o, token)}, nil
}

func (s *Service) login(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	username, _ := fields["username"].(string)
	email, _ := fields["email"].(string)
	password, _ := fields["password"].(string)
	phone, _ := fields["mobilePhoneNumber"].(string)
	var u *store.Object
	switch {
	case username != "":
		u, err = s.findUser(ctx, "username", username)
	case email != "":
		u, err = s.findUser(ctx, "email", email)
	case phone != "":
		u, err = s.findUser(ctx, "mobilePhoneNumber", phone)
		if code, _ := fields["smsCode"].(string); err == nil && u != nil && code != "" {
			return s.loginBySmsCode(ctx, u, phone, code, auth)
		}
	default:
		return nil, apiErr(http.StatusBadRequest, 200, "Username is missing or empty.")
	}
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	key := lockKey{user: u.ID, addr: auth.RemoteAddr}
	if s.lockedOut(key) {
		return nil, apiErr(http.StatusBadRequest, 219, "Too many failed login attempts; try again later, or reset the password.")
	}
	hash, _ := u.Fields["_hashed_password"].(string)
	ok := checkPassword(hash, password)
	if !ok && hash == "" {
		// a user imported from LeanCloud keeps their password: its hash is upgraded to fn's now
		salt, _ := u.Fields["_lc_salt"].(string)
		lc, _ := u.Fields["_lc_password"].(string)
		if salt != "" && lc != "" && lcpassword.VerifyLeanCloudPassword(salt, lc, password) {
			if u, err = s.upgradeLeanCloudPassword(ctx, u, password); err != nil {
				return nil, err
			}
			ok = true
		}
	}
	if !ok {
		s.noteFailure(key, s.opts.MaxLoginFailures)
		return nil, apiErr(http.StatusBadRequest, 210, "The username and password mismatch.")
	}
	s.noteSuccess(key)
	return s.finishLogin(ctx, u, auth)
}

// upgradeLeanCloudPassword replaces an imported LeanCloud hash by fn's own after a login proved
// the password.
func (s *Service) upgradeLeanCloudPassword(ctx context.Context, u *store.Object, password string) (*store.Object, error) {
	hash, err := s.hashPassword(password)
	if err != nil {
		return nil, err
	}
	return s.st.Update(ctx, "_User", u.ID, func(o *store.Object) error {
		o.Fields["_hashed_password"] = hash
		delete(o.Fields, "_lc_salt")
		delete(o.Fields, "_lc_password")
		return nil
	})
}

// finishLogin runs onLogin and answers the user with their session token.
func (s *Service) finishLogin(ctx context.Context, u *store.Object, auth Auth) (*Response, error) {
	if s.userHookDefined("__on_login__User") {
		res := s.runHook(ctx, engine.LeanRequest{Kind: engine.LeanUserHook, Hook: "onLogin", HookKeyOK: true,
			Params: hookBody(JSON(u), nil), Timeout: s.HookTimeout, URL: "/1.1/functions/_User/onLogin", RemoteAddress: auth.RemoteAddr})
		if res.Status != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			json.Unmarshal(res.Body, &e)
			// an onLogin error blocks the login: the client gets 401
			return nil, apiErr(http.StatusUnauthorized, 142, "Cloud Code validation failed. Error detail : %s", e.Error)
		}
	}
	token, err := s.sessionOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return ok(userJSON(u, token)), nil
}

func (s *Service) userHookDefined(name string) bool {
	if s.hooks == nil {
		return false
	}
	for _, f := range s.hooks.Functions() {
		if f == name {
			return true
		}
	}
	return false
}

type lockKey struct{ user, addr string }

type lockout struct {
	failures int
	last     time.Time
	until    time.Time
}

func (s *Service) lockedOut(k lockKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lockouts[k]
	return l != nil && s.opts.Now().Before(l.until)
}

// noteFailure counts a wrong password: after threshold (MaxLoginFailures) in a row the (user, address) pair
// is locked for LoginLockout, each later failure doubling it up to LoginLockoutMax. A quiet
// LoginLockoutMax forgets the failures.
func (s *Service) noteFailure(k lockKey, threshold int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	l := s.lockouts[k]
	if l == nil || now.Sub(l.last) > s.opts.LoginLockoutMax && !now.Before(l.until) {
		l = &lockout{}
		s.lockouts[k] = l
	}
	l.failures++
	l.last = now
	if over := l.failures - threshold; over >= 0 {
		d := s.opts.LoginLockout
		for i := 0; i < over && d < s.opts.LoginLockoutMax; i++ {
			d *= 2
		}
		l.until = now.Add(min(d, s.opts.LoginLockoutMax))
	}
	if len(s.lockouts) > 10000 { // bound the memory a password sprayer can take
		for key, v := range s.lockouts {
			if now.Sub(v.last) > s.opts.LoginLockoutMax && !now.Before(v.until) {
				delete(s.lockouts, key)
			}
		}
	}
}

func (s *Service) noteSuccess(k lockKey) {
	s.mu.Lock()
	delete(s.lockouts, k)
	s.mu.Unlock()
}

func (s *Service) me(ctx context.Context, auth Auth) (*Response, error) {
	if auth.SessionToken == "" {
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	u, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	if u == nil { // an unknown or stale token
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	return ok(userJSON(u, auth.SessionToken)), nil
}

func (s *Service) refreshSession(ctx context.Context, id string, auth Auth) (*Response, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	if !auth.Master && (user == nil || user.ID != id) {
		return nil, apiErr(http.StatusForbidden, 206, "The user cannot be altered by a client without the session.")
	}
	u, err := s.st.Get(ctx, "_User", id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiErr(http.StatusNotFound, 211, "Could not find user.")
	}
	if err != nil {
		return nil, err
	}
	if err := s.st.DeleteSessions(ctx, id); err != nil {
		return nil, err
	}
	token, err := s.sessionOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(userJSON(u, token)), nil
}

// Verify marks a user's email or phone verified and fires onVerified (fn dev's stand-in for the
// verification email or SMS). kind is "email" or "sms"; who is a user id or username.
func (s *Service) Verify(ctx context.Context, who, kind string) (map[string]any, error) {
	field := map[string]string{"email": "emailVerified", "sms": "mobilePhoneVerified"}[kind]
	if field == "" {
		return nil, apiErr(http.StatusBadRequest, 1, "verification type must be email or sms, got %q", kind)
	}
	u, err := s.st.Get(ctx, "_User", who)
	if errors.Is(err, store.ErrNotFound) {
		u, err = s.findUser(ctx, "username", who)
		if err == nil && u == nil {
			return nil, apiErr(http.StatusNotFound, 211, "Could not find user.")
		}
	}
	if err != nil {
		return nil, err
	}
	u, err = s.st.Update(ctx, "_User", u.ID, func(o *store.Object) error {
		o.Fields[field] = true
		o.UpdatedAt = time.Now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.onVerified(ctx, kind, u)
	return JSON(u), nil
}

// ---- batch

func (s *Service) batch(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	var req struct {
		Requests []struct {
			Method string          `json:"method"`
			Path   string          `json:"path"`
			Body   json.RawMessage `json:"body"`
			// Params are a GET's query as an object: the SDK sends a query whose URL would be
			// too long (over 2000 characters) as a batch of one with params
			Params map[string]any `json:"params"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, apiErr(http.StatusBadRequest, 107, "Malformed json object. A json dictionary is expected.")
	}
	out := make([]any, len(req.Requests))
	for i, r := range req.Requests {
		path := r.Path
		for _, prefix := range []string{"/1.1/", "/1/"} {
			path = strings.TrimPrefix(path, prefix)
		}
		u, _ := url.Parse(path)
		if u == nil {
			u = &url.URL{Path: path}
		}
		method := strings.ToUpper(r.Method)
		q := u.Query()
		for k, v := range r.Params {
			switch x := v.(type) {
			case nil:
			case string:
				q.Set(k, x)
			default:
				b, _ := json.Marshal(x)
				q.Set(k, string(b))
			}
		}
		resp := s.Serve(ctx, method, u.Path, q, r.Body, auth)
		if resp.Status >= 200 && resp.Status < 300 {
			if m, isMap := resp.Body.(map[string]any); isMap && len(m) == 0 && method == http.MethodGet && len(strings.Split(strings.Trim(u.Path, "/"), "/")) == 3 {
				// a missing object: a lone GET answers {}, a batch {"success": null}, as
				// LeanCloud's recorded answers show (AV.Object.fetchAll reads it as 101)
				out[i] = map[string]any{"success": nil}
				continue
			}
			out[i] = map[string]any{"success": resp.Body}
		} else {
			out[i] = map[string]any{"error": resp.Body}
		}
	}
	return ok(out), nil
}

// ---- import and export

// Export is a JSON dump: class → objects as the API shows them (password hashes included so that
// an import restores working logins).
func (s *Service) Export(ctx context.Context) (map[string][]map[string]any, error) {
	classes, err := s.st.Classes(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]map[string]any{}
	for _, c := range classes {
		objs, err := s.st.Scan(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			j := JSON(o)
			if h, ok := o.Fields["_hashed_password"]; ok {
				j["_hashed_password"] = h
			}
			// a relation's members (join rows) travel inside its field
			for k, v := range o.Fields {
				f, isRel := v.(map[string]any)
				if !isRel || f["__type"] != "Relation" {
					continue
				}
				target, _ := f["className"].(string)
				ids, err := s.st.RelationTargets(ctx, store.Relation{OwnerClass: c, OwnerID: o.ID, Key: k})
				if err != nil {
					return nil, err
				}
				members := make([]any, len(ids))
				for i, id := range ids {
					members[i] = pointerTo(target, id)
				}
				j[k] = map[string]any{"__type": "Relation", "className": target, "objects": members}
			}
			out[c] = append(out[c], j)
		}
	}
	return out, nil
}

// Import loads a dump. Like the console's import it fires no hooks. Objects keep their ids;
// an existing id is replaced.
func (s *Service) Import(ctx context.Context, data map[string][]map[string]any) (int, error) {
	n := 0
	for class, objs := range data {
		if !classNameRE().MatchString(class) && !internalClasses[class] {
			return n, apiErr(http.StatusBadRequest, 103, "Invalid class name: %s.", class)
		}
		for i, j := range objs {
			id, _ := j["objectId"].(string)
			if id == "" {
				id = newID()
			}
			created := parseISO(j["createdAt"])
			updated := parseISO(j["updatedAt"])
			fields := map[string]any{}
			for k, v := range j {
				if !metaKeys[k] {
					fields[k] = v
				}
			}
			if class == "_User" {
				if pw, ok := fields["password"].(string); ok {
					hash, err := s.hashPassword(pw)
					if err != nil {
						return n, err
					}
					delete(fields, "password")
					fields["_hashed_password"] = string(hash)
				}
			}
			var rels []relOp
			for k, v := range fields {
				f, isRel := v.(map[string]any)
				if !isRel || f["__type"] != "Relation" {
					continue
				}
				target, _ := f["className"].(string)
				r := relOp{key: k, op: "AddRelation", class: target}
				members, _ := f["objects"].([]any)
				for _, m := range members {
					if p, ok := m.(map[string]any); ok {
						if mid, _ := p["objectId"].(string); mid != "" {
							r.ids = append(r.ids, mid)
						}
					}
				}
				rels = append(rels, r)
				fields[k] = map[string]any{"__type": "Relation", "className": target}
			}
			o := &store.Object{Class: class, ID: id, CreatedAt: created, UpdatedAt: updated, Fields: fields}
			s.st.Delete(ctx, class, id)
			if err := s.st.Insert(ctx, o); err != nil {
				return n, apiErr(http.StatusBadRequest, 1, "%s[%d]: %v", class, i, err)
			}
			if err := s.applyRelations(ctx, class, id, rels); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func parseISO(v any) time.Time {
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return time.Now()
}

// SessionFor opens a session for an existing user, by username: how fn dev and fn invoke call
// cloud functions "as" a named identity.
func (s *Service) SessionFor(ctx context.Context, username string) (string, error) {
	u, err := s.findUser(ctx, "username", username)
	if err != nil {
		return "", err
	}
	if u == nil {
		return "", apiErr(http.StatusNotFound, 211, "no user named %q in LeanStorage (sign one up first, e.g. with AV.User.signUp)", username)
	}
	return s.sessionOf(ctx, u.ID)
}

// IdentitySession is SessionFor for fn dev's named identities (fn.yaml identities: {name: {user:
// …}}): a user that does not exist yet is signed up on first use, with a random password, so the
// identities a project declares work on an empty store.
func (s *Service) IdentitySession(ctx context.Context, username string) (string, error) {
	u, err := s.findUser(ctx, "username", username)
	if err != nil {
		return "", err
	}
	if u == nil {
		body, _ := json.Marshal(map[string]string{"username": username, "password": randid.Key(32)})
		if _, err := s.signup(ctx, nil, body, Auth{Master: true, RemoteAddr: "127.0.0.1"}); err != nil {
			return "", fmt.Errorf("creating the user %q of this identity: %w", username, err)
		}
	}
	return s.SessionFor(ctx, username)
}

// unionMainAccount logs in the user whose authData holds the main account of a unionid that
// the request's authData names ({unionid, platform, main_account} as the SDK sends them), and
// links the request's platforms to it. nil when there is none.
func (s *Service) unionMainAccount(ctx context.Context, users []*store.Object, verified map[string]any) (*Response, error) {
	for _, raw := range verified {
		d, _ := raw.(map[string]any)
		union, platform := str(d, "unionid"), str(d, "platform")
		if union == "" || platform == "" {
			continue
		}
		for _, u := range users {
			existing, _ := u.Fields["authData"].(map[string]any)
			for _, e := range existing {
				em, _ := e.(map[string]any)
				if str(em, "unionid") != union || str(em, "platform") != platform || em["main_account"] != true {
					continue
				}
				merged := map[string]any{}
				for k, v := range existing {
					merged[k] = v
				}
				for k, v := range verified {
					if v != nil {
						merged[k] = v
					}
				}
				linked, err := s.setUserFields(ctx, u.ID, map[string]any{"authData": merged})
				if err != nil {
					return nil, err
				}
				token, err := s.sessionOf(ctx, u.ID)
				if err != nil {
					return nil, err
				}
				return ok(userJSON(linked, token)), nil
			}
		}
	}
	return nil, nil
}
