package wxdb

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type accumulator interface {
	add(v any)
	result() any
}

func newAccumulator(op string) accumulator {
	switch op {
	case "$sum":
		return &sumAcc{sum: int32(0)}
	case "$avg":
		return &avgAcc{}
	case "$min":
		return &minMaxAcc{dir: -1}
	case "$max":
		return &minMaxAcc{dir: 1}
	case "$first":
		return &firstAcc{}
	case "$last":
		return &lastAcc{}
	case "$push":
		return &pushAcc{list: bson.A{}}
	case "$addToSet":
		return &pushAcc{list: bson.A{}, set: true}
	case "$stdDevPop":
		return &stdAcc{}
	case "$stdDevSamp":
		return &stdAcc{samp: true}
	case "$mergeObjects":
		return &mergeAcc{out: bson.D{}}
	}
	return nil
}

type sumAcc struct{ sum any }

func (a *sumAcc) add(v any) {
	if isNumber(v) {
		a.sum = arith("$inc", a.sum, v)
	}
}
func (a *sumAcc) result() any { return a.sum }

type avgAcc struct {
	sum float64
	n   int
}

func (a *avgAcc) add(v any) {
	if f, ok := toFloat(v); ok {
		a.sum += f
		a.n++
	}
}
func (a *avgAcc) result() any {
	if a.n == 0 {
		return nil
	}
	return a.sum / float64(a.n)
}

type minMaxAcc struct {
	dir  int
	best any
	have bool
}

func (a *minMaxAcc) add(v any) {
	if nullish(v) {
		return
	}
	if !a.have || compareValues(v, a.best)*a.dir > 0 {
		a.best, a.have = v, true
	}
}
func (a *minMaxAcc) result() any { return a.best }

type firstAcc struct {
	v    any
	have bool
}

func (a *firstAcc) add(v any) {
	if !a.have {
		if isMissing(v) {
			v = nil
		}
		a.v, a.have = v, true
	}
}
func (a *firstAcc) result() any { return a.v }

type lastAcc struct{ v any }

func (a *lastAcc) add(v any) {
	if isMissing(v) {
		v = nil
	}
	a.v = v
}
func (a *lastAcc) result() any { return a.v }

type pushAcc struct {
	list bson.A
	set  bool
}

func (a *pushAcc) add(v any) {
	if isMissing(v) {
		return
	}
	if a.set {
		for _, e := range a.list {
			if equalValues(e, v) {
				return
			}
		}
	}
	a.list = append(a.list, v)
}
func (a *pushAcc) result() any { return a.list }

type stdAcc struct {
	vals []float64
	samp bool
}

func (a *stdAcc) add(v any) {
	if f, ok := toFloat(v); ok {
		a.vals = append(a.vals, f)
	}
}
func (a *stdAcc) result() any {
	n := len(a.vals)
	if n == 0 || (a.samp && n < 2) {
		return nil
	}
	mean := 0.0
	for _, f := range a.vals {
		mean += f
	}
	mean /= float64(n)
	ss := 0.0
	for _, f := range a.vals {
		ss += (f - mean) * (f - mean)
	}
	d := float64(n)
	if a.samp {
		d--
	}
	return math.Sqrt(ss / d)
}

type mergeAcc struct{ out bson.D }

func (a *mergeAcc) add(v any) {
	if d, ok := v.(bson.D); ok {
		a.out = mergeInto(a.out, d)
	}
}
func (a *mergeAcc) result() any { return a.out }

// Stage is one pipeline stage as the SDK sends it: {stageKey: "$match", stageValue: "<EJSON>"}.
type Stage struct {
	Name  string
	Value any
}

// maxStages and maxPipelineDocs bound a pipeline's work.
const (
	maxStages       = 64
	maxPipelineDocs = 1_000_000
)

// collectionLoader gives a pipeline the documents of another collection ($lookup).
type collectionLoader func(coll string) ([]bson.D, error)

type pipeline struct {
	cancel context.Context
	stages []Stage
	load   collectionLoader
	now    time.Time
	depth  int
}

// runPipeline evaluates stages over docs.
func runPipeline(ctx context.Context, docs []bson.D, stages []Stage, load collectionLoader, now time.Time) ([]bson.D, error) {
	p := &pipeline{cancel: ctx, stages: stages, load: load, now: now}
	return p.run(docs, nil)
}

