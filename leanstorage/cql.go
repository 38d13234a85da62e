package leanstorage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// CQL is LeanCloud's SQL-like query language (GET /cloudQuery?cql=…&pvalues=[…]). The subset
// served here: select */count(*)/keys from a class, where with = != <> < <= > >= [not] in,
// [not] like, regexp, is [not] exists, is [not] null, and, or, not, parentheses, ? placeholders,
// pointer(), date() and geopoint() values; order by; limit [skip,] count. It is translated into
// an ordinary query.

// maxCQLLength bounds a statement.
const maxCQLLength = 16 << 10

func cqlError(format string, args ...any) *Error {
	return apiErr(http.StatusBadRequest, 300, "CQL syntax error: "+format, args...)
}

func (s *Service) cloudQuery(ctx context.Context, query url.Values, auth Auth) (*Response, error) {
	cql := query.Get("cql")
	if strings.TrimSpace(cql) == "" {
		return nil, cqlError("cql is missing")
	}
	if len(cql) > maxCQLLength {
		return nil, cqlError("the statement is %d bytes long; the limit is %d", len(cql), maxCQLLength)
	}
	var pvalues []any
	if pv := query.Get("pvalues"); pv != "" {
		if err := json.Unmarshal([]byte(pv), &pvalues); err != nil {
			return nil, apiErr(http.StatusBadRequest, 107, "Invalid pvalues: a JSON array is expected.")
		}
	}
	toks, err := lexCQL(cql)
	if err != nil {
		return nil, err
	}
	p := &cqlParser{toks: toks, pvalues: pvalues}
	st, err := p.statement()
	if err != nil {
		return nil, err
	}
	if p.used != len(pvalues) {
		return nil, cqlError("%d placeholders but %d pvalues", p.used, len(pvalues))
	}
	q := url.Values{}
	if st.where != nil {
		b, _ := json.Marshal(st.where)
		q.Set("where", string(b))
	}
	if len(st.order) > 0 {
		q.Set("order", strings.Join(st.order, ","))
	}
	if st.count {
		q.Set("count", "1")
		if !st.rows {
			q.Set("limit", "0")
		}
	}
	if st.limit >= 0 && st.rows {
		q.Set("limit", strconv.Itoa(st.limit))
	}
	if st.skip > 0 {
		q.Set("skip", strconv.Itoa(st.skip))
	}
	if len(st.keys) > 0 {
		q.Set("keys", strings.Join(st.keys, ","))
	}
	if !classNameRE().MatchString(st.class) {
		return nil, apiErr(http.StatusBadRequest, 103, "Invalid class name: %s. Class names start with a letter and contain letters, digits and '_'.", st.class)
	}
	resp, err := s.find(ctx, st.class, q, auth)
	if err != nil {
		return nil, err
	}
	body := resp.Body.(map[string]any)
	body["className"] = st.class
	return resp, nil
}

type cqlTok struct {
	kind byte // 'i' identifier/keyword, 's' string, 'n' number, 'p' punctuation, '?' placeholder
	text string
}

func lexCQL(src string) ([]cqlTok, error) {
	var out []cqlTok
	r := []rune(src)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '?':
			out = append(out, cqlTok{'?', "?"})
			i++
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(r); j++ {
				if r[j] == '\\' && j+1 < len(r) {
					j++
					b.WriteRune(r[j])
					continue
				}
				if r[j] == c {
					if j+1 < len(r) && r[j+1] == c { // '' inside '…'
						b.WriteRune(c)
						j++
						continue
					}
					break
				}
				b.WriteRune(r[j])
			}
			if j >= len(r) {
				return nil, cqlError("unterminated string at offset %d", i)
			}
			out = append(out, cqlTok{'s', b.String()})
			i = j + 1
		case c == '`':
			j := i + 1
			for j < len(r) && r[j] != '`' {
				j++
			}
			if j >= len(r) {
				return nil, cqlError("unterminated `name` at offset %d", i)
			}
			out = append(out, cqlTok{'i', string(r[i+1 : j])})
			i = j + 1
		case unicode.IsDigit(c) || (c == '-' && i+1 < len(r) && unicode.IsDigit(r[i+1])):
			j := i + 1
			for j < len(r) && (unicode.IsDigit(r[j]) || r[j] == '.' || r[j] == 'e' || r[j] == 'E') {
				j++
			}
			out = append(out, cqlTok{'n', string(r[i:j])})
			i = j
		case unicode.IsLetter(c) || c == '_':
			j := i + 1
			for j < len(r) && (unicode.IsLetter(r[j]) || unicode.IsDigit(r[j]) || r[j] == '_' || r[j] == '.') {
				j++
			}
			out = append(out, cqlTok{'i', string(r[i:j])})
			i = j
		default:
			two := ""
			if i+1 < len(r) {
				two = string(r[i : i+2])
			}
			if two == "!=" || two == "<>" || two == "<=" || two == ">=" {
				out = append(out, cqlTok{'p', two})
				i += 2
				continue
			}
			if strings.ContainsRune("(),*=<>", c) {
				out = append(out, cqlTok{'p', string(c)})
				i++
				continue
			}
			return nil, cqlError("unexpected %q at offset %d", c, i)
		}
	}
	return out, nil
}

