package wxdb

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// decodeStored parses a stored document (relaxed Extended JSON written by encodeDoc). Plain
// JSON is read here directly, which is several times faster than the general ExtJSON reader;
// the objects that carry a type ({"$date": ...}, {"$numberDecimal": ...}, ...) are handed to
// bson, so the result is the same as bson.UnmarshalExtJSON's (TestDecodeStoredMatchesBSON).
func decodeStored(b []byte) (bson.D, error) {
	p := &jsonParser{b: b}
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, errors.New("trailing data after the document")
	}
	d, ok := v.(bson.D)
	if !ok {
		return nil, errors.New("not a document")
	}
	return d, nil
}

type jsonParser struct {
	b []byte
	i int
}

var errSyntax = errors.New("invalid JSON")

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxDepth+2 {
		return nil, errors.New("document nested too deeply")
	}
	p.ws()
	if p.i >= len(p.b) {
		return nil, errSyntax
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		p.i++
		arr := bson.A{}
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return arr, nil
		}
		for {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
			p.ws()
			if p.i >= len(p.b) {
				return nil, errSyntax
			}
			if p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.b[p.i] == ']' {
				p.i++
				return arr, nil
			}
			return nil, errSyntax
		}
	case c == '"':
		return p.str()
	case c == 't':
		return p.lit("true", true)
	case c == 'f':
		return p.lit("false", false)
	case c == 'n':
		return p.lit("null", nil)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, errSyntax
}

func (p *jsonParser) lit(word string, v any) (any, error) {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return nil, errSyntax
	}
	p.i += len(word)
	return v, nil
}

func (p *jsonParser) number() (any, error) {
	start := p.i
	float := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' {
			p.i++
			continue
		}
		if c == '.' || c == 'e' || c == 'E' {
			float = true
			p.i++
			continue
		}
		break
	}
	s := string(p.b[start:p.i])
	if !float {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			if n >= -1<<31 && n < 1<<31 {
				return int32(n), nil
			}
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, errSyntax
	}
	return f, nil
}

func (p *jsonParser) str() (string, error) {
	start := p.i
	p.i++
	escaped := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '\\' {
			escaped = true
			p.i += 2
			continue
		}
		if c == '"' {
			p.i++
			raw := p.b[start:p.i]
			if !escaped {
				if !utf8.Valid(raw) {
					return "", errSyntax
				}
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", errSyntax
			}
			return s, nil
		}
		if c < 0x20 {
			return "", errSyntax
		}
		p.i++
	}
	return "", errSyntax
}

func (p *jsonParser) object(depth int) (any, error) {
	start := p.i
	p.i++
	d := bson.D{}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return d, nil
	}
	for first := true; ; first = false {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, errSyntax
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if first && key == "$date" {
			// The common typed value, read here: {"$date":"<RFC 3339>"}.
			save := p.i
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == ':' {
				p.i++
				p.ws()
				if p.i < len(p.b) && p.b[p.i] == '"' {
					if ts, err := p.str(); err == nil {
						p.ws()
						if p.i < len(p.b) && p.b[p.i] == '}' {
							if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
								p.i++
								return bson.NewDateTimeFromTime(t), nil
							}
						}
					}
				}
			}
			p.i = save
		}
		if first && len(key) > 0 && key[0] == '$' {
			// A typed value: let bson read the whole object.
			p.i = start
			end, err := p.skipValue()
			if err != nil {
				return nil, err
			}
			return typedValue(p.b[start:end])
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, errSyntax
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		d = append(d, bson.E{Key: key, Value: v})
		p.ws()
		if p.i >= len(p.b) {
			return nil, errSyntax
		}
		if p.b[p.i] == ',' {
			p.i++
			continue
		}
		if p.b[p.i] == '}' {
			p.i++
			return d, nil
		}
		return nil, errSyntax
	}
}

// skipValue moves past one JSON value and returns where it ended.
func (p *jsonParser) skipValue() (int, error) {
	depth := 0
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '"':
			if _, err := p.str(); err != nil {
				return 0, err
			}
			if depth == 0 {
				return p.i, nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				p.i++
				return p.i, nil
			}
		}
		p.i++
	}
	return 0, errSyntax
}

func typedValue(raw []byte) (any, error) {
	buf := make([]byte, 0, len(raw)+6)
	buf = append(buf, `{"v":`...)
	buf = append(buf, raw...)
	buf = append(buf, '}')
	var d bson.D
	if err := bson.UnmarshalExtJSON(buf, false, &d); err != nil {
		return nil, err
	}
	return d[0].Value, nil
}