func (p *pipeline) run(docs []bson.D, vars map[string]any) ([]bson.D, error) {
	if len(p.stages) > maxStages {
		return nil, badParam("a pipeline may have at most %d stages", maxStages)
	}
	for i, st := range p.stages {
		if err := p.cancel.Err(); err != nil {
			return nil, err
		}
		var err error
		docs, err = p.stage(docs, st, i, vars)
		if err != nil {
			return nil, err
		}
		if len(docs) > maxPipelineDocs {
			return nil, errf(CodeRequestFailed, "aggregation produced more than %d documents at stage %s", maxPipelineDocs, st.Name)
		}
	}
	return docs, nil
}

func (p *pipeline) ctx(d bson.D, vars map[string]any) *exprCtx {
	return &exprCtx{root: d, cur: d, vars: vars, now: p.now}
}

func (p *pipeline) stage(docs []bson.D, st Stage, index int, vars map[string]any) ([]bson.D, error) {
	switch st.Name {
	case "$match":
		q, ok := st.Value.(bson.D)
		if !ok {
			return nil, badParam("$match needs a query object")
		}
		f, err := CompileFilter(q)
		if err != nil {
			return nil, err
		}
		out := docs[:0:0]
		for _, d := range docs {
			if matchWithVars(f, q, d, vars, p.now) {
				out = append(out, d)
			}
		}
		return out, nil
	case "$project":
		spec, ok := st.Value.(bson.D)
		if !ok || len(spec) == 0 {
			return nil, badParam("$project needs a non-empty object")
		}
		return p.project(docs, spec, vars)
	case "$addFields", "$set":
		spec, ok := st.Value.(bson.D)
		if !ok {
			return nil, badParam("%s needs an object", st.Name)
		}
		if err := checkExpr(spec, 0); err != nil {
			return nil, err
		}
		out := make([]bson.D, 0, len(docs))
		for _, d := range docs {
			nd := cloneDoc(d)
			for _, e := range spec {
				if err := checkUpdatePath(e.Key); err != nil {
					return nil, err
				}
				v, err := evalExpr(e.Value, p.ctx(d, vars))
				if err != nil {
					return nil, err
				}
				var x any = nd
				if isMissing(v) {
					x, err = modifyPath(x, splitPath(e.Key), e.Key, false, func(any, bool) (any, bool, error) { return nil, true, nil })
				} else {
					x, err = modifyPath(x, splitPath(e.Key), e.Key, true, func(any, bool) (any, bool, error) { return v, false, nil })
				}
				if err != nil {
					return nil, err
				}
				nd = x.(bson.D)
			}
			out = append(out, nd)
		}
		return out, nil
	case "$unset":
		var fields bson.D
		for _, f := range argList(st.Value) {
			s, ok := f.(string)
			if !ok {
				return nil, badParam("$unset needs field names")
			}
			fields = append(fields, bson.E{Key: s, Value: int32(0)})
		}
		return p.project(docs, fields, vars)
	case "$group":
		spec, ok := st.Value.(bson.D)
		if !ok {
			return nil, badParam("$group needs an object")
		}
		return p.group(docs, spec, vars)
	case "$sort":
		spec, ok := st.Value.(bson.D)
		if !ok || len(spec) == 0 {
			return nil, badParam("$sort needs a non-empty object")
		}
		keys, err := parseSort(spec)
		if err != nil {
			return nil, err
		}
		out := append([]bson.D(nil), docs...)
		sort.SliceStable(out, func(i, j int) bool { return compareBySort(out[i], out[j], keys) < 0 })
		return out, nil
	case "$limit", "$skip":
		f, ok := toFloat(st.Value)
		if !ok || f != math.Trunc(f) || f < 0 || (st.Name == "$limit" && f == 0) {
			return nil, badParam("%s needs a positive integer", st.Name)
		}
		n := int(math.Min(f, float64(len(docs))))
		if st.Name == "$limit" {
			return docs[:n], nil
		}
		return docs[n:], nil
	case "$count":
		name, ok := st.Value.(string)
		if !ok || name == "" || strings.HasPrefix(name, "$") || strings.Contains(name, ".") {
			return nil, badParam("$count needs a field name without '$' or '.'")
		}
		if len(docs) == 0 {
			return nil, nil
		}
		return []bson.D{{{Key: name, Value: int32(len(docs))}}}, nil
	case "$unwind":
		return p.unwind(docs, st.Value)
	case "$lookup":
		return p.lookup(docs, st.Value, vars)
	case "$sample":
		d, ok := st.Value.(bson.D)
		size, _ := lookupField(d, "size")
		n, ok2 := toFloat(size)
		if !ok || !ok2 || n < 0 {
			return nil, badParam("$sample needs {size: n}")
		}
		out := append([]bson.D(nil), docs...)
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		if int(n) < len(out) {
			out = out[:int(n)]
		}
		return out, nil
	case "$bucket":
		return p.bucket(docs, st.Value, vars)
	case "$bucketAuto":
		return p.bucketAuto(docs, st.Value, vars)
	case "$replaceRoot", "$replaceWith":
		ex := st.Value
		if st.Name == "$replaceRoot" {
			d, ok := st.Value.(bson.D)
			if !ok {
				return nil, badParam("$replaceRoot needs {newRoot}")
			}
			ex, ok = lookupField(d, "newRoot")
			if !ok {
				return nil, badParam("$replaceRoot needs {newRoot}")
			}
		}
		if err := checkExpr(ex, 0); err != nil {
			return nil, err
		}
		out := make([]bson.D, 0, len(docs))
		for _, d := range docs {
			v, err := evalExpr(ex, p.ctx(d, vars))
			if err != nil {
				return nil, err
			}
			nd, ok := v.(bson.D)
			if !ok {
				return nil, badParam("'newRoot' expression must evaluate to an object, but resulting value was of type %s", typeName(v))
			}
			out = append(out, nd)
		}
		return out, nil
	case "$sortByCount":
		grouped, err := p.group(docs, bson.D{{Key: "_id", Value: st.Value}, {Key: "count", Value: bson.D{{Key: "$sum", Value: int32(1)}}}}, vars)
		if err != nil {
			return nil, err
		}
		sort.SliceStable(grouped, func(i, j int) bool {
			a, _ := lookupField(grouped[i], "count")
			b, _ := lookupField(grouped[j], "count")
			return compareValues(a, b) > 0
		})
		return grouped, nil
	case "$geoNear":
		if index != 0 {
			return nil, badParam("$geoNear is only valid as the first stage in a pipeline")
		}
		return p.geoNear(docs, st.Value)
	case "$facet":
		d, ok := st.Value.(bson.D)
		if !ok {
			return nil, badParam("$facet needs an object")
		}
		res := bson.D{}
		for _, f := range d {
			sub, err := parseStages(f.Value)
			if err != nil {
				return nil, err
			}
			sp := &pipeline{cancel: p.cancel, stages: sub, load: p.load, now: p.now, depth: p.depth + 1}
			r, err := sp.run(docs, vars)
			if err != nil {
				return nil, err
			}
			arr := bson.A{}
			for _, x := range r {
				arr = append(arr, x)
			}
			res = append(res, bson.E{Key: f.Key, Value: arr})
		}
		return []bson.D{res}, nil
	}
	return nil, badCommand("unknown aggregation stage: %s", st.Name)
}

