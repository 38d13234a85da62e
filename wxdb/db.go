package wxdb

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fnhq/fn/internal/randid"
)

// Caller is who sends a database request: the function's user (OpenID etc.), and Client when
// the request comes from a mini-program rather than from a cloud function.
type Caller struct {
	OpenID, AppID, UnionID string
	Client                 bool
}

// Limits.
const (
	// defaultLimit and maxLimit are the server SDK's: get returns 100 documents unless limit
	// says otherwise, and the SDK itself caps limit at 1000 (@cloudbase/database src/query.ts);
	// this server honours up to 1000 too.
	defaultLimit = 100
	maxLimit     = 1000
	// Mini-program clients get 20 (the platform's client limit).
	clientLimit = 20
	// maxDocSize is MongoDB's and the platform's document limit.
	maxDocSize = 16 << 20
	// maxDepth bounds document nesting (MongoDB allows 100 levels).
	maxDepth = 100
	// maxReply bounds the documents of one answer.
	maxReply = 64 << 20
	// maxInsert bounds one insertDocument batch.
	maxInsert = 1000
	// maxOffset bounds skip.
	maxOffset = 1_000_000
	// txIdle is how long an unfinished transaction lives without requests.
	txIdle = 30 * time.Second
	// maxTx bounds the transactions open at once.
	maxTx = 1000
)

// DB is the cloud database of every environment in one file.
type DB struct {
	be       Backend
	now      func() time.Time
	lockWait time.Duration

	mu      sync.RWMutex // writers exclusive; readers shared
	seq     atomic.Int64 // the last committed version seen
	txs     map[string]*txState
	history map[docRef][]histEntry
	txDone  chan struct{} // closed (and replaced) whenever a transaction ends
	waiting atomic.Int32  // plain writes waiting for a transaction, for tests
}

type docRef struct {
	cid int64
	key string
}

// histEntry keeps a document's state that a later write replaced, for transactions that
// started before that write (snapshot reads).
type histEntry struct {
	until int64  // the version that replaced it
	doc   []byte // nil: the document did not exist
}

type txState struct {
	id     string
	env    string
	start  int64
	last   time.Time
	writes map[docRef]*txWrite
	order  []docRef
	mu     sync.Mutex
}

type txWrite struct {
	coll string
	doc  bson.D // nil deletes
}

// Open opens (creating if needed) the database file at path: SQLite in WAL mode, files 0600.
func Open(path string) (*DB, error) {
	be, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	return newDB(be)
}

func newDB(be Backend) (*DB, error) {
	seq, err := be.LastSeq(context.Background())
	if err != nil {
		be.Close()
		return nil, err
	}
	db := &DB{be: be, now: time.Now, txs: map[string]*txState{}, history: map[docRef][]histEntry{}, txDone: make(chan struct{}), lockWait: lockWait}
	db.seq.Store(seq)
	return db, nil
}

// Close closes the file.
func (db *DB) Close() error { return db.be.Close() }

// request is the body the SDK posts for every database action (the fields it sends are listed
// in doc.go); EJSON values arrive as strings.
type request struct {
	Action         string          `json:"action"`
	CollectionName string          `json:"collectionName"`
	Query          json.RawMessage `json:"query"`
	QueryType      string          `json:"queryType"`
	Order          json.RawMessage `json:"order"`
	Offset         json.RawMessage `json:"offset"`
	Limit          json.RawMessage `json:"limit"`
	Projection     json.RawMessage `json:"projection"`
	Data           json.RawMessage `json:"data"`
	Multi          *bool           `json:"multi"`
	Merge          *bool           `json:"merge"`
	Upsert         *bool           `json:"upsert"`
	TransactionID  string          `json:"transactionId"`
	ID             json.RawMessage `json:"_id"` // the legacy *InTransaction actions
	Stages         []struct {
		StageKey   string          `json:"stageKey"`
		StageValue json.RawMessage `json:"stageValue"`
	} `json:"stages"`
}

