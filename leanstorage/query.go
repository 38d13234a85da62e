package leanstorage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fnhq/fn/store"
)

// find serves GET /classes/{class}: where, order, limit, skip, keys, include, count,
// redirectClassNameForKey.
func (s *Service) find(ctx context.Context, class string, query url.Values, auth Auth) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	user, err := s.currentUser(ctx, auth)
	if err != nil {
		return nil, err
	}
	where := map[string]any{}
	if w := query.Get("where"); w != "" {
		if err := json.Unmarshal([]byte(w), &where); err != nil || where == nil {
			return nil, apiErr(http.StatusBadRequest, 107, "Invalid where: malformed JSON (%s).", shortErr(err))
		}
	}
	limit := 100
	if l := query.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid limit %q.", l)
		}
		limit = min(n, 1000)
	}
	skip := 0
	if sk := query.Get("skip"); sk != "" {
		n, err := strconv.Atoi(sk)
		if err != nil || n < 0 {
			return nil, apiErr(http.StatusBadRequest, 1, "Invalid skip %q.", sk)
		}
		skip = n
	}
	redirected := ""
	if key := query.Get("redirectClassNameForKey"); key != "" {
		target, err := s.relationClass(ctx, class, key, where)
		if err != nil {
			return nil, err
		}
		class, redirected = target, target
	}
	order := query.Get("order")
	counting := query.Get("count") == "1" || query.Get("count") == "true"
	m := s.newMatcher(ctx, user, auth)
	stopAt := -1
	if order == "" && !counting && !usesNear(where) {
		stopAt = skip + limit // without an order or a count, the first matches are enough
	}
	body := map[string]any{}
	matches, total, pushed, err := m.pushdown(class, where, order, skip, limit, counting)
	if err != nil {
		if e := stopped(ctx); e != nil {
			return nil, e
		}
		return nil, err
	}
	if pushed {
		if counting {
			body["count"] = total
		}
	} else {
		matches, err = m.run(class, where, stopAt)
		if err != nil {
			return nil, err
		}
		if order != "" {
			sortObjects(matches, strings.Split(order, ","), m.view)
		} else if m.near != nil {
			sortByDistance(matches, m.nearKey, *m.near)
		}
		if counting {
			body["count"] = len(matches)
		}
		if skip < len(matches) {
			matches = matches[skip:]
		} else {
			matches = nil
		}
		if len(matches) > limit {
			matches = matches[:limit]
		}
	}
	results := make([]map[string]any, len(matches))
	returnACL := query.Get("returnACL") == "true"
	for i, o := range matches {
		results[i] = aclShown(s.present(ctx, o, user, auth), returnACL)
	}
	if inc := query.Get("include"); inc != "" {
		s.include(context.WithValue(ctx, returnACLKey{}, returnACL), results, strings.Split(inc, ","), user, auth)
	}
	if keys := query.Get("keys"); keys != "" {
		for i := range results {
			results[i] = selectKeys(results[i], strings.Split(keys, ","))
		}
	}
	body["results"] = results
	if redirected != "" {
		body["className"] = redirected
	}
	return ok(body), nil
}

func shortErr(err error) string {
	if err == nil {
		return "a JSON object is expected"
	}
	return err.Error()
}

// errTimeout is LeanCloud's answer to a query that takes too long.
var errTimeout = &Error{Status: http.StatusServiceUnavailable, Code: 124, Message: "The request timed out on the server. Typically this indicates the request is too expensive."}

func stopped(ctx context.Context) error {
	switch err := ctx.Err(); {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	default:
		return err
	}
}

// newMatcher evaluates queries for one request: its compiled regexps, $in sets, sub-query
// results and the caller's roles are computed once, not per object.
func (s *Service) newMatcher(ctx context.Context, user *store.Object, auth Auth) *matcher {
	return &matcher{s: s, ctx: ctx, user: user, auth: auth, who: principal{s: s, ctx: ctx, user: user, auth: auth},
		regexps: map[string]*regexp.Regexp{}, sets: map[*any]valueSet{}}
}

