package wxdb

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The legacy wire format: wx-server-sdk 1.x (tcb-admin-node 1.22/1.23 → @cloudbase/database
// 0.9.x, dist/commonjs/{document,query,collection,aggregate}.js and serializer/*.js) sends the
// older action names with plain JSON values instead of EJSON strings:
//
//	database.addDocument     {collectionName, data: {...}, _id?}          → {data: {_id}}
//	database.queryDocument   {collectionName, query, queryType, order: [{field, direction}],
//	                         offset, limit (100 by default, capped at 1000), projection}
//	                                                                      → {data: {list: [{...}]}}
//	database.countDocument   {collectionName, query, queryType}           → {data: {total}}
//	database.updateDocument  update: {query, queryType, data: {$set: ...}, multi, merge: true, upsert: false}
//	                         set:    {query: {_id}, queryType: DOC, data: {...}, merge: false, upsert: true}
//	                                                                      → {data: {updated, upserted_id}}
//	                         (doc().set reads upserted_id, where().update() upsert_id)
//	database.deleteDocument  {collectionName, query, queryType, multi}    → {data: {deleted}}
//	database.aggregate       {collectionName, stages: [{stageKey, stageValue: JSON string}]}
//	                         → {data: {list: JSON string of an array of EJSON strings}} (0.9.x and
//	                         1.0.x, the database of wx-server-sdk 2.0–2.2, both JSON.parse it)
//	database.insertDocInTransaction {collectionName, transactionId, data: EJSON, _id?}
//	                                                                      → {inserted: "1", ok: "1"}
//
// Values (serializer/datatype.js): a Date is {$date: <ms>}, db.serverDate() {$date: {offset}},
// a RegExp or db.RegExp {$regex, $options}, geo values GeoJSON; where objects arrive flattened
// to dot paths with MongoDB's operators ($gt, $in, $and, ...), update data with $set, $inc, ...
// Answers carry documents as plain JSON the SDK's Util.formatResDocumentData reads back: dates as
// {$date: <ms>}.
var legacyActions = map[string]string{
	"database.addDocument":    "database.insertDocument",
	"database.queryDocument":  "database.getDocument",
	"database.countDocument":  "database.calculateDocument",
	"database.updateDocument": "database.modifyDocument",
	"database.deleteDocument": "database.removeDocument",
}

// legacyRequest turns a legacy body's plain JSON fields into the EJSON strings the current actions
// read; a field that already is a string (EJSON) is left as it is.
func legacyRequest(req *request) error {
	for _, f := range []struct {
		raw  *json.RawMessage
		name string
	}{{&req.Query, "query"}, {&req.Order, "order"}, {&req.Projection, "projection"}, {&req.Data, "data"}} {
		raw := bytes.TrimSpace(*f.raw)
		if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
			continue
		}
		v, err := legacyDecode(raw, f.name)
		if err != nil {
			return err
		}
		s, err := marshalEJSONValue(v)
		if err != nil {
			return badParam("%s: %v", f.name, err)
		}
		*f.raw, _ = json.Marshal(s)
	}
	return nil
}

// marshalEJSONValue writes a document or an array as canonical EJSON.
func marshalEJSONValue(v any) (string, error) {
	if a, ok := v.(bson.A); ok {
		b, err := bson.MarshalExtJSON(bson.D{{Key: "a", Value: a}}, true, false)
		if err != nil {
			return "", err
		}
		// {"a":[...]}: the array is everything between the first ':' and the final '}'
		i := bytes.IndexByte(b, ':')
		return string(bytes.TrimSpace(b[i+1 : len(b)-1])), nil
	}
	b, err := bson.MarshalExtJSON(v, true, false)
	return string(b), err
}

