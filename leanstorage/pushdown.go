package leanstorage

import (
	"strings"
	"time"

	"github.com/fnhq/fn/store"
)

// A backend that implements store.Querier evaluates in SQL the parts of a query it can: plan
// translates the top-level conditions whose meaning store.Cond states exactly as the matcher
// decides them. The objects those conditions select are a superset of the matches, so run still
// applies the matcher to them (a whole-class scan is only for wheres with nothing to push); when
// plan covers the whole where, the caller's ACL is expressible and the order is by columns, find
// lets the backend order, skip, limit and count too.

// plan returns conditions that hold for every object the matcher would match; exact when they
// are the whole where.
func (m *matcher) plan(class string, where map[string]any) ([]store.Cond, bool) {
	var conds []store.Cond
	exact := true
	for key, cond := range where {
		c, ok := m.planKey(class, key, cond)
		conds = append(conds, c...)
		exact = exact && ok
	}
	return conds, exact
}

// planKey translates one key's condition; ok when all of it is translated.
func (m *matcher) planKey(class, key string, cond any) ([]store.Cond, bool) {
	if strings.HasPrefix(key, "$") || strings.HasPrefix(key, "_") || strings.Contains(key, ".") {
		return nil, false
	}
	// a user's private fields are visible to some callers only, object by object
	if class == "_User" && privateUserFields[key] && !m.auth.Master {
		return nil, false
	}
	column := key == store.KeyObjectID || key == store.KeyCreatedAt || key == store.KeyUpdatedAt
	ops, isOps := isOperatorMap(cond)
	if !isOps {
		if key == store.KeyCreatedAt || key == store.KeyUpdatedAt {
			return nil, false
		}
		v, ok := pushValue(cond, column)
		if !ok {
			return nil, false
		}
		if p, isPtr := v.(store.PointerRef); isPtr && m.relationKey(class, key, p.ID) {
			return nil, false
		}
		return []store.Cond{{Key: key, Op: store.OpEq, Value: v}}, true
	}
	var out []store.Cond
	exact := true
	for op, arg := range ops {
		switch op {
		case "$gt", "$gte", "$lt", "$lte":
			if v, ok := pushRange(key, arg); ok {
				out = append(out, store.Cond{Key: key, Op: op, Value: v})
				continue
			}
		case "$in":
			list, ok := arg.([]any)
			if !ok || len(list) > m.s.opts.MaxInValues || key == store.KeyCreatedAt || key == store.KeyUpdatedAt {
				break // the matcher answers the error or the exotic shape
			}
			vals := make([]any, 0, len(list))
			for _, e := range list {
				v, ok := pushValue(e, column)
				if !ok {
					vals = nil
					break
				}
				vals = append(vals, v)
			}
			if vals != nil || len(list) == 0 {
				out = append(out, store.Cond{Key: key, Op: store.OpIn, Value: vals})
				continue
			}
		case "$exists":
			if b, ok := arg.(bool); ok && b {
				out = append(out, store.Cond{Key: key, Op: store.OpExists})
				continue
			}
		}
		exact = false
	}
	return out, exact
}

// looksLikeTime is the matcher's test for a string it compares as a date.
func looksLikeTime(s string) bool {
	_, ok := asTime(s)
	return ok
}

// pushValue is a value whose equality store.OpEq states as the matcher decides it.
func pushValue(v any, column bool) (any, bool) {
	switch x := v.(type) {
	case string:
		return x, !looksLikeTime(x)
	case float64, bool:
		return x, !column
	case map[string]any:
		if column || x["__type"] != "Pointer" {
			return nil, false
		}
		c, _ := x["className"].(string)
		id, _ := x["objectId"].(string)
		if c == "" || id == "" {
			return nil, false
		}
		return store.PointerRef{Class: c, ID: id}, true
	}
	return nil, false
}

// pushRange is a comparison's operand as store's range operators take it.
func pushRange(key string, arg any) (any, bool) {
	if key == store.KeyCreatedAt || key == store.KeyUpdatedAt {
		t, ok := asTime(arg)
		// the database keeps microseconds: a finer operand is left to the matcher
		return t, ok && t.Equal(t.Truncate(time.Microsecond))
	}
	switch x := arg.(type) {
	case float64:
		return x, key != store.KeyObjectID
	case string:
		return x, !looksLikeTime(x)
	}
	return nil, false
}

// columnOrder translates an order that names only columns.
func columnOrder(order string) ([]store.Order, bool) {
	if order == "" {
		return nil, true
	}
	var out []store.Order
	for _, k := range strings.Split(order, ",") {
		desc := strings.HasPrefix(k, "-")
		k = strings.TrimPrefix(k, "-")
		if k != store.KeyCreatedAt && k != store.KeyUpdatedAt && k != store.KeyObjectID {
			return nil, false
		}
		out = append(out, store.Order{Key: k, Desc: desc})
	}
	return out, true
}

// readable is the condition "the caller may read it": none for the master key, else the
// principals whose read grant counts (the public, the user, the user's roles).
func (m *matcher) readable() ([]store.Cond, error) {
	if m.auth.Master {
		return nil, nil
	}
	who := []string{"*"}
	if m.user != nil {
		who = append(who, m.user.ID)
		roles, err := m.s.userRoles(m.ctx, m.user.ID)
		if err != nil {
			return nil, err
		}
		for name := range roles {
			who = append(who, "role:"+name)
		}
	}
	return []store.Cond{{Op: store.OpReadable, Value: who}}, nil
}

// candidates are the objects of class the matcher must look at for where: those the backend
// selects by the conditions it can evaluate, else the whole class.
func (m *matcher) candidates(class string, where map[string]any) ([]*store.Object, error) {
	if q, ok := m.s.st.(store.Querier); ok {
		if conds, _ := m.plan(class, where); len(conds) > 0 {
			return q.Find(m.ctx, store.Query{Class: class, Where: conds})
		}
	}
	return m.s.st.Scan(m.ctx, class)
}

// pushdown runs the whole of a find in the backend when it can: it reports done with the page
// of matches and their total (-1 when not counting).
func (m *matcher) pushdown(class string, where map[string]any, order string, skip, limit int, counting bool) ([]*store.Object, int, bool, error) {
	q, ok := m.s.st.(store.Querier)
	if !ok || usesNear(where) {
		return nil, 0, false, nil
	}
	conds, exact := m.plan(class, where)
	orders, byColumns := columnOrder(order)
	if !exact || !byColumns {
		return nil, 0, false, nil
	}
	acl, err := m.readable()
	if err != nil {
		return nil, 0, false, err
	}
	query := store.Query{Class: class, Where: append(conds, acl...), Order: orders, Skip: skip, Limit: limit}
	total := -1
	if counting {
		if total, err = q.Count(m.ctx, query); err != nil {
			return nil, 0, false, err
		}
	}
	if limit == 0 {
		return nil, total, true, nil
	}
	objs, err := q.Find(m.ctx, query)
	if err != nil {
		return nil, 0, false, err
	}
	return objs, total, true, nil
}

// relationKey reports whether key holds a relation that lists id for some object of class: a
// pointer against a relation field is a membership test (AV.Relation.reverseQuery,
// user.getRoles()) that the matcher answers; store.OpEq would compare it with the Relation
// value and select nothing. An error keeps the condition out of SQL too (the matcher decides).
func (m *matcher) relationKey(class, key, id string) bool {
	owners, err := m.relationOwners(class, key, id)
	return err != nil || len(owners) > 0
}
