package wxdb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
)

// Export writes every document of a collection as JSON Lines, one relaxed Extended JSON object
// per line (the CloudBase console's export format: dates as {"$date": ...}). It returns the
// number of documents written.
func (db *DB) Export(ctx context.Context, env, coll string, w io.Writer) (int, error) {
	if err := checkCollectionName(coll); err != nil {
		return 0, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	cid, err := db.collection(ctx, env, coll, false)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	n := 0
	err = db.be.Scan(ctx, cid, nil, nil, func(r Row) (bool, error) {
		if _, err := bw.Write(r.Doc); err != nil {
			return false, err
		}
		if err := bw.WriteByte('\n'); err != nil {
			return false, err
		}
		n++
		return true, nil
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// ImportMode says what Import does with a document whose _id exists: ImportInsert fails the
// import, ImportUpsert replaces the document.
type ImportMode int

const (
	ImportInsert ImportMode = iota
	ImportUpsert
)

// maxImportLine bounds one line of an import (a document is at most 16 MB).
const maxImportLine = maxDocSize + 1024

// Import reads JSON Lines (Extended JSON, relaxed or canonical) into a collection, creating it
// when missing. Documents without _id get one. It is all or nothing: a bad line (reported with
// its number) imports nothing. It returns the number of documents imported.
func (db *DB) Import(ctx context.Context, env, coll string, r io.Reader, mode ImportMode) (int, error) {
	if err := checkCollectionName(coll); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxImportLine)
	var items []importItem
	seen := map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		d, err := parseEJSON(text, fmt.Sprintf("line %d", line))
		if err != nil {
			return 0, err
		}
		d, key, err := db.prepareInsert(d, Caller{})
		if err != nil {
			return 0, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, dup := seen[key]; dup {
			return 0, badParam("line %d: _id repeats line %d", line, prev)
		}
		seen[key] = line
		b, err := encodeDoc(d)
		if err != nil {
			return 0, fmt.Errorf("line %d: %w", line, err)
		}
		var imp []string
		impurePaths(d, "", &imp)
		items = append(items, importItem{key, b, dedupe(imp)})
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading line %d: %w", line+1, err)
	}
	n, err := db.waitForLocks(ctx, func() (any, error) { return db.storeImport(ctx, env, coll, items, mode) })
	if err != nil {
		return 0, err
	}
	return n.(int), nil
}

type importItem struct {
	key string
	doc []byte
	imp []string
}

func (db *DB) storeImport(ctx context.Context, env, coll string, items []importItem, mode ImportMode) (int, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	cid, err := db.collection(ctx, env, coll, true)
	if err != nil {
		return 0, err
	}
	writes := make([]Write, 0, len(items))
	for _, it := range items {
		if mode == ImportInsert {
			if _, exists, err := db.be.Get(ctx, cid, it.key); err != nil {
				return 0, err
			} else if exists {
				return 0, dupKey(coll, it.key)
			}
		}
		writes = append(writes, Write{CID: cid, Key: it.key, Doc: it.doc, Impure: it.imp})
	}
	if err := db.commitWrites(ctx, writes); err != nil {
		return 0, err
	}
	return len(writes), nil
}

// Collections lists an environment's collections.
func (db *DB) Collections(ctx context.Context, env string) ([]string, error) {
	return db.be.Collections(ctx, env)
}