// match returns the readable objects of a class that satisfy where.
func (m *matcher) match(class string, where map[string]any) ([]*store.Object, error) {
	return m.run(class, where, -1)
}

// checkEvery is how many objects a scan evaluates between looks at its context.
const checkEvery = 64

// run stops after n matches (n < 0: all), when the request is cancelled, or at its deadline.
func (m *matcher) run(class string, where map[string]any, n int) ([]*store.Object, error) {
	if err := stopped(m.ctx); err != nil {
		return nil, err
	}
	all, err := m.candidates(class, where)
	if err != nil {
		if e := stopped(m.ctx); e != nil {
			return nil, e
		}
		return nil, err
	}
	var out []*store.Object
	for i, o := range all {
		if n >= 0 && len(out) >= n {
			break
		}
		if i%checkEvery == checkEvery-1 {
			if err := stopped(m.ctx); err != nil {
				return nil, err
			}
		}
		if m.s.onEvaluate != nil {
			m.s.onEvaluate()
		}
		if !m.who.can(o, "read") {
			continue
		}
		okm, err := m.matches(m.view(o), where)
		if err != nil {
			return nil, err
		}
		if okm {
			out = append(out, o)
		}
	}
	return out, nil
}

// view reads an object's fields as the API shows them, without building the whole map. A user's
// private fields are invisible to others.
type view struct {
	o       *store.Object
	private bool
}

func (m *matcher) view(o *store.Object) view { return view{o: o, private: private(o, m.user, m.auth)} }

func (v view) get(key string) (any, bool) {
	switch key {
	case "objectId":
		return v.o.ID, true
	case "createdAt":
		return isoTime(v.o.CreatedAt), true
	case "updatedAt":
		return isoTime(v.o.UpdatedAt), true
	}
	if strings.HasPrefix(key, "_") || (v.private && privateUserFields[key]) {
		return nil, false
	}
	val, ok := v.o.Fields[key]
	return val, ok
}

type matcher struct {
	s    *Service
	ctx  context.Context
	user *store.Object
	auth Auth
	who  principal
	subs map[string][]*store.Object // sub-query results, computed once per query, not per object

	regexps map[string]*regexp.Regexp
	sets    map[*any]valueSet          // $in/$nin lists by their first element's address: one where, one set
	related map[string]map[string]bool // $relatedTo: the ids an object's relation holds
	owners  map[string]map[string]bool // a pointer against a relation: the objects holding it

	near    *geoPoint // the $nearSphere of the query: results come nearest first
	nearKey string
}

// subquery runs {className, where} once per query and remembers the result.
func (m *matcher) subquery(q map[string]any) (string, []*store.Object, error) {
	className, _ := q["className"].(string)
	if q == nil || className == "" {
		return "", nil, errors.New("className is missing")
	}
	w, _ := q["where"].(map[string]any)
	if w == nil {
		w = map[string]any{}
	}
	key, _ := json.Marshal(q)
	if objs, ok := m.subs[string(key)]; ok {
		return className, objs, nil
	}
	objs, err := m.match(className, w)
	if err != nil {
		return "", nil, err
	}
	if m.subs == nil {
		m.subs = map[string][]*store.Object{}
	}
	m.subs[string(key)] = objs
	return className, objs, nil
}

func (m *matcher) matches(obj view, where map[string]any) (bool, error) {
	for key, cond := range where {
		switch key {
		case "$or", "$and":
			list, ok := cond.([]any)
			if !ok {
				return false, apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes an array of queries.", key)
			}
			anyOK := false
			all := true
			for _, sub := range list {
				sw, ok := sub.(map[string]any)
				if !ok {
					return false, apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes an array of queries.", key)
				}
				r, err := m.matches(obj, sw)
				if err != nil {
					return false, err
				}
				anyOK = anyOK || r
				all = all && r
			}
			if (key == "$or" && !anyOK) || (key == "$and" && !all) {
				return false, nil
			}
			continue
		case "$relatedTo":
			ids, err := m.relatedTo(cond)
			if err != nil {
				return false, err
			}
			if !ids[obj.o.ID] {
				return false, nil
			}
			continue
		}
		if strings.HasPrefix(key, "$") {
			return false, apiErr(http.StatusBadRequest, 102, "Invalid query: unknown operator %s.", key)
		}
		if rel, isRel := obj.o.Fields[key].(map[string]any); isRel && rel["__type"] == "Relation" {
			// a pointer against a relation field asks whether the relation holds it: the
			// reverse query of AV.Relation (user.getRoles() is {"users": <user pointer>} on _Role)
			r, err := m.relationHolds(obj.o, key, cond)
			if err != nil || !r {
				return r, err
			}
			continue
		}
		r, err := m.field(obj, key, cond)
		if err != nil || !r {
			return r, err
		}
	}
	return true, nil
}

