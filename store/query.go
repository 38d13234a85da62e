package store

import (
	"context"
	"errors"
	"time"
)

// Querier is what a backend implements to evaluate queries itself (PostgreSQL does, in SQL,
// over its indexes), instead of the caller scanning a class. Its answers are exact under the
// rules below, which are LeanCloud's for the shapes they cover; anything else stays with the
// caller's matcher. SQLite does not implement it: leanstorage evaluates queries over Scan.
type Querier interface {
	// Find returns the objects of q.Class for which every condition holds, ordered by q.Order
	// and then by creation (oldest first, ties by id), from q.Skip, at most q.Limit (0: all).
	Find(ctx context.Context, q Query) ([]*Object, error)
	// Count is how many objects of q.Class satisfy q.Where (Order, Skip and Limit ignored).
	Count(ctx context.Context, q Query) (int, error)
}

// Query is a structured query: the conditions of a where that a backend can evaluate.
type Query struct {
	Class string
	Where []Cond // every one must hold
	Order []Order
	Skip  int
	Limit int // 0: no limit
}

// Order sorts by one of the object's own columns.
type Order struct {
	Key  string // KeyCreatedAt, KeyUpdatedAt or KeyObjectID
	Desc bool
}

// The keys that are an object's columns rather than fields.
const (
	KeyObjectID  = "objectId"
	KeyCreatedAt = "createdAt"
	KeyUpdatedAt = "updatedAt"
)

// Operators of a condition.
const (
	// OpEq: a field equals Value or is an array holding it. Value is a string, a float64, a bool
	// or a PointerRef; numbers compare as numbers, strings byte for byte, pointers by class and
	// id. On objectId Value is a string.
	OpEq = "$eq"
	// OpIn: OpEq for any of Value ([]any of what OpEq takes).
	OpIn = "$in"
	// Range operators: the field is a number (Value a float64) or a string (Value a string,
	// byte order) and compares so; on createdAt and updatedAt Value is a time.Time.
	OpLt  = "$lt"
	OpLte = "$lte"
	OpGt  = "$gt"
	OpGte = "$gte"
	// OpExists: the field is present and not null (Value is ignored).
	OpExists = "$exists"
	// OpReadable: the object's ACL lets one of Value ([]string: "*", user ids, "role:<name>")
	// read it; an object without an ACL object is public. Key is ignored.
	OpReadable = "$readable"
)

// Cond is one condition on a top-level field or a column.
type Cond struct {
	Key   string
	Op    string
	Value any
}

// PointerRef is a pointer value in a condition.
type PointerRef struct{ Class, ID string }

// ErrTaken is what Insert and Update return when a unique user field (username, email,
// mobilePhoneNumber) is already another user's; errors.As finds the *TakenError with the field.
var ErrTaken = errors.New("a unique field's value is taken")

// TakenError names the field whose value is taken.
type TakenError struct{ Field string }

func (e *TakenError) Error() string     { return "the " + e.Field + " is already taken" }
func (e *TakenError) Is(err error) bool { return err == ErrTaken }

// Millis is the precision objects' times are kept in by every backend.
func Millis(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
