package wxdb

import (
	"math"
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Filter is a compiled query: Match reports whether a document (or, inside $elemMatch, an
// array element) satisfies it.
type Filter struct {
	match func(v any) bool
	near  *nearSpec // a $nearSphere on a top-level field orders results by distance
	spec  bson.D
}

// Match reports whether doc satisfies the filter.
func (f *Filter) Match(doc bson.D) bool { return f.match(doc) }

type nearSpec struct {
	path     []string
	lng, lat float64
}

// maxFilterDepth bounds how deeply $and/$or/$elemMatch may nest.
const maxFilterDepth = 64

// CompileFilter checks and compiles a query document.
func CompileFilter(spec bson.D) (*Filter, error) {
	c := &compiler{}
	m, err := c.doc(spec, 0)
	if err != nil {
		return nil, err
	}
	return &Filter{match: m, near: c.near, spec: spec}, nil
}

type compiler struct{ near *nearSpec }

func isOperatorDoc(v any) (bson.D, bool) {
	d, ok := v.(bson.D)
	if !ok || len(d) == 0 || !strings.HasPrefix(d[0].Key, "$") {
		return nil, false
	}
	return d, true
}

func (c *compiler) doc(spec bson.D, depth int) (func(any) bool, error) {
	if depth > maxFilterDepth {
		return nil, badParam("query nested deeper than %d levels", maxFilterDepth)
	}
	var preds []func(any) bool
	for _, e := range spec {
		switch e.Key {
		case "$and", "$or", "$nor":
			arr, ok := e.Value.(bson.A)
			if !ok || len(arr) == 0 {
				return nil, badParam("%s needs a non-empty array of queries", e.Key)
			}
			subs := make([]func(any) bool, len(arr))
			for i, s := range arr {
				sd, ok := s.(bson.D)
				if !ok {
					return nil, badParam("%s[%d] is not a query object", e.Key, i)
				}
				m, err := c.doc(sd, depth+1)
				if err != nil {
					return nil, err
				}
				subs[i] = m
			}
			switch e.Key {
			case "$and":
				preds = append(preds, func(v any) bool {
					for _, s := range subs {
						if !s(v) {
							return false
						}
					}
					return true
				})
			case "$or":
				preds = append(preds, func(v any) bool {
					for _, s := range subs {
						if s(v) {
							return true
						}
					}
					return false
				})
			default:
				preds = append(preds, func(v any) bool {
					for _, s := range subs {
						if s(v) {
							return false
						}
					}
					return true
				})
			}
		case "$expr":
			ex, err := compileExpr(e.Value, 0)
			if err != nil {
				return nil, err
			}
			preds = append(preds, func(v any) bool {
				d, _ := v.(bson.D)
				r, err := ex.eval(&exprCtx{root: d})
				return err == nil && truthy(r)
			})
		case "$comment":
		default:
			if strings.HasPrefix(e.Key, "$") {
				return nil, badCommand("unknown top level operator: %s", e.Key)
			}
			if err := checkQueryPath(e.Key); err != nil {
				return nil, err
			}
			m, err := c.field(splitPath(e.Key), e.Value, depth)
			if err != nil {
				return nil, err
			}
			preds = append(preds, m)
		}
	}
	return func(v any) bool {
		for _, p := range preds {
			if !p(v) {
				return false
			}
		}
		return true
	}, nil
}

func checkQueryPath(p string) error {
	if p == "" {
		return badParam("empty field path in query")
	}
	if strings.Count(p, ".") >= maxDepth {
		return badParam("field path %.40q... has more than %d segments", p, maxDepth)
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return badParam("field path %q has an empty segment", p)
		}
		if strings.HasPrefix(seg, "$") {
			return badParam("field path %q: a segment may not start with '$'", p)
		}
	}
	return nil
}

// valuePred tests one value found at a path.
type valuePred func(v any) bool

// field compiles the condition on one path: an operator object or an equality.
func (c *compiler) field(path []string, cond any, depth int) (func(any) bool, error) {
	ops, isOps := isOperatorDoc(cond)
	if !isOps {
		return c.fieldPred(path, "$eq", cond, nil, depth)
	}
	var preds []func(any) bool
	for _, op := range ops {
		if !strings.HasPrefix(op.Key, "$") {
			return nil, badCommand("unknown operator %q mixed with operators on %s", op.Key, strings.Join(path, "."))
		}
		if op.Key == "$options" {
			continue
		}
		m, err := c.fieldPred(path, op.Key, op.Value, ops, depth)
		if err != nil {
			return nil, err
		}
		preds = append(preds, m)
	}
	return func(v any) bool {
		for _, p := range preds {
			if !p(v) {
				return false
			}
		}
		return true
	}, nil
}

// anyValue applies p to each value at path, and to each element of a value that is an array.
func anyValue(path []string, p valuePred) func(any) bool {
	return func(doc any) bool {
		var vals []any
		missing := false
		walkPath(doc, path, &vals, &missing)
		for _, v := range vals {
			if p(v) {
				return true
			}
			if a, ok := v.(bson.A); ok {
				for _, e := range a {
					if p(e) {
						return true
					}
				}
			}
		}
		return false
	}
}

func isNullish(v any) bool {
	switch v.(type) {
	case nil, bson.Null, bson.Undefined:
		return true
	}
	return false
}

func (c *compiler) fieldPred(path []string, op string, arg any, ops bson.D, depth int) (func(any) bool, error) {
	name := strings.Join(path, ".")
	switch op {
	case "$eq":
		return eqPred(path, arg), nil
	case "$ne":
		m := eqPred(path, arg)
		return func(v any) bool { return !m(v) }, nil
	case "$gt", "$gte", "$lt", "$lte":
		if _, ok := arg.(bson.Regex); ok {
			return nil, badParam("%s cannot take a regular expression on %s", op, name)
		}
		p := rangePred(op, arg)
		base := anyValue(path, p)
		if isNullish(arg) && (op == "$gte" || op == "$lte") {
			return func(v any) bool {
				var vals []any
				missing := false
				walkPath(v, path, &vals, &missing)
				return missing || base(v)
			}, nil
		}
		return base, nil
	case "$in", "$nin":
		arr, ok := arg.(bson.A)
		if !ok {
			return nil, badParam("%s on %s needs an array", op, name)
		}
		eqs := make([]func(any) bool, len(arr))
		for i, a := range arr {
			if _, isOp := isOperatorDoc(a); isOp {
				return nil, badParam("%s on %s cannot contain an operator", op, name)
			}
			eqs[i] = eqPred(path, a)
		}
		in := func(v any) bool {
			for _, e := range eqs {
				if e(v) {
					return true
				}
			}
			return false
		}
		if op == "$nin" {
			return func(v any) bool { return !in(v) }, nil
		}
		return in, nil
	case "$exists":
		want := truthy(arg)
		return func(v any) bool {
			var vals []any
			missing := false
			walkPath(v, path, &vals, &missing)
			return (len(vals) > 0) == want
		}, nil
	case "$size":
		n, ok := toFloat(arg)
		if !ok || n != math.Trunc(n) || n < 0 {
			return nil, badParam("$size on %s needs a non-negative integer", name)
		}
		return func(v any) bool {
			var vals []any
			missing := false
			walkPath(v, path, &vals, &missing)
			for _, x := range vals {
				if a, ok := x.(bson.A); ok && len(a) == int(n) {
					return true
				}
			}
			return false
		}, nil
	case "$mod":
		arr, ok := arg.(bson.A)
		if !ok || len(arr) != 2 {
			return nil, badParam("$mod on %s needs [divisor, remainder]", name)
		}
		d, ok1 := toFloat(arr[0])
		r, ok2 := toFloat(arr[1])
		if !ok1 || !ok2 {
			return nil, badParam("$mod on %s needs numbers", name)
		}
		d, r = math.Trunc(d), math.Trunc(r)
		if d == 0 {
			return nil, badParam("$mod on %s: divisor cannot be 0", name)
		}
		return anyValue(path, func(v any) bool {
			f, ok := toFloat(v)
			if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
				return false
			}
			return math.Mod(math.Trunc(f), d) == r
		}), nil
	case "$all":
		arr, ok := arg.(bson.A)
		if !ok {
			return nil, badParam("$all on %s needs an array", name)
		}
		if len(arr) == 0 {
			return func(any) bool { return false }, nil
		}
		subs := make([]func(any) bool, len(arr))
		for i, a := range arr {
			if em, ok := a.(bson.D); ok && len(em) == 1 && em[0].Key == "$elemMatch" {
				m, err := c.fieldPred(path, "$elemMatch", em[0].Value, nil, depth+1)
				if err != nil {
					return nil, err
				}
				subs[i] = m
				continue
			}
			subs[i] = eqPred(path, a)
		}
		return func(v any) bool {
			for _, s := range subs {
				if !s(v) {
					return false
				}
			}
			return true
		}, nil
	case "$elemMatch":
		sub, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("$elemMatch on %s needs an object", name)
		}
		var elem func(any) bool
		if opsDoc, isOps := isOperatorDoc(sub); isOps && !strings.HasPrefix(opsDoc[0].Key, "$and") && opsDoc[0].Key != "$or" && opsDoc[0].Key != "$nor" && opsDoc[0].Key != "$expr" {
			m, err := c.field(nil, sub, depth+1)
			if err != nil {
				return nil, err
			}
			elem = func(e any) bool { return m(e) }
		} else {
			m, err := c.doc(sub, depth+1)
			if err != nil {
				return nil, err
			}
			elem = func(e any) bool {
				if _, ok := e.(bson.D); !ok {
					return false
				}
				return m(e)
			}
		}
		return func(v any) bool {
			var vals []any
			missing := false
			walkPath(v, path, &vals, &missing)
			for _, x := range vals {
				if a, ok := x.(bson.A); ok {
					for _, e := range a {
						if elem(e) {
							return true
						}
					}
				}
			}
			return false
		}, nil
	case "$not":
		var m func(any) bool
		var err error
		switch a := arg.(type) {
		case bson.Regex:
			m, err = c.fieldPred(path, "$regex", a, nil, depth+1)
		case bson.D:
			if _, isOps := isOperatorDoc(a); !isOps {
				return nil, badParam("$not on %s needs an operator object or a regular expression", name)
			}
			m, err = c.field(path, a, depth+1)
		default:
			return nil, badParam("$not on %s needs an operator object or a regular expression", name)
		}
		if err != nil {
			return nil, err
		}
		return func(v any) bool { return !m(v) }, nil
	case "$regex":
		var pattern, options string
		switch a := arg.(type) {
		case bson.Regex:
			pattern, options = a.Pattern, a.Options
		case string:
			pattern = a
		default:
			return nil, badParam("$regex on %s needs a string", name)
		}
		if o, ok := lookupField(ops, "$options"); ok {
			s, ok := o.(string)
			if !ok {
				return nil, badParam("$options on %s needs a string", name)
			}
			options = s
		}
		re, err := compileRegex(pattern, options)
		if err != nil {
			return nil, err
		}
		return anyValue(path, regexPred(re)), nil
	case "$type":
		var wants []any
		if a, ok := arg.(bson.A); ok {
			wants = a
		} else {
			wants = []any{arg}
		}
		names := map[string]bool{}
		for _, w := range wants {
			switch x := w.(type) {
			case string:
				names[x] = true
			default:
				n, ok := toFloat(w)
				if !ok {
					return nil, badParam("$type on %s needs a type name or number", name)
				}
				names[bsonTypeNumberName(int(n))] = true
			}
		}
		return func(v any) bool {
			var vals []any
			missing := false
			walkPath(v, path, &vals, &missing)
			for _, x := range vals {
				t := typeName(x)
				if names[t] || (names["number"] && isNumber(x)) {
					return true
				}
				if a, ok := x.(bson.A); ok {
					for _, e := range a {
						if names[typeName(e)] || (names["number"] && isNumber(e)) {
							return true
						}
					}
				}
			}
			return false
		}, nil
	case "$nearSphere", "$near":
		ns, maxD, minD, err := parseNear(arg, name)
		if err != nil {
			return nil, err
		}
		ns.path = path
		if c.near == nil && depth == 0 {
			c.near = ns
		}
		return anyValue(path, func(v any) bool {
			lng, lat, ok := pointOf(v)
			if !ok {
				return false
			}
			d := haversine(ns.lng, ns.lat, lng, lat)
			return d <= maxD && d >= minD
		}), nil
	case "$geoWithin":
		within, err := parseGeoWithin(arg, name)
		if err != nil {
			return nil, err
		}
		return anyValue(path, within), nil
	case "$geoIntersects":
		inter, err := parseGeoIntersects(arg, name)
		if err != nil {
			return nil, err
		}
		return anyValue(path, inter), nil
	case "$where", "$text", "$jsonSchema", "$function":
		return nil, badCommand("%s is not supported", op)
	}
	return nil, badCommand("unknown operator: %s", op)
}