// Handle answers one database action from the SDK's /admin request body. ok is false when
// action is not a database action (the caller answers it some other way).
func (db *DB) Handle(ctx context.Context, env string, caller Caller, action string, body json.RawMessage) (reply json.RawMessage, ok bool) {
	if !strings.HasPrefix(action, "database.") {
		return nil, false
	}
	requestID := randid.Hex(16)
	var req request
	var data any
	err := error(nil)
	if e := json.Unmarshal(body, &req); e != nil {
		err = badParam("the request body is not a JSON object: %v", e)
	} else {
		data, err = db.dispatch(ctx, env, caller, action, &req)
	}
	var out map[string]any
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = errf(CodeRequestFailed, "%v", err)
		}
		out = map[string]any{"code": e.Code, "message": e.Message, "requestId": requestID}
	} else if m, isMap := data.(map[string]any); isMap && m["\x00top"] != nil {
		delete(m, "\x00top")
		m["requestId"] = requestID
		out = m
	} else {
		out = map[string]any{"requestId": requestID, "data": data}
	}
	b, _ := json.Marshal(out)
	return b, true
}

func (db *DB) dispatch(ctx context.Context, env string, caller Caller, action string, req *request) (any, error) {
	switch action {
	case "database.startTransaction":
		return db.startTx(env)
	case "database.commitTransaction":
		return db.commitTx(ctx, env, req.TransactionID)
	case "database.abortTransaction":
		return db.abortTx(env, req.TransactionID)
	}
	if err := checkCollectionName(req.CollectionName); err != nil {
		return nil, err
	}
	if _, legacy := legacyActions[action]; legacy {
		// answered by the current action, whose checks (the client's among them) apply
		return db.handleLegacy(ctx, env, caller, action, req)
	}
	if caller.Client && req.QueryType != "DOC" && (action == "database.modifyDocument" || action == "database.removeDocument" || action == "database.modifyAndReturnDoc") {
		return nil, errf("DATABASE_PERMISSION_DENIED", "where().update() and where().remove() are only available to cloud functions")
	}
	switch action {
	case "database.getDocument":
		return db.getDocument(ctx, env, caller, req)
	case "database.insertDocument":
		return db.waitForLocks(ctx, func() (any, error) { return db.insertDocument(ctx, env, caller, req) })
	case "database.modifyDocument":
		return db.waitForLocks(ctx, func() (any, error) { return db.modifyDocument(ctx, env, caller, req) })
	case "database.removeDocument":
		return db.waitForLocks(ctx, func() (any, error) { return db.removeDocument(ctx, env, req) })
	case "database.calculateDocument":
		return db.countDocument(ctx, env, req)
	case "database.aggregateDocuments":
		return db.aggregate(ctx, env, req)
	case "database.aggregate":
		// the older databases (0.9.x, 1.0.x) JSON.parse data.list: one string of the EJSON strings
		out, err := db.aggregate(ctx, env, req)
		if err != nil {
			return nil, err
		}
		m := out.(map[string]any)
		b, _ := json.Marshal(m["list"])
		m["list"] = string(b)
		return m, nil
	case "database.addCollection":
		return db.addCollection(ctx, env, caller, req.CollectionName)
	case "database.modifyAndReturnDoc":
		return db.waitForLocks(ctx, func() (any, error) { return db.modifyAndReturn(ctx, env, caller, req) })
	case "database.getInTransaction", "database.updateDocInTransaction", "database.deleteDocInTransaction", "database.insertDocInTransaction":
		return db.legacyTx(ctx, env, caller, action, req)
	case "database.watch", "database.realtime":
		return nil, errf(CodeWatchUnsupported, "watch is only available to mini-program clients")
	}
	return nil, badCommand("unknown database action %s", action)
}

var collectionNameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_\-.]{1,128}$`) })

// checkCollectionName allows letters, digits, '_', '-' and '.', at most 128 bytes.
func checkCollectionName(name string) error {
	if name == "" {
		return badParam("collectionName is required")
	}
	if !collectionNameRe().MatchString(name) {
		return badParam("invalid collection name %q (letters, digits, '_', '-', '.'; at most 128)", name)
	}
	return nil
}

// ejsonString reads a field that carries an EJSON string ("" or absent: empty).
func ejsonString(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		// Accept a JSON object as well (raw HTTP clients).
		if len(raw) > 0 && (raw[0] == '{' || raw[0] == '[') {
			return string(raw), nil
		}
		return "", badParam("%s must be an EJSON string", field)
	}
	return s, nil
}

// parseEJSON decodes an EJSON object.
func parseEJSON(s, field string) (bson.D, error) {
	if strings.TrimSpace(s) == "" {
		return bson.D{}, nil
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
		return nil, badParam("malformed EJSON in %s: %v", field, err)
	}
	if depth(d, 0) > maxDepth {
		return nil, badParam("%s is nested deeper than %d levels", field, maxDepth)
	}
	return d, nil
}

// parseEJSONValue decodes any EJSON value (stage values may be strings or numbers).
func parseEJSONValue(raw json.RawMessage, field string) (any, error) {
	s := string(raw)
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		s = str
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(`{"v":`+s+`}`), false, &d); err != nil || len(d) != 1 {
		return nil, badParam("malformed EJSON in %s", field)
	}
	if depth(d[0].Value, 0) > maxDepth {
		return nil, badParam("%s is nested deeper than %d levels", field, maxDepth)
	}
	return d[0].Value, nil
}

func depth(v any, d int) int {
	if d > maxDepth {
		return d
	}
	m := d
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			if n := depth(e.Value, d+1); n > m {
				m = n
			}
		}
	case bson.A:
		for _, e := range x {
			if n := depth(e, d+1); n > m {
				m = n
			}
		}
	}
	return m
}

func optInt(raw json.RawMessage, field string, def, max int) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) || f < 0 {
		return 0, badParam("%s must be a non-negative integer", field)
	}
	if f == 0 && field == "limit" {
		return def, nil
	}
	if f > float64(max) {
		return max, nil
	}
	return int(f), nil
}

// checkStoredDoc validates a document to be stored: field names, nesting, size.
func checkStoredDoc(d bson.D) error {
	if depth(d, 0) > maxDepth {
		return badParam("document is nested deeper than %d levels", maxDepth)
	}
	return checkFieldNames(d, "")
}

func checkFieldNames(v any, at string) error {
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			name := e.Key
			if name == "" {
				return badParam("empty field name in %s", orRoot(at))
			}
			if strings.HasPrefix(name, "$") {
				return badParam("field name %q in %s may not start with '$'", name, orRoot(at))
			}
			if strings.Contains(name, ".") {
				return badParam("field name %q in %s may not contain '.'", name, orRoot(at))
			}
			if err := checkFieldNames(e.Value, joinPath(at, name)); err != nil {
				return err
			}
		}
	case bson.A:
		for i, e := range x {
			if err := checkFieldNames(e, joinPath(at, itoa(i))); err != nil {
				return err
			}
		}
	}
	return nil
}

func orRoot(p string) string {
	if p == "" {
		return "the document"
	}
	return p
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// encodeDoc is the stored (and answered) form: relaxed Extended JSON.
func encodeDoc(d bson.D) ([]byte, error) {
	b, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		return nil, badParam("cannot encode document: %v", err)
	}
	if len(b) > maxDocSize {
		return nil, errf(CodeRequestFailed, "document is larger than 16 MB (%d bytes)", len(b))
	}
	return b, nil
}

func decodeDoc(b []byte) (bson.D, error) {
	d, err := decodeStored(b)
	if err != nil {
		return nil, errf(CodeRequestFailed, "stored document is corrupt: %v", err)
	}
	return d, nil
}

// idKey is the stored key of an _id: strings as they are, other values tagged.
func idKey(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", badParam("_id cannot be an empty string")
		}
		if len(x) > 1024 {
			return "", badParam("_id longer than 1024 bytes")
		}
		return x, nil
	case int32, int64, float64:
		f, _ := toFloat(x)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return "\x01n" + itoa64(int64(f)), nil
		}
		return "\x01f" + strconv.FormatFloat(f, 'g', -1, 64), nil
	case bson.ObjectID:
		return "\x01o" + x.Hex(), nil
	}
	return "", badParam("_id must be a string or a number, not %s", typeName(v))
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// objectMark prefixes a path that held a document or a typed value ({"$date": ...} and the
// like): conditions on it still push down, sorting by it does not.
const objectMark = "\x00o:"

// boolMark prefixes a path that held a boolean: SQLite sees booleans as 0 and 1, so sorting by
// it needs an explicit type rank (and cannot use the index).
const boolMark = "\x00b:"

// impurePaths lists the paths in d whose values defeat SQL pushdown.
func impurePaths(v any, at string, out *[]string) {
	switch x := v.(type) {
	case bson.D:
		if at != "" {
			*out = append(*out, objectMark+at)
		}
		for _, e := range x {
			impurePaths(e.Value, joinPath(at, e.Key), out)
		}
	case bson.A:
		*out = append(*out, at)
		for _, e := range x {
			if d, ok := e.(bson.D); ok {
				impurePaths(d, at, out)
			}
		}
	case bson.Decimal128:
		*out = append(*out, at)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			*out = append(*out, at)
		}
	case bool:
		*out = append(*out, boolMark+at)
	case nil, string, int32, int64:
	default:
		*out = append(*out, objectMark+at)
	}
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
