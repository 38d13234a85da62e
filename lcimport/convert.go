package lcimport

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fnhq/fn/store"
)

// Hidden fields (a leading "_" keeps leanstorage from serving them) where an import keeps what
// LeanCloud's export carries for users and files.
const (
	// FieldLCSalt and FieldLCPassword hold a LeanCloud user's salt and password hash (SHA-512,
	// see internal/lcpassword) until the user's first login on fn replaces them with bcrypt.
	FieldLCSalt     = "_lc_salt"
	FieldLCPassword = "_lc_password"
	// FieldLCSessionToken keeps the user's LeanCloud session token (also put in the store's
	// sessions) so that an export gives it back.
	FieldLCSessionToken = "_lc_sessionToken"
	// FieldBcrypt is where leanstorage keeps its own bcrypt hashes.
	FieldBcrypt = "_hashed_password"
	// FieldLCURL keeps a _File's original LeanCloud URL when the import rewrites url.
	FieldLCURL = "_lc_url"
)

var (
	classRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^_?[A-Za-z][A-Za-z0-9_]{0,127}$`) })
	joinRE  = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^_Join:([A-Za-z][A-Za-z0-9_]{0,127}):(_?[A-Za-z][A-Za-z0-9_]{0,127})$`)
	})
	idRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,160}$`) })
	keyRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^_?[A-Za-z][A-Za-z0-9_]*$`) })
	maxDepth = 64
)

// ValidClass reports whether name is a class an import accepts: a user class, a system class
// (_User, _Role, _Installation, _File, _Conversation, … kept even where fn does not serve them)
// or a relation table _Join:<key>:<OwnerClass>.
func ValidClass(name string) bool { return classRE().MatchString(name) || joinRE().MatchString(name) }