func bsonTypeNumberName(n int) string {
	return map[int]string{1: "double", 2: "string", 3: "object", 4: "array", 5: "binData", 6: "undefined", 7: "objectId", 8: "bool",
		9: "date", 10: "null", 11: "regex", 16: "int", 17: "timestamp", 18: "long", 19: "decimal", -1: "minKey", 127: "maxKey"}[n]
}

// eqPred is MongoDB's equality on a path: null matches missing, a regex matches strings, and
// an array field matches when it equals the value or contains it.
func eqPred(path []string, want any) func(any) bool {
	if re, ok := want.(bson.Regex); ok {
		r, err := compileRegex(re.Pattern, re.Options)
		if err == nil {
			return anyValue(path, func(v any) bool {
				if x, ok := v.(bson.Regex); ok {
					return x == re
				}
				return regexPred(r)(v)
			})
		}
	}
	base := anyValue(path, func(v any) bool { return equalValues(v, want) })
	if isNullish(want) {
		return func(doc any) bool {
			var vals []any
			missing := false
			walkPath(doc, path, &vals, &missing)
			if missing || len(vals) == 0 {
				return true
			}
			return base(doc)
		}
	}
	return base
}

func rangePred(op string, arg any) valuePred {
	return func(v any) bool {
		// Type bracketing: only values of the same kind compare (MinKey/MaxKey aside).
		if typeRank(v) != typeRank(arg) {
			return false
		}
		c := compareValues(v, arg)
		if isNumber(v) {
			if f, _ := toFloat(v); math.IsNaN(f) {
				g, _ := toFloat(arg)
				return math.IsNaN(g) && (op == "$gte" || op == "$lte")
			}
		}
		switch op {
		case "$gt":
			return c > 0
		case "$gte":
			return c >= 0
		case "$lt":
			return c < 0
		}
		return c <= 0
	}
}

