package wxdb

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Values are the bson package's decoded ExtJSON types: nil, bool, int32, int64, float64,
// bson.Decimal128, string, bson.D, bson.A, bson.DateTime, bson.Binary, bson.ObjectID,
// bson.Regex, bson.Timestamp, bson.MinKey, bson.MaxKey, bson.Undefined, bson.Symbol.

// typeRank is MongoDB's BSON comparison order: a value of a lower rank sorts first.
func typeRank(v any) int {
	switch v.(type) {
	case bson.MinKey:
		return 1
	case nil, bson.Null, bson.Undefined:
		return 2
	case int32, int64, float64, bson.Decimal128, int:
		return 3
	case string, bson.Symbol:
		return 4
	case bson.D:
		return 5
	case bson.A:
		return 6
	case bson.Binary:
		return 7
	case bson.ObjectID:
		return 8
	case bool:
		return 9
	case bson.DateTime:
		return 10
	case bson.Timestamp:
		return 11
	case bson.Regex:
		return 12
	case bson.MaxKey:
		return 14
	}
	return 13
}

func isNumber(v any) bool { return typeRank(v) == 3 }

// toFloat converts a numeric value; ok is false for non-numbers.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	case bson.Decimal128:
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil {
			return math.NaN(), true
		}
		return f, true
	}
	return 0, false
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

