package leanstorage

import (
	"context"
	"errors"
	"net/http"

	"github.com/fnhq/fn/store"
)

// relOp is one AddRelation or RemoveRelation of a write; relations live in the store's join rows
// and the object's field only says {"__type": "Relation", "className": …}.
type relOp struct {
	key, op, class string
	ids            []string
}

func invalidRelation(key, why string) *Error {
	return apiErr(http.StatusBadRequest, 1, "Invalid relation data for %s: %s", key, why)
}

// relationOps reads a write's relation operations (a Batch may hold an add and a remove).
func relationOps(fields map[string]any) ([]relOp, error) {
	var out []relOp
	var read func(key string, v any) error
	read = func(key string, v any) error {
		op, _ := v.(map[string]any)
		name, _ := op["__op"].(string)
		switch name {
		case "Batch":
			subs, _ := op["ops"].([]any)
			for _, sub := range subs {
				if err := read(key, sub); err != nil {
					return err
				}
			}
		case "AddRelation", "RemoveRelation":
			objects, ok := op["objects"].([]any)
			if !ok {
				return invalidRelation(key, name+" needs an objects array")
			}
			r := relOp{key: key, op: name}
			for _, o := range objects {
				p, _ := o.(map[string]any)
				class, _ := p["className"].(string)
				id, _ := p["objectId"].(string)
				if class == "" || id == "" || !classNameRE().MatchString(class) {
					return invalidRelation(key, "objects must be pointers with className and objectId")
				}
				if r.class != "" && r.class != class {
					return invalidRelation(key, "all objects of a relation are of one class")
				}
				r.class = class
				r.ids = append(r.ids, id)
			}
			out = append(out, r)
		}
		return nil
	}
	for k, v := range fields {
		if err := read(k, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkRelations refuses relation operations that disagree with the field's class.
func checkRelations(ops []relOp, current map[string]any) error {
	for _, r := range ops {
		if r.class == "" {
			continue
		}
		if f, ok := current[r.key].(map[string]any); ok {
			if f["__type"] != "Relation" {
				return invalidRelation(r.key, "the field holds something else than a relation")
			}
			if c, _ := f["className"].(string); c != "" && c != r.class {
				return invalidRelation(r.key, "the relation holds "+c+" objects, not "+r.class)
			}
		}
	}
	return nil
}

func (s *Service) applyRelations(ctx context.Context, class, id string, ops []relOp) error {
	for _, r := range ops {
		rel := store.Relation{OwnerClass: class, OwnerID: id, Key: r.key}
		var err error
		if r.op == "AddRelation" {
			err = s.st.AddRelation(ctx, rel, r.class, r.ids)
		} else {
			err = s.st.RemoveRelation(ctx, rel, r.ids)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// relatedTo reads {"$relatedTo": {"object": pointer, "key": k}}: the ids the relation holds.
func (m *matcher) relatedTo(cond any) (map[string]bool, error) {
	c, _ := cond.(map[string]any)
	p, _ := c["object"].(map[string]any)
	key, _ := c["key"].(string)
	class, _ := p["className"].(string)
	id, _ := p["objectId"].(string)
	if key == "" || class == "" || id == "" {
		return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: $relatedTo takes {object: pointer, key}.")
	}
	return cachedIDs(&m.related, class+"/"+id+"/"+key, func() ([]string, error) {
		return m.s.st.RelationTargets(m.ctx, store.Relation{OwnerClass: class, OwnerID: id, Key: key})
	})
}

// cachedIDs is the set of ids load lists, kept in *cache under key for the rest of the query.
func cachedIDs(cache *map[string]map[string]bool, key string, load func() ([]string, error)) (map[string]bool, error) {
	if ids, ok := (*cache)[key]; ok {
		return ids, nil
	}
	list, err := load()
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(list))
	for _, x := range list {
		ids[x] = true
	}
	if *cache == nil {
		*cache = map[string]map[string]bool{}
	}
	(*cache)[key] = ids
	return ids, nil
}

// relationClass answers redirectClassNameForKey: the class a parent's relation field holds.
func (s *Service) relationClass(ctx context.Context, parent, key string, where map[string]any) (string, error) {
	classOf := func(o *store.Object) string {
		f, _ := o.Fields[key].(map[string]any)
		if f["__type"] != "Relation" {
			return ""
		}
		c, _ := f["className"].(string)
		return c
	}
	if c, _ := where["$relatedTo"].(map[string]any); c != nil {
		if p, _ := c["object"].(map[string]any); p != nil {
			id, _ := p["objectId"].(string)
			o, err := s.st.Get(ctx, parent, id)
			if err == nil {
				if c := classOf(o); c != "" {
					return c, nil
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				return "", err
			}
		}
	}
	objs, err := s.st.Scan(ctx, parent)
	if err != nil {
		return "", err
	}
	for _, o := range objs {
		if c := classOf(o); c != "" {
			return c, nil
		}
	}
	return parent, nil
}
