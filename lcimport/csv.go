package lcimport

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvSource reads LeanCloud's typed CSV: row 1 the types (string, int, long, number, double,
// boolean, date, file, array, object, geopoint, pointer:<Class>), row 2 the field names, then
// one object per row. A relation table (_Join:<key>:<Class>) has no header: each row is
// owningId,relatedId.
type csvSource struct {
	r      *csv.Reader
	lt     *lineTracker
	closer io.Closer
	name   string
	class  string
	types  []string
	names  []string
	join   bool
}

var csvTypes = map[string]bool{"string": true, "int": true, "long": true, "number": true, "double": true, "boolean": true,
	"date": true, "file": true, "array": true, "object": true, "geopoint": true}

func newCSV(rc io.ReadCloser, name, class string) (Source, error) {
	lt := &lineTracker{r: rc}
	r := csv.NewReader(lt)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	s := &csvSource{r: r, lt: lt, closer: rc, name: name, class: class}
	if _, _, ok := JoinParts(class); ok {
		s.join = true
		return s, nil
	}
	types, err := r.Read()
	if err != nil {
		return nil, s.headerErr(1, err)
	}
	s.types = append([]string(nil), types...)
	if len(s.types) > 0 {
		s.types[0] = strings.TrimPrefix(s.types[0], "\ufeff")
	}
	for i, t := range s.types {
		t = strings.TrimSpace(t)
		s.types[i] = t
		lt := strings.ToLower(t)
		if strings.HasPrefix(lt, "pointer:") {
			if !ValidClass(t[len("pointer:"):]) {
				return nil, fmt.Errorf("%s:1: column %d: %w: pointer to %q, which is not a class name", name, i+1, ErrInvalid, t[len("pointer:"):])
			}
			s.types[i] = "pointer:" + t[len("pointer:"):]
			continue
		}
		if !csvTypes[lt] {
			return nil, fmt.Errorf("%s:1: column %d: %w: unknown column type %q (string, int, long, number, double, boolean, date, file, array, object, geopoint or pointer:<Class>)", name, i+1, ErrInvalid, truncate(t))
		}
		s.types[i] = lt
	}
	names, err := r.Read()
	if err != nil {
		return nil, s.headerErr(2, err)
	}
	if len(names) != len(s.types) {
		return nil, fmt.Errorf("%s:2: %w: %d field names for %d column types", name, ErrMalformed, len(names), len(s.types))
	}
	s.names = append([]string(nil), names...)
	for i, n := range s.names {
		s.names[i] = strings.TrimSpace(n)
	}
	return s, nil
}

func (s *csvSource) headerErr(line int, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s:%d: %w: a typed CSV starts with a row of column types and a row of field names", s.name, line, ErrTruncated)
	}
	return fmt.Errorf("%s:%d: %w: %v", s.name, line, ErrMalformed, err)
}

