package wxdb

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Update is a compiled update document ({$set: {...}, $inc: {...}, ...}).
type Update struct {
	ops []updateOp
	// positional is set when a path uses "$": the first array element the query matched.
	positional bool
}

type updateOp struct {
	op   string
	path []string
	arg  any
	pull func(any) bool // $pull's element test
}

var updateOperators = map[string]bool{"$set": true, "$unset": true, "$inc": true, "$mul": true, "$min": true, "$max": true,
	"$rename": true, "$push": true, "$pop": true, "$addToSet": true, "$pull": true, "$pullAll": true, "$currentDate": true, "$setOnInsert": true, "$bit": true}

// CompileUpdate checks an update document: known operators, valid paths, no two operators on
// overlapping paths, no _id change.
func CompileUpdate(spec bson.D) (*Update, error) {
	u := &Update{}
	if len(spec) == 0 {
		return nil, badParam("the update is empty")
	}
	var paths []string
	for _, e := range spec {
		if !strings.HasPrefix(e.Key, "$") {
			return nil, badParam("update field %q is not an update operator (merge updates take $set, $inc, ...)", e.Key)
		}
		if !updateOperators[e.Key] {
			return nil, badCommand("unknown update operator: %s", e.Key)
		}
		fields, ok := e.Value.(bson.D)
		if !ok {
			return nil, badParam("%s needs an object of fields", e.Key)
		}
		for _, f := range fields {
			if err := checkUpdatePath(f.Key); err != nil {
				return nil, err
			}
			if f.Key == "_id" || strings.HasPrefix(f.Key, "_id.") {
				return nil, badParam("不能更新_id的值 (the _id of a document cannot be changed)")
			}
			op := updateOp{op: e.Key, path: splitPath(f.Key), arg: f.Value}
			if strings.Contains(f.Key, ".$.") || strings.HasSuffix(f.Key, ".$") {
				u.positional = true
			}
			paths = append(paths, f.Key)
			switch e.Key {
			case "$inc", "$mul":
				if !isNumber(f.Value) {
					return nil, badParam("%s on %s needs a number", e.Key, f.Key)
				}
			case "$rename":
				to, ok := f.Value.(string)
				if !ok {
					return nil, badParam("$rename on %s needs the new field name as a string", f.Key)
				}
				if err := checkUpdatePath(to); err != nil {
					return nil, err
				}
				if to == f.Key || strings.Contains(to, "$") || strings.Contains(f.Key, "$") {
					return nil, badParam("$rename from %s to %s is not allowed", f.Key, to)
				}
				paths = append(paths, to)
			case "$pop":
				n, ok := toFloat(f.Value)
				if !ok || (n != 1 && n != -1) {
					return nil, badParam("$pop on %s needs 1 or -1", f.Key)
				}
			case "$bit":
				d, ok := f.Value.(bson.D)
				if !ok || len(d) != 1 || (d[0].Key != "and" && d[0].Key != "or" && d[0].Key != "xor") {
					return nil, badParam("$bit on %s needs {and|or|xor: <integer>}", f.Key)
				}
				if _, ok := toInt64(d[0].Value); !ok {
					return nil, badParam("$bit on %s needs an integer operand", f.Key)
				}
			case "$pullAll":
				if _, ok := f.Value.(bson.A); !ok {
					return nil, badParam("$pullAll on %s needs an array", f.Key)
				}
			case "$push", "$addToSet":
				if d, ok := f.Value.(bson.D); ok && len(d) > 0 && (d[0].Key == "$each" || (e.Key == "$addToSet" && len(d) == 1 && d[0].Key == "each")) {
					if err := checkEach(e.Key, f.Key, d); err != nil {
						return nil, err
					}
				}
			case "$pull":
				p, err := pullPredicate(f.Value)
				if err != nil {
					return nil, err
				}
				op.pull = p
			}
			u.ops = append(u.ops, op)
		}
	}
	sort.Strings(paths)
	for i := 1; i < len(paths); i++ {
		if paths[i] == paths[i-1] || strings.HasPrefix(paths[i], paths[i-1]+".") {
			return nil, badParam("Updating the path '%s' would create a conflict at '%s'", paths[i], paths[i-1])
		}
	}
	return u, nil
}

