package wxdb

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestAggregate(t *testing.T) {
	docs := []string{
		`{"_id":1,"g":"a","n":1,"tags":["x","y"],"d":{"$date":"2024-03-04T05:06:07.089Z"},"o":{"k":1}}`,
		`{"_id":2,"g":"b","n":2.5,"tags":[]}`,
		`{"_id":3,"g":"a","n":"3","tags":["x"]}`,
		`{"_id":4,"n":null}`,
	}
	var in []bson.D
	for _, s := range docs {
		in = append(in, ej(t, s))
	}
	others := []bson.D{ej(t, `{"_id":"x","label":"ex"}`), ej(t, `{"_id":"y","label":"why"}`)}
	load := func(coll string) ([]bson.D, error) {
		if coll == "labels" {
			return others, nil
		}
		return nil, nil
	}
	cases := []struct{ stages, want string }{
		{`[{"$group":{"_id":"$g","sum":{"$sum":"$n"},"cnt":{"$sum":1},"avg":{"$avg":"$n"},"min":{"$min":"$n"},"max":{"$max":"$n"}}}]`,
			`[{"_id":"a","sum":1,"cnt":2,"avg":1.0,"min":1,"max":"3"},{"_id":"b","sum":2.5,"cnt":1,"avg":2.5,"min":2.5,"max":2.5},{"_id":null,"sum":0,"cnt":1,"avg":null,"min":null,"max":null}]`},
		{`[{"$group":{"_id":null,"all":{"$push":"$g"},"set":{"$addToSet":"$g"},"f":{"$first":"$_id"},"l":{"$last":"$_id"}}}]`,
			`[{"_id":null,"all":["a","b","a"],"set":["a","b"],"f":1,"l":4}]`},
		{`[{"$group":{"_id":{"g":"$g"},"c":{"$sum":1}}},{"$sort":{"_id.g":-1}},{"$limit":1}]`, `[{"_id":{"g":"b"},"c":1}]`},
		{`[{"$match":{"g":"a"}},{"$project":{"_id":0,"n":1,"t":{"$size":"$tags"},"first":{"$arrayElemAt":["$tags",0]}}}]`,
			`[{"n":1,"t":2,"first":"x"},{"n":"3","t":1,"first":"x"}]`},
		{`[{"$project":{"tags":0,"d":0,"o":0}},{"$skip":2}]`, `[{"_id":3,"g":"a","n":"3"},{"_id":4,"n":null}]`},
		{`[{"$addFields":{"o.k2":{"$add":["$o.k",1]},"y":{"$year":"$d"},"ds":{"$dateToString":{"date":"$d","format":"%Y-%m-%d %H:%M:%S.%L"}}}},{"$match":{"_id":1}},{"$project":{"o":1,"y":1,"ds":1}}]`,
			`[{"_id":1,"o":{"k":1,"k2":2},"y":2024,"ds":"2024-03-04 05:06:07.089"}]`},
		{`[{"$unwind":"$tags"},{"$lookup":{"from":"labels","localField":"tags","foreignField":"_id","as":"l"}},{"$project":{"tags":1,"l.label":1}}]`,
			`[{"_id":1,"tags":"x","l":[{"label":"ex"}]},{"_id":1,"tags":"y","l":[{"label":"why"}]},{"_id":3,"tags":"x","l":[{"label":"ex"}]}]`},
		{`[{"$match":{"_id":1}},{"$lookup":{"from":"labels","let":{"ts":"$tags"},"pipeline":[{"$match":{"$expr":{"$in":["$_id","$$ts"]}}},{"$project":{"_id":0,"label":1}}],"as":"ls"}},{"$project":{"ls":1}}]`,
			`[{"_id":1,"ls":[{"label":"ex"},{"label":"why"}]}]`},
		{`[{"$lookup":{"from":"nothing","localField":"g","foreignField":"g","as":"z"}},{"$match":{"_id":2}},{"$project":{"z":1}}]`, `[{"_id":2,"z":[]}]`},
		{`[{"$count":"n"}]`, `[{"n":4}]`},
		{`[{"$match":{"g":"zzz"}},{"$count":"n"}]`, `[]`},
		{`[{"$bucket":{"groupBy":"$_id","boundaries":[1,3,5],"output":{"ids":{"$push":"$_id"}}}}]`, `[{"_id":1,"ids":[1,2]},{"_id":3,"ids":[3,4]}]`},
		{`[{"$bucketAuto":{"groupBy":"$_id","buckets":2}}]`, `[{"_id":{"min":1,"max":3},"count":2},{"_id":{"min":3,"max":4},"count":2}]`},
		{`[{"$replaceRoot":{"newRoot":"$o"}}]`, `error`}, // documents without o
		{`[{"$match":{"o":{"$exists":true}}},{"$replaceRoot":{"newRoot":{"$mergeObjects":["$o",{"id":"$_id"}]}}}]`, `[{"k":1,"id":1}]`},
		{`[{"$sortByCount":"$g"}]`, `[{"_id":"a","count":2},{"_id":"b","count":1},{"_id":null,"count":1}]`},
		{`[{"$sort":{"n":1}},{"$project":{"n":1}}]`, `[{"_id":4,"n":null},{"_id":1,"n":1},{"_id":2,"n":2.5},{"_id":3,"n":"3"}]`},
		{`[{"$project":{"x":{"$cond":[{"$gte":["$n",2]},"hi","lo"]},"y":{"$ifNull":["$g","none"]},"z":{"$switch":{"branches":[{"case":{"$eq":["$g","a"]},"then":1}],"default":0}}}},{"$limit":2}]`,
			`[{"_id":1,"x":"lo","y":"a","z":1},{"_id":2,"x":"hi","y":"b","z":0}]`},
		{`[{"$match":{"_id":1}},{"$project":{"_id":0,"f":{"$filter":{"input":"$tags","as":"t","cond":{"$eq":["$$t","y"]}}},"m":{"$map":{"input":"$tags","in":{"$concat":["$$this","!"]}}},"r":{"$reduce":{"input":[1,2,3],"initialValue":0,"in":{"$add":["$$value","$$this"]}}},"s":{"$split":["a,b",","]},"u":{"$toUpper":"$g"},"sub":{"$substr":["hello",1,3]},"l":{"$let":{"vars":{"v":10},"in":{"$multiply":["$$v","$n"]}}}}}]`,
			`[{"f":["y"],"m":["x!","y!"],"r":6,"s":["a","b"],"u":"A","sub":"ell","l":10}]`},
		{`[{"$match":{"_id":2}},{"$project":{"_id":0,"a":{"$subtract":[10,"$n"]},"b":{"$divide":[5,2]},"c":{"$mod":[7,3]},"d":{"$abs":-3},"e":{"$floor":2.7},"f":{"$round":[2.567,1]},"g":{"$toString":"$n"},"h":{"$toInt":"42"},"i":{"$type":"$n"},"j":{"$literal":"$n"}}}]`,
			`[{"a":7.5,"b":2.5,"c":1,"d":3,"e":2.0,"f":2.6,"g":"2.5","h":42,"i":"double","j":"$n"}]`},
		{`[{"$unwind":{"path":"$tags","preserveNullAndEmptyArrays":true}},{"$project":{"tags":1}}]`,
			`[{"_id":1,"tags":"x"},{"_id":1,"tags":"y"},{"_id":2},{"_id":3,"tags":"x"},{"_id":4}]`},
		{`[{"$facet":{"n":[{"$count":"c"}],"g":[{"$group":{"_id":"$g"}},{"$sort":{"_id":1}}]}}]`, `[{"n":[{"c":4}],"g":[{"_id":null},{"_id":"a"},{"_id":"b"}]}]`},
		{`[{"$match":{"_id":2}},{"$project":{"_id":0,"t":{"$trim":{"input":"  hi  "}},"l":{"$ltrim":{"input":"xxhixx","chars":"x"}},"c":{"$convert":{"input":"12","to":"int"}},"e":{"$convert":{"input":"zz","to":"int","onError":-1}},"n":{"$convert":{"input":"$none","to":"int","onNull":0}}}}]`,
			`[{"t":"hi","l":"hixx","c":12,"e":-1,"n":0}]`},
		{`[{"$group":{"x":{"$sum":1}}}]`, `error`},
		{`[{"$bucket":{"groupBy":"$_id","boundaries":[1,2]}}]`, `error`}, // 2, 3, 4 fall outside and there is no default
		{`[{"$group":{"_id":1,"x":{"$nope":1}}}]`, `error`},
		{`[{"$limit":0}]`, `error`},
		{`[{"$skip":-1}]`, `error`},
		{`[{"$divide":1}]`, `error`},
		{`[{"$project":{"x":{"$divide":[1,0]}}}]`, `error`},
		{`[{"$match":{"_id":1}},{"$geoNear":{"near":{"type":"Point","coordinates":[0,0]},"distanceField":"d"}}]`, `error`},
	}
	for _, c := range cases {
		var arr bson.D
		if err := bson.UnmarshalExtJSON([]byte(`{"s":`+c.stages+`}`), false, &arr); err != nil {
			t.Fatalf("%s: %v", c.stages, err)
		}
		stages, err := parseStages(arr[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		out, err := runPipeline(t.Context(), in, stages, load, time.Now())
		if c.want == "error" {
			if err == nil {
				t.Errorf("%s: want an error, got %s", c.stages, js(t, toA(out)))
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.stages, err)
			continue
		}
		if got := js(t, toA(out)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.stages, got, c.want)
		}
	}
	// Inputs are never modified by a pipeline.
	for i, s := range docs {
		if js(t, in[i]) != js(t, ej(t, s)) {
			t.Errorf("document %d changed: %s", i, js(t, in[i]))
		}
	}
}

func toA(docs []bson.D) bson.A {
	a := bson.A{}
	for _, d := range docs {
		a = append(a, d)
	}
	return a
}
