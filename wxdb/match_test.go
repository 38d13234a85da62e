package wxdb

import (
	"errors"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func ej(t testing.TB, s string) bson.D {
	t.Helper()
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
		t.Fatalf("bad test EJSON %s: %v", s, err)
	}
	return d
}

func js(t testing.TB, v any) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[5 : len(b)-1])
}

func TestMatcher(t *testing.T) {
	docs := []string{
		`{"_id":1,"a":5,"s":"abc","arr":[1,2,3],"o":{"x":1,"y":[{"z":1},{"z":2}]}}`,
		`{"_id":2,"a":5.0,"s":"ABD","arr":[],"n":null}`,
		`{"_id":3,"a":"5","arr":[[1,2],3],"o":{"x":2}}`,
		`{"_id":4,"a":{"$numberLong":"7"},"d":{"$date":"2024-01-01T00:00:00Z"},"arr":[{"k":1,"v":"a"},{"k":2,"v":"b"}]}`,
		`{"_id":5,"a":{"$numberDecimal":"5"},"b":true,"loc":{"type":"Point","coordinates":[10,10]}}`,
		`{"_id":6,"a":[5,9],"s":null}`,
	}
	cases := []struct {
		q    string
		want []int
	}{
		{`{}`, []int{1, 2, 3, 4, 5, 6}},
		{`{"a":5}`, []int{1, 2, 5, 6}},                            // int, double, decimal, array element
		{`{"a":"5"}`, []int{3}},                                   // no string/number coercion
		{`{"a":{"$gt":5}}`, []int{4, 6}},                          // type bracketing: "5" is not > 5
		{`{"a":{"$gte":5,"$lt":7}}`, []int{1, 2, 5, 6}},           //
		{`{"a":{"$ne":5}}`, []int{3, 4}},                          //
		{`{"a":{"$in":[7,"5"]}}`, []int{3, 4}},                    //
		{`{"a":{"$nin":[5]}}`, []int{3, 4}},                       //
		{`{"n":null}`, []int{1, 2, 3, 4, 5, 6}},                   // null matches missing
		{`{"n":{"$exists":true}}`, []int{2}},                      //
		{`{"s":{"$exists":false}}`, []int{3, 4, 5}},               //
		{`{"s":null}`, []int{3, 4, 5, 6}},                         //
		{`{"s":{"$ne":null}}`, []int{1, 2}},                       //
		{`{"arr":2}`, []int{1}},                                   // element match
		{`{"arr":[1,2]}`, []int{3}},                               // whole-element array match
		{`{"arr":[]}`, []int{2}},                                  //
		{`{"arr":{"$size":0}}`, []int{2}},                         //
		{`{"arr":{"$size":3}}`, []int{1}},                         //
		{`{"arr":{"$all":[1,3]}}`, []int{1}},                      //
		{`{"arr":{"$all":[]}}`, nil},                              //
		{`{"arr":{"$elemMatch":{"$gt":2,"$lt":4}}}`, []int{1, 3}}, //
		{`{"arr":{"$elemMatch":{"k":2,"v":"b"}}}`, []int{4}},      //
		{`{"arr":{"$elemMatch":{"k":1,"v":"b"}}}`, nil},           // both on one element
		{`{"arr.k":1,"arr.v":"b"}`, []int{4}},                     // but not without $elemMatch
		{`{"arr.1":2}`, []int{1}},                                 // index path
		{`{"o.y.z":2}`, []int{1}},                                 // through an array of documents
		{`{"o.x":{"$lte":1}}`, []int{1}},                          //
		{`{"o":{"x":2}}`, []int{3}},                               // exact embedded document
		{`{"s":{"$regex":"^ab","$options":"i"}}`, []int{1, 2}},    //
		{`{"s":{"$regularExpression":{"pattern":"c$","options":""}}}`, []int{1}},
		{`{"s":{"$not":{"$regularExpression":{"pattern":"^a","options":""}}}}`, []int{2, 3, 4, 5, 6}},
		{`{"a":{"$not":{"$gt":5}}}`, []int{1, 2, 3, 5}}, //
		{`{"a":{"$mod":[2,1]}}`, []int{1, 2, 4, 5, 6}},  // 5, 5.0, 7, decimal 5, [5,9]
		{`{"$or":[{"_id":1},{"b":true}]}`, []int{1, 5}}, //
		{`{"$and":[{"a":5},{"arr":{"$exists":true}}]}`, []int{1, 2}},
		{`{"$nor":[{"a":5},{"_id":3}]}`, []int{4}}, //
		{`{"d":{"$gt":{"$date":"2023-12-31T00:00:00Z"}}}`, []int{4}},
		{`{"d":{"$gt":"2023"}}`, nil},                      // a string never compares with a date
		{`{"b":{"$type":"bool"}}`, []int{5}},               //
		{`{"a":{"$type":"number"}}`, []int{1, 2, 4, 5, 6}}, //
		{`{"$expr":{"$gt":["$a",6]}}`, []int{3, 4, 6}},     // expressions compare across types: strings and arrays sort after numbers
		{`{"loc":{"$geoWithin":{"$centerSphere":[[10,10],0.01]}}}`, []int{5}},
		{`{"loc":{"$nearSphere":{"$geometry":{"type":"Point","coordinates":[10,10.001]},"$maxDistance":200}}}`, []int{5}},
		{`{"loc":{"$nearSphere":{"$geometry":{"type":"Point","coordinates":[10,11]},"$maxDistance":200}}}`, nil},
	}
	var parsed []bson.D
	for _, s := range docs {
		parsed = append(parsed, ej(t, s))
	}
	for _, c := range cases {
		f, err := CompileFilter(ej(t, c.q))
		if err != nil {
			t.Errorf("%s: %v", c.q, err)
			continue
		}
		var got []int
		for _, d := range parsed {
			if f.Match(d) {
				id, _ := lookupField(d, "_id")
				got = append(got, int(id.(int32)))
			}
		}
		if js(t, got) != js(t, c.want) {
			t.Errorf("%s: got %v, want %v", c.q, got, c.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	cases := map[string]string{
		`{"a":{"$foo":1}}`:                    CodeInvalidCommand,
		`{"$where":"1"}`:                      CodeInvalidCommand,
		`{"$or":[]}`:                          CodeInvalidParam,
		`{"$or":{"a":1}}`:                     CodeInvalidParam,
		`{"a":{"$in":5}}`:                     CodeInvalidParam,
		`{"a":{"$size":-1}}`:                  CodeInvalidParam,
		`{"a":{"$mod":[0,1]}}`:                CodeInvalidParam,
		`{"a..b":1}`:                          CodeInvalidParam,
		`{"a.$b":1}`:                          CodeInvalidParam,
		`{"":1}`:                              CodeInvalidParam,
		`{"a":{"$regex":"("}}`:                CodeInvalidParam,
		`{"a":{"$regex":"a","$options":"q"}}`: CodeInvalidParam,
		`{"a":{"$gt":1,"b":2}}`:               CodeInvalidCommand,
		`{"$expr":{"$nope":1}}`:               CodeInvalidCommand,
		`{"a":{"$not":5}}`:                    CodeInvalidParam,
		`{"p":{"$geoWithin":{"$box":1}}}`:     CodeInvalidParam,
	}
	for q, code := range cases {
		_, err := CompileFilter(ej(t, q))
		var e *Error
		if !errors.As(err, &e) || e.Code != code {
			t.Errorf("%s: got %v, want code %s", q, err, code)
		}
	}
	// Nesting is bounded.
	q := `{"a":1}`
	for i := 0; i < maxFilterDepth+2; i++ {
		q = `{"$and":[` + q + `]}`
	}
	if _, err := CompileFilter(ej(t, q)); err == nil {
		t.Error("a query nested past the bound compiled")
	}
}

func TestSortOrderIsBSONOrder(t *testing.T) {
	// One value of each kind, shuffled; MongoDB sorts them by type first.
	vals := []string{
		`{"v":{"$maxKey":1}}`, `{"v":true}`, `{"v":"b"}`, `{"v":{"$date":"2020-01-01T00:00:00Z"}}`, `{"v":{"x":1}}`,
		`{"v":2.5}`, `{"v":null}`, `{"v":{"$oid":"5f1b2c3d4e5f6a7b8c9d0e1f"}}`, `{"v":{"$binary":{"base64":"AA==","subType":"00"}}}`,
		`{"v":"a"}`, `{"v":{"$minKey":1}}`, `{"v":false}`, `{"v":1}`, `{"v":{"$regularExpression":{"pattern":"x","options":""}}}`,
		`{"v":{"$timestamp":{"t":1,"i":1}}}`, `{}`,
	}
	var docs []bson.D
	for _, v := range vals {
		docs = append(docs, ej(t, v))
	}
	keys, _ := parseSort(bson.D{{Key: "v", Value: int32(1)}})
	sort.SliceStable(docs, func(i, j int) bool { return compareBySort(docs[i], docs[j], keys) < 0 })
	var got []string
	for _, d := range docs {
		v, ok := lookupField(d, "v")
		if !ok {
			got = append(got, "missing")
			continue
		}
		got = append(got, typeName(v))
	}
	want := []string{"minKey", "null", "missing", "int", "double", "string", "string", "object", "binData", "objectId", "bool", "bool", "date", "timestamp", "regex", "maxKey"}
	if js(t, got) != js(t, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	// Arrays sort by their smallest element ascending, their largest descending.
	a, b := ej(t, `{"v":[1,10]}`), ej(t, `{"v":[5]}`)
	asc, _ := parseSort(bson.D{{Key: "v", Value: int32(1)}})
	desc, _ := parseSort(bson.D{{Key: "v", Value: int32(-1)}})
	if compareBySort(a, b, asc) >= 0 || compareBySort(a, b, desc) >= 0 {
		t.Error("array sort keys are wrong")
	}
}

func TestProjection(t *testing.T) {
	doc := ej(t, `{"_id":1,"a":1,"b":{"c":2,"d":3},"arr":[{"x":1,"y":2},{"x":3,"y":4}],"list":[1,2,3,4,5]}`)
	cases := []struct{ spec, want string }{
		{`{"a":1}`, `{"_id":1,"a":1}`},
		{`{"a":0}`, `{"_id":1,"b":{"c":2,"d":3},"arr":[{"x":1,"y":2},{"x":3,"y":4}],"list":[1,2,3,4,5]}`},
		{`{"b.c":1,"_id":0}`, `{"b":{"c":2}}`},
		{`{"arr.x":1}`, `{"_id":1,"arr":[{"x":1},{"x":3}]}`},
		{`{"b.d":0,"arr":0,"list":0}`, `{"_id":1,"a":1,"b":{"c":2}}`},
		{`{"list":{"$slice":2}}`, `{"_id":1,"a":1,"b":{"c":2,"d":3},"arr":[{"x":1,"y":2},{"x":3,"y":4}],"list":[1,2]}`},
		{`{"list":{"$slice":[-2,1]},"a":1}`, `{"_id":1,"a":1,"list":[4]}`},
		{`{"arr":{"$elemMatch":{"x":3}}}`, `{"_id":1,"arr":[{"x":3,"y":4}]}`},
		{`{"missing":1}`, `{"_id":1}`},
		{`{"_id":1}`, `{"_id":1}`},
		{`{"_id":0}`, `{"a":1,"b":{"c":2,"d":3},"arr":[{"x":1,"y":2},{"x":3,"y":4}],"list":[1,2,3,4,5]}`},
	}
	for _, c := range cases {
		p, err := compileProjection(ej(t, c.spec))
		if err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		got, _ := bson.MarshalExtJSON(p.apply(doc), false, false)
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.spec, got, c.want)
		}
	}
	if _, err := compileProjection(ej(t, `{"a":1,"b":0}`)); err == nil {
		t.Error("mixed inclusion and exclusion was accepted")
	}
}
