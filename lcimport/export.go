package lcimport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fnhq/fn/store"
)

// ExportFormat is how Export writes each class.
type ExportFormat string

const (
	// JSONL is LeanCloud's console export: one object per line, <Class>.jsonl.
	JSONL ExportFormat = "jsonl"
	// JSONArray is a JSON array per class, <Class>.json (LeanCloud's console import reads it).
	JSONArray ExportFormat = "json"
)

// ExportOptions say what Export writes.
type ExportOptions struct {
	Format  ExportFormat // JSONL when empty
	Classes []string     // all when empty
}

// Export writes a store's objects into dir, one file per class, in LeanCloud's encoding: what
// an import read comes out as it went in (users' salt and password, bcryptPassword for hashes
// made by fn, sessionToken, relation tables as _Join:<key>:<Class> rows). It returns the number
// of objects per class. Files are written whole under a temporary name and renamed.
func Export(ctx context.Context, st store.Store, dir string, opts ExportOptions) (map[string]int, error) {
	format := opts.Format
	if format == "" {
		format = JSONL
	}
	if format != JSONL && format != JSONArray {
		return nil, fmt.Errorf("unknown export format %q (jsonl or json)", format)
	}
	classes := opts.Classes
	if len(classes) == 0 {
		var err error
		if classes, err = st.Classes(ctx); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, c := range classes {
		if !ValidClass(c) {
			return out, fmt.Errorf("%w: class name %q", ErrInvalid, c)
		}
		objs, err := st.Scan(ctx, c)
		if err != nil {
			return out, err
		}
		name := filepath.Join(dir, c+"."+string(format))
		if err := writeClassFile(name, objs, format); err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out[c] = len(objs)
	}
	return out, nil
}

func writeClassFile(name string, objs []*store.Object, format ExportFormat) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".export-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 256<<10)
	if err := WriteObjects(w, objs, format); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// WriteObjects writes objects of one class in LeanCloud's export encoding.
func WriteObjects(w io.Writer, objs []*store.Object, format ExportFormat) error {
	if format == JSONArray {
		if _, err := io.WriteString(w, "["); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i, o := range objs {
		if format == JSONArray && i > 0 {
			if _, err := io.WriteString(w, ","); err != nil {
				return err
			}
		}
		if err := enc.Encode(ExportJSON(o)); err != nil {
			return err
		}
	}
	if format == JSONArray {
		_, err := io.WriteString(w, "]\n")
		return err
	}
	return nil
}

// ExportJSON is one object as LeanCloud's export has it.
func ExportJSON(o *store.Object) map[string]any {
	out := make(map[string]any, len(o.Fields)+3)
	for k, v := range o.Fields {
		switch k {
		case FieldLCSalt:
			out["salt"] = v
		case FieldLCPassword:
			out["password"] = v
		case FieldLCSessionToken:
			out["sessionToken"] = v
		case FieldBcrypt:
			if _, lc := o.Fields[FieldLCPassword]; !lc {
				out["bcryptPassword"] = v
			}
		default:
			if strings.HasPrefix(k, "_") {
				continue // fn's own hidden fields (_lc_url) stay home
			}
			if rel, ok := v.(map[string]any); ok && rel["__type"] == "Relation" {
				// the related objects travel in the _Join table, as LeanCloud keeps them
				v = map[string]any{"__type": "Relation", "className": rel["className"]}
			}
			out[k] = v
		}
	}
	out["objectId"] = o.ID
	out["createdAt"] = o.CreatedAt.UTC().Format(isoLayout)
	out["updatedAt"] = o.UpdatedAt.UTC().Format(isoLayout)
	return out
}

const isoLayout = "2006-01-02T15:04:05.000Z"
