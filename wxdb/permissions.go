package wxdb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Permission is a collection's access rule for mini-program clients (the console's 数据权限):
// one of the four simple settings, or custom security rules.
type Permission struct {
	// Mode: "creator" (仅创建者可读写, the default of a new collection), "read-all" (所有用户可读,
	// 仅创建者可读写), "admin" (仅管理端可读写) or "custom" (Read and Write below).
	Mode string
	// Read and Write are custom security rules: "true", "false", "auth != null",
	// "doc._openid == auth.openid" (either order), combined with || and &&.
	Read, Write string
}

// CodePermissionDenied is the platform's -502003.
const CodePermissionDenied = "DATABASE_PERMISSION_DENIED"

func denied(op, coll, why string) *Error {
	return errf(CodePermissionDenied, "Permission denied: %s on collection %s: %s", op, coll, why)
}

// CheckPermission validates a Permission (fn.yaml).
func CheckPermission(p Permission) error {
	switch p.Mode {
	case "", "creator", "read-all", "admin":
		return nil
	case "custom":
		for _, r := range []string{p.Read, p.Write} {
			if _, err := parseRule(r); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown permission %q: use creator, read-all, admin or custom", p.Mode)
}

// rule is a parsed custom rule: an OR of ANDs of atoms.
type rule [][]string

func parseRule(s string) (rule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return rule{{"false"}}, nil
	}
	var r rule
	for _, or := range strings.Split(s, "||") {
		var and []string
		for _, a := range strings.Split(or, "&&") {
			a = strings.Join(strings.Fields(strings.Trim(strings.TrimSpace(a), "()")), " ")
			switch a {
			case "true", "false", "auth != null":
				and = append(and, a)
			case "doc._openid == auth.openid", "auth.openid == doc._openid":
				and = append(and, "owner")
			default:
				return nil, fmt.Errorf("security rule %q: fn understands true, false, auth != null and doc._openid == auth.openid (with && and ||)", a)
			}
		}
		r = append(r, and)
	}
	return r, nil
}

// access is what a rule needs for one operation: always, never, or the caller's own documents.
type access int

const (
	never access = iota
	own
	always
)

func (r rule) access(c Caller) access {
	best := never
	for _, and := range r {
		a := always
		for _, atom := range and {
			switch atom {
			case "false":
				a = never
			case "auth != null":
				if c.OpenID == "" {
					a = never
				}
			case "owner":
				if a == always {
					a = own
				}
			}
		}
		if c.OpenID == "" && a == own {
			a = never
		}
		best = max(best, a)
	}
	return best
}

func (p Permission) access(c Caller, write bool) (access, bool, error) {
	switch p.Mode {
	case "", "creator":
		return own, true, nil
	case "read-all":
		if write {
			return own, true, nil
		}
		return always, true, nil
	case "admin":
		return never, true, nil
	}
	src := p.Read
	if write {
		src = p.Write
	}
	r, err := parseRule(src)
	if err != nil {
		return never, false, badParam("%v", err)
	}
	return r.access(c), false, nil
}

// HandleClient answers a database action of a mini-program client (wx.cloud.database()) under
// the collection's permission: perm says what each collection allows (nil: "creator" for all).
// Simple settings filter queries to the caller's own documents (as the platform adds _openid to
// them); custom rules require a query to name the caller's _openid, as the platform does. Single
// documents are checked against their _openid before anything changes.
func (db *DB) HandleClient(ctx context.Context, env string, caller Caller, perm func(collection string) Permission, action string, body json.RawMessage) (json.RawMessage, bool) {
	if !strings.HasPrefix(action, "database.") {
		return nil, false
	}
	caller.Client = true
	out, err := db.authorize(ctx, env, caller, perm, action, body)
	if err != nil {
		e, _ := err.(*Error)
		if e == nil {
			e = errf(CodeRequestFailed, "%v", err)
		}
		b, _ := json.Marshal(map[string]any{"code": e.Code, "message": e.Message})
		return b, true
	}
	return db.Handle(ctx, env, caller, action, out)
}

func (db *DB) authorize(ctx context.Context, env string, caller Caller, perm func(string) Permission, action string, body json.RawMessage) (json.RawMessage, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badParam("the request is not a JSON object: %v", err)
	}
	var coll, queryType string
	json.Unmarshal(req["collectionName"], &coll)
	json.Unmarshal(req["queryType"], &queryType)
	p := Permission{}
	if perm != nil {
		p = perm(coll)
	}
	var write bool
	switch action {
	case "database.getDocument", "database.countDocument", "database.calculateDocument":
	case "database.insertDocument", "database.modifyDocument", "database.updateDocument", "database.removeDocument", "database.deleteDocument":
		write = true
	case "database.watch", "database.realtime":
		return body, nil // the database answers these itself
	default:
		return nil, denied(strings.TrimPrefix(action, "database."), coll, "mini-program clients may get, count, add, update and remove documents only")
	}
	op := strings.TrimPrefix(action, "database.")
	a, simple, err := p.access(caller, write)
	if err != nil {
		return nil, err
	}
	switch {
	case a == never:
		return nil, denied(op, coll, "the collection's permission does not allow it")
	case a == always:
		return body, nil
	}
	// own documents only
	if action == "database.insertDocument" {
		return body, nil // the database sets _openid to the caller's
	}
	var qs string
	if err := json.Unmarshal(req["query"], &qs); err != nil || qs == "" {
		qs = "{}"
	}
	var q map[string]json.RawMessage
	if err := json.Unmarshal([]byte(qs), &q); err != nil {
		return nil, badParam("query: %v", err)
	}
	if queryType == "DOC" {
		owner, found, err := db.ownerOf(ctx, env, coll, qs)
		if err != nil {
			return nil, err
		}
		if found && owner != caller.OpenID {
			return nil, denied(op, coll, "the document was created by another user")
		}
		return body, nil
	}
	ownQuery := func() bool {
		var v string
		return json.Unmarshal(q["_openid"], &v) == nil && v == caller.OpenID
	}
	if !simple && !ownQuery() {
		return nil, denied(op, coll, "the security rule allows the caller's own documents only: the query must include _openid: '{openid}'")
	}
	if !ownQuery() {
		owner, _ := json.Marshal(caller.OpenID)
		nq := `{"$and":[` + qs + `,{"_openid":` + string(owner) + `}]}`
		if len(q) == 0 {
			nq = `{"_openid":` + string(owner) + `}`
		}
		b, _ := json.Marshal(nq)
		req["query"] = b
	}
	return json.Marshal(req)
}

// ownerOf reads a document's _openid (found false when there is no such document).
func (db *DB) ownerOf(ctx context.Context, env, coll, query string) (string, bool, error) {
	b, _ := json.Marshal(map[string]any{"action": "database.getDocument", "collectionName": coll, "query": query, "queryType": "DOC"})
	out, _ := db.Handle(ctx, env, Caller{}, "database.getDocument", b)
	var r struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Data    struct {
			List []string `json:"list"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return "", false, err
	}
	if r.Code != "" {
		return "", false, &Error{Code: r.Code, Message: r.Message}
	}
	if len(r.Data.List) == 0 {
		return "", false, nil
	}
	var d struct {
		OpenID string `json:"_openid"`
	}
	json.Unmarshal([]byte(r.Data.List[0]), &d)
	return d.OpenID, true, nil
}
