package lcimport

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fnhq/fn/store"
)

// Outcome is what an upsert did (or would do, in a dry run).
type Outcome int

const (
	Added Outcome = iota + 1
	Changed
	Unchanged
)

// FileMeta names a _File object's content.
type FileMeta struct {
	ObjectID string
	Name     string
	MD5      string // hex, from metaData._checksum when the export has it
	Size     int64  // from metaData.size, -1 when unknown
	URL      string // where the content is fetched from (LeanCloud's file domain + key)
}

// Target is where an import writes: the local project's store (StoreTarget) or, later, an app
// on fn serve. Writes bypass LeanStorage's hooks.
type Target interface {
	// Upsert stores o by (class, objectId) unless the same object is stored already. With
	// dryRun it only says what it would do. A zero CreatedAt/UpdatedAt means the input had none:
	// a stored object keeps its own, a new one gets the current time.
	Upsert(ctx context.Context, o *store.Object, dryRun bool) (Outcome, error)
	// PutSession makes token a session of userID (a no-op when it is one already).
	PutSession(ctx context.Context, token, userID string) error
	FileTarget
}

// FileTarget is where file contents go.
type FileTarget interface {
	// HasFile reports whether a file's content is stored already (with the size and checksum
	// given, when they are known).
	HasFile(ctx context.Context, f FileMeta) (bool, error)
	// PutFile stores a file's content. An error from content (a failed checksum) must leave
	// nothing stored.
	PutFile(ctx context.Context, f FileMeta, content io.Reader) error
}

// RelationFolder is implemented by targets that keep relations on the owning object, as
// leanstorage does ({"__type":"Relation","className":…,"objects":[pointers]}); the importer
// asks it to fold a relation table's rows into the owners once the import is done.
type RelationFolder interface {
	FoldRelation(ctx context.Context, joinClass string) (FoldReport, error)
}

// FoldReport is what folding one relation table did.
type FoldReport struct {
	Rows          int `json:"rows"`
	Owners        int `json:"owners"`
	MissingOwners int `json:"missingOwners"` // rows whose owning object is not stored
	UnknownClass  int `json:"unknownClass"`  // rows whose owner has no Relation field naming the related class
}

// StoreTarget writes into a store.Store directly, as fn data import does; file contents go to
// FilesDir/<objectId>.
type StoreTarget struct {
	Store    store.Store
	FilesDir string
	Now      func() time.Time
}

func (t *StoreTarget) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Upsert implements Target.
func (t *StoreTarget) Upsert(ctx context.Context, o *store.Object, dryRun bool) (Outcome, error) {
	cur, err := t.Store.Get(ctx, o.Class, o.ID)
	if errors.Is(err, store.ErrNotFound) {
		if dryRun {
			return Added, nil
		}
		n := *o
		now := t.now()
		if n.CreatedAt.IsZero() {
			n.CreatedAt = now
		}
		if n.UpdatedAt.IsZero() {
			n.UpdatedAt = n.CreatedAt
		}
		if err := t.Store.Insert(ctx, &n); err != nil {
			return 0, err
		}
		return Added, nil
	}
	if err != nil {
		return 0, err
	}
	want := *o
	want.Fields = keepUpgradedPassword(cur.Fields, keepRelationObjects(cur.Fields, o.Fields))
	if o.Class == "_File" {
		want.Fields = keepRewrittenURL(cur.Fields, want.Fields)
	}
	if want.CreatedAt.IsZero() {
		want.CreatedAt = cur.CreatedAt
	}
	if want.UpdatedAt.IsZero() {
		want.UpdatedAt = cur.UpdatedAt
	}
	if sameObject(cur, &want) {
		return Unchanged, nil
	}
	if dryRun {
		return Changed, nil
	}
	if cur.CreatedAt.UnixMilli() != want.CreatedAt.UnixMilli() {
		// the store's Update keeps createdAt: replace the object instead
		if err := t.Store.Delete(ctx, o.Class, o.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		return Changed, t.Store.Insert(ctx, &want)
	}
	_, err = t.Store.Update(ctx, o.Class, o.ID, func(s *store.Object) error {
		s.Fields = want.Fields
		s.UpdatedAt = want.UpdatedAt
		return nil
	})
	if err != nil {
		return 0, err
	}
	return Changed, nil
}

// keepUpgradedPassword keeps the password of a user who signed in on fn since the last import
// (LeanStorage then replaced the LeanCloud hash by its own): from then on fn's password is the
// user's, and an import of the old hash must neither revert it nor count as a change.
func keepUpgradedPassword(cur, in map[string]any) map[string]any {
	hash, upgraded := cur["_hashed_password"].(string)
	if !upgraded || hash == "" || cur[FieldLCPassword] != nil || in[FieldLCPassword] == nil || in["_hashed_password"] != nil {
		return in
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		if k != FieldLCPassword && k != FieldLCSalt {
			out[k] = v
		}
	}
	out["_hashed_password"] = hash
	return out
}

// keepRewrittenURL keeps the url an earlier import gave a _File (its content now served by fn)
// when the same export comes in again without rewriting: the content has not moved back.
func keepRewrittenURL(cur, in map[string]any) map[string]any {
	orig, _ := cur[FieldLCURL].(string)
	if orig == "" || in[FieldLCURL] != nil || in["url"] != orig {
		return in
	}
	out := make(map[string]any, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	out["url"], out[FieldLCURL] = cur["url"], orig
	return out
}

// keepRelationObjects carries the folded pointers of Relation fields over to an incoming
// object whose Relation fields (as LeanCloud exports them) have none, so that re-importing an
// owner does not undo the relation fold.
func keepRelationObjects(cur, in map[string]any) map[string]any {
	var out map[string]any
	for k, v := range in {
		rel, ok := v.(map[string]any)
		if !ok || rel["__type"] != "Relation" || rel["objects"] != nil {
			continue
		}
		old, ok := cur[k].(map[string]any)
		if !ok || old["__type"] != "Relation" || old["className"] != rel["className"] || old["objects"] == nil {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(in))
			for k2, v2 := range in {
				out[k2] = v2
			}
		}
		merged := make(map[string]any, len(rel)+1)
		for k2, v2 := range rel {
			merged[k2] = v2
		}
		merged["objects"] = old["objects"]
		out[k] = merged
	}
	if out == nil {
		return in
	}
	return out
}

func sameObject(a, b *store.Object) bool {
	if a.CreatedAt.UnixMilli() != b.CreatedAt.UnixMilli() || a.UpdatedAt.UnixMilli() != b.UpdatedAt.UnixMilli() {
		return false
	}
	// the store keeps numbers as float64 and JSON sorts map keys: equal content encodes equally
	ja, err1 := json.Marshal(a.Fields)
	jb, err2 := json.Marshal(normalizeJSON(b.Fields))
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// normalizeJSON makes a value look as it will after a round trip through the store.
func normalizeJSON(m map[string]any) any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return m
	}
	return out
}

