// Package pg is the LeanStorage data store of a cluster: one PostgreSQL database holds every
// app's objects (one table, keyed by app, class and id, fields as JSONB with a GIN index for
// containment), sessions and relations, so that the schema is migrated once (internal/pgdb)
// whatever apps come and go, and an app is a key prefix rather than a schema to create. It
// implements store.Querier: the shapes it covers run in SQL over the indexes. Read-modify-write
// holds the row lock (SELECT … FOR UPDATE), and unique user fields are unique indexes, so
// replicas writing at once neither lose an update nor share a username.
package pg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fnhq/fn/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is one app's data in the shared database.
type Store struct {
	pool *pgxpool.Pool
	app  string
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Querier = (*Store)(nil)
)

// New returns the store of app over a pool migrated by pgdb.Open; Close leaves the pool open.
func New(pool *pgxpool.Pool, app string) *Store { return &Store{pool: pool, app: app} }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

func encode(fields map[string]any) (string, error) {
	if fields == nil {
		fields = map[string]any{}
	}
	b, err := json.Marshal(fields)
	return string(b), err
}

func decode(class, id string, created, updated time.Time, data []byte) (*store.Object, error) {
	o := &store.Object{Class: class, ID: id, CreatedAt: created.UTC(), UpdatedAt: updated.UTC()}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&o.Fields); err != nil {
		return nil, fmt.Errorf("store: object %s/%s: %w", class, id, err)
	}
	normalize(o.Fields)
	return o, nil
}

// normalize turns numbers into float64, as encoding/json would and as the SQLite store does.
func normalize(m map[string]any) {
	for k, v := range m {
		m[k] = normalizeValue(v)
	}
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		normalize(x)
	case []any:
		for i := range x {
			x[i] = normalizeValue(x[i])
		}
	}
	return v
}

// taken maps a unique-index violation to the field it guards.
func taken(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return err
	}
	switch pe.ConstraintName {
	case "fn_objects_pkey":
		return store.ErrDuplicate
	case "fn_objects_username":
		return &store.TakenError{Field: "username"}
	case "fn_objects_email":
		return &store.TakenError{Field: "email"}
	case "fn_objects_phone":
		return &store.TakenError{Field: "mobilePhoneNumber"}
	}
	return err
}

// Insert implements store.Store.
func (s *Store) Insert(ctx context.Context, o *store.Object) error {
	data, err := encode(o.Fields)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO fn_objects (app, class, id, created_at, updated_at, fields) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.app, o.Class, o.ID, store.Millis(o.CreatedAt), store.Millis(o.UpdatedAt), data)
	return taken(err)
}

const objectColumns = `id, created_at, updated_at, fields::text`

