package wxdb

import (
	"context"
	"encoding/json"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fnhq/fn/internal/randid"
)

// Transactions are snapshot-isolated: a transaction reads the database as of its start (plus
// its own writes) and buffers its writes. A document a transaction has written is locked
// against plain writes, which wait (up to lockWait) for the transaction to commit or abort, as
// on the platform. Between transactions it is optimistic: commit fails with
// DATABASE_TRANSACTION_CONFLICT when a document it writes was changed by someone else after it
// started (first committer wins). The conflict is reported by commitTransaction because that
// is the one error the SDK's runTransaction sees with its code intact and retries; a write in
// the callback that failed on a lock would reach the SDK without its code and not be retried.

// lockWait is how long a plain write waits for the transactions holding its documents.
const lockWait = 5 * time.Second

// lockedError tells a plain write to wait until a transaction ends (done is closed) and retry.
type lockedError struct{ done chan struct{} }

func (e *lockedError) Error() string { return "the document is locked by a transaction" }

// txEnded wakes the writes waiting for a transaction; db.mu is held.
func (db *DB) txEnded() {
	close(db.txDone)
	db.txDone = make(chan struct{})
}

// waitForLocks runs a plain write, waiting (up to lockWait in all) while a transaction holds one
// of its documents.
func (db *DB) waitForLocks(ctx context.Context, op func() (any, error)) (any, error) {
	timer := time.NewTimer(db.lockWait)
	defer timer.Stop()
	for {
		res, err := op()
		le, locked := err.(*lockedError)
		if !locked {
			return res, err
		}
		db.waiting.Add(1)
		select {
		case <-le.done:
			db.waiting.Add(-1)
		case <-timer.C:
			db.waiting.Add(-1)
			return nil, errf(CodeRequestFailed, "the document is locked by a transaction; gave up after %s", db.lockWait)
		case <-ctx.Done():
			db.waiting.Add(-1)
			return nil, ctx.Err()
		}
	}
}

func conflict() error {
	return errf(CodeTxConflict, "[ResourceUnavailable.TransactionConflict] Transaction is conflict, maybe resource operated by others. Please check your request, but if the problem cannot be solved, contact us.")
}

func (db *DB) expireTxs(now time.Time) {
	for id, tx := range db.txs {
		if now.Sub(tx.last) > txIdle {
			delete(db.txs, id)
			db.txEnded()
		}
	}
	db.pruneHistory()
}

// pruneHistory drops replaced states that no open transaction can read any more.
func (db *DB) pruneHistory() {
	if len(db.txs) == 0 {
		clear(db.history)
		return
	}
	oldest := db.seq.Load()
	for _, tx := range db.txs {
		if tx.start < oldest {
			oldest = tx.start
		}
	}
	for ref, hs := range db.history {
		keep := hs[:0]
		for _, h := range hs {
			if h.until > oldest {
				keep = append(keep, h)
			}
		}
		if len(keep) == 0 {
			delete(db.history, ref)
		} else {
			db.history[ref] = keep
		}
	}
}

func (db *DB) startTx(env string) (any, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	now := db.now()
	if err := db.refresh(context.Background()); err != nil {
		return nil, err
	}
	db.expireTxs(now)
	if len(db.txs) >= maxTx {
		return nil, errf(CodeRequestFailed, "too many open transactions (%d)", maxTx)
	}
	tx := &txState{id: randid.Hex(16), env: env, start: db.seq.Load(), last: now, writes: map[docRef]*txWrite{}}
	db.txs[tx.id] = tx
	return map[string]any{"\x00top": true, "transactionId": tx.id}, nil
}

func (db *DB) tx(env, id string) (*txState, error) {
	tx := db.txs[id]
	if tx == nil || tx.env != env {
		return nil, errf(CodeTxNotExist, "transaction %q does not exist (committed, aborted, or idle longer than %s)", id, txIdle)
	}
	tx.last = db.now()
	return tx, nil
}

func (db *DB) abortTx(env, id string) (any, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, err := db.tx(env, id); err != nil {
		return nil, err
	}
	delete(db.txs, id)
	db.txEnded()
	db.pruneHistory()
	return map[string]any{}, nil
}