func checkEach(op, field string, d bson.D) error {
	for _, m := range d {
		switch m.Key {
		case "$each", "each":
			if _, ok := m.Value.(bson.A); !ok {
				return badParam("%s on %s: $each needs an array", op, field)
			}
		case "$position", "$slice":
			if op != "$push" {
				return badParam("%s on %s: %s is not allowed", op, field, m.Key)
			}
			if _, ok := toInt64(m.Value); !ok {
				f, isNum := toFloat(m.Value)
				if !isNum || f != math.Trunc(f) {
					return badParam("%s on %s: %s needs an integer", op, field, m.Key)
				}
			}
		case "$sort":
			if op != "$push" {
				return badParam("%s on %s: $sort is not allowed", op, field)
			}
		default:
			return badParam("%s on %s: unknown modifier %s", op, field, m.Key)
		}
	}
	return nil
}

func checkUpdatePath(p string) error {
	if p == "" {
		return badParam("empty field path in update")
	}
	segs := strings.Split(p, ".")
	if len(segs) > maxDepth {
		return badParam("field path %.40q... has more than %d segments", p, maxDepth)
	}
	for i, seg := range segs {
		if seg == "" {
			return badParam("field path %q has an empty segment", p)
		}
		if strings.HasPrefix(seg, "$") && !(i > 0 && (seg == "$" || seg == "$[]")) {
			return badParam("field path %q: a segment may not start with '$'", p)
		}
	}
	return nil
}

func pullPredicate(arg any) (func(any) bool, error) {
	if d, ok := arg.(bson.D); ok {
		if _, isOps := isOperatorDoc(d); isOps {
			c := &compiler{}
			m, err := c.field(nil, d, 1)
			if err != nil {
				return nil, err
			}
			return func(e any) bool { return m(e) }, nil
		}
		c := &compiler{}
		m, err := c.doc(d, 1)
		if err != nil {
			return nil, err
		}
		return func(e any) bool {
			if _, ok := e.(bson.D); ok {
				return m(e)
			}
			return false
		}, nil
	}
	if re, ok := arg.(bson.Regex); ok {
		r, err := compileRegex(re.Pattern, re.Options)
		if err != nil {
			return nil, err
		}
		return func(e any) bool { return regexPred(r)(e) }, nil
	}
	return func(e any) bool { return equalValues(e, arg) }, nil
}