// matchWithVars evaluates a $match; inside a $lookup pipeline $expr sees the let variables.
func matchWithVars(f *Filter, q bson.D, d bson.D, vars map[string]any, now time.Time) bool {
	if len(vars) == 0 {
		return f.Match(d)
	}
	for _, e := range q {
		if e.Key == "$expr" {
			v, err := evalExpr(e.Value, &exprCtx{root: d, cur: d, vars: vars, now: now})
			if err != nil || isMissing(v) || !truthy(v) {
				return false
			}
			continue
		}
		sub, err := CompileFilter(bson.D{e})
		if err != nil || !sub.Match(d) {
			return false
		}
	}
	return true
}

func parseStages(v any) ([]Stage, error) {
	arr, ok := v.(bson.A)
	if !ok {
		return nil, badParam("a pipeline must be an array of stages")
	}
	out := make([]Stage, 0, len(arr))
	for _, s := range arr {
		d, ok := s.(bson.D)
		if !ok || len(d) != 1 {
			return nil, badParam("a pipeline stage must be an object with exactly one field")
		}
		out = append(out, Stage{Name: d[0].Key, Value: d[0].Value})
	}
	return out, nil
}

func (p *pipeline) project(docs []bson.D, spec bson.D, vars map[string]any) ([]bson.D, error) {
	// Inclusion/exclusion fields use the projection; computed fields are expressions.
	plain := bson.D{}
	var computed bson.D
	for _, e := range spec {
		if err := checkUpdatePath(e.Key); err != nil {
			return nil, err
		}
		switch v := e.Value.(type) {
		case bool, int32, int64, float64:
			plain = append(plain, e)
		default:
			_ = v
			if err := checkExpr(e.Value, 0); err != nil {
				return nil, err
			}
			computed = append(computed, e)
		}
	}
	if len(computed) > 0 {
		for _, e := range plain {
			if !truthy(e.Value) && e.Key != "_id" {
				return nil, badParam("$project cannot mix exclusion of %s with computed fields", e.Key)
			}
		}
	}
	var proj *projection
	if len(plain) > 0 || len(computed) > 0 {
		ps := plain
		if len(computed) > 0 {
			// Computed fields imply inclusion mode.
			ps = append(bson.D{}, plain...)
			hasInclude := false
			for _, e := range ps {
				if truthy(e.Value) && e.Key != "_id" {
					hasInclude = true
				}
			}
			if !hasInclude {
				ps = append(ps, bson.E{Key: "\x00computed", Value: int32(1)})
			}
		}
		var err error
		proj, err = compileProjection(ps)
		if err != nil {
			return nil, err
		}
	}
	out := make([]bson.D, 0, len(docs))
	for _, d := range docs {
		nd := proj.apply(d)
		for _, e := range computed {
			v, err := evalExpr(e.Value, p.ctx(d, vars))
			if err != nil {
				return nil, err
			}
			if isMissing(v) {
				continue
			}
			x, err := modifyPath(nd, splitPath(e.Key), e.Key, true, func(any, bool) (any, bool, error) { return v, false, nil })
			if err != nil {
				return nil, err
			}
			nd = x.(bson.D)
		}
		out = append(out, nd)
	}
	return out, nil
}

