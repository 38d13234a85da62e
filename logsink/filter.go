package logsink

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxParam bounds a filter parameter: longer values are no name or search anyone means.
const maxParam = 1000

// ParseFilter reads a filter from query parameters: function, level, requestId, search, env,
// after (a record id), since (RFC 3339). Other parameters are left to the caller; the app comes
// from the route, not the query.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	get := func(k string) (string, error) {
		vs := q[k]
		switch {
		case len(vs) == 0:
			return "", nil
		case len(vs) > 1:
			return "", fmt.Errorf("%s is given %d times; give it once", k, len(vs))
		case len(vs[0]) > maxParam:
			return "", fmt.Errorf("%s is longer than %d bytes", k, maxParam)
		case !utf8.ValidString(vs[0]):
			return "", fmt.Errorf("%s is not valid UTF-8", k)
		}
		return vs[0], nil
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"function", &f.Function}, {"level", &f.Level}, {"requestId", &f.RequestID}, {"search", &f.Search}, {"env", &f.Env}} {
		v, err := get(p.name)
		if err != nil {
			return Filter{}, err
		}
		*p.dst = v
	}
	if !ValidLevel(f.Level) {
		return Filter{}, fmt.Errorf("level must be debug, info, warn or error, got %q", f.Level)
	}
	after, err := get("after")
	if err != nil {
		return Filter{}, err
	}
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			return Filter{}, fmt.Errorf("after must be a record id (a whole number ≥ 0), got %q", after)
		}
		f.After = n
	}
	since, err := get("since")
	if err != nil {
		return Filter{}, err
	}
	if since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			return Filter{}, fmt.Errorf("since must be an RFC 3339 time such as 2026-03-01T08:00:00Z, got %q", since)
		}
		f.Since = t
	}
	return f, nil
}