// PutSession implements Target.
func (t *StoreTarget) PutSession(ctx context.Context, token, userID string) error {
	uid, err := t.Store.SessionUser(ctx, token)
	if err == nil {
		if uid == userID {
			return nil
		}
		return fmt.Errorf("session token is already a session of another user")
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return t.Store.PutSession(ctx, token, userID)
}

func (t *StoreTarget) blobPath(f FileMeta) (string, error) {
	if t.FilesDir == "" {
		return "", errors.New("no directory for file contents was given")
	}
	if !idRE().MatchString(f.ObjectID) {
		return "", fmt.Errorf("%w: file objectId %q", ErrInvalid, truncate(f.ObjectID))
	}
	return filepath.Join(t.FilesDir, f.ObjectID), nil
}

// HasFile implements Target.
func (t *StoreTarget) HasFile(ctx context.Context, f FileMeta) (bool, error) {
	p, err := t.blobPath(f)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if f.Size >= 0 && st.Size() != f.Size {
		return false, nil
	}
	if f.MD5 == "" {
		return true, nil
	}
	file, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer file.Close()
	h := md5.New()
	if _, err := io.Copy(h, file); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == f.MD5, nil
}

// PutFile implements Target: the content goes to a temporary file renamed into place only
// once it was read to its end without error, so an interrupted download leaves nothing behind
// that looks complete.
func (t *StoreTarget) PutFile(ctx context.Context, f FileMeta, content io.Reader) error {
	p, err := t.blobPath(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(t.FilesDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(t.FilesDir, ".part-"+f.ObjectID+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// FoldRelation implements RelationFolder: every owner named by the table's rows gets the
// related objects as pointers in its Relation field. The table is kept as it was imported.
func (t *StoreTarget) FoldRelation(ctx context.Context, joinClass string) (FoldReport, error) {
	var rep FoldReport
	key, ownerClass, ok := JoinParts(joinClass)
	if !ok {
		return rep, fmt.Errorf("%s is not a relation table", joinClass)
	}
	rows, err := t.Store.Scan(ctx, joinClass)
	if err != nil {
		return rep, err
	}
	byOwner := map[string][]string{}
	for _, r := range rows {
		owning, _ := r.Fields["owningId"].(string)
		related, _ := r.Fields["relatedId"].(string)
		if owning != "" && related != "" {
			byOwner[owning] = append(byOwner[owning], related)
			rep.Rows++
		}
	}
	for _, owner := range sortedKeys(byOwner) {
		related := byOwner[owner]
		var className string
		_, err := t.Store.Update(ctx, ownerClass, owner, func(o *store.Object) error {
			rel, _ := o.Fields[key].(map[string]any)
			className, _ = rel["className"].(string)
			if rel == nil || rel["__type"] != "Relation" || className == "" {
				return errUnknownRelationClass
			}
			seen := map[string]bool{}
			var objects []any
			old, _ := rel["objects"].([]any)
			for _, p := range old {
				if pm, ok := p.(map[string]any); ok {
					if id, _ := pm["objectId"].(string); id != "" && !seen[id] {
						seen[id] = true
						objects = append(objects, p)
					}
				}
			}
			sort.Strings(related)
			for _, id := range related {
				if !seen[id] {
					seen[id] = true
					objects = append(objects, map[string]any{"__type": "Pointer", "className": className, "objectId": id})
				}
			}
			n := make(map[string]any, len(rel)+1)
			for k, v := range rel {
				n[k] = v
			}
			n["objects"] = objects
			o.Fields[key] = n
			return nil
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			rep.MissingOwners += len(related)
		case errors.Is(err, errUnknownRelationClass):
			rep.UnknownClass += len(related)
		case err != nil:
			return rep, err
		default:
			// the join rows are what LeanStorage's $relatedTo and role grants read
			if err := t.Store.AddRelation(ctx, store.Relation{OwnerClass: ownerClass, OwnerID: owner, Key: key}, className, related); err != nil {
				return rep, err
			}
			rep.Owners++
		}
	}
	return rep, nil
}

var errUnknownRelationClass = errors.New("owner has no Relation field naming the related class")