func (p *pipeline) group(docs []bson.D, spec bson.D, vars map[string]any) ([]bson.D, error) {
	idSpec, ok := lookupField(spec, "_id")
	if !ok {
		return nil, badParam("a group specification must include an _id")
	}
	if err := checkExpr(idSpec, 0); err != nil {
		return nil, err
	}
	type accSpec struct {
		name, op string
		arg      any
	}
	var accs []accSpec
	for _, e := range spec {
		if e.Key == "_id" {
			continue
		}
		if strings.Contains(e.Key, ".") || strings.HasPrefix(e.Key, "$") {
			return nil, badParam("the group field name %q cannot contain '.' or start with '$'", e.Key)
		}
		d, ok := e.Value.(bson.D)
		if !ok || len(d) != 1 || newAccumulator(d[0].Key) == nil {
			return nil, badParam("the field %q must be an accumulator object ($sum, $avg, $min, $max, $first, $last, $push, $addToSet, ...)", e.Key)
		}
		if err := checkExpr(d[0].Value, 0); err != nil {
			return nil, err
		}
		accs = append(accs, accSpec{name: e.Key, op: d[0].Key, arg: d[0].Value})
	}
	type group struct {
		id   any
		accs []accumulator
	}
	var groups []*group
	index := map[string][]*group{}
	for _, d := range docs {
		c := p.ctx(d, vars)
		id, err := evalExpr(idSpec, c)
		if err != nil {
			return nil, err
		}
		if isMissing(id) {
			id = nil
		}
		key := groupKey(id)
		var g *group
		for _, cand := range index[key] {
			if equalValues(cand.id, id) {
				g = cand
				break
			}
		}
		if g == nil {
			g = &group{id: id}
			for _, a := range accs {
				g.accs = append(g.accs, newAccumulator(a.op))
			}
			groups = append(groups, g)
			index[key] = append(index[key], g)
		}
		for i, a := range accs {
			v, err := evalExpr(a.arg, c)
			if err != nil {
				return nil, err
			}
			g.accs[i].add(v)
		}
	}
	out := make([]bson.D, 0, len(groups))
	for _, g := range groups {
		d := bson.D{{Key: "_id", Value: g.id}}
		for i, a := range accs {
			d = append(d, bson.E{Key: a.name, Value: g.accs[i].result()})
		}
		out = append(out, d)
	}
	return out, nil
}

