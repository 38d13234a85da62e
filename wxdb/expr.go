package wxdb

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// missingT marks an expression whose field path found nothing ($project then leaves the field out).
type missingT struct{}

var missingV = missingT{}

func isMissing(v any) bool { _, ok := v.(missingT); return ok }

type exprCtx struct {
	root bson.D
	cur  any
	vars map[string]any
	now  time.Time
}

func (c *exprCtx) with(name string, v any) *exprCtx {
	n := &exprCtx{root: c.root, cur: c.cur, now: c.now, vars: map[string]any{}}
	for k, x := range c.vars {
		n.vars[k] = x
	}
	n.vars[name] = v
	return n
}

type expr struct{ spec any }

func (e *expr) eval(c *exprCtx) (any, error) {
	if c.cur == nil {
		c.cur = c.root
	}
	return evalExpr(e.spec, c)
}

const maxExprDepth = 64

// compileExpr checks an aggregation expression's operators once, before evaluation.
func compileExpr(spec any, depth int) (*expr, error) {
	if err := checkExpr(spec, depth); err != nil {
		return nil, err
	}
	return &expr{spec: spec}, nil
}

func checkExpr(spec any, depth int) error {
	if depth > maxExprDepth {
		return badParam("expression nested deeper than %d levels", maxExprDepth)
	}
	switch x := spec.(type) {
	case bson.D:
		if len(x) >= 1 && strings.HasPrefix(x[0].Key, "$") {
			if len(x) != 1 {
				return badParam("an expression object must have exactly one operator, got %d keys", len(x))
			}
			op := x[0].Key
			if op == "$literal" {
				return nil
			}
			if _, ok := exprOps[op]; !ok {
				return badCommand("unknown expression operator: %s", op)
			}
			return checkExpr(x[0].Value, depth+1)
		}
		for _, e := range x {
			if strings.HasPrefix(e.Key, "$") {
				return badParam("field name %q in an expression object may not start with '$'", e.Key)
			}
			if err := checkExpr(e.Value, depth+1); err != nil {
				return err
			}
		}
	case bson.A:
		for _, e := range x {
			if err := checkExpr(e, depth+1); err != nil {
				return err
			}
		}
	case string:
		if strings.HasPrefix(x, "$") && !strings.HasPrefix(x, "$$") {
			if err := checkQueryPath(x[1:]); err != nil {
				return err
			}
		}
	}
	return nil
}

var exprOps = map[string]bool{}

func init() {
	for _, op := range strings.Fields(`$add $subtract $multiply $divide $mod $abs $ceil $floor $round $trunc $sqrt $pow $exp $ln $log $log10
		$eq $ne $gt $gte $lt $lte $cmp $and $or $not $cond $ifNull $switch
		$concat $substr $substrCP $substrBytes $toLower $toUpper $strLenCP $strLenBytes $split $trim $ltrim $rtrim $indexOfBytes $indexOfCP $strcasecmp
		$size $arrayElemAt $concatArrays $filter $map $in $slice $isArray $reverseArray $range $indexOfArray $first $last $reduce $zip
		$sum $avg $min $max $stdDevPop $stdDevSamp
		$year $month $dayOfMonth $hour $minute $second $millisecond $dayOfWeek $dayOfYear $week $dateToString $dateFromString $toDate
		$type $toString $toInt $toLong $toDouble $toDecimal $toBool $toObjectId $convert $isNumber
		$literal $mergeObjects $objectToArray $arrayToObject $let $setUnion $setIntersection $setDifference $setEquals $setIsSubset $allElementsTrue $anyElementTrue`) {
		exprOps[op] = true
	}
}

