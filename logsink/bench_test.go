package logsink

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
)

// BenchmarkSQLiteWrite is the writer's cost per record for the batch sizes that 20 ms and 100 ms
// of an invocation's records at 10k records/s make (go test ./logsink -run X -bench SQLiteWrite).
func BenchmarkSQLiteWrite(b *testing.B) {
	for _, size := range []int{50, 200, 1000} {
		b.Run(fmt.Sprintf("batch%d", size), func(b *testing.B) {
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "logs.db"), SQLiteOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			batch := make([]api.LogRecord, size)
			id := s.next
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				for j := range batch {
					batch[j] = prepare(api.LogRecord{App: "app", Env: "production", Function: "hello", RequestID: fmt.Sprint("r", id),
						Level: "info", Message: "invoked", Stream: "stdout", Invocation: true, Status: 200, DurationMs: 0.2,
						Request: json.RawMessage(`{}`), Replayable: true}, id, now)
					id++
				}
				if err := s.write(batch, id+idReserve); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
