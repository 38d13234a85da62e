package leanstorage

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// regexp compiles a $regex once per query (the same where applies to every object), bounded in
// length; Go's regexps run in linear time, so a hostile pattern cannot backtrack forever.
func (m *matcher) regexp(arg, options any) (*regexp.Regexp, error) {
	pattern, ok := arg.(string)
	if !ok {
		return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: $regex takes a string.")
	}
	if len(pattern) > m.s.opts.MaxRegexLength {
		return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: $regex is %d bytes long; the limit is %d.", len(pattern), m.s.opts.MaxRegexLength)
	}
	if o, _ := options.(string); o != "" {
		flags := ""
		for _, c := range o {
			if strings.ContainsRune("ims", c) && !strings.ContainsRune(flags, c) {
				flags += string(c)
			}
		}
		if flags != "" {
			pattern = "(?" + flags + ")" + pattern
		}
	}
	if re, ok := m.regexps[pattern]; ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: bad $regex: %v", err)
	}
	m.regexps[pattern] = re
	return re, nil
}

// valueSet holds canonical forms of query values, so that $in over thousands of values is a
// lookup per object.
type valueSet map[string]bool

// set builds (once per query) the set of an $in, $nin or $all list.
func (m *matcher) set(op string, arg any) (valueSet, error) {
	list, ok := arg.([]any)
	if !ok {
		return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes an array.", op)
	}
	if len(list) > m.s.opts.MaxInValues {
		return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: %s has %d values; the limit is %d.", op, len(list), m.s.opts.MaxInValues)
	}
	if len(list) == 0 {
		return valueSet{}, nil
	}
	if set, ok := m.sets[&list[0]]; ok {
		return set, nil
	}
	set := make(valueSet, len(list))
	for _, v := range list {
		set[canon(v)] = true
	}
	m.sets[&list[0]] = set
	return set, nil
}

// matches is equalValue against any member: an array field matches when it is a member or holds
// one.
func (set valueSet) matches(val any, exists bool) bool {
	if !exists {
		return set[canon(nil)]
	}
	if set[canon(val)] {
		return true
	}
	if arr, ok := val.([]any); ok {
		for _, e := range arr {
			if set[canon(e)] {
				return true
			}
		}
	}
	return false
}

// allIn tells whether every member is in arr.
func (set valueSet) allIn(arr []any) bool {
	have := make(valueSet, len(arr))
	for _, e := range arr {
		have[canon(e)] = true
	}
	for k := range set {
		if !have[k] {
			return false
		}
	}
	return true
}

// canon is a value's identity for equality as equalValue has it: numbers by value, dates (Date
// objects and ISO strings) by instant, pointers and objects by class and id, the rest as JSON.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "z"
	case bool:
		return "b" + strconv.FormatBool(x)
	case float64:
		return "n" + strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		return "n" + strconv.FormatFloat(float64(x), 'g', -1, 64)
	case int64:
		return "n" + strconv.FormatFloat(float64(x), 'g', -1, 64)
	case json.Number:
		f, _ := x.Float64()
		return "n" + strconv.FormatFloat(f, 'g', -1, 64)
	case string:
		if t, ok := asTime(x); ok {
			return "d" + strconv.FormatInt(t.UnixNano(), 10)
		}
		return "s" + x
	case map[string]any:
		if t, ok := asTime(x); ok {
			return "d" + strconv.FormatInt(t.UnixNano(), 10)
		}
		if id, ok := x["objectId"].(string); ok && id != "" {
			c, _ := x["className"].(string)
			return "p" + c + "/" + id
		}
	}
	b, _ := json.Marshal(normalize(v))
	return "j" + string(b)
}