func evalExpr(spec any, c *exprCtx) (any, error) {
	switch x := spec.(type) {
	case string:
		if strings.HasPrefix(x, "$$") {
			name := x[2:]
			rest := ""
			if i := strings.IndexByte(name, '.'); i >= 0 {
				name, rest = name[:i], name[i+1:]
			}
			var base any
			switch name {
			case "ROOT":
				base = c.root
			case "CURRENT":
				base = c.cur
			case "REMOVE":
				return missingV, nil
			case "NOW":
				base = bson.NewDateTimeFromTime(c.now)
			default:
				v, ok := c.vars[name]
				if !ok {
					return nil, badParam("use of undefined variable: %s", name)
				}
				base = v
			}
			if rest == "" {
				return base, nil
			}
			v, ok := exprPath(base, splitPath(rest))
			if !ok {
				return missingV, nil
			}
			return v, nil
		}
		if strings.HasPrefix(x, "$") {
			v, ok := exprPath(c.cur, splitPath(x[1:]))
			if !ok {
				return missingV, nil
			}
			return v, nil
		}
		return x, nil
	case bson.A:
		out := make(bson.A, 0, len(x))
		for _, e := range x {
			v, err := evalExpr(e, c)
			if err != nil {
				return nil, err
			}
			if isMissing(v) {
				v = nil
			}
			out = append(out, v)
		}
		return out, nil
	case bson.D:
		if len(x) == 1 && strings.HasPrefix(x[0].Key, "$") {
			return evalOp(x[0].Key, x[0].Value, c)
		}
		out := bson.D{}
		for _, e := range x {
			v, err := evalExpr(e.Value, c)
			if err != nil {
				return nil, err
			}
			if !isMissing(v) {
				out = append(out, bson.E{Key: e.Key, Value: v})
			}
		}
		return out, nil
	}
	return spec, nil
}

func argList(arg any) bson.A {
	if a, ok := arg.(bson.A); ok {
		return a
	}
	return bson.A{arg}
}

