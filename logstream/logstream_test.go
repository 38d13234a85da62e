package logstream

import (
	"testing"
	"time"
)

func TestRingKeepsTheLatestAndFilters(t *testing.T) {
	r := NewRing(3)
	for i := 0; i < 10; i++ {
		lvl := "info"
		if i%2 == 0 {
			lvl = "error"
		}
		r.Add(Record{Level: lvl, Function: "f", Message: "m"})
	}
	recs, _, _ := r.Snapshot(Filter{}, false)
	if len(recs) != 3 || recs[0].ID != 8 || recs[2].ID != 10 {
		t.Fatalf("kept %+v", recs)
	}
	recs, _, _ = r.Snapshot(Filter{Level: "error"}, false)
	if len(recs) != 1 || recs[0].ID != 9 {
		t.Fatalf("level filter: %+v", recs)
	}
	_, ch, stop := r.Snapshot(Filter{After: 10, Search: "new"}, true)
	defer stop()
	r.Add(Record{Message: "old"})
	r.Add(Record{Message: "new one", Time: time.Now()})
	select {
	case got := <-ch:
		if got.ID != 11 || !(Filter{Search: "new"}).Match(r.records[len(r.records)-1]) {
			// the channel carries every new record; the stream applies the filter
			t.Fatalf("pushed %+v", got)
		}
	case <-time.After(time.Second):
		t.Fatal("follow got nothing")
	}
}
