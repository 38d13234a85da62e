package leanstorage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/fnhq/fn/store"
)

// Followers and statuses: following a user writes a _Followee row for the follower and a
// _Follower row for the followed; a status (_Status) goes into the inboxes of the users its
// query selects (the sender's followers by default). Inbox entries are kept in inboxClass, which
// clients cannot address.

const (
	inboxClass = "_StatusInbox"
	// maxRecipients bounds one status's fan-out.
	maxRecipients = 10000
)

func userPointer(id string) map[string]any { return pointerTo("_User", id) }

// sessionUser is the calling user, required.
func (s *Service) sessionUser(ctx context.Context, auth Auth) (*store.Object, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	if user == nil {
		return nil, apiErr(http.StatusBadRequest, 206, "The user cannot be altered by a client without the session.")
	}
	return user, nil
}

// friendship serves POST/DELETE /users/{id}/friendship/{target} and GET
// /users/{id}/followersAndFollowees.
func (s *Service) friendship(ctx context.Context, method, id, target string, body []byte, query url.Values, auth Auth) (*Response, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	if target == "" && method == http.MethodGet {
		return s.followersAndFollowees(ctx, id, query, user, auth)
	}
	if err := checkUserWrite("_User", id, user, auth); err != nil {
		return nil, err
	}
	if id == target {
		return nil, apiErr(http.StatusBadRequest, 1, "A user cannot follow themself.")
	}
	if _, err := s.st.Get(ctx, "_User", target); errors.Is(err, store.ErrNotFound) {
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	} else if err != nil {
		return nil, err
	}
	rows := func(class, owner, key, other string) ([]*store.Object, error) {
		all, err := s.st.Scan(ctx, class)
		if err != nil {
			return nil, err
		}
		var out []*store.Object
		for _, o := range all {
			if sameValue(o.Fields["user"], userPointer(owner)) && sameValue(o.Fields[key], userPointer(other)) {
				out = append(out, o)
			}
		}
		return out, nil
	}
	followees, err := rows("_Followee", id, "followee", target)
	if err != nil {
		return nil, err
	}
	followers, err := rows("_Follower", target, "follower", id)
	if err != nil {
		return nil, err
	}
	if method == http.MethodDelete {
		for _, o := range append(followees, followers...) {
			if err := s.st.Delete(ctx, o.Class, o.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		return ok(map[string]any{}), nil
	}
	attrs, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	if err := checkKeys(attrs); err != nil {
		return nil, err
	}
	for k := range attrs {
		if metaKeys[k] || k == "user" || k == "follower" || k == "followee" || k == "ACL" {
			delete(attrs, k)
		}
	}
	now := s.opts.Now()
	write := func(class string, existing []*store.Object, fields map[string]any) error {
		if len(existing) > 0 {
			return nil // already following
		}
		for k, v := range attrs {
			fields[k] = v
		}
		return s.st.Insert(ctx, &store.Object{Class: class, ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: fields})
	}
	if err := write("_Followee", followees, map[string]any{"user": userPointer(id), "followee": userPointer(target)}); err != nil {
		return nil, err
	}
	if err := write("_Follower", followers, map[string]any{"user": userPointer(target), "follower": userPointer(id)}); err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusCreated, Body: map[string]any{}}, nil
}

func (s *Service) followersAndFollowees(ctx context.Context, id string, query url.Values, user *store.Object, auth Auth) (*Response, error) {
	out := map[string]any{}
	for class, key := range map[string]string{"_Follower": "followers", "_Followee": "followees"} {
		q := url.Values{"where": {`{"user":{"__type":"Pointer","className":"_User","objectId":"` + id + `"}}`},
			"include": query["include"], "keys": query["keys"], "limit": query["limit"], "skip": query["skip"]}
		resp, err := s.find(ctx, class, q, auth)
		if err != nil {
			return nil, err
		}
		out[key] = resp.Body.(map[string]any)["results"]
	}
	return ok(out), nil
}

// postStatus serves POST /statuses {data, query: {className, where, keys}, inboxType}.
func (s *Service) postStatus(ctx context.Context, body []byte, auth Auth) (*Response, error) {
	user, err := s.sessionUser(ctx, auth)
	if err != nil && !auth.Master {
		return nil, err
	}
	var req struct {
		Data      map[string]any `json:"data"`
		InboxType string         `json:"inboxType"`
		Query     struct {
			ClassName string         `json:"className"`
			Where     map[string]any `json:"where"`
			Keys      string         `json:"keys"`
		} `json:"query"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, apiErr(http.StatusBadRequest, 107, "Malformed json object. A json dictionary is expected.")
	}
	if req.InboxType == "" {
		req.InboxType = "default"
	}
	if !keyNameRE().MatchString(req.InboxType) {
		return nil, apiErr(http.StatusBadRequest, 1, "Invalid inboxType %q.", req.InboxType)
	}
	if req.Data == nil {
		req.Data = map[string]any{}
	}
	if err := checkKeys(req.Data); err != nil {
		return nil, err
	}
	if user != nil {
		req.Data["source"] = userPointer(user.ID) // a status comes from its sender, whatever it claims
	}
	if req.Query.ClassName == "" {
		if user == nil {
			return nil, apiErr(http.StatusBadRequest, 1, "A status needs a query of its recipients or a sender.")
		}
		req.Query.ClassName, req.Query.Keys = "_Follower", "follower"
		req.Query.Where = map[string]any{"user": userPointer(user.ID)}
	}
	if !classNameRE().MatchString(req.Query.ClassName) {
		return nil, apiErr(http.StatusBadRequest, 103, "Invalid class name: %s.", req.Query.ClassName)
	}
	// recipients are resolved by the server, not by the sender's read rights
	m := s.newMatcher(ctx, nil, Auth{Master: true})
	matched, err := m.match(req.Query.ClassName, req.Query.Where)
	if err != nil {
		return nil, err
	}
	var recipients []string
	seen := map[string]bool{}
	for _, o := range matched {
		id := ""
		if req.Query.ClassName == "_User" {
			id = o.ID
		} else if p, ok := o.Fields[req.Query.Keys].(map[string]any); ok && p["className"] == "_User" {
			id, _ = p["objectId"].(string)
		}
		if id != "" && !seen[id] {
			seen[id] = true
			recipients = append(recipients, id)
		}
	}
	if len(recipients) > maxRecipients {
		return nil, apiErr(http.StatusBadRequest, 1, "A status reaches at most %d users; this one would reach %d.", maxRecipients, len(recipients))
	}
	now := s.opts.Now()
	status := &store.Object{Class: "_Status", ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}}
	if err := applyOps(status.Fields, req.Data); err != nil {
		return nil, err
	}
	status.Fields["inboxType"] = req.InboxType
	if err := s.st.Insert(ctx, status); err != nil {
		return nil, err
	}
	inboxes, err := s.st.Scan(ctx, inboxClass)
	if err != nil {
		return nil, err
	}
	next := map[string]float64{}
	for _, e := range inboxes {
		owner, _ := e.Fields["owner"].(string)
		if n, _ := e.Fields["messageId"].(float64); n > next[owner] {
			next[owner] = n
		}
	}
	for _, r := range recipients {
		next[r]++
		entry := &store.Object{Class: inboxClass, ID: newID(), CreatedAt: now, UpdatedAt: now, Fields: map[string]any{
			"owner": r, "inboxType": req.InboxType, "status": status.ID, "messageId": next[r], "unread": true}}
		if err := s.st.Insert(ctx, entry); err != nil {
			return nil, err
		}
	}
	return &Response{Status: http.StatusCreated, Body: map[string]any{"objectId": status.ID, "createdAt": isoTime(now)}}, nil
}

// deleteStatus lets the sender (or the master key) withdraw a status from every inbox.
func (s *Service) deleteStatus(ctx context.Context, id string, auth Auth) (*Response, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	st, err := s.st.Get(ctx, "_Status", id)
	if errors.Is(err, store.ErrNotFound) {
		return ok(map[string]any{}), nil
	}
	if err != nil {
		return nil, err
	}
	if !auth.Master && (user == nil || !sameValue(st.Fields["source"], userPointer(user.ID))) {
		return nil, apiErr(http.StatusForbidden, 1, "Only the sender of a status can delete it.")
	}
	entries, err := s.st.Scan(ctx, inboxClass)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Fields["status"] == id {
			s.st.Delete(ctx, inboxClass, e.ID)
		}
	}
	if err := s.st.Delete(ctx, "_Status", id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return ok(map[string]any{}), nil
}

// inboxOwner reads owner (a user pointer, JSON) and checks that the caller may read that inbox.
func (s *Service) inboxOwner(ctx context.Context, raw string, auth Auth) (string, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return "", err
	}
	var p map[string]any
	json.Unmarshal([]byte(raw), &p)
	owner, _ := p["objectId"].(string)
	if owner == "" && user != nil {
		owner = user.ID
	}
	if owner == "" {
		return "", apiErr(http.StatusBadRequest, 1, "owner is missing: a user pointer.")
	}
	if !auth.Master && (user == nil || user.ID != owner) {
		return "", apiErr(http.StatusForbidden, 1, "An inbox is read only by its owner.")
	}
	return owner, nil
}

func inboxType(query url.Values) string {
	t := query.Get("inboxType")
	var s string
	if json.Unmarshal([]byte(t), &s) == nil {
		t = s // the SDK sends it JSON-encoded
	}
	if t == "" {
		return "default"
	}
	return t
}

func (s *Service) inboxEntries(ctx context.Context, owner, typ string) ([]*store.Object, error) {
	all, err := s.st.Scan(ctx, inboxClass)
	if err != nil {
		return nil, err
	}
	var out []*store.Object
	for _, e := range all {
		if e.Fields["owner"] == owner && e.Fields["inboxType"] == typ {
			out = append(out, e)
		}
	}
	return out, nil
}

// inbox serves GET /subscribe/statuses: the owner's statuses, newest first, with messageId,
// sinceId, maxId, limit and a where over the statuses.
func (s *Service) inbox(ctx context.Context, query url.Values, auth Auth) (*Response, error) {
	owner, err := s.inboxOwner(ctx, query.Get("owner"), auth)
	if err != nil {
		return nil, err
	}
	entries, err := s.inboxEntries(ctx, owner, inboxType(query))
	if err != nil {
		return nil, err
	}
	num := func(k string) float64 { f, _ := strconv.ParseFloat(query.Get(k), 64); return f }
	since, maxID := num("sinceId"), num("maxId")
	limit := 100
	if l, err := strconv.Atoi(query.Get("limit")); err == nil && l >= 0 {
		limit = min(l, 1000)
	}
	where := map[string]any{}
	if w := query.Get("where"); w != "" {
		if err := json.Unmarshal([]byte(w), &where); err != nil || where == nil {
			return nil, apiErr(http.StatusBadRequest, 107, "Invalid where: malformed JSON (%s).", shortErr(err))
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		a, _ := entries[i].Fields["messageId"].(float64)
		b, _ := entries[j].Fields["messageId"].(float64)
		return a > b
	})
	m := s.newMatcher(ctx, nil, Auth{Master: true})
	results := []map[string]any{}
	for _, e := range entries {
		id, _ := e.Fields["messageId"].(float64)
		if id <= since || (maxID > 0 && id >= maxID) {
			continue
		}
		sid, _ := e.Fields["status"].(string)
		st, err := s.st.Get(ctx, "_Status", sid)
		if err != nil {
			continue
		}
		if okm, err := m.matches(m.view(st), where); err != nil {
			return nil, err
		} else if !okm {
			continue
		}
		j := JSON(st)
		j["messageId"] = id
		results = append(results, j)
		if len(results) >= limit {
			break
		}
	}
	if inc := query.Get("include"); inc != "" {
		user, _ := s.currentUser(ctx, auth)
		s.include(ctx, results, strings.Split(inc, ","), user, auth)
	}
	return ok(map[string]any{"results": results}), nil
}

// inboxCount serves GET /subscribe/statuses/count and POST …/resetUnreadCount.
func (s *Service) inboxCount(ctx context.Context, query url.Values, body []byte, reset bool, auth Auth) (*Response, error) {
	if reset {
		var params map[string]any
		json.Unmarshal(body, &params)
		query = url.Values{}
		for k, v := range params {
			b, _ := json.Marshal(v)
			query.Set(k, string(b))
		}
	}
	owner, err := s.inboxOwner(ctx, query.Get("owner"), auth)
	if err != nil {
		return nil, err
	}
	entries, err := s.inboxEntries(ctx, owner, inboxType(query))
	if err != nil {
		return nil, err
	}
	unread := 0
	for _, e := range entries {
		if e.Fields["unread"] == true {
			unread++
			if reset {
				if _, err := s.st.Update(ctx, inboxClass, e.ID, func(o *store.Object) error { o.Fields["unread"] = false; return nil }); err != nil {
					return nil, err
				}
			}
		}
	}
	if reset {
		return ok(map[string]any{}), nil
	}
	return ok(map[string]any{"total": len(entries), "unread": unread}), nil
}

// updatePassword serves PUT /users/{id}/updatePassword {old_password, new_password}: the user's
// sessions end and the answer carries a new one.
func (s *Service) updatePassword(ctx context.Context, id string, body []byte, auth Auth) (*Response, error) {
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	if err := checkUserWrite("_User", id, user, auth); err != nil {
		return nil, err
	}
	fields, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	oldPW, _ := fields["old_password"].(string)
	newPW, _ := fields["new_password"].(string)
	if newPW == "" {
		return nil, apiErr(http.StatusBadRequest, 201, "Password is missing or empty.")
	}
	u, err := s.st.Get(ctx, "_User", id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiErr(http.StatusBadRequest, 211, "Could not find user.")
	}
	if err != nil {
		return nil, err
	}
	key := lockKey{user: id, addr: auth.RemoteAddr}
	if s.lockedOut(key) {
		return nil, apiErr(http.StatusBadRequest, 219, "Too many failed login attempts; try again later, or reset the password.")
	}
	if hash, _ := u.Fields["_hashed_password"].(string); !auth.Master && !checkPassword(hash, oldPW) {
		s.noteFailure(key, s.opts.MaxLoginFailures)
		return nil, apiErr(http.StatusBadRequest, 210, "The username and password mismatch.")
	}
	if _, err := s.setPassword(ctx, id, newPW, map[string]any{}); err != nil {
		return nil, err
	}
	u, err = s.st.Get(ctx, "_User", id)
	if err != nil {
		return nil, err
	}
	token, err := s.sessionOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(userJSON(u, token)), nil
}