func (s *csvSource) Next(ctx context.Context) (Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		s.lt.budgetAt = s.lt.read
		row, err := s.r.Read()
		if errors.Is(err, io.EOF) {
			return Record{}, io.EOF
		}
		line, _ := s.r.FieldPos(0)
		pos := Position{File: s.name, Line: line}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					return Record{}, recordErr(Position{File: s.name, Line: pe.StartLine}, s.class, fmt.Errorf("%w: %v", ErrMalformed, err))
				}
				if pe.Err == csv.ErrQuote || pe.Err == csv.ErrBareQuote {
					// a quote left open runs to the end of the file
					return Record{}, &fatalError{recordErr(Position{File: s.name, Line: pe.StartLine}, s.class, fmt.Errorf("%w: %v", ErrMalformed, pe.Err))}
				}
			}
			if errors.Is(err, ErrTooLarge) {
				return Record{}, &fatalError{recordErr(pos, s.class, ErrTooLarge)}
			}
			return Record{}, fmt.Errorf("%s:%d: %w", s.name, line, err)
		}
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		if s.join {
			if len(row) != 2 {
				return Record{}, recordErr(pos, s.class, fmt.Errorf("%w: a relation row is owningId,relatedId; found %d columns", ErrMalformed, len(row)))
			}
			return Record{Class: s.class, Pos: pos, Fields: map[string]any{"owningId": strings.TrimSpace(row[0]), "relatedId": strings.TrimSpace(row[1])}}, nil
		}
		if len(row) != len(s.types) {
			return Record{}, recordErr(pos, s.class, fmt.Errorf("%w: %d columns, the header has %d", ErrMalformed, len(row), len(s.types)))
		}
		fields := map[string]any{}
		for i, cell := range row {
			if cell == "" {
				continue // an empty cell is an absent field
			}
			v, err := csvValue(s.types[i], s.names[i], cell)
			if err != nil {
				col, _ := s.r.FieldPos(i)
				return Record{}, recordErr(Position{File: s.name, Line: col}, s.class, fmt.Errorf("column %s: %w", s.names[i], err))
			}
			fields[s.names[i]] = v
		}
		return Record{Class: s.class, Fields: fields, Pos: pos}, nil
	}
}

func csvValue(typ, name, cell string) (any, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %q is not %s", ErrInvalid, truncate(cell), what) }
	switch typ {
	case "string":
		return cell, nil
	case "int", "long":
		n, err := strconv.ParseInt(strings.TrimSpace(cell), 10, 64)
		if err != nil {
			return nil, bad("an integer")
		}
		return float64(n), nil
	case "number", "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
		if err != nil {
			return nil, bad("a number")
		}
		return f, nil
	case "boolean":
		switch strings.ToLower(strings.TrimSpace(cell)) {
		case "true", "1", "yes":
			return true, nil
		case "false", "0", "no":
			return false, nil
		}
		return nil, bad("true or false")
	case "date":
		t, err := parseISO(strings.TrimSpace(cell))
		if err != nil {
			return nil, bad("an ISO 8601 date")
		}
		iso := t.UTC().Format("2006-01-02T15:04:05.000Z")
		if name == "createdAt" || name == "updatedAt" {
			return iso, nil
		}
		return map[string]any{"__type": "Date", "iso": iso}, nil
	case "file":
		if strings.HasPrefix(strings.TrimSpace(cell), "{") {
			var m map[string]any
			if json.Unmarshal([]byte(cell), &m) != nil {
				return nil, bad("a File")
			}
			return m, nil
		}
		return map[string]any{"__type": "File", "id": strings.TrimSpace(cell)}, nil
	case "array", "object":
		var v any
		if err := json.Unmarshal([]byte(cell), &v); err != nil {
			return nil, bad("JSON")
		}
		if _, isArr := v.([]any); typ == "array" && !isArr {
			return nil, bad("a JSON array")
		}
		if _, isObj := v.(map[string]any); typ == "object" && !isObj {
			return nil, bad("a JSON object")
		}
		return v, nil
	case "geopoint":
		parts := strings.Fields(cell)
		if len(parts) != 2 {
			return nil, bad(`"<longitude> <latitude>"`)
		}
		lng, err1 := strconv.ParseFloat(parts[0], 64)
		lat, err2 := strconv.ParseFloat(parts[1], 64)
		if err1 != nil || err2 != nil {
			return nil, bad(`"<longitude> <latitude>"`)
		}
		return map[string]any{"__type": "GeoPoint", "latitude": lat, "longitude": lng}, nil
	}
	if strings.HasPrefix(typ, "pointer:") {
		return map[string]any{"__type": "Pointer", "className": typ[len("pointer:"):], "objectId": strings.TrimSpace(cell)}, nil
	}
	return nil, fmt.Errorf("%w: column type %q", ErrInvalid, typ)
}

func (s *csvSource) Close() error { return s.closer.Close() }