// groupKey buckets group ids cheaply; equalValues decides within a bucket (1 and 1.0 group together).
func groupKey(v any) string {
	switch x := v.(type) {
	case string:
		return "s" + x
	case nil:
		return "z"
	case bool:
		if x {
			return "t"
		}
		return "f"
	}
	if f, ok := toFloat(v); ok {
		return "n" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, false, false)
	if err != nil {
		return typeName(v)
	}
	return string(b)
}

func (p *pipeline) unwind(docs []bson.D, arg any) ([]bson.D, error) {
	var path, indexField string
	preserve := false
	switch a := arg.(type) {
	case string:
		path = a
	case bson.D:
		pv, _ := lookupField(a, "path")
		path, _ = pv.(string)
		if v, ok := lookupField(a, "includeArrayIndex"); ok {
			indexField, _ = v.(string)
		}
		if v, ok := lookupField(a, "preserveNullAndEmptyArrays"); ok {
			preserve = truthy(v)
		}
	}
	if !strings.HasPrefix(path, "$") || len(path) < 2 {
		return nil, badParam("$unwind path must be a field path prefixed by '$'")
	}
	segs := splitPath(path[1:])
	var out []bson.D
	for _, d := range docs {
		v, ok := getPath(d, segs)
		arr, isArr := v.(bson.A)
		if !ok || nullish(v) || (isArr && len(arr) == 0) {
			if preserve {
				nd := cloneDoc(d)
				if isArr {
					// An empty array leaves the document without the field, as MongoDB does.
					x, _ := modifyPath(nd, segs, path[1:], false, func(any, bool) (any, bool, error) { return nil, true, nil })
					nd = x.(bson.D)
				}
				if indexField != "" {
					x, _ := modifyPath(nd, []string{indexField}, indexField, true, func(any, bool) (any, bool, error) { return nil, false, nil })
					nd = x.(bson.D)
				}
				out = append(out, nd)
			}
			continue
		}
		if !isArr {
			nd := cloneDoc(d)
			if indexField != "" {
				x, _ := modifyPath(nd, []string{indexField}, indexField, true, func(any, bool) (any, bool, error) { return nil, false, nil })
				nd = x.(bson.D)
			}
			out = append(out, nd)
			continue
		}
		for i, e := range arr {
			x, err := modifyPath(cloneDoc(d), segs, path[1:], true, func(any, bool) (any, bool, error) { return e, false, nil })
			if err != nil {
				return nil, err
			}
			if indexField != "" {
				x, _ = modifyPath(x, []string{indexField}, indexField, true, func(any, bool) (any, bool, error) { return int64(i), false, nil })
			}
			out = append(out, x.(bson.D))
			if len(out) > maxPipelineDocs {
				return nil, errf(CodeRequestFailed, "$unwind produced more than %d documents", maxPipelineDocs)
			}
		}
	}
	return out, nil
}