type cqlStatement struct {
	class       string
	count, rows bool
	keys, order []string
	where       map[string]any
	limit, skip int
}

type cqlParser struct {
	toks    []cqlTok
	pos     int
	pvalues []any
	used    int
	depth   int
}

func (p *cqlParser) peek() cqlTok {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return cqlTok{}
}

func (p *cqlParser) next() cqlTok { t := p.peek(); p.pos++; return t }

func (p *cqlParser) keyword(words ...string) bool {
	for i, w := range words {
		t := cqlTok{}
		if p.pos+i < len(p.toks) {
			t = p.toks[p.pos+i]
		}
		if t.kind != 'i' || !strings.EqualFold(t.text, w) {
			return false
		}
	}
	p.pos += len(words)
	return true
}

func (p *cqlParser) punct(s string) bool {
	if t := p.peek(); t.kind == 'p' && t.text == s {
		p.pos++
		return true
	}
	return false
}

func (p *cqlParser) expect(s string) error {
	if !p.punct(s) {
		return cqlError("expected %q near %q", s, p.peek().text)
	}
	return nil
}

func (p *cqlParser) ident(what string) (string, error) {
	t := p.next()
	if t.kind != 'i' {
		return "", cqlError("expected %s near %q", what, t.text)
	}
	return t.text, nil
}

func (p *cqlParser) statement() (*cqlStatement, error) {
	st := &cqlStatement{limit: -1}
	if !p.keyword("select") {
		return nil, cqlError("only select statements are supported")
	}
	for {
		switch {
		case p.punct("*"):
			st.rows = true
		case p.keyword("count"):
			if err := p.expect("("); err != nil {
				return nil, err
			}
			if !p.punct("*") {
				p.ident("a column") // count(column) counts rows, as count(*)
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			st.count = true
		default:
			k, err := p.ident("a column, * or count(*)")
			if err != nil {
				return nil, err
			}
			st.rows = true
			st.keys = append(st.keys, k)
		}
		if !p.punct(",") {
			break
		}
	}
	if !p.keyword("from") {
		return nil, cqlError("expected from near %q", p.peek().text)
	}
	class, err := p.ident("a class name")
	if err != nil {
		return nil, err
	}
	st.class = class
	if p.keyword("where") {
		w, err := p.or()
		if err != nil {
			return nil, err
		}
		st.where = w
	}
	if p.keyword("order", "by") {
		for {
			k, err := p.ident("a column")
			if err != nil {
				return nil, err
			}
			if p.keyword("desc") {
				k = "-" + k
			} else {
				p.keyword("asc")
			}
			st.order = append(st.order, k)
			if !p.punct(",") {
				break
			}
		}
	}
	if p.keyword("limit") {
		a, err := p.count()
		if err != nil {
			return nil, err
		}
		st.limit = a
		if p.punct(",") {
			b, err := p.count()
			if err != nil {
				return nil, err
			}
			st.skip, st.limit = a, b
		}
	}
	if p.pos < len(p.toks) {
		return nil, cqlError("unexpected %q", p.peek().text)
	}
	return st, nil
}

func (p *cqlParser) count() (int, error) {
	t := p.next()
	if t.kind == '?' {
		v, err := p.placeholder()
		if err != nil {
			return 0, err
		}
		if f, ok := v.(float64); ok {
			t = cqlTok{'n', strconv.FormatFloat(f, 'f', -1, 64)}
		}
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n < 0 {
		return 0, cqlError("limit takes non-negative integers, got %q", t.text)
	}
	return n, nil
}

// maxCQLDepth bounds nested parentheses.
const maxCQLDepth = 32

func (p *cqlParser) or() (map[string]any, error) {
	var terms []any
	for {
		t, err := p.and()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		if !p.keyword("or") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0].(map[string]any), nil
	}
	return map[string]any{"$or": terms}, nil
}

func (p *cqlParser) and() (map[string]any, error) {
	var terms []any
	for {
		t, err := p.factor()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		if !p.keyword("and") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0].(map[string]any), nil
	}
	return map[string]any{"$and": terms}, nil
}