func compareNumbers(a, b any) int {
	if x, ok := toInt64(a); ok {
		if y, ok := toInt64(b); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	x, _ := toFloat(a)
	y, _ := toFloat(b)
	switch {
	case math.IsNaN(x) && math.IsNaN(y):
		return 0
	case math.IsNaN(x):
		return -1
	case math.IsNaN(y):
		return 1
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// compareValues orders any two values as MongoDB does (type order first, then value).
func compareValues(a, b any) int {
	ra, rb := typeRank(a), typeRank(b)
	if ra != rb {
		if ra < rb {
			return -1
		}
		return 1
	}
	switch x := a.(type) {
	case int32, int64, float64, bson.Decimal128, int:
		return compareNumbers(a, b)
	case string:
		return strings.Compare(x, asString(b))
	case bson.Symbol:
		return strings.Compare(string(x), asString(b))
	case bson.D:
		y := b.(bson.D)
		for i := 0; i < len(x) && i < len(y); i++ {
			if c := compareInt(typeRank(x[i].Value), typeRank(y[i].Value)); c != 0 {
				return c
			}
			if c := strings.Compare(x[i].Key, y[i].Key); c != 0 {
				return c
			}
			if c := compareValues(x[i].Value, y[i].Value); c != 0 {
				return c
			}
		}
		return compareInt(len(x), len(y))
	case bson.A:
		y := b.(bson.A)
		for i := 0; i < len(x) && i < len(y); i++ {
			if c := compareValues(x[i], y[i]); c != 0 {
				return c
			}
		}
		return compareInt(len(x), len(y))
	case bson.Binary:
		y := b.(bson.Binary)
		if c := compareInt(len(x.Data), len(y.Data)); c != 0 {
			return c
		}
		if c := compareInt(int(x.Subtype), int(y.Subtype)); c != 0 {
			return c
		}
		return bytes.Compare(x.Data, y.Data)
	case bson.ObjectID:
		y := b.(bson.ObjectID)
		return bytes.Compare(x[:], y[:])
	case bool:
		y := b.(bool)
		if x == y {
			return 0
		}
		if !x {
			return -1
		}
		return 1
	case bson.DateTime:
		return compareInt64(int64(x), int64(b.(bson.DateTime)))
	case bson.Timestamp:
		y := b.(bson.Timestamp)
		if c := compareInt64(int64(x.T), int64(y.T)); c != 0 {
			return c
		}
		return compareInt64(int64(x.I), int64(y.I))
	case bson.Regex:
		y := b.(bson.Regex)
		if c := strings.Compare(x.Pattern, y.Pattern); c != 0 {
			return c
		}
		return strings.Compare(x.Options, y.Options)
	}
	return 0
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case bson.Symbol:
		return string(s)
	}
	return ""
}

func compareInt(a, b int) int { return compareInt64(int64(a), int64(b)) }

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func equalValues(a, b any) bool { return typeRank(a) == typeRank(b) && compareValues(a, b) == 0 }

// lookupField is the value of key in d.
func lookupField(d bson.D, key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

func arrayIndex(seg string) (int, bool) {
	if seg == "" || len(seg) > 9 {
		return 0, false
	}
	for _, c := range seg {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	if len(seg) > 1 && seg[0] == '0' {
		return 0, false
	}
	n, _ := strconv.Atoi(seg)
	return n, true
}

// walkPath collects the values at path in v with MongoDB's implicit traversal of arrays of
// documents; missing reports whether some branch lacked the field.
func walkPath(cur any, path []string, vals *[]any, missing *bool) {
	if len(path) == 0 {
		*vals = append(*vals, cur)
		return
	}
	seg := path[0]
	switch c := cur.(type) {
	case bson.D:
		v, ok := lookupField(c, seg)
		if !ok {
			*missing = true
			return
		}
		walkPath(v, path[1:], vals, missing)
	case bson.A:
		if i, ok := arrayIndex(seg); ok {
			if i < len(c) {
				walkPath(c[i], path[1:], vals, missing)
			} else {
				*missing = true
			}
			return
		}
		if len(c) == 0 {
			*missing = true
		}
		for _, e := range c {
			if d, ok := e.(bson.D); ok {
				walkPath(d, path, vals, missing)
			} else {
				*missing = true
			}
		}
	default:
		*missing = true
	}
}

// getPath is the single value at a dotted path without array traversal (numeric segments index
// arrays), as update operators and expressions see it.
func getPath(doc any, path []string) (any, bool) {
	cur := doc
	for _, seg := range path {
		switch c := cur.(type) {
		case bson.D:
			v, ok := lookupField(c, seg)
			if !ok {
				return nil, false
			}
			cur = v
		case bson.A:
			i, ok := arrayIndex(seg)
			if !ok || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// exprPath resolves a path as aggregation expressions do: through arrays it maps to an array of
// the values found in each element.
func exprPath(cur any, path []string) (any, bool) {
	if len(path) == 0 {
		return cur, true
	}
	switch c := cur.(type) {
	case bson.D:
		v, ok := lookupField(c, path[0])
		if !ok {
			return nil, false
		}
		return exprPath(v, path[1:])
	case bson.A:
		out := bson.A{}
		for _, e := range c {
			if _, isDoc := e.(bson.D); !isDoc {
				if _, isArr := e.(bson.A); !isArr {
					continue
				}
			}
			if v, ok := exprPath(e, path); ok {
				out = append(out, v)
			}
		}
		return out, true
	}
	return nil, false
}

func splitPath(p string) []string { return strings.Split(p, ".") }

// cloneValue deep-copies documents and arrays so updates never alias stored values.
func cloneValue(v any) any {
	switch x := v.(type) {
	case bson.D:
		out := make(bson.D, len(x))
		for i, e := range x {
			out[i] = bson.E{Key: e.Key, Value: cloneValue(e.Value)}
		}
		return out
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	case bson.Binary:
		return bson.Binary{Subtype: x.Subtype, Data: append([]byte(nil), x.Data...)}
	}
	return v
}

func cloneDoc(d bson.D) bson.D { return cloneValue(d).(bson.D) }

// truthy is the aggregation notion of true: everything except false, null, missing, 0.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil, bson.Null, bson.Undefined:
		return false
	case bool:
		return x
	case int32, int64, float64, bson.Decimal128, int:
		f, _ := toFloat(x)
		return f != 0
	}
	return true
}

func typeName(v any) string {
	switch v.(type) {
	case nil, bson.Null:
		return "null"
	case bool:
		return "bool"
	case int32, int:
		return "int"
	case int64:
		return "long"
	case float64:
		return "double"
	case bson.Decimal128:
		return "decimal"
	case string:
		return "string"
	case bson.D:
		return "object"
	case bson.A:
		return "array"
	case bson.DateTime:
		return "date"
	case bson.Binary:
		return "binData"
	case bson.ObjectID:
		return "objectId"
	case bson.Regex:
		return "regex"
	case bson.Timestamp:
		return "timestamp"
	case bson.MinKey:
		return "minKey"
	case bson.MaxKey:
		return "maxKey"
	case bson.Undefined:
		return "undefined"
	}
	return "unknown"
}
