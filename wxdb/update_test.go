package wxdb

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestUpdate(t *testing.T) {
	base := `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	cases := []struct {
		upd, want string
	}{
		{`{"$set":{"n":2,"o.b":{"c":1}}}`, `{"_id":"x","n":2,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1,"b":{"c":1}},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$set":{"new.deep.path":1}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"new":{"deep":{"path":1}}}`},
		{`{"$set":{"arr.5":9}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3,null,null,9],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$unset":{"s":"","o.a":"","missing":"","arr.0":""}}`, `{"_id":"x","n":1,"f":1.5,"arr":[null,2,3],"o":{},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$inc":{"n":2,"f":1,"c":5}}`, `{"_id":"x","n":3,"f":2.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"c":5}`},
		{`{"$inc":{"n":{"$numberInt":"2147483647"}}}`, `{"_id":"x","n":2147483648,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$mul":{"n":3,"f":2,"z":2}}`, `{"_id":"x","n":3,"f":3.0,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"z":0}`},
		{`{"$min":{"n":0,"f":9},"$max":{"s":"zzz"}}`, `{"_id":"x","n":0,"f":1.5,"s":"zzz","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$rename":{"s":"t","o.a":"o.b"}}`, `{"_id":"x","n":1,"f":1.5,"arr":[1,2,3],"o":{"b":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"t":"str"}`},
		{`{"$push":{"arr":4}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3,4],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$push":{"arr":{"$each":[0,9],"$position":1}}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,0,9,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$push":{"arr":{"$each":[0],"$sort":-1,"$slice":2}}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[3,2],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$push":{"arr":{"$each":[],"$slice":-1}}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$push":{"fresh":1}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"fresh":[1]}`},
		{`{"$pop":{"arr":1}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$pop":{"arr":-1}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$addToSet":{"arr":{"$each":[3,4,4]}}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3,4],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$addToSet":{"arr":2.0}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$pull":{"arr":{"$gte":2}}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$pull":{"objs":{"k":2}}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0}]}`},
		{`{"$pullAll":{"arr":[1,3]}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[2],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}]}`},
		{`{"$set":{"objs.$[].v":7}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":7},{"k":2,"v":7}]}`},
		{`{"$set":{"when":{"$tcb_server_date":{"offset":1000}}}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"when":{"$date":"2024-05-06T07:08:10Z"}}`},
		{`{"$bit":{"n":{"or":6},"b":{"xor":{"$numberLong":"1"}}}}`, `{"_id":"x","n":7,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"b":1}`},
		{`{"$currentDate":{"at":true}}`, `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":0}],"at":{"$date":"2024-05-06T07:08:09Z"}}`},
	}
	for _, c := range cases {
		u, err := CompileUpdate(ej(t, c.upd))
		if err != nil {
			t.Errorf("%s: %v", c.upd, err)
			continue
		}
		got, err := u.Apply(ej(t, base), -1, now)
		if err != nil {
			t.Errorf("%s: %v", c.upd, err)
			continue
		}
		b, _ := bson.MarshalExtJSON(got, false, false)
		if string(b) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.upd, b, c.want)
		}
	}
	// Positional: the index the query matched.
	u, _ := CompileUpdate(ej(t, `{"$set":{"objs.$.v":5}}`))
	d := ej(t, base)
	pos := positionalIndex(d, ej(t, `{"objs.k":2}`), u)
	got, err := u.Apply(d, pos, now)
	if err != nil || js(t, got) != `{"_id":"x","n":1,"f":1.5,"s":"str","arr":[1,2,3],"o":{"a":1},"objs":[{"k":1,"v":0},{"k":2,"v":5}]}` {
		t.Errorf("positional: pos %d, %s %v", pos, js(t, got), err)
	}
	if _, err := u.Apply(d, -1, now); err == nil {
		t.Error("a positional update without a matched element succeeded")
	}
}

func TestUpdateErrors(t *testing.T) {
	compileErrs := map[string]string{
		`{"$foo":{"a":1}}`:                CodeInvalidCommand,
		`{"a":1}`:                         CodeInvalidParam,
		`{}`:                              CodeInvalidParam,
		`{"$set":{"_id":1}}`:              CodeInvalidParam,
		`{"$set":{"a..b":1}}`:             CodeInvalidParam,
		`{"$set":{"$a":1}}`:               CodeInvalidParam,
		`{"$set":{"a":1},"$inc":{"a":1}}`: CodeInvalidParam,
		`{"$set":{"a":1,"a.b":1}}`:        CodeInvalidParam,
		`{"$inc":{"a":"1"}}`:              CodeInvalidParam,
		`{"$pop":{"a":2}}`:                CodeInvalidParam,
		`{"$rename":{"a":"a"}}`:           CodeInvalidParam,
		`{"$push":{"a":{"$each":1}}}`:     CodeInvalidParam,
		`{"$set":"x"}`:                    CodeInvalidParam,
	}
	for upd, code := range compileErrs {
		_, err := CompileUpdate(ej(t, upd))
		var e *Error
		if !errors.As(err, &e) || e.Code != code {
			t.Errorf("%s: got %v, want %s", upd, err, code)
		}
	}
	applyErrs := []string{
		`{"$inc":{"s":1}}`,     // not a number
		`{"$push":{"s":1}}`,    // not an array
		`{"$set":{"s.x":1}}`,   // cannot create a field in a string
		`{"$pull":{"n":1}}`,    // not an array
		`{"$set":{"arr.x":1}}`, // not an index
	}
	doc := ej(t, `{"_id":1,"s":"str","n":1,"arr":[1]}`)
	for _, upd := range applyErrs {
		u, err := CompileUpdate(ej(t, upd))
		if err != nil {
			t.Errorf("%s: %v", upd, err)
			continue
		}
		before := js(t, doc)
		if _, err := u.Apply(doc, -1, time.Now()); err == nil {
			t.Errorf("%s: applied", upd)
		}
		if js(t, doc) != before {
			t.Errorf("%s: a failed update changed the input", upd)
		}
	}
}
