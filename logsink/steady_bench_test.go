package logsink

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/engine"
)

// BenchmarkSQLiteSteady is the writer's cost per record in its steady state: random request ids
// (as the engine makes them), the app at its retention so that trims run, batches of what 5, 20
// and 100 ms of calls make at 8k calls/s (go test ./logsink -run X -bench SQLiteSteady -benchtime 30000x).
func BenchmarkSQLiteSteady(b *testing.B) {
	for _, size := range []int{40, 160, 800} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "logs.db"), SQLiteOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.db.Close()
			close(s.done)
			<-s.writerEnd
			now := time.Now()
			batch := make([]api.LogRecord, size)
			id := s.next
			// fill the app to its retention first
			fill := func() {
				for j := range batch {
					batch[j] = prepare(api.LogRecord{App: "app", Env: "production", Function: "hello", RequestID: engine.NewRequestID(),
						Level: "info", Message: "invoked", Stream: "stdout", Invocation: true, Status: 200, DurationMs: 0.2,
						Request: json.RawMessage(`{"n":1}`), Replayable: true}, id, now)
					id++
				}
			}
			for i := 0; i < 15000; i += size {
				fill()
				s.write(batch, id+idReserve)
				s.sinceTrim["app"] += size
				if s.sinceTrim["app"] >= s.slack {
					s.trim(context.Background(), "app")
					s.sinceTrim["app"] = 0
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				fill()
				if err := s.write(batch, id+idReserve); err != nil {
					b.Fatal(err)
				}
				s.sinceTrim["app"] += size
				if s.sinceTrim["app"] >= s.slack {
					s.trim(context.Background(), "app")
					s.sinceTrim["app"] = 0
				}
			}
		})
	}
}

// BenchmarkSQLiteRequestLookup is a request's records found among an app's retained ones (a
// scan of the app's records: there is no index on request ids, see logSchema).
func BenchmarkSQLiteRequestLookup(b *testing.B) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "logs.db"), SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.db.Close()
	var rid string
	for i := 0; i < 11000; i++ {
		r := api.LogRecord{App: "app", Env: "production", Function: "hello", RequestID: engine.NewRequestID(),
			Level: "info", Message: "invoked", Stream: "stdout", Invocation: true, Status: 200, DurationMs: 0.2,
			Request: json.RawMessage(`{"n":1}`), Replayable: true}
		if i == 1500 {
			rid = r.RequestID
		}
		s.Append(r)
	}
	// the writer commits what is queued as it stops: the lookups read the database alone
	close(s.done)
	<-s.writerEnd
	if len(s.pending) != 0 {
		b.Fatalf("%d records not written", len(s.pending))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recs, err := s.Query(context.Background(), Filter{App: "app", Env: "production", RequestID: rid}, 200)
		if err != nil || len(recs) != 1 {
			b.Fatal(err, len(recs))
		}
	}
}