// lookupView reads a (dotted) key of a stored object.
func lookupView(v view, key string) (any, bool) {
	first, rest, dotted := strings.Cut(key, ".")
	val, ok := v.get(first)
	if !ok || !dotted {
		return val, ok
	}
	mm, isMap := val.(map[string]any)
	if !isMap {
		return nil, false
	}
	return lookup(mm, rest)
}

// lookup reads a (dotted) key of an object.
func lookup(obj map[string]any, key string) (any, bool) {
	var cur any = obj
	for _, part := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[part]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

func isOperatorMap(v any) (map[string]any, bool) {
	mm, ok := v.(map[string]any)
	if !ok || len(mm) == 0 {
		return nil, false
	}
	for k := range mm {
		if !strings.HasPrefix(k, "$") {
			return nil, false
		}
	}
	return mm, true
}

func (m *matcher) field(obj view, key string, cond any) (bool, error) {
	val, exists := lookupView(obj, key)
	ops, isOps := isOperatorMap(cond)
	if !isOps {
		return equalValue(val, cond, exists), nil
	}
	for op, arg := range ops {
		var r bool
		switch op {
		case "$gt", "$gte", "$lt", "$lte":
			c, ok := compare(val, arg)
			if !exists || !ok {
				return false, nil
			}
			r = map[string]bool{"$gt": c > 0, "$gte": c >= 0, "$lt": c < 0, "$lte": c <= 0}[op]
		case "$ne":
			r = !equalValue(val, arg, exists)
		case "$in", "$nin":
			set, err := m.set(op, arg)
			if err != nil {
				return false, err
			}
			r = set.matches(val, exists) == (op == "$in")
		case "$all":
			set, err := m.set(op, arg)
			if err != nil {
				return false, err
			}
			arr, _ := val.([]any)
			r = exists && set.allIn(arr)
		case "$exists":
			want, ok := arg.(bool)
			if !ok {
				return false, apiErr(http.StatusBadRequest, 102, "Invalid query: $exists takes true or false.")
			}
			r = (exists && val != nil) == want
		case "$regex":
			re, err := m.regexp(arg, ops["$options"])
			if err != nil {
				return false, err
			}
			str, isStr := val.(string)
			r = isStr && re.MatchString(str)
		case "$options":
			continue
		case "$size":
			n, ok := toFloat(arg)
			arr, isArr := val.([]any)
			r = ok && isArr && float64(len(arr)) == n
		case "$inQuery", "$notInQuery":
			sub, _ := arg.(map[string]any)
			className, objs, err := m.subquery(sub)
			if err != nil {
				return false, apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes {where, className}: %v", op, err)
			}
			found := false
			for _, o := range objs {
				if found = equalValue(val, pointerTo(className, o.ID), exists); found {
					break
				}
			}
			r = found == (op == "$inQuery")
		case "$select", "$dontSelect":
			sub, _ := arg.(map[string]any)
			q, _ := sub["query"].(map[string]any)
			selKey, _ := sub["key"].(string)
			_, objs, err := m.subquery(q)
			if err != nil || selKey == "" {
				return false, apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes {query: {className, where}, key}.", op)
			}
			found := false
			for _, o := range objs {
				if sv, has := lookupView(m.view(o), selKey); has {
					if found = equalValue(val, sv, exists); found {
						break
					}
				}
			}
			r = found == (op == "$select")
		case "$nearSphere":
			near, limit, err := nearCondition(ops)
			if err != nil {
				return false, err
			}
			if m.near == nil {
				m.near, m.nearKey = &near, key
			}
			p, isPoint := asGeoPoint(val)
			r = isPoint && (limit < 0 || distanceRadians(near, p) <= limit)
		case "$maxDistance", "$maxDistanceInRadians", "$maxDistanceInKilometers", "$maxDistanceInMiles":
			if _, has := ops["$nearSphere"]; !has {
				return false, apiErr(http.StatusBadRequest, 102, "Invalid query: %s needs $nearSphere.", op)
			}
			continue
		case "$within", "$geoWithin":
			shape, err := parseShape(op, arg)
			if err != nil {
				return false, err
			}
			p, isPoint := asGeoPoint(val)
			r = isPoint && shape.contains(p)
		default:
			return false, apiErr(http.StatusBadRequest, 102, "Invalid query: unknown operator %s.", op)
		}
		if !r {
			return false, nil
		}
	}
	return true, nil
}

func pointerTo(class, id string) map[string]any {
	return map[string]any{"__type": "Pointer", "className": class, "objectId": id}
}

// equalValue is LeanCloud's equality: pointers by class and id, dates by instant, arrays match a
// contained element.
func equalValue(val, want any, exists bool) bool {
	if !exists {
		return want == nil
	}
	if arr, ok := val.([]any); ok {
		if _, wantArr := want.([]any); !wantArr {
			return containsValue(arr, want)
		}
	}
	if t1, ok := asTime(val); ok {
		if t2, ok := asTime(want); ok {
			return t1.Equal(t2)
		}
	}
	return sameValue(val, want)
}

func asTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case map[string]any:
		if x["__type"] == "Date" {
			if iso, ok := x["iso"].(string); ok {
				t, err := time.Parse(time.RFC3339Nano, iso)
				return t, err == nil
			}
		}
	case string:
		if len(x) >= 20 && x[4] == '-' && x[10] == 'T' {
			t, err := time.Parse(time.RFC3339Nano, x)
			return t, err == nil
		}
	}
	return time.Time{}, false
}