func (p *pipeline) lookup(docs []bson.D, arg any, vars map[string]any) ([]bson.D, error) {
	d, ok := arg.(bson.D)
	if !ok {
		return nil, badParam("$lookup needs an object")
	}
	fromV, _ := lookupField(d, "from")
	from, _ := fromV.(string)
	asV, _ := lookupField(d, "as")
	as, _ := asV.(string)
	if from == "" || as == "" {
		return nil, badParam("$lookup needs 'from' and 'as'")
	}
	if p.depth > 8 {
		return nil, badParam("$lookup nested too deeply")
	}
	foreign, err := p.load(from)
	if err != nil {
		return nil, err
	}
	out := make([]bson.D, 0, len(docs))
	if pl, ok := lookupField(d, "pipeline"); ok {
		stages, err := parseStages(pl)
		if err != nil {
			return nil, err
		}
		letV, _ := lookupField(d, "let")
		let, _ := letV.(bson.D)
		for _, doc := range docs {
			lv := map[string]any{}
			for k, v := range vars {
				lv[k] = v
			}
			for _, e := range let {
				v, err := evalExpr(e.Value, p.ctx(doc, vars))
				if err != nil {
					return nil, err
				}
				if isMissing(v) {
					v = nil
				}
				lv[e.Key] = v
			}
			sp := &pipeline{cancel: p.cancel, stages: stages, load: p.load, now: p.now, depth: p.depth + 1}
			res, err := sp.run(foreign, lv)
			if err != nil {
				return nil, err
			}
			arr := make(bson.A, len(res))
			for i, r := range res {
				arr[i] = r
			}
			out = append(out, setField(doc, as, arr))
		}
		return out, nil
	}
	lf, _ := lookupField(d, "localField")
	ff, _ := lookupField(d, "foreignField")
	local, _ := lf.(string)
	foreignField, _ := ff.(string)
	if local == "" || foreignField == "" {
		return nil, badParam("$lookup needs localField and foreignField, or a pipeline")
	}
	for _, doc := range docs {
		var lvals []any
		missing := false
		walkPath(doc, splitPath(local), &lvals, &missing)
		var keys []any
		for _, v := range lvals {
			if a, ok := v.(bson.A); ok {
				keys = append(keys, a...)
			} else {
				keys = append(keys, v)
			}
		}
		if len(keys) == 0 {
			keys = []any{nil}
		}
		arr := bson.A{}
		for _, f := range foreign {
			for _, k := range keys {
				if eqPred(splitPath(foreignField), k)(f) {
					arr = append(arr, f)
					break
				}
			}
		}
		out = append(out, setField(doc, as, arr))
	}
	return out, nil
}

func setField(d bson.D, path string, v any) bson.D {
	x, err := modifyPath(cloneDoc(d), splitPath(path), path, true, func(any, bool) (any, bool, error) { return v, false, nil })
	if err != nil {
		return d
	}
	return x.(bson.D)
}

func (p *pipeline) bucket(docs []bson.D, arg any, vars map[string]any) ([]bson.D, error) {
	d, ok := arg.(bson.D)
	if !ok {
		return nil, badParam("$bucket needs an object")
	}
	groupBy, _ := lookupField(d, "groupBy")
	bv, _ := lookupField(d, "boundaries")
	bounds, ok := bv.(bson.A)
	if !ok || len(bounds) < 2 {
		return nil, badParam("$bucket needs at least 2 boundaries")
	}
	for i := 1; i < len(bounds); i++ {
		if typeRank(bounds[i]) != typeRank(bounds[0]) || compareValues(bounds[i-1], bounds[i]) >= 0 {
			return nil, badParam("$bucket boundaries must be of one type and ascending")
		}
	}
	def, hasDef := lookupField(d, "default")
	outSpec := bson.D{{Key: "count", Value: bson.D{{Key: "$sum", Value: int32(1)}}}}
	if o, ok := lookupField(d, "output"); ok {
		od, ok := o.(bson.D)
		if !ok {
			return nil, badParam("$bucket output must be an object")
		}
		outSpec = od
	}
	// Turn the bucket into a $group with a computed _id.
	branches := bson.A{}
	for i := 0; i+1 < len(bounds); i++ {
		branches = append(branches, bson.D{{Key: "case", Value: bson.D{{Key: "$and", Value: bson.A{
			bson.D{{Key: "$gte", Value: bson.A{groupBy, bson.D{{Key: "$literal", Value: bounds[i]}}}}},
			bson.D{{Key: "$lt", Value: bson.A{groupBy, bson.D{{Key: "$literal", Value: bounds[i+1]}}}}},
		}}}}, {Key: "then", Value: bson.D{{Key: "$literal", Value: bounds[i]}}}})
	}
	sw := bson.D{{Key: "branches", Value: branches}}
	if hasDef {
		sw = append(sw, bson.E{Key: "default", Value: bson.D{{Key: "$literal", Value: def}}})
	}
	spec := append(bson.D{{Key: "_id", Value: bson.D{{Key: "$switch", Value: sw}}}}, outSpec...)
	grouped, err := p.group(docs, spec, vars)
	if err != nil {
		if !hasDef {
			return nil, badParam("$bucket could not find a matching branch for an input, and no default was specified")
		}
		return nil, err
	}
	sort.SliceStable(grouped, func(i, j int) bool {
		a, _ := lookupField(grouped[i], "_id")
		b, _ := lookupField(grouped[j], "_id")
		if hasDef && equalValues(a, def) {
			return false
		}
		if hasDef && equalValues(b, def) {
			return true
		}
		return compareValues(a, b) < 0
	})
	return grouped, nil
}