func scanObject(class string, r pgx.Row) (*store.Object, error) {
	var id, data string
	var created, updated time.Time
	if err := r.Scan(&id, &created, &updated, &data); err != nil {
		return nil, err
	}
	return decode(class, id, created, updated, []byte(data))
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, class, id string) (*store.Object, error) {
	o, err := scanObject(class, s.pool.QueryRow(ctx, `SELECT `+objectColumns+` FROM fn_objects WHERE app = $1 AND class = $2 AND id = $3`,
		s.app, class, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return o, err
}

// Update implements store.Store: the row stays locked from the read to the commit, so a
// concurrent update (from any replica) waits and then reads this one's result.
func (s *Store) Update(ctx context.Context, class, id string, fn func(*store.Object) error) (*store.Object, error) {
	var out *store.Object
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		o, err := scanObject(class, tx.QueryRow(ctx, `SELECT `+objectColumns+` FROM fn_objects WHERE app = $1 AND class = $2 AND id = $3 FOR UPDATE`,
			s.app, class, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
		data, err := encode(o.Fields)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE fn_objects SET updated_at = $4, fields = $5 WHERE app = $1 AND class = $2 AND id = $3`,
			s.app, class, id, store.Millis(o.UpdatedAt), data); err != nil {
			return taken(err)
		}
		out = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete implements store.Store; the object's relation rows go with it.
func (s *Store) Delete(ctx context.Context, class, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM fn_objects WHERE app = $1 AND class = $2 AND id = $3`, s.app, class, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, `DELETE FROM fn_relations WHERE app = $1 AND owner_class = $2 AND owner_id = $3`, s.app, class, id)
		return err
	})
}

// Scan implements store.Store.
func (s *Store) Scan(ctx context.Context, class string) ([]*store.Object, error) {
	return s.Find(ctx, store.Query{Class: class})
}

func (s *Store) objects(ctx context.Context, class, sql string, args ...any) ([]*store.Object, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Object
	for rows.Next() {
		o, err := scanObject(class, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Classes implements store.Store.
func (s *Store) Classes(ctx context.Context) ([]string, error) {
	return s.strings(ctx, `SELECT DISTINCT class FROM fn_objects WHERE app = $1 ORDER BY class`, s.app)
}

// PutSession implements store.Store.
func (s *Store) PutSession(ctx context.Context, token, userID string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO fn_sessions (app, token, user_id) VALUES ($1, $2, $3)`, s.app, token, userID)
	return err
}

// SessionUser implements store.Store.
func (s *Store) SessionUser(ctx context.Context, token string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT user_id FROM fn_sessions WHERE app = $1 AND token = $2`, s.app, token).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return id, err
}

// DeleteSessions implements store.Store.
func (s *Store) DeleteSessions(ctx context.Context, userID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM fn_sessions WHERE app = $1 AND user_id = $2`, s.app, userID)
	return err
}

// UserSession implements store.Store.
func (s *Store) UserSession(ctx context.Context, userID string) (string, error) {
	var token string
	err := s.pool.QueryRow(ctx, `SELECT token FROM fn_sessions WHERE app = $1 AND user_id = $2 ORDER BY seq DESC LIMIT 1`, s.app, userID).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return token, err
}

// AddRelation implements store.Store.
func (s *Store) AddRelation(ctx context.Context, r store.Relation, targetClass string, targetIDs []string) error {
	for _, id := range targetIDs {
		if _, err := s.pool.Exec(ctx, `INSERT INTO fn_relations (app, owner_class, owner_id, key, target_class, target_id)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, s.app, r.OwnerClass, r.OwnerID, r.Key, targetClass, id); err != nil {
			return err
		}
	}
	return nil
}

// RemoveRelation implements store.Store.
func (s *Store) RemoveRelation(ctx context.Context, r store.Relation, targetIDs []string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM fn_relations WHERE app = $1 AND owner_class = $2 AND owner_id = $3 AND key = $4 AND target_id = ANY($5)`,
		s.app, r.OwnerClass, r.OwnerID, r.Key, targetIDs)
	return err
}

// RelationTargets implements store.Store.
func (s *Store) RelationTargets(ctx context.Context, r store.Relation) ([]string, error) {
	return s.strings(ctx, `SELECT target_id FROM fn_relations WHERE app = $1 AND owner_class = $2 AND owner_id = $3 AND key = $4 ORDER BY seq`,
		s.app, r.OwnerClass, r.OwnerID, r.Key)
}

// RelationOwners implements store.Store.
func (s *Store) RelationOwners(ctx context.Context, ownerClass, key, targetID string) ([]string, error) {
	return s.strings(ctx, `SELECT owner_id FROM fn_relations WHERE app = $1 AND owner_class = $2 AND key = $3 AND target_id = $4 ORDER BY seq`,
		s.app, ownerClass, key, targetID)
}

func (s *Store) strings(ctx context.Context, sql string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Reset implements store.Store: the app's data only.
func (s *Store) Reset(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, table := range []string{"fn_objects", "fn_sessions", "fn_relations"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE app = $1`, s.app); err != nil {
				return err
			}
		}
		return nil
	})
}