// compare orders numbers, strings and dates; ok is false for incomparable values.
func compare(a, b any) (int, bool) {
	if ta, ok := asTime(a); ok {
		if tb, ok := asTime(b); ok {
			return ta.Compare(tb), true
		}
	}
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return strings.Compare(sa, sb), true
		}
		return 0, false
	}
	fa, ok1 := toFloat(a)
	fb, ok2 := toFloat(b)
	_, bStr := b.(string)
	if !ok1 || !ok2 || bStr {
		return 0, false
	}
	switch {
	case fa < fb:
		return -1, true
	case fa > fb:
		return 1, true
	}
	return 0, true
}

func sortObjects(objs []*store.Object, keys []string, viewOf func(*store.Object) view) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := viewOf(objs[i]), viewOf(objs[j])
		for _, k := range keys {
			desc := strings.HasPrefix(k, "-")
			k = strings.TrimPrefix(k, "-")
			va, _ := lookupView(a, k)
			vb, _ := lookupView(b, k)
			c, ok := compare(va, vb)
			if !ok || c == 0 {
				continue
			}
			if desc {
				return c > 0
			}
			return c < 0
		}
		return false
	})
}

func selectKeys(obj map[string]any, keys []string) map[string]any {
	out := map[string]any{"objectId": obj["objectId"], "createdAt": obj["createdAt"], "updatedAt": obj["updatedAt"]}
	for _, k := range keys {
		top := strings.SplitN(k, ".", 2)[0]
		if v, ok := obj[top]; ok {
			out[top] = v
		}
	}
	if t, ok := obj["__type"]; ok {
		out["__type"], out["className"] = t, obj["className"]
	}
	return out
}

// include replaces pointers at the given (dotted) keys by the objects they point to.
func (s *Service) include(ctx context.Context, objs []map[string]any, keys []string, user *store.Object, auth Auth) {
	for _, key := range keys {
		// "author1, author2": the SDK passes a string include through as it was written
		if key = strings.TrimSpace(key); key == "" {
			continue
		}
		parts := strings.Split(key, ".")
		s.includePath(ctx, objs, parts, user, auth)
	}
}

