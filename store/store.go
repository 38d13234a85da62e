// Package store keeps LeanStorage data: schemaless objects per class, and session tokens. The
// interface is what a backend implements; SQLite (pure Go, no cgo, no server) is the default and
// PostgreSQL the planned scale-out backend, so the SQL here stays plain and per backend.
//
// Objects are stored as JSON documents; queries are evaluated by the caller over a class's
// objects (see leanstorage), which keeps every LeanCloud operator exact on every backend.
package store

import (
	"context"
	"errors"
	"time"
)

// Object is one stored object. Fields holds everything but objectId, createdAt and updatedAt,
// in LeanCloud's JSON encoding (Pointer, Date, GeoPoint… as {"__type": …} maps), ACL included.
type Object struct {
	Class     string
	ID        string
	CreatedAt time.Time
	UpdatedAt time.Time
	Fields    map[string]any
}

// Clone copies an object deeply enough for a read-modify-write.
func (o *Object) Clone() *Object {
	c := *o
	c.Fields = cloneMap(o.Fields)
	return &c
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneValue(e)
		}
		return c
	}
	return v
}

// Errors a backend returns.
var (
	ErrNotFound  = errors.New("object not found")
	ErrDuplicate = errors.New("duplicate object id")
)

// Relation names one relation field of one object.
type Relation struct {
	OwnerClass, OwnerID, Key string
}

// Store is a storage backend.
type Store interface {
	// Insert stores a new object (ErrDuplicate if its id exists in the class).
	Insert(ctx context.Context, o *Object) error
	// Get returns one object (ErrNotFound).
	Get(ctx context.Context, class, id string) (*Object, error)
	// Update reads an object, lets fn change it, and writes it back atomically: no other write to
	// the object happens in between. fn's error aborts the update.
	Update(ctx context.Context, class, id string, fn func(*Object) error) (*Object, error)
	// Delete removes an object (ErrNotFound).
	Delete(ctx context.Context, class, id string) error
	// Scan returns every object of a class, oldest first. The objects may be shared with other
	// callers: read them, do not change them.
	Scan(ctx context.Context, class string) ([]*Object, error)
	// Classes lists the classes that have objects.
	Classes(ctx context.Context) ([]string, error)

	// Sessions map tokens to user ids.
	PutSession(ctx context.Context, token, userID string) error
	SessionUser(ctx context.Context, token string) (string, error) // ErrNotFound
	DeleteSessions(ctx context.Context, userID string) error
	// UserSession is a user's newest session token (ErrNotFound): LeanCloud keeps one token per
	// user and hands the same one to every login.
	UserSession(ctx context.Context, userID string) (string, error)

	// Relations are join rows: the owner object's relation field lists target objects.
	AddRelation(ctx context.Context, r Relation, targetClass string, targetIDs []string) error
	RemoveRelation(ctx context.Context, r Relation, targetIDs []string) error
	// RelationTargets lists the ids a relation field holds, oldest first.
	RelationTargets(ctx context.Context, r Relation) ([]string, error)
	// RelationOwners lists the objects of ownerClass whose relation key holds targetID.
	RelationOwners(ctx context.Context, ownerClass, key, targetID string) ([]string, error)

	// Reset removes all data.
	Reset(ctx context.Context) error
	Close() error
}