// legacyDecode reads plain JSON in the legacy value format, keeping key order.
func legacyDecode(raw []byte, field string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := legacyValue(dec, 0)
	if err != nil {
		return nil, badParam("malformed %s: %v", field, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badParam("malformed %s: data after the value", field)
	}
	return v, nil
}

func legacyValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested deeper than " + strconv.Itoa(maxDepth) + " levels")
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := t.(type) {
	case json.Delim:
		switch x {
		case '[':
			a := bson.A{}
			for dec.More() {
				v, err := legacyValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		case '{':
			d := bson.D{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := legacyValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				d = append(d, bson.E{Key: k, Value: v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return legacySpecial(d), nil
		}
		return nil, errors.New("unexpected " + x.String())
	case json.Number:
		if n, err := x.Int64(); err == nil {
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return int32(n), nil
			}
			return n, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return f, nil
	default: // string, bool, nil
		return x, nil
	}
}

// legacySpecial turns the legacy forms of dates, server dates and regular expressions into
// their values; any other object stays a document.
func legacySpecial(d bson.D) any {
	switch {
	case len(d) == 1 && d[0].Key == "$date":
		switch v := d[0].Value.(type) {
		case int32:
			return bson.DateTime(v)
		case int64:
			return bson.DateTime(v)
		case float64:
			return bson.DateTime(int64(v))
		case bson.D:
			if len(v) == 1 && v[0].Key == "offset" {
				return bson.D{{Key: "$tcb_server_date", Value: v}}
			}
		}
	case len(d) >= 1 && len(d) <= 2 && d[0].Key == "$regex":
		pat, ok := d[0].Value.(string)
		if !ok {
			return d
		}
		opts := ""
		if len(d) == 2 {
			o, ok := d[1].Value.(string)
			if d[1].Key != "$options" || !ok {
				return d
			}
			opts = o
		}
		return bson.Regex{Pattern: pat, Options: opts}
	}
	return d
}

// legacyJSON writes a stored value as the plain JSON the legacy SDK reads back.
func legacyJSON(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case bson.D:
		buf.WriteByte('{')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(e.Key)
			buf.Write(k)
			buf.WriteByte(':')
			if err := legacyJSON(buf, e.Value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case bson.A:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := legacyJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case bson.DateTime:
		buf.WriteString(`{"$date":` + strconv.FormatInt(int64(x), 10) + `}`)
	case int32:
		buf.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			buf.WriteString("null") // plain JSON has no NaN or infinity
		} else {
			buf.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	case bson.Regex:
		b, _ := json.Marshal(map[string]string{"$regex": x.Pattern, "$options": x.Options})
		buf.Write(b)
	case bson.ObjectID:
		buf.WriteString(`{"$oid":"` + x.Hex() + `"}`)
	case bson.Binary:
		buf.WriteString(`{"$binary":"` + base64.StdEncoding.EncodeToString(x.Data) + `"}`)
	case bson.Decimal128:
		b, _ := json.Marshal(x.String())
		buf.Write(b)
	case bson.Timestamp:
		buf.WriteString(`{"$timestamp":` + strconv.FormatUint(uint64(x.T), 10) + `}`)
	case nil, bson.Null, bson.Undefined:
		buf.WriteString("null")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

// legacyInsertData turns a legacy insert's document (EJSON text s, its _id in req.ID) into the
// one-document list the current insertDocument takes.
func legacyInsertData(req *request, s string) error {
	d, err := parseEJSON(s, "data")
	if err != nil {
		return err
	}
	if len(req.ID) > 0 && string(req.ID) != "null" {
		idv, err := legacyDecodeID(req.ID)
		if err != nil {
			return err
		}
		d = append(bson.D{{Key: "_id", Value: idv}}, removeKey(d, "_id")...)
	}
	one, err := marshalEJSONValue(d)
	if err != nil {
		return badParam("data: %v", err)
	}
	req.Data, _ = json.Marshal([]string{one})
	return nil
}

// handleLegacy answers a legacy action through the current one it names.
func (db *DB) handleLegacy(ctx context.Context, env string, caller Caller, action string, req *request) (any, error) {
	if err := legacyRequest(req); err != nil {
		return nil, err
	}
	modern := legacyActions[action]
	if action == "database.addDocument" {
		if len(req.Data) == 0 {
			return nil, badParam("data is required")
		}
		var s string
		if err := json.Unmarshal(req.Data, &s); err != nil {
			return nil, badParam("data must be an object")
		}
		if err := legacyInsertData(req, s); err != nil {
			return nil, err
		}
	}
	out, err := db.dispatch(ctx, env, caller, modern, req)
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	switch action {
	case "database.addDocument":
		ids, _ := m["insertedIds"].([]any)
		if len(ids) != 1 {
			return nil, errf(CodeRequestFailed, "the document was not inserted")
		}
		return map[string]any{"_id": ids[0]}, nil
	case "database.queryDocument":
		strs, _ := m["list"].([]string)
		list := make([]json.RawMessage, 0, len(strs))
		for _, s := range strs {
			var d bson.D
			if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
				return nil, errf(CodeRequestFailed, "cannot read a stored document: %v", err)
			}
			var buf bytes.Buffer
			if err := legacyJSON(&buf, d); err != nil {
				return nil, errf(CodeRequestFailed, "cannot encode a document: %v", err)
			}
			list = append(list, buf.Bytes())
		}
		return map[string]any{"list": list}, nil
	case "database.updateDocument":
		if id, ok := m["upsert_id"]; ok {
			m["upserted_id"] = id
		}
	}
	return out, nil
}

// legacyDecodeID reads a document id sent as plain JSON (a string or a number).
func legacyDecodeID(raw json.RawMessage) (any, error) {
	v, err := legacyDecode(raw, "_id")
	if err != nil {
		return nil, err
	}
	switch v.(type) {
	case string, int32, int64, float64:
		return v, nil
	}
	return nil, badParam("_id must be a string or a number")
}

func removeKey(d bson.D, key string) bson.D {
	out := d[:0:0]
	for _, e := range d {
		if e.Key != key {
			out = append(out, e)
		}
	}
	return out
}