// Apply returns the updated copy of doc. pos is the array index a "$" path segment stands
// for (-1 when the query matched none).
func (u *Update) Apply(doc bson.D, pos int, now time.Time) (bson.D, error) {
	var cur any = cloneDoc(doc)
	for _, op := range u.ops {
		path := op.path
		if u.positional {
			np := make([]string, len(path))
			for i, s := range path {
				if s == "$" {
					if pos < 0 {
						return nil, badParam("The positional operator did not find the match needed from the query (%s)", strings.Join(path, "."))
					}
					s = itoa(pos)
				}
				np[i] = s
			}
			path = np
		}
		var err error
		cur, err = applyOp(cur, op, path, now)
		if err != nil {
			return nil, err
		}
	}
	return cur.(bson.D), nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func applyOp(doc any, op updateOp, path []string, now time.Time) (any, error) {
	full := strings.Join(path, ".")
	switch op.op {
	case "$set", "$setOnInsert":
		val := resolveServerDates(cloneValue(op.arg), now)
		return modifyPath(doc, path, full, true, func(any, bool) (any, bool, error) { return val, false, nil })
	case "$unset":
		return modifyPath(doc, path, full, false, func(any, bool) (any, bool, error) { return nil, true, nil })
	case "$currentDate":
		return modifyPath(doc, path, full, true, func(any, bool) (any, bool, error) {
			if d, ok := op.arg.(bson.D); ok {
				if t, _ := lookupField(d, "$type"); t == "timestamp" {
					return bson.Timestamp{T: uint32(now.Unix())}, false, nil
				}
			}
			return bson.NewDateTimeFromTime(now), false, nil
		})
	case "$inc", "$mul":
		return modifyPath(doc, path, full, true, func(old any, exists bool) (any, bool, error) {
			if !exists || isNullish(old) && !exists {
				if op.op == "$mul" {
					return zeroLike(op.arg), false, nil
				}
				return op.arg, false, nil
			}
			if !isNumber(old) {
				return nil, false, badParam("Cannot apply %s to a value of non-numeric type (%s is %s)", op.op, full, typeName(old))
			}
			return arith(op.op, old, op.arg), false, nil
		})
	case "$min", "$max":
		val := resolveServerDates(cloneValue(op.arg), now)
		return modifyPath(doc, path, full, true, func(old any, exists bool) (any, bool, error) {
			if !exists {
				return val, false, nil
			}
			c := compareValues(val, old)
			if (op.op == "$min" && c < 0) || (op.op == "$max" && c > 0) {
				return val, false, nil
			}
			return old, false, nil
		})
	case "$rename":
		v, ok := getPath(doc, path)
		if !ok {
			return doc, nil
		}
		to := splitPath(op.arg.(string))
		var err error
		doc, err = modifyPath(doc, path, full, false, func(any, bool) (any, bool, error) { return nil, true, nil })
		if err != nil {
			return nil, err
		}
		return modifyPath(doc, to, op.arg.(string), true, func(any, bool) (any, bool, error) { return v, false, nil })
	case "$push", "$addToSet":
		return modifyPath(doc, path, full, true, func(old any, exists bool) (any, bool, error) {
			var arr bson.A
			if exists {
				a, ok := old.(bson.A)
				if !ok {
					return nil, false, badParam("The field '%s' must be an array but is of type %s", full, typeName(old))
				}
				arr = append(bson.A{}, a...)
			} else {
				arr = bson.A{}
			}
			return pushValues(op.op, arr, resolveServerDates(cloneValue(op.arg), now))
		})
	case "$bit":
		d := op.arg.(bson.D)
		operand := d[0].Value
		return modifyPath(doc, path, full, true, func(old any, exists bool) (any, bool, error) {
			if !exists {
				old = zeroLike(operand)
			}
			x, ok := toInt64(old)
			if !ok {
				return nil, false, badParam("Cannot apply $bit to a value of non-integral type (%s is %s)", full, typeName(old))
			}
			y, _ := toInt64(operand)
			var r int64
			switch d[0].Key {
			case "and":
				r = x & y
			case "or":
				r = x | y
			default:
				r = x ^ y
			}
			return narrow(r, old, operand), false, nil
		})
	case "$pop":
		return modifyPath(doc, path, full, false, func(old any, exists bool) (any, bool, error) {
			a, ok := old.(bson.A)
			if !ok {
				return nil, false, badParam("The field '%s' must be an array but is of type %s", full, typeName(old))
			}
			if len(a) == 0 {
				return a, false, nil
			}
			if n, _ := toFloat(op.arg); n < 0 {
				return append(bson.A{}, a[1:]...), false, nil
			}
			return append(bson.A{}, a[:len(a)-1]...), false, nil
		})
	case "$pull", "$pullAll":
		return modifyPath(doc, path, full, false, func(old any, exists bool) (any, bool, error) {
			a, ok := old.(bson.A)
			if !ok {
				return nil, false, badParam("Cannot apply %s to a non-array value (%s is %s)", op.op, full, typeName(old))
			}
			out := bson.A{}
			for _, e := range a {
				drop := false
				if op.op == "$pull" {
					drop = op.pull(e)
				} else {
					for _, x := range op.arg.(bson.A) {
						if equalValues(e, x) {
							drop = true
							break
						}
					}
				}
				if !drop {
					out = append(out, e)
				}
			}
			return out, false, nil
		})
	}
	return nil, badCommand("unknown update operator: %s", op.op)
}

func zeroLike(v any) any {
	switch v.(type) {
	case int32:
		return int32(0)
	case int64:
		return int64(0)
	}
	return 0.0
}

// arith adds or multiplies keeping MongoDB's result types: int32 widens to int64 on
// overflow, anything with a double gives a double.
func arith(op string, a, b any) any {
	if _, ok := a.(bson.Decimal128); ok {
		return arithFloat(op, a, b)
	}
	if _, ok := b.(bson.Decimal128); ok {
		return arithFloat(op, a, b)
	}
	x, okA := toInt64(a)
	y, okB := toInt64(b)
	if okA && okB {
		var r int64
		var overflow bool
		if op == "$inc" {
			r = x + y
			overflow = (y > 0 && r < x) || (y < 0 && r > x)
		} else {
			r = x * y
			overflow = x != 0 && (r/x != y || (x == -1 && y == math.MinInt64))
		}
		if overflow {
			return arithFloat(op, a, b)
		}
		_, a32 := a.(int32)
		_, b32 := b.(int32)
		if a32 && b32 && r >= math.MinInt32 && r <= math.MaxInt32 {
			return int32(r)
		}
		return r
	}
	return arithFloat(op, a, b)
}

func arithFloat(op string, a, b any) any {
	x, _ := toFloat(a)
	y, _ := toFloat(b)
	if op == "$inc" {
		return x + y
	}
	return x * y
}

func pushValues(op string, arr bson.A, arg any) (any, bool, error) {
	each := bson.A{arg}
	position, slice := -1, int64(math.MaxInt64)
	hasSlice := false
	var sortSpec any
	if d, ok := arg.(bson.D); ok && len(d) > 0 && (d[0].Key == "$each" || (op == "$addToSet" && len(d) == 1 && d[0].Key == "each")) {
		for _, m := range d {
			switch m.Key {
			case "$each", "each":
				each = m.Value.(bson.A)
			case "$position":
				f, _ := toFloat(m.Value)
				position = int(f)
				if position < 0 {
					position = len(arr) + position
					if position < 0 {
						position = 0
					}
				}
			case "$slice":
				f, _ := toFloat(m.Value)
				slice, hasSlice = int64(f), true
			case "$sort":
				sortSpec = m.Value
			}
		}
	}
	if op == "$addToSet" {
		for _, v := range each {
			found := false
			for _, e := range arr {
				if equalValues(e, v) {
					found = true
					break
				}
			}
			if !found {
				arr = append(arr, v)
			}
		}
		return arr, false, nil
	}
	if position < 0 || position > len(arr) {
		position = len(arr)
	}
	out := append(bson.A{}, arr[:position]...)
	out = append(out, each...)
	out = append(out, arr[position:]...)
	if sortSpec != nil {
		if err := sortArray(out, sortSpec); err != nil {
			return nil, false, err
		}
	}
	if hasSlice {
		n := int64(len(out))
		switch {
		case slice >= 0 && slice < n:
			out = out[:slice]
		case slice < 0 && -slice < n:
			out = out[n+slice:]
		}
	}
	return out, false, nil
}

func sortArray(arr bson.A, spec any) error {
	if d, ok := spec.(bson.D); ok {
		keys, err := parseSort(d)
		if err != nil {
			return err
		}
		sort.SliceStable(arr, func(i, j int) bool {
			a, _ := arr[i].(bson.D)
			b, _ := arr[j].(bson.D)
			return compareBySort(a, b, keys) < 0
		})
		return nil
	}
	dir, ok := toFloat(spec)
	if !ok || (dir != 1 && dir != -1) {
		return badParam("$sort in $push needs 1, -1 or an object")
	}
	sort.SliceStable(arr, func(i, j int) bool { return compareValues(arr[i], arr[j])*int(dir) < 0 })
	return nil
}

// modifyPath rewrites the value at path inside cur. f gets the old value and whether it
// existed, and returns the new value or del. With create, missing parents are made.
func modifyPath(cur any, path []string, full string, create bool, f func(old any, exists bool) (any, bool, error)) (any, error) {
	seg := path[0]
	switch c := cur.(type) {
	case bson.D:
		idx := -1
		for i, e := range c {
			if e.Key == seg {
				idx = i
				break
			}
		}
		if len(path) == 1 {
			var old any
			if idx >= 0 {
				old = c[idx].Value
			}
			nv, del, err := f(old, idx >= 0)
			if err != nil {
				return nil, err
			}
			if del {
				if idx >= 0 {
					return append(append(bson.D{}, c[:idx]...), c[idx+1:]...), nil
				}
				return c, nil
			}
			if idx >= 0 {
				c[idx].Value = nv
				return c, nil
			}
			return append(c, bson.E{Key: seg, Value: nv}), nil
		}
		if idx < 0 {
			if !create {
				return c, nil
			}
			child, err := modifyPath(bson.D{}, path[1:], full, create, f)
			if err != nil {
				return nil, err
			}
			return append(c, bson.E{Key: seg, Value: child}), nil
		}
		child, err := modifyPath(c[idx].Value, path[1:], full, create, f)
		if err != nil {
			return nil, err
		}
		c[idx].Value = child
		return c, nil
	case bson.A:
		if seg == "$[]" {
			for i := range c {
				if len(path) == 1 {
					nv, del, err := f(c[i], true)
					if err != nil {
						return nil, err
					}
					if del {
						nv = nil
					}
					c[i] = nv
					continue
				}
				child, err := modifyPath(c[i], path[1:], full, create, f)
				if err != nil {
					return nil, err
				}
				c[i] = child
			}
			return c, nil
		}
		i, ok := arrayIndex(seg)
		if !ok {
			if !create {
				return c, nil
			}
			return nil, badParam("Cannot create field '%s' in element {%s: [...]} (path %s)", seg, seg, full)
		}
		if i > 1<<20 {
			return nil, badParam("array index %d in %s is too large", i, full)
		}
		if i >= len(c) {
			if !create {
				return c, nil
			}
			for len(c) <= i {
				c = append(c, nil)
			}
			if len(path) > 1 {
				c[i] = bson.D{}
			}
		}
		if len(path) == 1 {
			nv, del, err := f(c[i], true)
			if err != nil {
				return nil, err
			}
			if del {
				nv = nil // $unset on an array element leaves null, as MongoDB does
			}
			c[i] = nv
			return c, nil
		}
		child, err := modifyPath(c[i], path[1:], full, create, f)
		if err != nil {
			return nil, err
		}
		c[i] = child
		return c, nil
	}
	if !create {
		return cur, nil
	}
	return nil, badParam("Cannot create field '%s' in element of type %s (path %s)", seg, typeName(cur), full)
}

// resolveServerDates replaces every {$tcb_server_date: {offset}} with the server's time plus
// the offset in milliseconds.
func resolveServerDates(v any, now time.Time) any {
	switch x := v.(type) {
	case bson.D:
		if len(x) == 1 && x[0].Key == "$tcb_server_date" {
			var off float64
			if d, ok := x[0].Value.(bson.D); ok {
				if o, ok := lookupField(d, "offset"); ok {
					off, _ = toFloat(o)
				}
			}
			return bson.NewDateTimeFromTime(now.Add(time.Duration(off * float64(time.Millisecond))))
		}
		for i := range x {
			x[i].Value = resolveServerDates(x[i].Value, now)
		}
		return x
	case bson.A:
		for i := range x {
			x[i] = resolveServerDates(x[i], now)
		}
		return x
	}
	return v
}
