package lcimport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// bsonSource reads a mongodump collection file (<db>/<collection>.bson: BSON documents back to
// back) and maps LeanCloud's MongoDB field names to the REST encoding: _id → objectId,
// _created_at/_updated_at (or createdAt/updatedAt) → ISO strings, _acl or _rperm/_wperm → ACL,
// _p_<key> ("Class$id") → a Pointer, dates → Date, binary → Bytes. Documents already in the
// REST encoding ({"__type": …} sub-documents, ACL) pass through.
type bsonSource struct {
	br     *bufio.Reader
	closer io.Closer
	name   string
	class  string
	n      int
	buf    []byte
}

func newBSON(rc io.ReadCloser, name, class string) *bsonSource {
	return &bsonSource{br: bufio.NewReaderSize(rc, 256<<10), closer: rc, name: name, class: class}
}

func (s *bsonSource) Next(ctx context.Context) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	var head [4]byte
	_, err := io.ReadFull(s.br, head[:])
	if errors.Is(err, io.EOF) {
		return Record{}, io.EOF
	}
	s.n++
	// BSON has no lines: a position is the document's number in the file
	pos := Position{File: s.name + " document", Line: s.n}
	if err != nil {
		return Record{}, &fatalError{recordErr(pos, s.class, fmt.Errorf("%w: the file ends inside a document's length", ErrTruncated))}
	}
	size := int(binary.LittleEndian.Uint32(head[:]))
	if size < 5 {
		return Record{}, &fatalError{recordErr(pos, s.class, fmt.Errorf("%w: document length %d", ErrMalformed, size))}
	}
	if size > MaxObjectSize+(16<<10) {
		// the document cannot be skipped safely without trusting its length: stop here
		return Record{}, &fatalError{recordErr(pos, s.class, ErrTooLarge)}
	}
	if cap(s.buf) < size {
		s.buf = make([]byte, size)
	}
	doc := s.buf[:size]
	copy(doc, head[:])
	if _, err := io.ReadFull(s.br, doc[4:]); err != nil {
		return Record{}, &fatalError{recordErr(pos, s.class, fmt.Errorf("%w: the file ends inside a document", ErrTruncated))}
	}
	dec := bson.NewDecoder(bson.NewDocumentReader(bytes.NewReader(doc)))
	dec.DefaultDocumentMap()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return Record{}, recordErr(pos, s.class, fmt.Errorf("%w: %v", ErrMalformed, err))
	}
	fields, err := fromMongo(m)
	if err != nil {
		return Record{}, recordErr(pos, s.class, err)
	}
	return Record{Class: s.class, Fields: fields, Pos: pos}, nil
}

func (s *bsonSource) Close() error { return s.closer.Close() }

func isoOf(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// fromMongo turns a stored MongoDB document into the REST encoding.
func fromMongo(m map[string]any) (map[string]any, error) {
	out := map[string]any{}
	var rperm, wperm []any
	for k, v := range m {
		switch {
		case k == "_id":
			switch id := v.(type) {
			case bson.ObjectID:
				out["objectId"] = id.Hex()
			case string:
				out["objectId"] = id
			default:
				return nil, fmt.Errorf("%w: _id is a %T", ErrInvalid, v)
			}
		case k == "_created_at" || k == "createdAt" || k == "_updated_at" || k == "updatedAt":
			name := "createdAt"
			if strings.Contains(k, "pdated") {
				name = "updatedAt"
			}
			switch t := v.(type) {
			case bson.DateTime:
				out[name] = isoOf(t.Time())
			case time.Time:
				out[name] = isoOf(t)
			case string:
				out[name] = t
			default:
				return nil, fmt.Errorf("%w: %s is a %T", ErrInvalid, k, v)
			}
		case k == "_acl":
			acl, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: _acl is a %T", ErrInvalid, v)
			}
			out["ACL"] = mongoACL(acl)
		case k == "_rperm":
			rperm, _ = mongoValue(v).([]any)
		case k == "_wperm":
			wperm, _ = mongoValue(v).([]any)
		case strings.HasPrefix(k, "_p_"):
			ref, _ := v.(string)
			class, id, ok := strings.Cut(ref, "$")
			if !ok {
				return nil, fmt.Errorf("%w: pointer %s is %q, expected \"Class$objectId\"", ErrInvalid, k, truncate(ref))
			}
			out[k[3:]] = map[string]any{"__type": "Pointer", "className": class, "objectId": id}
		case k == "_session_token":
			out["sessionToken"] = v
		default:
			out[k] = mongoValue(v)
		}
	}
	if _, has := out["ACL"]; !has && (rperm != nil || wperm != nil) {
		acl := map[string]any{}
		grant := func(list []any, perm string) {
			for _, w := range list {
				if who, ok := w.(string); ok {
					e, _ := acl[who].(map[string]any)
					if e == nil {
						e = map[string]any{}
						acl[who] = e
					}
					e[perm] = true
				}
			}
		}
		grant(rperm, "read")
		grant(wperm, "write")
		out["ACL"] = acl
	}
	return out, nil
}

func mongoACL(acl map[string]any) map[string]any {
	out := map[string]any{}
	for who, p := range acl {
		pm, _ := p.(map[string]any)
		e := map[string]any{}
		for k, v := range pm {
			switch k {
			case "r", "read":
				e["read"] = v
			case "w", "write":
				e["write"] = v
			}
		}
		out[who] = e
	}
	return out
}

// mongoValue turns BSON values into JSON values with LeanCloud's types.
func mongoValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = mongoValue(e)
		}
		return out
	case bson.A:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mongoValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mongoValue(e)
		}
		return out
	case bson.DateTime:
		return map[string]any{"__type": "Date", "iso": isoOf(x.Time())}
	case time.Time:
		return map[string]any{"__type": "Date", "iso": isoOf(x)}
	case bson.Binary:
		return map[string]any{"__type": "Bytes", "base64": base64.StdEncoding.EncodeToString(x.Data)}
	case []byte:
		return map[string]any{"__type": "Bytes", "base64": base64.StdEncoding.EncodeToString(x)}
	case bson.ObjectID:
		return x.Hex()
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case float32:
		return float64(x)
	case bson.Decimal128:
		return x.String()
	}
	return v
}