// JoinParts splits a relation table's name into the relation's key and its owning class.
func JoinParts(class string) (key, owner string, ok bool) {
	m := joinRE().FindStringSubmatch(class)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// converted is a record ready for the target, with what the import does besides storing it.
type converted struct {
	obj          *store.Object
	sessionToken string
	hasCreated   bool
	hasUpdated   bool
}

// convert checks a record and turns it into a stored object.
func convert(rec Record) (*converted, error) {
	if !ValidClass(rec.Class) {
		return nil, fmt.Errorf("%w: class name %q (letters, digits and _, starting with a letter, or a system class such as _User)", ErrInvalid, rec.Class)
	}
	f := rec.Fields
	if f == nil {
		return nil, fmt.Errorf("%w: expected a JSON object", ErrMalformed)
	}
	if t, _ := f["__type"].(string); t == "Object" || t == "" {
		delete(f, "__type")
		if cn, ok := f["className"].(string); ok && t == "Object" && cn != rec.Class {
			return nil, fmt.Errorf("%w: object says className %q in class %s", ErrInvalid, cn, rec.Class)
		}
		if t == "Object" {
			delete(f, "className")
		}
	} else {
		return nil, fmt.Errorf("%w: a top-level object cannot be a %s", ErrInvalid, t)
	}
	c := &converted{obj: &store.Object{Class: rec.Class, Fields: map[string]any{}}}
	o := c.obj
	var err error
	if o.CreatedAt, c.hasCreated, err = timeField(f, "createdAt"); err != nil {
		return nil, err
	}
	if o.UpdatedAt, c.hasUpdated, err = timeField(f, "updatedAt"); err != nil {
		return nil, err
	}
	if !c.hasUpdated && c.hasCreated {
		o.UpdatedAt, c.hasUpdated = o.CreatedAt, true
	}
	switch id := f["objectId"].(type) {
	case string:
		if !idRE().MatchString(id) {
			return nil, fmt.Errorf("%w: objectId %q (1 to 160 letters, digits, _ or -)", ErrInvalid, truncate(id))
		}
		o.ID = id
	case nil:
	default:
		return nil, fmt.Errorf("%w: objectId must be a string, got %s", ErrInvalid, jsonKind(id))
	}
	for k, v := range f {
		switch k {
		case "objectId", "createdAt", "updatedAt":
			continue
		}
		if !keyRE().MatchString(k) || len(k) > 256 {
			return nil, fmt.Errorf("%w: field name %q", ErrInvalid, truncate(k))
		}
		if strings.HasPrefix(k, "__") {
			return nil, fmt.Errorf("%w: field name %q", ErrInvalid, k)
		}
		if k == "ACL" {
			if err := checkACL(v); err != nil {
				return nil, err
			}
		} else if err := checkValue(k, v, 0); err != nil {
			return nil, err
		}
		o.Fields[k] = v
	}
	if _, _, isJoin := JoinParts(rec.Class); isJoin {
		owning, _ := o.Fields["owningId"].(string)
		related, _ := o.Fields["relatedId"].(string)
		if !idRE().MatchString(owning) || !idRE().MatchString(related) {
			return nil, fmt.Errorf("%w: a relation row needs owningId and relatedId (object ids)", ErrInvalid)
		}
		if o.ID == "" {
			// join rows have no id of their own in some exports: name them by what they join so
			// that importing them twice stores them once
			o.ID = joinID(owning, related)
		}
	}
	if rec.Class == "_User" {
		if err := userFields(c); err != nil {
			return nil, err
		}
	}
	if o.ID == "" {
		// LeanCloud's console import makes up an id for an object without one; a made-up id
		// taken from the content keeps a re-run of the import from adding it twice
		o.ID = contentID(rec.Class, o.Fields)
	}
	return c, nil
}

// userFields keeps a user's LeanCloud password hash and session token where leanstorage does
// not serve them.
func userFields(c *converted) error {
	f := c.obj.Fields
	salt, hasSalt := f["salt"].(string)
	pw, hasPW := f["password"].(string)
	switch {
	case hasSalt && hasPW:
		f[FieldLCSalt], f[FieldLCPassword] = salt, pw
		delete(f, "salt")
		delete(f, "password")
	case hasPW:
		return fmt.Errorf("%w: password without salt: fn imports LeanCloud's hashed passwords (salt + password) or bcryptPassword, never plain passwords", ErrInvalid)
	case hasSalt:
		delete(f, "salt") // a salt alone (a user without a password) means nothing
	}
	if b, ok := f["bcryptPassword"].(string); ok {
		// LeanCloud's console import takes bcrypt hashes under this name; leanstorage checks
		// bcrypt itself
		if !strings.HasPrefix(b, "$2") {
			return fmt.Errorf("%w: bcryptPassword is not a bcrypt hash", ErrInvalid)
		}
		f[FieldBcrypt] = b
		delete(f, "bcryptPassword")
	}
	if tok, ok := f["sessionToken"].(string); ok {
		delete(f, "sessionToken")
		if tok != "" {
			if len(tok) > 256 {
				return fmt.Errorf("%w: sessionToken longer than 256 characters", ErrInvalid)
			}
			f[FieldLCSessionToken] = tok
			c.sessionToken = tok
		}
	}
	return nil
}

func joinID(owning, related string) string {
	id := owning + "-" + related
	if len(id) <= 160 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:12])
}

func contentID(class string, fields map[string]any) string {
	b, _ := json.Marshal(fields) // map keys are sorted: the same content gives the same id
	sum := sha256.Sum256(append([]byte(class+"\x00"), b...))
	return hex.EncodeToString(sum[:12])
}

// timeField reads createdAt/updatedAt: an ISO string (LeanCloud's export) or a Date.
func timeField(f map[string]any, key string) (time.Time, bool, error) {
	v, ok := f[key]
	if !ok || v == nil {
		return time.Time{}, false, nil
	}
	s, isStr := v.(string)
	if m, isMap := v.(map[string]any); isMap && m["__type"] == "Date" {
		s, isStr = m["iso"].(string)
	}
	if !isStr {
		return time.Time{}, false, fmt.Errorf("%w: %s must be an ISO 8601 date, got %s", ErrInvalid, key, jsonKind(v))
	}
	t, err := parseISO(s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%w: %s %q is not an ISO 8601 date", ErrInvalid, key, truncate(s))
	}
	return t, true, nil
}