func (p *cqlParser) factor() (map[string]any, error) {
	if p.punct("(") {
		if p.depth++; p.depth > maxCQLDepth {
			return nil, cqlError("parentheses nest deeper than %d", maxCQLDepth)
		}
		w, err := p.or()
		if err != nil {
			return nil, err
		}
		p.depth--
		return w, p.expect(")")
	}
	key, err := p.ident("a column")
	if err != nil {
		return nil, err
	}
	cond := func(op string, v any) map[string]any { return map[string]any{key: map[string]any{op: v}} }
	switch {
	case p.keyword("is", "not", "exists"):
		return cond("$exists", false), nil
	case p.keyword("is", "exists"):
		return cond("$exists", true), nil
	case p.keyword("is", "not", "null"):
		return cond("$ne", nil), nil
	case p.keyword("is", "null"):
		return map[string]any{key: nil}, nil
	case p.keyword("not", "in"), p.keyword("in"):
		op := "$in"
		if strings.EqualFold(p.toks[p.pos-2].text, "not") {
			op = "$nin"
		}
		if err := p.expect("("); err != nil {
			return nil, err
		}
		var list []any
		for !p.punct(")") {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			if arr, isArr := v.([]any); isArr && p.peek().text == ")" && len(list) == 0 {
				list = append(list, arr...) // in (?) with an array
			} else {
				list = append(list, v)
			}
			if !p.punct(",") {
				if err := p.expect(")"); err != nil {
					return nil, err
				}
				break
			}
		}
		if list == nil {
			list = []any{}
		}
		return cond(op, list), nil
	case p.keyword("not", "like"), p.keyword("like"):
		negate := strings.EqualFold(p.toks[p.pos-2].text, "not")
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		pattern, ok := v.(string)
		if !ok {
			return nil, cqlError("like takes a string")
		}
		if negate {
			return nil, cqlError("not like is not supported")
		}
		return cond("$regex", likeToRegexp(pattern)), nil
	case p.keyword("regexp"):
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if _, ok := v.(string); !ok {
			return nil, cqlError("regexp takes a string")
		}
		return cond("$regex", v), nil
	}
	t := p.next()
	if t.kind != 'p' {
		return nil, cqlError("expected a comparison after %s near %q", key, t.text)
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	switch t.text {
	case "=":
		return map[string]any{key: v}, nil
	case "!=", "<>":
		return cond("$ne", v), nil
	case "<":
		return cond("$lt", v), nil
	case "<=":
		return cond("$lte", v), nil
	case ">":
		return cond("$gt", v), nil
	case ">=":
		return cond("$gte", v), nil
	}
	return nil, cqlError("unknown comparison %q", t.text)
}

func likeToRegexp(pattern string) string {
	var b strings.Builder
	b.WriteString("^")
	for _, c := range pattern {
		switch c {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String()
}

func (p *cqlParser) placeholder() (any, error) {
	if p.used >= len(p.pvalues) {
		return nil, cqlError("more placeholders than pvalues (%d)", len(p.pvalues))
	}
	v := p.pvalues[p.used]
	p.used++
	return v, nil
}

func (p *cqlParser) value() (any, error) {
	t := p.next()
	switch t.kind {
	case '?':
		return p.placeholder()
	case 's':
		return t.text, nil
	case 'n':
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, cqlError("bad number %q", t.text)
		}
		return f, nil
	case 'i':
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		case "pointer", "date", "geopoint":
			args, err := p.args()
			if err != nil {
				return nil, err
			}
			return cqlFunc(strings.ToLower(t.text), args)
		}
	}
	return nil, cqlError("expected a value near %q", t.text)
}

func (p *cqlParser) args() ([]any, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var out []any
	for !p.punct(")") {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if !p.punct(",") {
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			break
		}
	}
	return out, nil
}

func cqlFunc(name string, args []any) (any, error) {
	switch name {
	case "pointer":
		class, _ := argAt(args, 0).(string)
		id, _ := argAt(args, 1).(string)
		if len(args) != 2 || class == "" || id == "" {
			return nil, cqlError("pointer takes (className, objectId)")
		}
		return pointerTo(class, id), nil
	case "date":
		iso, _ := argAt(args, 0).(string)
		if _, ok := asTime(iso); len(args) != 1 || !ok {
			return nil, cqlError("date takes an ISO 8601 time such as '2026-01-01T00:00:00.000Z'")
		}
		return map[string]any{"__type": "Date", "iso": iso}, nil
	case "geopoint":
		lng, ok1 := argAt(args, 0).(float64)
		lat, ok2 := argAt(args, 1).(float64)
		if len(args) != 2 || !ok1 || !ok2 {
			return nil, cqlError("geopoint takes (longitude, latitude)")
		}
		return map[string]any{"__type": "GeoPoint", "latitude": lat, "longitude": lng}, nil
	}
	return nil, fmt.Errorf("unknown function %s", name)
}

func argAt(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil
}