func evalArgs(arg any, c *exprCtx) ([]any, error) {
	list := argList(arg)
	out := make([]any, len(list))
	for i, a := range list {
		v, err := evalExpr(a, c)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func nullish(v any) bool { return isMissing(v) || isNullish(v) }

func needN(op string, args []any, n int) error {
	if len(args) != n {
		return badParam("%s takes %d arguments, got %d", op, n, len(args))
	}
	return nil
}

func numArg(op string, v any) (any, error) {
	if !isNumber(v) {
		return nil, badParam("%s only supports numeric types, not %s", op, typeName(v))
	}
	return v, nil
}

func evalOp(op string, arg any, c *exprCtx) (any, error) {
	switch op {
	case "$literal":
		return arg, nil
	case "$cond":
		var ifE, thenE, elseE any
		if d, ok := arg.(bson.D); ok {
			ifE, _ = lookupField(d, "if")
			thenE, _ = lookupField(d, "then")
			elseE, _ = lookupField(d, "else")
		} else if a, ok := arg.(bson.A); ok && len(a) == 3 {
			ifE, thenE, elseE = a[0], a[1], a[2]
		} else {
			return nil, badParam("$cond needs {if, then, else} or [if, then, else]")
		}
		v, err := evalExpr(ifE, c)
		if err != nil {
			return nil, err
		}
		if truthy(v) && !isMissing(v) {
			return evalExpr(thenE, c)
		}
		return evalExpr(elseE, c)
	case "$switch":
		d, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("$switch needs {branches, default}")
		}
		br, _ := lookupField(d, "branches")
		for _, b := range argList(br) {
			bd, ok := b.(bson.D)
			if !ok {
				return nil, badParam("$switch branches need {case, then}")
			}
			ce, _ := lookupField(bd, "case")
			v, err := evalExpr(ce, c)
			if err != nil {
				return nil, err
			}
			if truthy(v) && !isMissing(v) {
				te, _ := lookupField(bd, "then")
				return evalExpr(te, c)
			}
		}
		if de, ok := lookupField(d, "default"); ok {
			return evalExpr(de, c)
		}
		return nil, badParam("$switch could not find a matching branch and has no default")
	case "$let":
		d, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("$let needs {vars, in}")
		}
		vars, _ := lookupField(d, "vars")
		vd, _ := vars.(bson.D)
		nc := c
		for _, v := range vd {
			val, err := evalExpr(v.Value, c)
			if err != nil {
				return nil, err
			}
			nc = nc.with(v.Key, val)
		}
		in, _ := lookupField(d, "in")
		return evalExpr(in, nc)
	case "$filter", "$map":
		d, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("%s needs an object", op)
		}
		inputE, _ := lookupField(d, "input")
		input, err := evalExpr(inputE, c)
		if err != nil {
			return nil, err
		}
		if nullish(input) {
			return nil, nil
		}
		arr, ok := input.(bson.A)
		if !ok {
			return nil, badParam("%s input must be an array, not %s", op, typeName(input))
		}
		as := "this"
		if a, ok := lookupField(d, "as"); ok {
			as, _ = a.(string)
		}
		key := "cond"
		if op == "$map" {
			key = "in"
		}
		body, _ := lookupField(d, key)
		out := bson.A{}
		for _, e := range arr {
			v, err := evalExpr(body, c.with(as, e))
			if err != nil {
				return nil, err
			}
			if op == "$map" {
				if isMissing(v) {
					v = nil
				}
				out = append(out, v)
			} else if truthy(v) && !isMissing(v) {
				out = append(out, e)
			}
		}
		return out, nil
	case "$reduce":
		d, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("$reduce needs {input, initialValue, in}")
		}
		inputE, _ := lookupField(d, "input")
		input, err := evalExpr(inputE, c)
		if err != nil {
			return nil, err
		}
		if nullish(input) {
			return nil, nil
		}
		arr, ok := input.(bson.A)
		if !ok {
			return nil, badParam("$reduce input must be an array")
		}
		initE, _ := lookupField(d, "initialValue")
		acc, err := evalExpr(initE, c)
		if err != nil {
			return nil, err
		}
		in, _ := lookupField(d, "in")
		for _, e := range arr {
			acc, err = evalExpr(in, c.with("this", e).with("value", acc))
			if err != nil {
				return nil, err
			}
		}
		return acc, nil
	case "$trim", "$ltrim", "$rtrim":
		d, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("%s needs {input, chars}", op)
		}
		ie, _ := lookupField(d, "input")
		in, err := evalExpr(ie, c)
		if err != nil {
			return nil, err
		}
		if nullish(in) {
			return nil, nil
		}
		str, ok := in.(string)
		if !ok {
			return nil, badParam("%s requires its input to be a string, not %s", op, typeName(in))
		}
		cutset := " \t\n\r\v\f\u00a0"
		if ce, ok := lookupField(d, "chars"); ok {
			cv, err := evalExpr(ce, c)
			if err != nil {
				return nil, err
			}
			if cs, ok := cv.(string); ok {
				cutset = cs
			}
		}
		switch op {
		case "$ltrim":
			return strings.TrimLeft(str, cutset), nil
		case "$rtrim":
			return strings.TrimRight(str, cutset), nil
		}
		return strings.Trim(str, cutset), nil
	case "$convert":
		d, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("$convert needs {input, to}")
		}
		ie, _ := lookupField(d, "input")
		in, err := evalExpr(ie, c)
		if err != nil {
			return nil, err
		}
		te, _ := lookupField(d, "to")
		to, err := evalExpr(te, c)
		if err != nil {
			return nil, err
		}
		if nullish(in) {
			if on, ok := lookupField(d, "onNull"); ok {
				return evalExpr(on, c)
			}
			return nil, nil
		}
		name, _ := to.(string)
		if n, ok := toFloat(to); ok {
			name = bsonTypeNumberName(int(n))
		}
		if name == "decimal" {
			name = "double"
		}
		v, err := convertTo(name, in)
		if err != nil {
			if oe, ok := lookupField(d, "onError"); ok {
				return evalExpr(oe, c)
			}
			return nil, err
		}
		return v, nil
	case "$dateToString":
		d, ok := arg.(bson.D)
		if !ok {
			return nil, badParam("$dateToString needs {date, format}")
		}
		de, _ := lookupField(d, "date")
		v, err := evalExpr(de, c)
		if err != nil {
			return nil, err
		}
		if nullish(v) {
			return nil, nil
		}
		t, ok := v.(bson.DateTime)
		if !ok {
			return nil, badParam("$dateToString needs a date, not %s", typeName(v))
		}
		format := "%Y-%m-%dT%H:%M:%S.%LZ"
		if f, ok := lookupField(d, "format"); ok {
			format, _ = f.(string)
		}
		loc := time.UTC
		if tz, ok := lookupField(d, "timezone"); ok {
			if s, _ := tz.(string); s != "" {
				if l, err := time.LoadLocation(s); err == nil {
					loc = l
				} else {
					return nil, badParam("unknown time zone %s", s)
				}
			}
		}
		return strftime(t.Time().In(loc), format), nil
	}
	args, err := evalArgs(arg, c)
	if err != nil {
		return nil, err
	}
	switch op {
	case "$add":
		var sum any = int32(0)
		var date *bson.DateTime
		for _, a := range args {
			if nullish(a) {
				return nil, nil
			}
			if d, ok := a.(bson.DateTime); ok {
				if date != nil {
					return nil, badParam("$add only supports one date")
				}
				date = &d
				continue
			}
			if _, err := numArg(op, a); err != nil {
				return nil, err
			}
			sum = arith("$inc", sum, a)
		}
		if date != nil {
			f, _ := toFloat(sum)
			return bson.DateTime(int64(*date) + int64(f)), nil
		}
		return sum, nil
	case "$multiply":
		var p any = int32(1)
		for _, a := range args {
			if nullish(a) {
				return nil, nil
			}
			if _, err := numArg(op, a); err != nil {
				return nil, err
			}
			p = arith("$mul", p, a)
		}
		return p, nil
	case "$subtract":
		if err := needN(op, args, 2); err != nil {
			return nil, err
		}
		if nullish(args[0]) || nullish(args[1]) {
			return nil, nil
		}
		if d, ok := args[0].(bson.DateTime); ok {
			if e, ok := args[1].(bson.DateTime); ok {
				return int64(d) - int64(e), nil
			}
			f, ok := toFloat(args[1])
			if !ok {
				return nil, badParam("$subtract cannot subtract %s from a date", typeName(args[1]))
			}
			return bson.DateTime(int64(d) - int64(f)), nil
		}
		if _, err := numArg(op, args[0]); err != nil {
			return nil, err
		}
		if _, err := numArg(op, args[1]); err != nil {
			return nil, err
		}
		return arith("$inc", args[0], negate(args[1])), nil
	case "$divide", "$mod", "$pow", "$log":
		if err := needN(op, args, 2); err != nil {
			return nil, err
		}
		if nullish(args[0]) || nullish(args[1]) {
			return nil, nil
		}
		x, ok1 := toFloat(args[0])
		y, ok2 := toFloat(args[1])
		if !ok1 || !ok2 {
			return nil, badParam("%s only supports numeric types", op)
		}
		switch op {
		case "$divide":
			if y == 0 {
				return nil, badParam("can't $divide by zero")
			}
			return x / y, nil
		case "$mod":
			if y == 0 {
				return nil, badParam("can't $mod by zero")
			}
			if a, ok := toInt64(args[0]); ok {
				if b, ok := toInt64(args[1]); ok {
					return narrow(a%b, args[0], args[1]), nil
				}
			}
			return math.Mod(x, y), nil
		case "$pow":
			r := math.Pow(x, y)
			if _, ok := toInt64(args[0]); ok {
				if _, ok := toInt64(args[1]); ok && y >= 0 && r == math.Trunc(r) && math.Abs(r) < 1<<53 {
					return narrow(int64(r), args[0], args[1]), nil
				}
			}
			return r, nil
		default:
			return math.Log(x) / math.Log(y), nil
		}
	case "$abs", "$ceil", "$floor", "$sqrt", "$exp", "$ln", "$log10", "$trunc", "$round":
		if len(args) == 0 {
			return nil, badParam("%s needs an argument", op)
		}
		if nullish(args[0]) {
			return nil, nil
		}
		x, ok := toFloat(args[0])
		if !ok {
			return nil, badParam("%s only supports numeric types, not %s", op, typeName(args[0]))
		}
		places := 0.0
		if len(args) > 1 {
			places, _ = toFloat(args[1])
		}
		_, isInt := toInt64(args[0])
		switch op {
		case "$abs":
			if i, ok := toInt64(args[0]); ok {
				if i < 0 {
					i = -i
				}
				return narrow(i, args[0], args[0]), nil
			}
			return math.Abs(x), nil
		case "$ceil", "$floor":
			if isInt {
				return args[0], nil
			}
			if op == "$ceil" {
				return math.Ceil(x), nil
			}
			return math.Floor(x), nil
		case "$sqrt":
			return math.Sqrt(x), nil
		case "$exp":
			return math.Exp(x), nil
		case "$ln":
			return math.Log(x), nil
		case "$log10":
			return math.Log10(x), nil
		case "$trunc", "$round":
			if isInt && places >= 0 {
				return args[0], nil
			}
			p := math.Pow(10, places)
			if op == "$trunc" {
				return math.Trunc(x*p) / p, nil
			}
			return math.RoundToEven(x*p) / p, nil
		}
	case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$cmp":
		if err := needN(op, args, 2); err != nil {
			return nil, err
		}
		a, b := args[0], args[1]
		if isMissing(a) {
			a = nil
		}
		if isMissing(b) {
			b = nil
		}
		r := compareValues(a, b)
		switch op {
		case "$eq":
			return r == 0, nil
		case "$ne":
			return r != 0, nil
		case "$gt":
			return r > 0, nil
		case "$gte":
			return r >= 0, nil
		case "$lt":
			return r < 0, nil
		case "$lte":
			return r <= 0, nil
		}
		return int32(r), nil
	case "$and":
		for _, a := range args {
			if isMissing(a) || !truthy(a) {
				return false, nil
			}
		}
		return true, nil
	case "$or":
		for _, a := range args {
			if !isMissing(a) && truthy(a) {
				return true, nil
			}
		}
		return false, nil
	case "$not":
		if len(args) != 1 {
			return nil, badParam("$not takes 1 argument")
		}
		return isMissing(args[0]) || !truthy(args[0]), nil
	case "$ifNull":
		for _, a := range args[:len(args)-1] {
			if !nullish(a) {
				return a, nil
			}
		}
		last := args[len(args)-1]
		if isMissing(last) {
			return nil, nil
		}
		return last, nil
	case "$concat":
		var b strings.Builder
		for _, a := range args {
			if nullish(a) {
				return nil, nil
			}
			s, ok := a.(string)
			if !ok {
				return nil, badParam("$concat only supports strings, not %s", typeName(a))
			}
			b.WriteString(s)
		}
		return b.String(), nil
	case "$toLower", "$toUpper":
		if len(args) != 1 {
			return nil, badParam("%s takes 1 argument", op)
		}
		if nullish(args[0]) {
			return "", nil
		}
		s := stringOf(args[0])
		if op == "$toLower" {
			return strings.ToLower(s), nil
		}
		return strings.ToUpper(s), nil
	case "$strLenCP", "$strLenBytes":
		s, ok := args[0].(string)
		if !ok {
			return nil, badParam("%s requires a string, not %s", op, typeName(args[0]))
		}
		if op == "$strLenBytes" {
			return int32(len(s)), nil
		}
		return int32(utf8.RuneCountInString(s)), nil
	case "$substr", "$substrBytes", "$substrCP":
		if err := needN(op, args, 3); err != nil {
			return nil, err
		}
		if nullish(args[0]) {
			return "", nil
		}
		s := stringOf(args[0])
		start, ok1 := toFloat(args[1])
		n, ok2 := toFloat(args[2])
		if !ok1 || !ok2 {
			return nil, badParam("%s needs numeric start and length", op)
		}
		if op == "$substrCP" {
			r := []rune(s)
			return string(r[clamp(int(start), len(r)):clamp(int(start)+lenOr(int(n), len(r)), len(r))]), nil
		}
		st := clamp(int(start), len(s))
		return s[st:clamp(st+lenOr(int(n), len(s)), len(s))], nil
	case "$split":
		if err := needN(op, args, 2); err != nil {
			return nil, err
		}
		if nullish(args[0]) {
			return nil, nil
		}
		s, ok1 := args[0].(string)
		sep, ok2 := args[1].(string)
		if !ok1 || !ok2 || sep == "" {
			return nil, badParam("$split needs a string and a non-empty separator")
		}
		out := bson.A{}
		for _, p := range strings.Split(s, sep) {
			out = append(out, p)
		}
		return out, nil
	case "$indexOfBytes", "$indexOfCP":
		if len(args) < 2 {
			return nil, badParam("%s needs a string and a substring", op)
		}
		if nullish(args[0]) {
			return nil, nil
		}
		s, ok1 := args[0].(string)
		sub, ok2 := args[1].(string)
		if !ok1 || !ok2 {
			return nil, badParam("%s needs strings", op)
		}
		i := strings.Index(s, sub)
		if i >= 0 && op == "$indexOfCP" {
			i = utf8.RuneCountInString(s[:i])
		}
		return int32(i), nil
	case "$strcasecmp":
		if err := needN(op, args, 2); err != nil {
			return nil, err
		}
		return int32(strings.Compare(strings.ToLower(stringOf(args[0])), strings.ToLower(stringOf(args[1])))), nil
	case "$size":
		a, ok := args[0].(bson.A)
		if !ok {
			return nil, badParam("The argument to $size must be an array, not %s", typeName(args[0]))
		}
		return int32(len(a)), nil
	case "$isArray":
		_, ok := args[0].(bson.A)
		return ok, nil
	case "$arrayElemAt":
		if err := needN(op, args, 2); err != nil {
			return nil, err
		}
		if nullish(args[0]) {
			return nil, nil
		}
		a, ok := args[0].(bson.A)
		f, ok2 := toFloat(args[1])
		if !ok || !ok2 {
			return nil, badParam("$arrayElemAt needs an array and an index")
		}
		i := int(f)
		if i < 0 {
			i += len(a)
		}
		if i < 0 || i >= len(a) {
			return missingV, nil
		}
		return a[i], nil
	case "$first", "$last":
		if nullish(args[0]) {
			return nil, nil
		}
		a, ok := args[0].(bson.A)
		if !ok {
			return nil, badParam("%s needs an array, not %s", op, typeName(args[0]))
		}
		if len(a) == 0 {
			return missingV, nil
		}
		if op == "$first" {
			return a[0], nil
		}
		return a[len(a)-1], nil
	case "$concatArrays":
		out := bson.A{}
		for _, x := range args {
			if nullish(x) {
				return nil, nil
			}
			a, ok := x.(bson.A)
			if !ok {
				return nil, badParam("$concatArrays only supports arrays, not %s", typeName(x))
			}
			out = append(out, a...)
		}
		return out, nil
	case "$in":
		if err := needN(op, args, 2); err != nil {
			return nil, err
		}
		a, ok := args[1].(bson.A)
		if !ok {
			return nil, badParam("$in needs an array as its second argument")
		}
		for _, e := range a {
			if equalValues(e, args[0]) {
				return true, nil
			}
		}
		return false, nil
	case "$indexOfArray":
		if len(args) < 2 {
			return nil, badParam("$indexOfArray needs an array and a value")
		}
		if nullish(args[0]) {
			return nil, nil
		}
		a, ok := args[0].(bson.A)
		if !ok {
			return nil, badParam("$indexOfArray needs an array")
		}
		for i, e := range a {
			if equalValues(e, args[1]) {
				return int32(i), nil
			}
		}
		return int32(-1), nil
	case "$slice":
		if len(args) < 2 {
			return nil, badParam("$slice needs an array and a count")
		}
		if nullish(args[0]) {
			return nil, nil
		}
		a, ok := args[0].(bson.A)
		if !ok {
			return nil, badParam("$slice needs an array")
		}
		s := []int{}
		for _, x := range args[1:] {
			f, _ := toFloat(x)
			s = append(s, int(f))
		}
		if len(s) == 2 && s[1] <= 0 {
			return nil, badParam("$slice count must be positive")
		}
		return append(bson.A{}, sliceArray(a, s)...), nil
	case "$reverseArray":
		if nullish(args[0]) {
			return nil, nil
		}
		a, ok := args[0].(bson.A)
		if !ok {
			return nil, badParam("$reverseArray needs an array")
		}
		out := make(bson.A, len(a))
		for i, e := range a {
			out[len(a)-1-i] = e
		}
		return out, nil
	case "$range":
		if len(args) < 2 {
			return nil, badParam("$range needs start and end")
		}
		s, _ := toFloat(args[0])
		e, _ := toFloat(args[1])
		step := 1.0
		if len(args) > 2 {
			step, _ = toFloat(args[2])
		}
		if step == 0 {
			return nil, badParam("$range step cannot be 0")
		}
		out := bson.A{}
		for x := s; (step > 0 && x < e) || (step < 0 && x > e); x += step {
			if len(out) >= 1<<20 {
				return nil, badParam("$range produces too many values")
			}
			out = append(out, int32(x))
		}
		return out, nil
	case "$sum", "$avg", "$min", "$max", "$stdDevPop", "$stdDevSamp":
		vals := args
		if len(args) == 1 {
			if a, ok := args[0].(bson.A); ok {
				vals = a
			}
		}
		acc := newAccumulator(op)
		for _, v := range vals {
			acc.add(v)
		}
		return acc.result(), nil
	case "$mergeObjects":
		out := bson.D{}
		for _, x := range args {
			if nullish(x) {
				continue
			}
			d, ok := x.(bson.D)
			if !ok {
				return nil, badParam("$mergeObjects needs objects, not %s", typeName(x))
			}
			out = mergeInto(out, d)
		}
		return out, nil
	case "$objectToArray":
		d, ok := args[0].(bson.D)
		if !ok {
			return nil, badParam("$objectToArray needs an object")
		}
		out := bson.A{}
		for _, e := range d {
			out = append(out, bson.D{{Key: "k", Value: e.Key}, {Key: "v", Value: e.Value}})
		}
		return out, nil
	case "$arrayToObject":
		a, ok := args[0].(bson.A)
		if !ok {
			return nil, badParam("$arrayToObject needs an array")
		}
		out := bson.D{}
		for _, e := range a {
			switch x := e.(type) {
			case bson.D:
				k, _ := lookupField(x, "k")
				v, _ := lookupField(x, "v")
				ks, ok := k.(string)
				if !ok {
					return nil, badParam("$arrayToObject needs {k, v} with a string k")
				}
				out = mergeInto(out, bson.D{{Key: ks, Value: v}})
			case bson.A:
				if len(x) != 2 {
					return nil, badParam("$arrayToObject needs [k, v] pairs")
				}
				ks, ok := x[0].(string)
				if !ok {
					return nil, badParam("$arrayToObject needs a string key")
				}
				out = mergeInto(out, bson.D{{Key: ks, Value: x[1]}})
			default:
				return nil, badParam("$arrayToObject needs pairs")
			}
		}
		return out, nil
	case "$year", "$month", "$dayOfMonth", "$hour", "$minute", "$second", "$millisecond", "$dayOfWeek", "$dayOfYear", "$week":
		if nullish(args[0]) {
			return nil, nil
		}
		d, ok := args[0].(bson.DateTime)
		if !ok {
			return nil, badParam("%s needs a date, not %s", op, typeName(args[0]))
		}
		t := d.Time().UTC()
		switch op {
		case "$year":
			return int32(t.Year()), nil
		case "$month":
			return int32(t.Month()), nil
		case "$dayOfMonth":
			return int32(t.Day()), nil
		case "$hour":
			return int32(t.Hour()), nil
		case "$minute":
			return int32(t.Minute()), nil
		case "$second":
			return int32(t.Second()), nil
		case "$millisecond":
			return int32(t.Nanosecond() / 1e6), nil
		case "$dayOfWeek":
			return int32(t.Weekday()) + 1, nil
		case "$dayOfYear":
			return int32(t.YearDay()), nil
		default:
			return int32((t.YearDay() - int(t.Weekday()) + 6) / 7), nil
		}
	case "$toDate", "$dateFromString":
		v := args[0]
		if op == "$dateFromString" {
			d, ok := v.(bson.D)
			if !ok {
				return nil, badParam("$dateFromString needs {dateString}")
			}
			v, _ = lookupField(d, "dateString")
		}
		return convertTo("date", v)
	case "$type":
		if isMissing(args[0]) {
			return "missing", nil
		}
		return typeName(args[0]), nil
	case "$isNumber":
		return isNumber(args[0]), nil
	case "$toString":
		return convertTo("string", args[0])
	case "$toInt":
		return convertTo("int", args[0])
	case "$toLong":
		return convertTo("long", args[0])
	case "$toDouble", "$toDecimal":
		return convertTo("double", args[0])
	case "$toBool":
		return convertTo("bool", args[0])
	case "$toObjectId":
		return convertTo("objectId", args[0])
	case "$setUnion", "$setIntersection", "$setDifference", "$setEquals", "$setIsSubset":
		return setOp(op, args)
	case "$allElementsTrue", "$anyElementTrue":
		a, ok := args[0].(bson.A)
		if !ok {
			return nil, badParam("%s needs an array", op)
		}
		for _, e := range a {
			if truthy(e) != (op == "$allElementsTrue") {
				return op != "$allElementsTrue", nil
			}
		}
		return op == "$allElementsTrue", nil
	case "$zip":
		return nil, badParam("$zip is not supported")
	}
	return nil, badCommand("unknown expression operator: %s", op)
}