func (p *pipeline) bucketAuto(docs []bson.D, arg any, vars map[string]any) ([]bson.D, error) {
	d, ok := arg.(bson.D)
	if !ok {
		return nil, badParam("$bucketAuto needs an object")
	}
	groupBy, _ := lookupField(d, "groupBy")
	bv, _ := lookupField(d, "buckets")
	nb, ok := toFloat(bv)
	if !ok || nb < 1 {
		return nil, badParam("$bucketAuto needs a positive number of buckets")
	}
	type kv struct {
		k any
		d bson.D
	}
	var items []kv
	for _, doc := range docs {
		v, err := evalExpr(groupBy, p.ctx(doc, vars))
		if err != nil {
			return nil, err
		}
		if isMissing(v) {
			v = nil
		}
		items = append(items, kv{v, doc})
	}
	sort.SliceStable(items, func(i, j int) bool { return compareValues(items[i].k, items[j].k) < 0 })
	per := int(math.Ceil(float64(len(items)) / nb))
	var out []bson.D
	for i := 0; i < len(items); i += per {
		j := i + per
		if j > len(items) {
			j = len(items)
		}
		for j < len(items) && equalValues(items[j].k, items[j-1].k) {
			j++
		}
		maxV := items[j-1].k
		if j < len(items) {
			maxV = items[j].k
		}
		out = append(out, bson.D{{Key: "_id", Value: bson.D{{Key: "min", Value: items[i].k}, {Key: "max", Value: maxV}}}, {Key: "count", Value: int32(j - i)}})
		i = j - per
	}
	return out, nil
}

func (p *pipeline) geoNear(docs []bson.D, arg any) ([]bson.D, error) {
	d, ok := arg.(bson.D)
	if !ok {
		return nil, badParam("$geoNear needs an object")
	}
	nearV, _ := lookupField(d, "near")
	lng, lat, ok := pointOf(nearV)
	if !ok {
		return nil, badParam("$geoNear needs 'near' as a Point")
	}
	dfV, _ := lookupField(d, "distanceField")
	distField, _ := dfV.(string)
	if distField == "" {
		return nil, badParam("$geoNear needs 'distanceField'")
	}
	maxD, minD := math.Inf(1), 0.0
	if v, ok := lookupField(d, "maxDistance"); ok {
		maxD, _ = toFloat(v)
	}
	if v, ok := lookupField(d, "minDistance"); ok {
		minD, _ = toFloat(v)
	}
	mult := 1.0
	if v, ok := lookupField(d, "distanceMultiplier"); ok {
		mult, _ = toFloat(v)
	}
	keyV, _ := lookupField(d, "key")
	key, _ := keyV.(string)
	includeLocs := ""
	if v, ok := lookupField(d, "includeLocs"); ok {
		includeLocs, _ = v.(string)
	}
	var filter *Filter
	if q, ok := lookupField(d, "query"); ok {
		qd, ok := q.(bson.D)
		if !ok {
			return nil, badParam("$geoNear query must be an object")
		}
		var err error
		if filter, err = CompileFilter(qd); err != nil {
			return nil, err
		}
	}
	type hit struct {
		d    bson.D
		dist float64
		loc  any
	}
	var hits []hit
	for _, doc := range docs {
		if filter != nil && !filter.Match(doc) {
			continue
		}
		var loc any
		if key != "" {
			loc, _ = getPath(doc, splitPath(key))
		} else {
			loc = firstPoint(doc)
		}
		x, y, ok := pointOf(loc)
		if !ok {
			continue
		}
		dist := haversine(lng, lat, x, y)
		if dist > maxD || dist < minD {
			continue
		}
		hits = append(hits, hit{doc, dist, loc})
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].dist < hits[j].dist })
	out := make([]bson.D, 0, len(hits))
	for _, h := range hits {
		nd := setField(h.d, distField, h.dist*mult)
		if includeLocs != "" {
			nd = setField(nd, includeLocs, h.loc)
		}
		out = append(out, nd)
	}
	return out, nil
}

func firstPoint(d bson.D) any {
	for _, e := range d {
		if _, _, ok := pointOf(e.Value); ok {
			if _, isDoc := e.Value.(bson.D); isDoc {
				return e.Value
			}
		}
	}
	return nil
}