func (db *DB) commitTx(ctx context.Context, env, id string) (any, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.tx(env, id)
	if err != nil {
		return nil, err
	}
	delete(db.txs, id)
	defer db.txEnded()
	defer db.pruneHistory()
	var writes []Write
	for _, ref := range tx.order {
		w := tx.writes[ref]
		cur, exists, err := db.be.Get(ctx, ref.cid, ref.key)
		if err != nil {
			return nil, err
		}
		if (exists && cur.Version > tx.start) || db.changedSince(ref, tx.start) {
			return nil, conflict()
		}
		if w.doc == nil {
			if exists {
				writes = append(writes, Write{CID: ref.cid, Key: ref.key})
			}
			continue
		}
		b, err := encodeDoc(w.doc)
		if err != nil {
			return nil, err
		}
		var imp []string
		impurePaths(w.doc, "", &imp)
		writes = append(writes, Write{CID: ref.cid, Key: ref.key, Doc: b, Impure: dedupe(imp)})
	}
	// Transactions decide among themselves at commit (first committer wins), so a commit
	// never waits for another transaction.
	if err := db.commit(ctx, writes, false); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (db *DB) changedSince(ref docRef, start int64) bool {
	for _, h := range db.history[ref] {
		if h.until > start {
			return true
		}
	}
	return false
}

// snapshot is a document as the transaction sees it.
func (db *DB) snapshot(ctx context.Context, tx *txState, ref docRef) (bson.D, error) {
	if w, ok := tx.writes[ref]; ok {
		if w.doc == nil {
			return nil, nil
		}
		return cloneDoc(w.doc), nil
	}
	for _, h := range db.history[ref] {
		if h.until > tx.start {
			if h.doc == nil {
				return nil, nil
			}
			return decodeDoc(h.doc)
		}
	}
	r, ok, err := db.be.Get(ctx, ref.cid, ref.key)
	if err != nil || !ok {
		return nil, err
	}
	return decodeDoc(r.Doc)
}

func (db *DB) txRef(ctx context.Context, env, coll string, id any, create bool) (docRef, error) {
	key, err := idKey(id)
	if err != nil {
		return docRef{}, err
	}
	cid, err := db.collection(ctx, env, coll, create)
	if err != nil {
		return docRef{}, err
	}
	return docRef{cid, key}, nil
}

// maxTxWrites bounds the documents one transaction may write.
const maxTxWrites = 1000

func (tx *txState) put(ref docRef, coll string, d bson.D) error {
	if _, ok := tx.writes[ref]; !ok {
		if len(tx.order) >= maxTxWrites {
			return errf(CodeRequestFailed, "a transaction may write at most %d documents", maxTxWrites)
		}
		tx.order = append(tx.order, ref)
	}
	tx.writes[ref] = &txWrite{coll: coll, doc: d}
	return nil
}

func (db *DB) txGet(ctx context.Context, env, txID, coll string, id any) (bson.D, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.tx(env, txID)
	if err != nil {
		return nil, err
	}
	ref, err := db.txRef(ctx, env, coll, id, false)
	if err != nil {
		return nil, err
	}
	return db.snapshot(ctx, tx, ref)
}

func (db *DB) txInsert(ctx context.Context, env, txID, coll string, caller Caller, d bson.D, key string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.tx(env, txID)
	if err != nil {
		return err
	}
	id, _ := lookupField(d, "_id")
	ref, err := db.txRef(ctx, env, coll, id, !caller.Client)
	if err != nil {
		return err
	}
	cur, err := db.snapshot(ctx, tx, ref)
	if err != nil {
		return err
	}
	if cur != nil {
		return dupKey(coll, key)
	}
	if err := checkStoredDoc(d); err != nil {
		return err
	}
	if _, err := encodeDoc(d); err != nil {
		return err
	}
	return tx.put(ref, coll, d)
}

func (db *DB) txModify(ctx context.Context, env, txID, coll string, caller Caller, id any, data bson.D, upd *Update, upsert bool) (any, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.tx(env, txID)
	if err != nil {
		return nil, err
	}
	ref, err := db.txRef(ctx, env, coll, id, upsert && !caller.Client)
	if err != nil {
		return nil, err
	}
	cur, err := db.snapshot(ctx, tx, ref)
	if err != nil {
		return nil, err
	}
	now := db.now()
	var nd bson.D
	out := map[string]any{}
	switch {
	case cur != nil && upd != nil:
		if nd, err = upd.Apply(cur, -1, now); err != nil {
			return nil, err
		}
	case cur != nil:
		nd = replacement(cur, data, now)
	case !upsert:
		out["updated"] = 0
		return out, nil
	default:
		base := bson.D{{Key: "_id", Value: id}}
		if upd != nil {
			if nd, err = upd.Apply(base, -1, now); err != nil {
				return nil, err
			}
		} else {
			nd = append(base, resolveServerDates(cloneDoc(data), now).(bson.D)...)
		}
		if nd, _, err = db.prepareInsert(nd, caller); err != nil {
			return nil, err
		}
		out["upsert_id"] = id
	}
	if err := checkStoredDoc(nd); err != nil {
		return nil, err
	}
	if _, err := encodeDoc(nd); err != nil {
		return nil, err
	}
	if err := tx.put(ref, coll, nd); err != nil {
		return nil, err
	}
	if cur != nil {
		out["updated"] = 1
	} else {
		out["updated"] = 0
	}
	return out, nil
}

func (db *DB) txRemove(ctx context.Context, env, txID, coll string, id any) (any, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx, err := db.tx(env, txID)
	if err != nil {
		return nil, err
	}
	ref, err := db.txRef(ctx, env, coll, id, false)
	if err != nil {
		return nil, err
	}
	cur, err := db.snapshot(ctx, tx, ref)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return map[string]any{"deleted": 0}, nil
	}
	if err := tx.put(ref, coll, nil); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": 1}, nil
}