func parseISO(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// LeanCloud writes milliseconds with a Z; some tools drop the zone
		t, err = time.Parse("2006-01-02T15:04:05.999999999", s)
	}
	return t.UTC(), err
}

func checkACL(v any) error {
	acl, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: ACL must be an object like {\"*\":{\"read\":true}}, got %s", ErrInvalid, jsonKind(v))
	}
	for who, perms := range acl {
		p, ok := perms.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: ACL entry %q must be an object", ErrInvalid, truncate(who))
		}
		for perm, val := range p {
			if perm != "read" && perm != "write" {
				return fmt.Errorf("%w: ACL entry %q has permission %q (read or write)", ErrInvalid, truncate(who), truncate(perm))
			}
			if _, isBool := val.(bool); !isBool {
				return fmt.Errorf("%w: ACL entry %q.%s must be true or false", ErrInvalid, truncate(who), perm)
			}
		}
	}
	return nil
}

// checkValue checks the LeanCloud types in a value ({"__type": …} maps) and rejects what an
// export never holds: unknown types and atomic operations.
func checkValue(path string, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: %s is nested deeper than %d levels", ErrInvalid, path, maxDepth)
	}
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			if err := checkValue(fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if _, isOp := x["__op"]; isOp {
			return fmt.Errorf("%w: %s is an atomic operation (__op), not a value", ErrInvalid, path)
		}
		t, hasType := x["__type"]
		if !hasType {
			for k, e := range x {
				if err := checkValue(path+"."+k, e, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		name, _ := t.(string)
		str := func(k string) (string, bool) { s, ok := x[k].(string); return s, ok && s != "" }
		switch name {
		case "Pointer":
			if _, ok := str("className"); !ok {
				return fmt.Errorf("%w: %s: a Pointer needs a className", ErrInvalid, path)
			}
			if _, ok := str("objectId"); !ok {
				return fmt.Errorf("%w: %s: a Pointer needs an objectId", ErrInvalid, path)
			}
		case "Relation":
			if _, ok := str("className"); !ok {
				return fmt.Errorf("%w: %s: a Relation needs a className", ErrInvalid, path)
			}
		case "Date":
			s, _ := str("iso")
			if _, err := parseISO(s); err != nil {
				return fmt.Errorf("%w: %s: Date iso %q is not an ISO 8601 date", ErrInvalid, path, truncate(s))
			}
		case "Bytes":
			s, _ := x["base64"].(string)
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return fmt.Errorf("%w: %s: Bytes base64 is not base64", ErrInvalid, path)
			}
		case "File":
			_, id := str("id")
			_, oid := str("objectId")
			_, url := str("url")
			if !id && !oid && !url {
				return fmt.Errorf("%w: %s: a File needs an id, objectId or url", ErrInvalid, path)
			}
		case "GeoPoint":
			lat, ok1 := x["latitude"].(float64)
			lng, ok2 := x["longitude"].(float64)
			if !ok1 || !ok2 || math.Abs(lat) > 90 || math.Abs(lng) > 180 {
				return fmt.Errorf("%w: %s: a GeoPoint needs latitude in [-90, 90] and longitude in [-180, 180]", ErrInvalid, path)
			}
		case "Object":
			if _, ok := str("className"); !ok {
				return fmt.Errorf("%w: %s: an Object needs a className", ErrInvalid, path)
			}
			for k, e := range x {
				if k != "__type" {
					if err := checkValue(path+"."+k, e, depth+1); err != nil {
						return err
					}
				}
			}
		default:
			return fmt.Errorf("%w %q at %s (known: Pointer, Relation, Date, Bytes, File, GeoPoint, Object)", ErrUnknownType, truncate(fmt.Sprint(t)), path)
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