func (s *Service) includePath(ctx context.Context, objs []map[string]any, parts []string, user *store.Object, auth Auth) {
	var next []map[string]any
	for _, obj := range objs {
		p, ok := obj[parts[0]].(map[string]any)
		if !ok {
			continue
		}
		class, _ := p["className"].(string)
		id, _ := p["objectId"].(string)
		if class == "" || id == "" {
			continue
		}
		if p["__type"] == "Object" {
			cp := make(map[string]any, len(p)) // stored objects are shared: never change them
			for k, v := range p {
				cp[k] = v
			}
			obj[parts[0]] = cp
			next = append(next, cp)
			continue
		}
		o, err := s.st.Get(ctx, class, id)
		if err != nil || !s.allowed(ctx, o, user, "read", auth) {
			continue
		}
		full := aclShown(s.present(ctx, o, user, auth), ctx.Value(returnACLKey{}) == true)
		if class == "_File" {
			// an included file is a File, as LeanCloud answers it: the SDKs decode it to an
			// AV.File (with className _File it would become a plain AV.Object)
			full["__type"] = "File"
		} else {
			full["__type"], full["className"] = "Object", class
		}
		obj[parts[0]] = full
		next = append(next, full)
	}
	if len(parts) > 1 && len(next) > 0 {
		s.includePath(ctx, next, parts[1:], user, auth)
	}
}

// aclShown is an object as a query or GET answers it: LeanCloud sends the ACL only with
// returnACL=true (AV.Query#includeACL, fetch's includeACL), and then an object saved without
// one shows the default, public read and write (javascript-sdk's recorded answers).
type returnACLKey struct{}

func aclShown(obj map[string]any, returnACL bool) map[string]any {
	if !returnACL {
		delete(obj, "ACL")
	} else if _, has := obj["ACL"]; !has {
		obj["ACL"] = map[string]any{"*": map[string]any{"read": true, "write": true}}
	}
	return obj
}

// relationHolds matches a relation field against a pointer, or {"$in": [pointers]}: whether o
// is among the owners whose relation holds one of them, asked once per pointer and query (not
// once per object the query scans), up to maxOwnerLookups pointers.
func (m *matcher) relationHolds(o *store.Object, key string, cond any) (bool, error) {
	var wanted []any
	if c, ok := cond.(map[string]any); ok && c["__type"] == "Pointer" {
		wanted = []any{c}
	} else if ops, ok := cond.(map[string]any); ok && len(ops) == 1 {
		if list, ok := ops["$in"].([]any); ok {
			wanted = list
		}
	}
	if len(wanted) > maxOwnerLookups {
		// many pointers: this object's own relation, read once per object, costs fewer reads
		ids, err := m.relatedTo(map[string]any{"object": map[string]any{"className": o.Class, "objectId": o.ID}, "key": key})
		if err != nil {
			return false, err
		}
		for _, w := range wanted {
			p, _ := w.(map[string]any)
			if id, _ := p["objectId"].(string); id != "" && ids[id] {
				return true, nil
			}
		}
		return false, nil
	}
	for _, w := range wanted {
		p, _ := w.(map[string]any)
		id, _ := p["objectId"].(string)
		if id == "" {
			continue
		}
		owners, err := m.relationOwners(o.Class, key, id)
		if err != nil {
			return false, err
		}
		if owners[o.ID] {
			return true, nil
		}
	}
	return false, nil
}

// maxOwnerLookups is how many pointers relationHolds looks up by their owners; a longer $in list
// reads the relation of each object it meets instead.
const maxOwnerLookups = 8

// relationOwners is the set of objects of class whose relation key holds id, read once per query.
func (m *matcher) relationOwners(class, key, id string) (map[string]bool, error) {
	return cachedIDs(&m.owners, class+"/"+key+"/"+id, func() ([]string, error) {
		return m.s.st.RelationOwners(m.ctx, class, key, id)
	})
}
