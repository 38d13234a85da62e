package wxdb

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestDecodeStoredMatchesBSON(t *testing.T) {
	inputs := []string{
		`{}`,
		`{"_id":"a","n":1,"neg":-5,"big":2147483648,"huge":9007199254740993,"f":1.5,"g":1.0,"e":1e300,"z":-0.0,"s":"x\"y\\z\u00e9\ud83d\ude00","u":"中文","t":true,"fa":false,"nu":null}`,
		`{"arr":[1,"a",[],{},[1,[2,{"x":null}]]],"o":{"p":{"q":[{"r":1}]}}}`,
		`{"d":{"$date":"2024-01-02T03:04:05.006Z"},"old":{"$date":{"$numberLong":"-62135596800000"}},"dec":{"$numberDecimal":"1.50"},"nan":{"$numberDouble":"NaN"},"inf":{"$numberDouble":"-Infinity"}}`,
		`{"oid":{"$oid":"5f1b2c3d4e5f6a7b8c9d0e1f"},"bin":{"$binary":{"base64":"AAEC","subType":"00"}},"re":{"$regularExpression":{"pattern":"a\"}b","options":"i"}},"ts":{"$timestamp":{"t":1,"i":2}},"mn":{"$minKey":1},"mx":{"$maxKey":1}}`,
		`{"p":{"type":"Point","coordinates":[113.5,23.25]}, "sp" : [ 1 , 2 ] }`,
	}
	for _, s := range inputs {
		var want bson.D
		if err := bson.UnmarshalExtJSON([]byte(s), false, &want); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		got, err := decodeStored([]byte(s))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		// %#v shows every type (and lets NaN equal NaN).
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Errorf("%s:\n got %#v\nwant %#v", s, got, want)
		}
		// And what encodeDoc writes reads back the same.
		b, err := encodeDoc(want)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeStored(b)
		if err != nil || js(t, again) != js(t, want) {
			t.Errorf("round trip of %s: %s %v", s, b, err)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a":}`, `{"a":1,}`, `{"a":tru}`, `{"a":"\x01"}`, `{"a":1} x`, `{"a":[1,2}`, `{"a":{"$numberInt":"x"}}`, "{\"a\":\"\xff\"}"} {
		if _, err := decodeStored([]byte(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	doc := []byte(`{"_id":"id123","k":123,"g":"g23","name":"user 123","tags":["t4","all"],"score":123.5,"d":{"$date":"2024-01-02T03:04:05.006Z"}}`)
	b.Run("stored", func(b *testing.B) {
		for b.Loop() {
			decodeStored(doc)
		}
	})
	b.Run("bson", func(b *testing.B) {
		for b.Loop() {
			var d bson.D
			bson.UnmarshalExtJSON(doc, false, &d)
		}
	})
}