func clamp(i, n int) int {
	if i < 0 {
		return 0
	}
	if i > n {
		return n
	}
	return i
}

func lenOr(n, max int) int {
	if n < 0 {
		return max
	}
	return n
}

func negate(v any) any {
	switch n := v.(type) {
	case int32:
		return -int64(n)
	case int64:
		return -n
	}
	f, _ := toFloat(v)
	return -f
}

func narrow(r int64, a, b any) any {
	_, a32 := a.(int32)
	_, b32 := b.(int32)
	if a32 && b32 && r >= math.MinInt32 && r <= math.MaxInt32 {
		return int32(r)
	}
	return r
}

func stringOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	s, _ := convertTo("string", v)
	if str, ok := s.(string); ok {
		return str
	}
	return fmt.Sprint(v)
}

func mergeInto(out, d bson.D) bson.D {
	for _, e := range d {
		replaced := false
		for i := range out {
			if out[i].Key == e.Key {
				out[i].Value = e.Value
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

func convertTo(to string, v any) (any, error) {
	if nullish(v) {
		return nil, nil
	}
	switch to {
	case "string":
		switch x := v.(type) {
		case string:
			return x, nil
		case bool:
			return strconv.FormatBool(x), nil
		case int32, int64:
			i, _ := toInt64(x)
			return strconv.FormatInt(i, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case bson.Decimal128:
			return x.String(), nil
		case bson.DateTime:
			return x.Time().UTC().Format("2006-01-02T15:04:05.000Z"), nil
		case bson.ObjectID:
			return x.Hex(), nil
		}
	case "int", "long":
		var i int64
		switch x := v.(type) {
		case bool:
			if x {
				i = 1
			}
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				return nil, badParam("cannot convert %q to %s", x, to)
			}
			i = n
		case bson.DateTime:
			i = int64(x)
		default:
			f, ok := toFloat(v)
			if !ok {
				return nil, badParam("cannot convert %s to %s", typeName(v), to)
			}
			i = int64(f)
		}
		if to == "int" {
			if i < math.MinInt32 || i > math.MaxInt32 {
				return nil, badParam("conversion overflows int")
			}
			return int32(i), nil
		}
		return i, nil
	case "double":
		switch x := v.(type) {
		case bool:
			if x {
				return 1.0, nil
			}
			return 0.0, nil
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return nil, badParam("cannot convert %q to double", x)
			}
			return f, nil
		case bson.DateTime:
			return float64(x), nil
		}
		if f, ok := toFloat(v); ok {
			return f, nil
		}
	case "bool":
		return truthy(v), nil
	case "date":
		switch x := v.(type) {
		case bson.DateTime:
			return x, nil
		case string:
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00", "2006-01-02 15:04:05", "2006-01-02"} {
				if t, err := time.Parse(layout, x); err == nil {
					return bson.NewDateTimeFromTime(t), nil
				}
			}
			return nil, badParam("cannot convert %q to a date", x)
		case bson.ObjectID:
			return bson.NewDateTimeFromTime(x.Timestamp()), nil
		}
		if f, ok := toFloat(v); ok {
			return bson.DateTime(int64(f)), nil
		}
	case "objectId":
		if s, ok := v.(string); ok {
			id, err := bson.ObjectIDFromHex(s)
			if err != nil {
				return nil, badParam("cannot convert %q to an ObjectId", s)
			}
			return id, nil
		}
		if id, ok := v.(bson.ObjectID); ok {
			return id, nil
		}
	}
	return nil, badParam("cannot convert %s to %s", typeName(v), to)
}

func setOp(op string, args []any) (any, error) {
	arrs := make([]bson.A, len(args))
	for i, a := range args {
		x, ok := a.(bson.A)
		if !ok {
			if nullish(a) {
				return nil, nil
			}
			return nil, badParam("%s needs arrays, not %s", op, typeName(a))
		}
		arrs[i] = x
	}
	has := func(a bson.A, v any) bool {
		for _, e := range a {
			if equalValues(e, v) {
				return true
			}
		}
		return false
	}
	uniq := func(a bson.A) bson.A {
		out := bson.A{}
		for _, e := range a {
			if !has(out, e) {
				out = append(out, e)
			}
		}
		return out
	}
	switch op {
	case "$setUnion":
		out := bson.A{}
		for _, a := range arrs {
			out = append(out, a...)
		}
		return uniq(out), nil
	case "$setIntersection":
		if len(arrs) == 0 {
			return bson.A{}, nil
		}
		out := bson.A{}
		for _, e := range uniq(arrs[0]) {
			all := true
			for _, a := range arrs[1:] {
				if !has(a, e) {
					all = false
				}
			}
			if all {
				out = append(out, e)
			}
		}
		return out, nil
	}
	if len(arrs) != 2 {
		return nil, badParam("%s takes 2 arrays", op)
	}
	switch op {
	case "$setDifference":
		out := bson.A{}
		for _, e := range uniq(arrs[0]) {
			if !has(arrs[1], e) {
				out = append(out, e)
			}
		}
		return out, nil
	case "$setIsSubset":
		for _, e := range arrs[0] {
			if !has(arrs[1], e) {
				return false, nil
			}
		}
		return true, nil
	}
	for _, e := range arrs[0] {
		if !has(arrs[1], e) {
			return false, nil
		}
	}
	for _, e := range arrs[1] {
		if !has(arrs[0], e) {
			return false, nil
		}
	}
	return true, nil
}

func strftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'L':
			fmt.Fprintf(&b, "%03d", t.Nanosecond()/1e6)
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'w':
			fmt.Fprintf(&b, "%d", int(t.Weekday())+1)
		case 'z':
			b.WriteString(t.Format("-0700"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}
