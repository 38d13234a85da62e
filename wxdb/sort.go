package wxdb

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

type sortKey struct {
	path []string
	dir  int
}

func parseSort(spec bson.D) ([]sortKey, error) {
	if len(spec) > 32 {
		return nil, badParam("at most 32 sort fields")
	}
	keys := make([]sortKey, 0, len(spec))
	for _, e := range spec {
		if err := checkQueryPath(e.Key); err != nil {
			return nil, err
		}
		d, ok := toFloat(e.Value)
		if !ok {
			if s, isStr := e.Value.(string); isStr && (s == "asc" || s == "desc") {
				d = 1
				if s == "desc" {
					d = -1
				}
			} else {
				return nil, badParam("sort direction of %s must be 1 or -1", e.Key)
			}
		}
		if d != 1 && d != -1 {
			return nil, badParam("sort direction of %s must be 1 or -1", e.Key)
		}
		keys = append(keys, sortKey{path: splitPath(e.Key), dir: int(d)})
	}
	return keys, nil
}

// sortValue is the value a document sorts by for one key: arrays sort by their smallest element
// ascending and largest descending, missing fields as null.
func sortValue(doc bson.D, k sortKey) any {
	var vals []any
	missing := false
	walkPath(doc, k.path, &vals, &missing)
	var best any
	have := false
	consider := func(v any) {
		if !have || compareValues(v, best)*k.dir < 0 {
			best, have = v, true
		}
	}
	for _, v := range vals {
		if a, ok := v.(bson.A); ok {
			if len(a) == 0 {
				consider(nil)
			}
			for _, e := range a {
				consider(e)
			}
			continue
		}
		consider(v)
	}
	if missing && (!have || k.dir > 0) {
		consider(nil)
	}
	return best
}

func compareBySort(a, b bson.D, keys []sortKey) int {
	for _, k := range keys {
		if c := compareValues(sortValue(a, k), sortValue(b, k)); c != 0 {
			return c * k.dir
		}
	}
	return 0
}

// projection is a compiled field selection.
type projection struct {
	include  bool
	fields   map[string]*projNode
	idOff    bool
	hasSpecs bool
}

type projNode struct {
	children  map[string]*projNode
	slice     []int // $slice: [n] or [skip, n]
	elemMatch *Filter
	leaf      bool
}

func compileProjection(spec bson.D) (*projection, error) {
	p := &projection{fields: map[string]*projNode{}, include: false}
	mode := 0 // 1 include, -1 exclude
	idOn := false
	for _, e := range spec {
		if err := checkQueryPath(e.Key); err != nil {
			return nil, err
		}
		node := p.node(splitPath(e.Key))
		if d, ok := e.Value.(bson.D); ok && len(d) == 1 {
			switch d[0].Key {
			case "$slice":
				switch s := d[0].Value.(type) {
				case bson.A:
					if len(s) != 2 {
						return nil, badParam("$slice projection of %s needs n or [skip, n]", e.Key)
					}
					a, ok1 := toFloat(s[0])
					b, ok2 := toFloat(s[1])
					if !ok1 || !ok2 || b <= 0 {
						return nil, badParam("$slice projection of %s needs n or [skip, n>0]", e.Key)
					}
					node.slice = []int{int(a), int(b)}
				default:
					n, ok := toFloat(s)
					if !ok {
						return nil, badParam("$slice projection of %s needs a number", e.Key)
					}
					node.slice = []int{int(n)}
				}
				p.hasSpecs = true
				continue
			case "$elemMatch":
				q, ok := d[0].Value.(bson.D)
				if !ok {
					return nil, badParam("$elemMatch projection of %s needs a query", e.Key)
				}
				f, err := CompileFilter(q)
				if err != nil {
					return nil, err
				}
				node.elemMatch = f
				p.hasSpecs = true
				if mode == -1 {
					return nil, badParam("cannot mix $elemMatch with exclusion in a projection")
				}
				mode = 1
				continue
			}
			return nil, badParam("unknown projection operator %s on %s", d[0].Key, e.Key)
		}
		on := truthy(e.Value)
		if e.Key == "_id" {
			p.idOff = !on
			idOn = on
			delete(p.fields, "_id")
			continue
		}
		node.leaf = true
		m := -1
		if on {
			m = 1
		}
		if mode != 0 && mode != m {
			return nil, badParam("projection cannot mix inclusion and exclusion (field %s)", e.Key)
		}
		mode = m
	}
	// {_id: 1} alone selects only the _id.
	p.include = mode == 1 || (mode == 0 && idOn && !p.hasSpecs)
	return p, nil
}

func (p *projection) node(path []string) *projNode {
	m := p.fields
	var n *projNode
	for _, s := range path {
		n = m[s]
		if n == nil {
			n = &projNode{children: map[string]*projNode{}}
			m[s] = n
		}
		m = n.children
	}
	return n
}

func (p *projection) apply(doc bson.D) bson.D {
	out := projectDoc(doc, p.fields, p.include)
	if p.idOff {
		for i, e := range out {
			if e.Key == "_id" {
				out = append(out[:i:i], out[i+1:]...)
				break
			}
		}
	} else if p.include {
		if id, ok := lookupField(doc, "_id"); ok {
			if _, has := lookupField(out, "_id"); !has {
				out = append(bson.D{{Key: "_id", Value: id}}, out...)
			}
		}
	}
	return out
}

func projectDoc(doc bson.D, fields map[string]*projNode, include bool) bson.D {
	out := bson.D{}
	for _, e := range doc {
		n := fields[e.Key]
		if n == nil {
			if !include {
				out = append(out, e)
			}
			continue
		}
		v, keep := projectValue(e.Value, n, include)
		if keep {
			out = append(out, bson.E{Key: e.Key, Value: v})
		}
	}
	return out
}

func projectValue(v any, n *projNode, include bool) (any, bool) {
	if n.slice != nil {
		a, ok := v.(bson.A)
		if !ok {
			return v, true
		}
		return sliceArray(a, n.slice), true
	}
	if n.elemMatch != nil {
		a, ok := v.(bson.A)
		if !ok {
			return nil, false
		}
		for _, e := range a {
			if d, ok := e.(bson.D); ok && n.elemMatch.Match(d) {
				return bson.A{e}, true
			}
		}
		return nil, false
	}
	if n.leaf {
		return v, include
	}
	switch x := v.(type) {
	case bson.D:
		return projectDoc(x, n.children, include), true
	case bson.A:
		out := bson.A{}
		for _, e := range x {
			if d, ok := e.(bson.D); ok {
				out = append(out, projectDoc(d, n.children, include))
			} else if !include {
				out = append(out, e)
			}
		}
		return out, true
	}
	return v, !include
}

func sliceArray(a bson.A, s []int) bson.A {
	n := len(a)
	if len(s) == 1 {
		k := s[0]
		if k >= 0 {
			if k > n {
				k = n
			}
			return a[:k]
		}
		if -k > n {
			return a
		}
		return a[n+k:]
	}
	skip, cnt := s[0], s[1]
	if skip < 0 {
		skip = n + skip
		if skip < 0 {
			skip = 0
		}
	}
	if skip > n {
		return bson.A{}
	}
	end := skip + cnt
	if end > n {
		end = n
	}
	return a[skip:end]
}