func regexPred(re *regexp.Regexp) valuePred {
	return func(v any) bool {
		s, ok := v.(string)
		if !ok {
			if sy, ok := v.(bson.Symbol); ok {
				s = string(sy)
			} else {
				return false
			}
		}
		return re.MatchString(s)
	}
}

// maxRegexLen bounds a client's pattern (Go's RE2 is linear-time, so length is the only risk).
const maxRegexLen = 32 << 10

func compileRegex(pattern, options string) (*regexp.Regexp, error) {
	if len(pattern) > maxRegexLen {
		return nil, badParam("regular expression longer than %d bytes", maxRegexLen)
	}
	flags := ""
	for _, o := range options {
		switch o {
		case 'i', 'm', 's':
			if !strings.ContainsRune(flags, o) {
				flags += string(o)
			}
		case 'x':
			pattern = stripExtended(pattern)
		case 'u', 'g':
		default:
			return nil, badParam("invalid regular expression option %q", string(o))
		}
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, badParam("invalid regular expression %q: %v", pattern, err)
	}
	return re, nil
}

// stripExtended drops the unescaped whitespace and # comments of PCRE's x option.
func stripExtended(p string) string {
	var b strings.Builder
	inClass, comment := false, false
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if comment {
			if ch == '\n' {
				comment = false
			}
			continue
		}
		switch {
		case ch == '\\' && i+1 < len(p):
			b.WriteByte(ch)
			i++
			b.WriteByte(p[i])
			continue
		case ch == '[':
			inClass = true
		case ch == ']':
			inClass = false
		case !inClass && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'):
			continue
		case !inClass && ch == '#':
			comment = true
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}