// Find implements store.Querier.
func (s *Store) Find(ctx context.Context, q store.Query) ([]*store.Object, error) {
	where, args, err := s.where(q)
	if err != nil {
		return nil, err
	}
	var order []string
	for _, o := range q.Order {
		col, ok := columns[o.Key]
		if !ok {
			return nil, fmt.Errorf("store: cannot order by %q", o.Key)
		}
		if o.Desc {
			col += " DESC"
		}
		order = append(order, col)
	}
	order = append(order, "created_at", `id COLLATE "C"`)
	sql := `SELECT ` + objectColumns + ` FROM fn_objects WHERE ` + where + ` ORDER BY ` + strings.Join(order, ", ")
	if q.Limit > 0 {
		args = append(args, q.Limit)
		sql += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	if q.Skip > 0 {
		args = append(args, q.Skip)
		sql += fmt.Sprintf(" OFFSET $%d", len(args))
	}
	return s.objects(ctx, q.Class, sql, args...)
}

// Count implements store.Querier.
func (s *Store) Count(ctx context.Context, q store.Query) (int, error) {
	where, args, err := s.where(q)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM fn_objects WHERE `+where, args...).Scan(&n)
	return n, err
}

var columns = map[string]string{store.KeyObjectID: `id COLLATE "C"`, store.KeyCreatedAt: "created_at", store.KeyUpdatedAt: "updated_at"}

var rangeOps = map[string]string{store.OpLt: "<", store.OpLte: "<=", store.OpGt: ">", store.OpGte: ">="}

// where translates the conditions; values go as parameters, field names too.
func (s *Store) where(q store.Query) (string, []any, error) {
	args := []any{s.app, q.Class}
	parts := []string{"app = $1", "class = $2"}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	for _, c := range q.Where {
		var part string
		var err error
		if c.Op == store.OpReadable {
			who, ok := c.Value.([]string)
			if !ok {
				return "", nil, fmt.Errorf("store: %s takes the principals as []string", c.Op)
			}
			parts = append(parts, "(jsonb_typeof(fields -> 'ACL') IS DISTINCT FROM 'object' OR EXISTS (SELECT 1 FROM unnest("+
				arg(who)+"::text[]) w WHERE fields -> 'ACL' -> w -> 'read' = 'true'::jsonb))")
			continue
		}
		if col, ok := columns[c.Key]; ok {
			part, err = columnCond(col, c, arg)
		} else {
			part, err = fieldCond(c, arg)
		}
		if err != nil {
			return "", nil, fmt.Errorf("store: condition on %q: %w", c.Key, err)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, " AND "), args, nil
}

func columnCond(col string, c store.Cond, arg func(any) string) (string, error) {
	switch c.Op {
	case store.OpEq:
		if c.Key != store.KeyObjectID {
			break
		}
		v, ok := c.Value.(string)
		if !ok {
			return "", errors.New("objectId compares with a string")
		}
		return "id = " + arg(v), nil
	case store.OpIn:
		if c.Key != store.KeyObjectID {
			break
		}
		var ids []string
		list, _ := c.Value.([]any)
		for _, e := range list {
			v, ok := e.(string)
			if !ok {
				return "", errors.New("objectId $in takes strings")
			}
			ids = append(ids, v)
		}
		return "id = ANY(" + arg(ids) + ")", nil
	case store.OpExists:
		return "true", nil
	case store.OpLt, store.OpLte, store.OpGt, store.OpGte:
		switch v := c.Value.(type) {
		case time.Time:
			if c.Key == store.KeyObjectID {
				break
			}
			return col + " " + rangeOps[c.Op] + " " + arg(v.UTC()), nil
		case string:
			if c.Key == store.KeyObjectID {
				return col + " " + rangeOps[c.Op] + " " + arg(v), nil
			}
		}
	}
	return "", fmt.Errorf("unsupported operator %s with %T", c.Op, c.Value)
}

func scalarJSON(v any) (any, error) {
	switch x := v.(type) {
	case string, float64, bool:
		return x, nil
	case store.PointerRef:
		return map[string]any{"__type": "Pointer", "className": x.Class, "objectId": x.ID}, nil
	}
	return nil, fmt.Errorf("cannot compare with a %T", v)
}

// eq is "the field equals v or is an array holding v", as two containments the GIN index
// answers.
func eq(key string, v any, arg func(any) string) (string, error) {
	sv, err := scalarJSON(v)
	if err != nil {
		return "", err
	}
	one, _ := json.Marshal(map[string]any{key: sv})
	inArray, _ := json.Marshal(map[string]any{key: []any{sv}})
	return "(fields @> " + arg(string(one)) + "::jsonb OR fields @> " + arg(string(inArray)) + "::jsonb)", nil
}

func fieldCond(c store.Cond, arg func(any) string) (string, error) {
	switch c.Op {
	case store.OpEq:
		return eq(c.Key, c.Value, arg)
	case store.OpIn:
		list, ok := c.Value.([]any)
		if !ok {
			return "", errors.New("$in takes a list")
		}
		if len(list) == 0 {
			return "false", nil
		}
		var ors []string
		for _, e := range list {
			p, err := eq(c.Key, e, arg)
			if err != nil {
				return "", err
			}
			ors = append(ors, p)
		}
		return "(" + strings.Join(ors, " OR ") + ")", nil
	case store.OpExists:
		k := arg(c.Key)
		return "(fields ? " + k + " AND jsonb_typeof(fields -> " + k + ") <> 'null')", nil
	case store.OpLt, store.OpLte, store.OpGt, store.OpGte:
		k := arg(c.Key)
		switch v := c.Value.(type) {
		case float64:
			return "(jsonb_typeof(fields -> " + k + ") = 'number' AND (fields ->> " + k + ")::float8 " + rangeOps[c.Op] + " " + arg(v) + ")", nil
		case string:
			return "(jsonb_typeof(fields -> " + k + ") = 'string' AND (fields ->> " + k + `) COLLATE "C" ` + rangeOps[c.Op] + " " + arg(v) + ")", nil
		}
	}
	return "", fmt.Errorf("unsupported operator %s with %T", c.Op, c.Value)
}
