package wxdb

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fnhq/fn/internal/randid"
)

type match struct {
	row Row
	doc bson.D
}

// plan turns a query document into pushed-down conditions; the compiled filter still decides.
func planConds(spec bson.D, impure map[string]bool) []Cond {
	var out []Cond
	for _, e := range spec {
		if e.Key == "$and" {
			if arr, ok := e.Value.(bson.A); ok {
				for _, s := range arr {
					if d, ok := s.(bson.D); ok {
						out = append(out, planConds(d, impure)...)
					}
				}
			}
			continue
		}
		if strings.HasPrefix(e.Key, "$") || !pushablePath(e.Key) || hasImpurePrefix(e.Key, impure) {
			continue
		}
		if ops, isOps := isOperatorDoc(e.Value); isOps {
			for _, op := range ops {
				switch op.Key {
				case "$eq":
					if v, ok := pushValue(e.Key, op.Value); ok {
						out = append(out, Cond{Path: e.Key, Op: "=", Values: []any{v}})
					}
				case "$gt", "$gte", "$lt", "$lte":
					if v, ok := pushValue(e.Key, op.Value); ok {
						if _, isBool := v.(bool); !isBool && e.Key != "_id" {
							// Keys do not sort like ids, so ranges on _id are left to the matcher.
							out = append(out, Cond{Path: e.Key, Op: map[string]string{"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op.Key], Values: []any{v}})
						}
					}
				case "$in":
					arr, ok := op.Value.(bson.A)
					if !ok || len(arr) == 0 || len(arr) > 256 {
						continue
					}
					vals := make([]any, 0, len(arr))
					for _, a := range arr {
						v, ok := pushValue(e.Key, a)
						if !ok {
							vals = nil
							break
						}
						vals = append(vals, v)
					}
					if vals != nil {
						out = append(out, Cond{Path: e.Key, Op: "in", Values: vals})
					}
				}
			}
			continue
		}
		if v, ok := pushValue(e.Key, e.Value); ok {
			out = append(out, Cond{Path: e.Key, Op: "=", Values: []any{v}})
		}
	}
	return out
}

func hasImpurePrefix(p string, impure map[string]bool) bool {
	if len(impure) == 0 {
		return false
	}
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '.' {
			if impure[p[:i]] {
				return true
			}
		}
	}
	return false
}

// pushValue is a value SQL can compare exactly as a superset: strings, finite numbers, bools.
// An _id condition compares the stored key, which only strings equal.
func pushValue(path string, v any) (any, bool) {
	if path == "_id" {
		key, err := idKey(v)
		return key, err == nil
	}
	switch x := v.(type) {
	case string:
		return x, true
	case int32:
		return int64(x), true
	case int64:
		if x > 1<<53 || x < -(1<<53) {
			return nil, false
		}
		return x, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return x, true
	case bool:
		return x, true
	}
	return nil, false
}

// refresh notices writes by another process (fn data import beside a running server): the
// backend's memory of impure paths and collections is reloaded before it plans anything.
func (db *DB) refresh(ctx context.Context) error {
	seq, err := db.be.LastSeq(ctx)
	if err != nil {
		return err
	}
	if seq == db.seq.Load() {
		return nil
	}
	if err := db.be.Reload(ctx); err != nil {
		return err
	}
	db.seq.Store(seq)
	return nil
}

// find streams the documents of cid matching filter, in natural order, until fn says stop.
func (db *DB) find(ctx context.Context, cid int64, f *Filter, fn func(match) bool) error {
	return db.findOrdered(ctx, cid, f, nil, fn)
}

// sortable turns sort keys into pushed-down ones when every path only ever held null, numbers,
// strings or booleans (SQL can then order exactly as MongoDB); ok is false otherwise.
func sortable(keys []sortKey, impure map[string]bool) ([]OrderKey, bool) {
	if len(keys) == 0 || len(keys) > 4 {
		return nil, false
	}
	out := make([]OrderKey, len(keys))
	for i, k := range keys {
		p := strings.Join(k.path, ".")
		if !pushablePath(p) || hasImpurePrefix(p, impure) || impure[objectMark+p] {
			return nil, false
		}
		out[i] = OrderKey{Path: p, Desc: k.dir < 0, Ranked: impure[boolMark+p]}
	}
	return out, true
}

// findOrdered is find with the rows in the given order.
func (db *DB) findOrdered(ctx context.Context, cid int64, f *Filter, order []OrderKey, fn func(match) bool) error {
	conds := planConds(f.spec, db.be.ImpurePaths(cid))
	return db.be.Scan(ctx, cid, conds, order, func(r Row) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		d, err := decodeDoc(r.Doc)
		if err != nil {
			return false, err
		}
		if !f.Match(d) {
			return true, nil
		}
		return fn(match{row: r, doc: d}), nil
	})
}

// Explain reports how a where query on a collection would run (SQLite's EXPLAIN QUERY PLAN),
// so a test can see an indexed field use its index.
func (db *DB) Explain(ctx context.Context, env, coll string, queryEJSON string) (string, error) {
	spec, err := parseEJSON(queryEJSON, "query")
	if err != nil {
		return "", err
	}
	cid, _, err := db.be.Collection(ctx, env, coll, false)
	if err != nil {
		return "", err
	}
	if cid == 0 {
		return "", notExist(coll)
	}
	return db.be.Explain(ctx, cid, planConds(spec, db.be.ImpurePaths(cid)))
}

func (db *DB) collection(ctx context.Context, env, name string, create bool) (int64, error) {
	if err := db.refresh(ctx); err != nil {
		return 0, err
	}
	cid, _, err := db.be.Collection(ctx, env, name, create)
	if err != nil {
		return 0, err
	}
	if cid == 0 {
		return 0, notExist(name)
	}
	return cid, nil
}

func (db *DB) queryOf(req *request) (bson.D, *Filter, error) {
	s, err := ejsonString(req.Query, "query")
	if err != nil {
		return nil, nil, err
	}
	spec, err := parseEJSON(s, "query")
	if err != nil {
		return nil, nil, err
	}
	spec = resolveServerDates(spec, db.now()).(bson.D)
	f, err := CompileFilter(spec)
	if err != nil {
		return nil, nil, err
	}
	return spec, f, nil
}

// docID is the _id a DOC query names.
func docID(spec bson.D) (any, error) {
	if len(spec) != 1 || spec[0].Key != "_id" {
		return nil, badParam("a document query must be {_id: <id>}")
	}
	return spec[0].Value, nil
}

func (db *DB) getDocument(ctx context.Context, env string, caller Caller, req *request) (any, error) {
	spec, f, err := db.queryOf(req)
	if err != nil {
		return nil, err
	}
	def, max := defaultLimit, maxLimit
	if caller.Client {
		def, max = clientLimit, clientLimit
	}
	limit, err := optInt(req.Limit, "limit", def, max)
	if err != nil {
		return nil, err
	}
	offset, err := optInt(req.Offset, "offset", 0, maxOffset)
	if err != nil {
		return nil, err
	}
	var proj *projection
	if ps, err := ejsonString(req.Projection, "projection"); err != nil {
		return nil, err
	} else if ps != "" {
		pd, err := parseEJSON(ps, "projection")
		if err != nil {
			return nil, err
		}
		if len(pd) > 0 {
			if proj, err = compileProjection(pd); err != nil {
				return nil, err
			}
		}
	}
	var keys []sortKey
	if os, err := ejsonString(req.Order, "order"); err != nil {
		return nil, err
	} else if os != "" {
		od, err := parseOrder(os)
		if err != nil {
			return nil, err
		}
		if keys, err = parseSort(od); err != nil {
			return nil, err
		}
	}
	if req.TransactionID != "" {
		id, err := docID(spec)
		if err != nil {
			return nil, badParam("a transaction reads single documents only: %v", err.(*Error).Message)
		}
		d, err := db.txGet(ctx, env, req.TransactionID, req.CollectionName, id)
		if err != nil {
			return nil, err
		}
		list := []string{}
		if d != nil {
			if proj != nil {
				d = proj.apply(d)
			}
			b, err := encodeDoc(d)
			if err != nil {
				return nil, err
			}
			list = append(list, string(b))
		}
		return map[string]any{"list": list}, nil
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	cid, err := db.collection(ctx, env, req.CollectionName, false)
	if err != nil {
		return nil, err
	}
	// Rows come sorted from SQL when the sort paths allow it; otherwise every match is read and
	// sorted here before skip and limit.
	var docs []bson.D
	var pushed []OrderKey
	sortHere := f.near != nil
	if !sortHere && len(keys) > 0 {
		var ok bool
		pushed, ok = sortable(keys, db.be.ImpurePaths(cid))
		sortHere = !ok
	}
	err = db.findOrdered(ctx, cid, f, pushed, func(m match) bool {
		docs = append(docs, m.doc)
		return sortHere || len(docs) < offset+limit
	})
	if err != nil {
		return nil, err
	}
	if !sortHere {
		// Natural or SQL order.
	} else if len(keys) > 0 {
		sortDocs(docs, keys)
	} else if f.near != nil {
		n := f.near
		dist := func(d bson.D) float64 {
			best := math.Inf(1)
			var vals []any
			missing := false
			walkPath(d, n.path, &vals, &missing)
			for _, v := range vals {
				if x, y, ok := pointOf(v); ok {
					best = math.Min(best, haversine(n.lng, n.lat, x, y))
				}
			}
			return best
		}
		sort.SliceStable(docs, func(i, j int) bool { return dist(docs[i]) < dist(docs[j]) })
	}
	if offset >= len(docs) {
		docs = nil
	} else {
		docs = docs[offset:]
	}
	if len(docs) > limit {
		docs = docs[:limit]
	}
	list := make([]string, 0, len(docs))
	size := 0
	for _, d := range docs {
		if proj != nil {
			d = proj.apply(d)
		}
		b, err := encodeDoc(d)
		if err != nil {
			return nil, err
		}
		if size += len(b); size > maxReply {
			return nil, errf(CodeRequestFailed, "the result is larger than %d MB: use limit or field", maxReply>>20)
		}
		list = append(list, string(b))
	}
	return map[string]any{"list": list, "limit": limit, "offset": offset}, nil
}

// sortDocs sorts stably by keys, computing each document's sort values once.
func sortDocs(docs []bson.D, keys []sortKey) {
	vals := make([][]any, len(docs))
	for i, d := range docs {
		vals[i] = make([]any, len(keys))
		for j, k := range keys {
			vals[i][j] = sortValue(d, k)
		}
	}
	idx := make([]int, len(docs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		for j, k := range keys {
			if c := compareValues(vals[idx[a]][j], vals[idx[b]][j]); c != 0 {
				return c*k.dir < 0
			}
		}
		return false
	})
	sorted := make([]bson.D, len(docs))
	for i, j := range idx {
		sorted[i] = docs[j]
	}
	copy(docs, sorted)
}

// parseOrder reads the SDK's order: an object {field: ±1} in key order, or the older
// [{field, direction}] array.
func parseOrder(s string) (bson.D, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") {
		v, err := parseEJSONValue(json.RawMessage(t), "order")
		if err != nil {
			return nil, err
		}
		var out bson.D
		for _, e := range v.(bson.A) {
			d, ok := e.(bson.D)
			if !ok {
				return nil, badParam("order entries must be {field, direction}")
			}
			fv, _ := lookupField(d, "field")
			dv, _ := lookupField(d, "direction")
			name, ok := fv.(string)
			if !ok {
				return nil, badParam("order entries must be {field, direction}")
			}
			out = append(out, bson.E{Key: name, Value: dv})
		}
		return out, nil
	}
	return parseEJSON(s, "order")
}

func (db *DB) countDocument(ctx context.Context, env string, req *request) (any, error) {
	_, f, err := db.queryOf(req)
	if err != nil {
		return nil, err
	}
	if req.TransactionID != "" {
		return nil, badParam("count is not supported in a transaction")
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	cid, err := db.collection(ctx, env, req.CollectionName, false)
	if err != nil {
		return nil, err
	}
	if len(f.spec) == 0 {
		n, err := db.be.Count(ctx, cid)
		if err != nil {
			return nil, err
		}
		return map[string]any{"total": n}, nil
	}
	n := 0
	if err := db.find(ctx, cid, f, func(match) bool { n++; return true }); err != nil {
		return nil, err
	}
	return map[string]any{"total": n}, nil
}

func (db *DB) addCollection(ctx context.Context, env string, caller Caller, name string) (any, error) {
	if caller.Client {
		return nil, errf("DATABASE_PERMISSION_DENIED", "a mini-program cannot create collections")
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	_, created, err := db.be.Collection(ctx, env, name, true)
	if err != nil {
		return nil, err
	}
	if !created {
		return nil, errf(CodeCollectionExists, "[ResourceInUse.TableExist] Table exist: %s.", name)
	}
	return map[string]any{}, nil
}

// prepareInsert validates a new document and gives it its _id (32 hex digits when absent) and
// the caller's _openid.
func (db *DB) prepareInsert(d bson.D, caller Caller) (bson.D, string, error) {
	d = resolveServerDates(d, db.now()).(bson.D)
	if err := checkStoredDoc(d); err != nil {
		return nil, "", err
	}
	id, hasID := lookupField(d, "_id")
	if hasID && id == nil {
		// the SDKs' EJSON.stringify (bson 1.x and 4.x alike) writes a JavaScript undefined as
		// null, so a model object's `_id: undefined` arrives as _id null: it means no id
		d = removeKey(d, "_id")
		hasID = false
	}
	if !hasID {
		id = randid.Hex(16)
		d = append(bson.D{{Key: "_id", Value: id}}, d...)
	}
	key, err := idKey(id)
	if err != nil {
		return nil, "", err
	}
	if caller.OpenID != "" {
		if _, has := lookupField(d, "_openid"); !has {
			d = append(d, bson.E{Key: "_openid", Value: caller.OpenID})
		}
	}
	return d, key, nil
}

func (db *DB) insertDocument(ctx context.Context, env string, caller Caller, req *request) (any, error) {
	var raws []string
	if err := json.Unmarshal(req.Data, &raws); err != nil {
		var one string
		if err2 := json.Unmarshal(req.Data, &one); err2 != nil {
			return nil, badParam("data must be an array of EJSON strings")
		}
		raws = []string{one}
	}
	if len(raws) == 0 {
		return nil, badParam("data is empty: nothing to insert")
	}
	if len(raws) > maxInsert {
		return nil, badParam("at most %d documents per insert", maxInsert)
	}
	docs := make([]bson.D, len(raws))
	keys := make([]string, len(raws))
	ids := make([]any, len(raws))
	seen := map[string]bool{}
	for i, s := range raws {
		d, err := parseEJSON(s, "data")
		if err != nil {
			return nil, err
		}
		if d, keys[i], err = db.prepareInsert(d, caller); err != nil {
			return nil, err
		}
		if seen[keys[i]] {
			return nil, dupKey(req.CollectionName, keys[i])
		}
		seen[keys[i]] = true
		docs[i] = d
		ids[i], _ = lookupField(d, "_id")
	}
	if req.TransactionID != "" {
		if len(docs) != 1 {
			return nil, badParam("a transaction inserts one document at a time")
		}
		if err := db.txInsert(ctx, env, req.TransactionID, req.CollectionName, caller, docs[0], keys[0]); err != nil {
			return nil, err
		}
		return map[string]any{"insertedIds": ids}, nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	// The server SDK creates a missing collection on add; a mini-program cannot.
	cid, err := db.collection(ctx, env, req.CollectionName, !caller.Client)
	if err != nil {
		return nil, err
	}
	writes := make([]Write, len(docs))
	for i, d := range docs {
		if _, exists, err := db.be.Get(ctx, cid, keys[i]); err != nil {
			return nil, err
		} else if exists {
			return nil, dupKey(req.CollectionName, keys[i])
		}
		b, err := encodeDoc(d)
		if err != nil {
			return nil, err
		}
		var imp []string
		impurePaths(d, "", &imp)
		writes[i] = Write{CID: cid, Key: keys[i], Doc: b, Impure: dedupe(imp)}
	}
	if err := db.commitWrites(ctx, writes); err != nil {
		return nil, err
	}
	return map[string]any{"insertedIds": ids}, nil
}

func dupKey(coll, key string) error {
	return errf(CodeRequestFailed, "E11000 duplicate key error collection: %s index: _id_ dup key: { _id: %q }", coll, strings.TrimPrefix(key, "\x01n"))
}

// commitWrites stores a batch under db.mu (held by the caller) with the next version, keeping
// the replaced states for transactions that started earlier. A plain write to a document an
// open transaction has written answers errLocked: the caller waits for that transaction to end
// and starts over (waitForLocks).
func (db *DB) commitWrites(ctx context.Context, writes []Write) error {
	return db.commit(ctx, writes, true)
}

func (db *DB) commit(ctx context.Context, writes []Write, plain bool) error {
	if len(writes) == 0 {
		return nil
	}
	if plain && len(db.txs) > 0 {
		db.expireTxs(db.now())
		for _, w := range writes {
			ref := docRef{w.CID, w.Key}
			for _, tx := range db.txs {
				if _, ok := tx.writes[ref]; ok {
					return &lockedError{done: db.txDone}
				}
			}
		}
	}
	var hist []struct {
		ref docRef
		doc []byte
	}
	if len(db.txs) > 0 {
		// Abandoned transactions must not keep old states alive forever.
		db.expireTxs(db.now())
	}
	if len(db.txs) > 0 {
		for _, w := range writes {
			r, ok, err := db.be.Get(ctx, w.CID, w.Key)
			if err != nil {
				return err
			}
			var old []byte
			if ok {
				old = r.Doc
			}
			hist = append(hist, struct {
				ref docRef
				doc []byte
			}{docRef{w.CID, w.Key}, old})
		}
	}
	seq, err := db.be.Apply(ctx, writes)
	if err != nil {
		return err
	}
	db.seq.Store(seq)
	for _, h := range hist {
		db.history[h.ref] = append(db.history[h.ref], histEntry{until: seq, doc: h.doc})
	}
	return nil
}

// modifyDocument is set (merge false: replace, upsert), update (merge true) and where-update.
func (db *DB) modifyDocument(ctx context.Context, env string, caller Caller, req *request) (any, error) {
	spec, f, err := db.queryOf(req)
	if err != nil {
		return nil, err
	}
	ds, err := ejsonString(req.Data, "data")
	if err != nil {
		return nil, err
	}
	data, err := parseEJSON(ds, "data")
	if err != nil {
		return nil, err
	}
	merge := req.Merge == nil || *req.Merge
	upsert := req.Upsert != nil && *req.Upsert
	multi := req.Multi != nil && *req.Multi
	var upd *Update
	if merge {
		if upd, err = CompileUpdate(data); err != nil {
			return nil, err
		}
	} else {
		for _, e := range data {
			if strings.HasPrefix(e.Key, "$") {
				return nil, badParam("a replacement document cannot contain the update operator %s", e.Key)
			}
			if e.Key == "_id" {
				return nil, badParam("不能更新_id的值 (the _id of a document cannot be changed)")
			}
		}
	}
	if req.TransactionID != "" {
		id, err := docID(spec)
		if err != nil {
			return nil, badParam("a transaction updates single documents only: %v", err.(*Error).Message)
		}
		return db.txModify(ctx, env, req.TransactionID, req.CollectionName, caller, id, data, upd, upsert)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	cid, err := db.collection(ctx, env, req.CollectionName, upsert && !caller.Client)
	if err != nil {
		return nil, err
	}
	var matches []match
	err = db.find(ctx, cid, f, func(m match) bool {
		matches = append(matches, m)
		return multi
	})
	if err != nil {
		return nil, err
	}
	now := db.now()
	var writes []Write
	for _, m := range matches {
		var nd bson.D
		if upd != nil {
			pos := -1
			if upd.positional {
				pos = positionalIndex(m.doc, spec, upd)
			}
			if nd, err = upd.Apply(m.doc, pos, now); err != nil {
				return nil, err
			}
		} else {
			nd = replacement(m.doc, data, now)
		}
		w, changed, err := rewrite(cid, m, nd)
		if err != nil {
			return nil, err
		}
		if changed {
			writes = append(writes, w)
		}
	}
	out := map[string]any{"updated": len(writes)}
	if len(matches) == 0 && upsert {
		var nd bson.D
		if upd != nil {
			base := equalityFields(spec)
			if nd, err = upd.Apply(base, -1, now); err != nil {
				return nil, err
			}
		} else {
			nd = cloneDoc(data)
			if id, err := docID(spec); err == nil {
				nd = append(bson.D{{Key: "_id", Value: id}}, nd...)
			}
		}
		nd, key, err := db.prepareInsert(nd, caller)
		if err != nil {
			return nil, err
		}
		b, err := encodeDoc(nd)
		if err != nil {
			return nil, err
		}
		var imp []string
		impurePaths(nd, "", &imp)
		writes = append(writes, Write{CID: cid, Key: key, Doc: b, Impure: dedupe(imp)})
		id, _ := lookupField(nd, "_id")
		out["upsert_id"] = id
	}
	if err := db.commitWrites(ctx, writes); err != nil {
		return nil, err
	}
	return out, nil
}

// replacement is doc.set's new document: the data with the old _id (and _openid when the data
// has none).
func replacement(old, data bson.D, now time.Time) bson.D {
	data = resolveServerDates(cloneDoc(data), now).(bson.D)
	nd := bson.D{}
	if id, ok := lookupField(old, "_id"); ok {
		nd = append(nd, bson.E{Key: "_id", Value: id})
	}
	nd = append(nd, cloneDoc(data)...)
	if oid, ok := lookupField(old, "_openid"); ok {
		if _, has := lookupField(data, "_openid"); !has {
			nd = append(nd, bson.E{Key: "_openid", Value: oid})
		}
	}
	return nd
}

func rewrite(cid int64, m match, nd bson.D) (Write, bool, error) {
	if err := checkStoredDoc(nd); err != nil {
		return Write{}, false, err
	}
	b, err := encodeDoc(nd)
	if err != nil {
		return Write{}, false, err
	}
	if string(b) == string(m.row.Doc) {
		return Write{}, false, nil
	}
	var imp []string
	impurePaths(nd, "", &imp)
	return Write{CID: cid, Key: m.row.Key, Doc: b, Impure: dedupe(imp)}, true, nil
}

// equalityFields seeds an upserted document from the query's plain equalities.
func equalityFields(spec bson.D) bson.D {
	out := bson.D{}
	for _, e := range spec {
		if strings.HasPrefix(e.Key, "$") || strings.Contains(e.Key, ".") {
			continue
		}
		if _, isOps := isOperatorDoc(e.Value); isOps {
			continue
		}
		out = append(out, bson.E{Key: e.Key, Value: cloneValue(e.Value)})
	}
	return out
}

// positionalIndex finds the array element the query matched for a "$" update path: the first
// element that satisfies the query's conditions on that array.
func positionalIndex(doc bson.D, spec bson.D, upd *Update) int {
	for _, op := range upd.ops {
		for i, s := range op.path {
			if s != "$" {
				continue
			}
			prefix := strings.Join(op.path[:i], ".")
			arrV, ok := getPath(doc, op.path[:i])
			arr, isArr := arrV.(bson.A)
			if !ok || !isArr {
				return -1
			}
			var sub bson.D
			for _, e := range spec {
				if e.Key == prefix || strings.HasPrefix(e.Key, prefix+".") {
					sub = append(sub, e)
				}
			}
			if len(sub) == 0 {
				return -1
			}
			f, err := CompileFilter(sub)
			if err != nil {
				return -1
			}
			for j, el := range arr {
				probe, err := modifyPath(cloneDoc(doc), op.path[:i], prefix, true, func(any, bool) (any, bool, error) { return bson.A{el}, false, nil })
				if err == nil && f.Match(probe.(bson.D)) {
					return j
				}
			}
			return -1
		}
	}
	return -1
}

func (db *DB) removeDocument(ctx context.Context, env string, req *request) (any, error) {
	spec, f, err := db.queryOf(req)
	if err != nil {
		return nil, err
	}
	multi := req.Multi != nil && *req.Multi
	if req.TransactionID != "" {
		id, err := docID(spec)
		if err != nil {
			return nil, badParam("a transaction removes single documents only: %v", err.(*Error).Message)
		}
		return db.txRemove(ctx, env, req.TransactionID, req.CollectionName, id)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	cid, err := db.collection(ctx, env, req.CollectionName, false)
	if err != nil {
		return nil, err
	}
	var writes []Write
	err = db.find(ctx, cid, f, func(m match) bool {
		writes = append(writes, Write{CID: cid, Key: m.row.Key})
		return multi
	})
	if err != nil {
		return nil, err
	}
	if err := db.commitWrites(ctx, writes); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": len(writes)}, nil
}

func (db *DB) modifyAndReturn(ctx context.Context, env string, caller Caller, req *request) (any, error) {
	spec, f, err := db.queryOf(req)
	if err != nil {
		return nil, err
	}
	if req.TransactionID != "" {
		return nil, badParam("updateAndReturn is not supported in a transaction")
	}
	ds, err := ejsonString(req.Data, "data")
	if err != nil {
		return nil, err
	}
	data, err := parseEJSON(ds, "data")
	if err != nil {
		return nil, err
	}
	upd, err := CompileUpdate(data)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	cid, err := db.collection(ctx, env, req.CollectionName, false)
	if err != nil {
		return nil, err
	}
	var found *match
	if err := db.find(ctx, cid, f, func(m match) bool { found = &m; return false }); err != nil {
		return nil, err
	}
	if found == nil {
		return map[string]any{"updated": 0, "doc": nil}, nil
	}
	pos := -1
	if upd.positional {
		pos = positionalIndex(found.doc, spec, upd)
	}
	nd, err := upd.Apply(found.doc, pos, db.now())
	if err != nil {
		return nil, err
	}
	w, changed, err := rewrite(cid, *found, nd)
	if err != nil {
		return nil, err
	}
	n := 0
	if changed {
		if err := db.commitWrites(ctx, []Write{w}); err != nil {
			return nil, err
		}
		n = 1
	}
	b, err := encodeDoc(nd)
	if err != nil {
		return nil, err
	}
	return map[string]any{"updated": n, "doc": string(b)}, nil
}

func (db *DB) aggregate(ctx context.Context, env string, req *request) (any, error) {
	if len(req.Stages) > maxStages {
		return nil, badParam("a pipeline may have at most %d stages", maxStages)
	}
	stages := make([]Stage, len(req.Stages))
	for i, s := range req.Stages {
		if !strings.HasPrefix(s.StageKey, "$") {
			return nil, badCommand("unknown aggregation stage: %s", s.StageKey)
		}
		v, err := parseEJSONValue(s.StageValue, s.StageKey)
		if err != nil {
			return nil, err
		}
		stages[i] = Stage{Name: s.StageKey, Value: resolveServerDates(v, db.now())}
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	cid, err := db.collection(ctx, env, req.CollectionName, false)
	if err != nil {
		return nil, err
	}
	// A leading $match is pushed into the scan.
	f, _ := CompileFilter(bson.D{})
	rest := stages
	if len(stages) > 0 && stages[0].Name == "$match" {
		if q, ok := stages[0].Value.(bson.D); ok {
			if f, err = CompileFilter(q); err != nil {
				return nil, err
			}
			rest = stages[1:]
		}
	}
	docs, err := db.loadAll(ctx, cid, f)
	if err != nil {
		return nil, err
	}
	load := func(coll string) ([]bson.D, error) {
		if err := checkCollectionName(coll); err != nil {
			return nil, err
		}
		c, _, err := db.be.Collection(ctx, env, coll, false)
		if err != nil || c == 0 {
			return nil, err
		}
		all, _ := CompileFilter(bson.D{})
		return db.loadAll(ctx, c, all)
	}
	out, err := runPipeline(ctx, docs, rest, load, db.now())
	if err != nil {
		return nil, err
	}
	list := make([]string, 0, len(out))
	size := 0
	for _, d := range out {
		b, err := encodeDoc(d)
		if err != nil {
			return nil, err
		}
		if size += len(b); size > maxReply {
			return nil, errf(CodeRequestFailed, "the aggregation result is larger than %d MB: add $limit or $project", maxReply>>20)
		}
		list = append(list, string(b))
	}
	return map[string]any{"list": list}, nil
}

func (db *DB) loadAll(ctx context.Context, cid int64, f *Filter) ([]bson.D, error) {
	var docs []bson.D
	var tooMany bool
	err := db.find(ctx, cid, f, func(m match) bool {
		docs = append(docs, m.doc)
		tooMany = len(docs) > maxPipelineDocs
		return !tooMany
	})
	if tooMany {
		return nil, errf(CodeRequestFailed, "aggregation input larger than %d documents", maxPipelineDocs)
	}
	return docs, err
}
