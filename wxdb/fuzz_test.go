package wxdb

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzHandle feeds arbitrary queries, updates and pipelines to every action: whatever a client
// sends, Handle answers (with an error when it must) and never panics.
func FuzzHandle(f *testing.F) {
	f.Add("database.getDocument", `{"a":{"$elemMatch":{"b":{"$gt":1}}}}`, `{"$set":{"a.$.b":1}}`, `[{"stageKey":"$group","stageValue":"{\"_id\":\"$a\"}"}]`)
	f.Add("database.modifyDocument", `{"arr.k":2}`, `{"$push":{"arr":{"$each":[1],"$sort":{"k":1},"$slice":-1}}}`, `[]`)
	f.Add("database.aggregateDocuments", `{}`, `{}`, `[{"stageKey":"$bucket","stageValue":"{\"groupBy\":\"$n\",\"boundaries\":[0,5]}"},{"stageKey":"$unwind","stageValue":"\"$x\""}]`)
	f.Add("database.removeDocument", `{"$or":[{"n":{"$mod":[2,0]}},{"s":{"$regex":"^a","$options":"ix"}}]}`, `{"$rename":{"a":"b"}}`, `[{"stageKey":"$lookup","stageValue":"{\"from\":\"c\",\"let\":{\"v\":\"$n\"},\"pipeline\":[{\"$match\":{\"$expr\":{\"$eq\":[\"$n\",\"$$v\"]}}}],\"as\":\"l\"}"}]`)
	f.Add("database.modifyAndReturnDoc", `{"p":{"$geoWithin":{"$centerSphere":[[0,0],1]}}}`, `{"$pull":{"arr":{"k":{"$gte":1}}},"$bit":{"n":{"and":1}}}`, `[{"stageKey":"$project","stageValue":"{\"x\":{\"$reduce\":{\"input\":\"$arr\",\"initialValue\":0,\"in\":{\"$add\":[\"$$value\",1]}}}}"}]`)
	db := openTest(f)
	insert(f, db, "c", `{"_id":"1","n":1,"s":"abc","arr":[{"k":1},{"k":2}],"p":{"type":"Point","coordinates":[0,0]}}`, `{"_id":"2","n":"x","arr":[1,[2]],"o":{"a":null}}`, `{"_id":"3"}`)
	f.Fuzz(func(t *testing.T, action, query, update, stages string) {
		var st json.RawMessage
		if json.Valid([]byte(stages)) {
			st = json.RawMessage(stages)
		}
		for _, a := range []string{action, "database.getDocument", "database.modifyDocument", "database.aggregateDocuments", "database.calculateDocument"} {
			body, _ := json.Marshal(map[string]any{"collectionName": "c", "query": query, "data": update, "order": query, "projection": update,
				"multi": true, "merge": true, "stages": st, "limit": 10})
			out, ok := db.Handle(context.Background(), "env", Caller{OpenID: "o"}, a, body)
			if ok && !json.Valid(out) {
				t.Fatalf("%s answered invalid JSON: %s", a, out)
			}
		}
		// Keep the collection small whatever the updates did.
		db.Handle(context.Background(), "env", Caller{}, "database.removeDocument", json.RawMessage(`{"collectionName":"c","query":"{\"_id\":{\"$nin\":[\"1\",\"2\",\"3\"]}}","multi":true}`))
	})
}