// legacyTx serves the transaction actions of @cloudbase/database's older transaction.js
// (dist/commonjs/transaction.js): {_id} instead of a query, answers at the top level with
// EJSON strings.
func (db *DB) legacyTx(ctx context.Context, env string, caller Caller, action string, req *request) (any, error) {
	if action == "database.insertDocInTransaction" {
		return db.legacyTxInsert(ctx, env, caller, req)
	}
	var idv any
	var str string
	switch {
	case len(req.ID) > 0:
		if err := json.Unmarshal(req.ID, &str); err == nil {
			idv = str
		} else {
			var err error
			if idv, err = parseEJSONValue(req.ID, "_id"); err != nil {
				return nil, err
			}
		}
	case len(req.Query) > 0:
		// @cloudbase/database 0.9.x (wx-server-sdk 1.x) names the document by {_id: {$eq: id}}
		if err := legacyRequest(req); err != nil {
			return nil, err
		}
		spec, _, err := db.queryOf(req)
		if err != nil {
			return nil, err
		}
		if idv, err = docID(spec); err != nil {
			return nil, badParam("a transaction reads and writes single documents only: %v", err.(*Error).Message)
		}
		if eq, ok := idv.(bson.D); ok && len(eq) == 1 && eq[0].Key == "$eq" {
			idv = eq[0].Value
		}
		if _, ok := idv.(bson.D); ok {
			return nil, badParam("a transaction reads and writes single documents only: the query must be {_id: <id>} or {_id: {$eq: <id>}}")
		}
	default:
		return nil, badParam("_id is required")
	}
	switch action {
	case "database.getInTransaction":
		d, err := db.txGet(ctx, env, req.TransactionID, req.CollectionName, idv)
		if err != nil {
			return nil, err
		}
		s := "null"
		if d != nil {
			b, err := encodeDoc(d)
			if err != nil {
				return nil, err
			}
			s = string(b)
		}
		return map[string]any{"\x00top": true, "data": s}, nil
	case "database.deleteDocInTransaction":
		r, err := db.txRemove(ctx, env, req.TransactionID, req.CollectionName, idv)
		if err != nil {
			return nil, err
		}
		return map[string]any{"\x00top": true, "deleted": itoa(r.(map[string]any)["deleted"].(int))}, nil
	}
	ds, err := ejsonString(req.Data, "data")
	if err != nil {
		return nil, err
	}
	data, err := parseEJSON(ds, "data")
	if err != nil {
		return nil, err
	}
	upsert := req.Upsert != nil && *req.Upsert
	var upd *Update
	if !upsert {
		if upd, err = CompileUpdate(data); err != nil {
			return nil, err
		}
	} else if err := checkStoredDoc(data); err != nil {
		return nil, err
	}
	r, err := db.txModify(ctx, env, req.TransactionID, req.CollectionName, caller, idv, data, upd, upsert)
	if err != nil {
		return nil, err
	}
	m := r.(map[string]any)
	out := map[string]any{"\x00top": true, "updated": itoa(m["updated"].(int))}
	if id, ok := m["upsert_id"]; ok {
		b, _ := json.Marshal(map[string]any{"_id": id})
		out["upserted"] = string(b)
	}
	return out, nil
}

// legacyTxInsert is @cloudbase/database 0.9.x's database.insertDocInTransaction: {data: EJSON,
// _id?} answered with {inserted: "1", ok: "1"} at the top level.
func (db *DB) legacyTxInsert(ctx context.Context, env string, caller Caller, req *request) (any, error) {
	ds, err := ejsonString(req.Data, "data")
	if err != nil {
		return nil, err
	}
	if err := legacyInsertData(req, ds); err != nil {
		return nil, err
	}
	if _, err := db.dispatch(ctx, env, caller, "database.insertDocument", req); err != nil {
		return nil, err
	}
	return map[string]any{"\x00top": true, "inserted": "1", "ok": "1"}, nil
}
