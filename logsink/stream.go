package logsink

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/fnhq/fn/api"
)

// StreamOptions tune Stream.
type StreamOptions struct {
	// Follow keeps the response open and pushes new records as they are appended.
	Follow bool
	// Tail is how many of the newest records a stream without After starts with (0:
	// DefaultTail). With After, every kept record after it is sent.
	Tail int
	// Stop ends a follow when closed: a server shutting down closes it so that its drain does
	// not wait for followers, who reconnect with after= and miss nothing.
	Stop <-chan struct{}
}

// DefaultTail is how many records a stream starts with when it has no cursor.
const DefaultTail = 1000

// page is how many records one catch-up query reads.
const page = 1000

// keepAlive is how often a quiet follow writes a newline, so proxies keep the connection.
var keepAlive = 15 * time.Second

// Stream writes the records matching f as NDJSON, one api.LogRecord per line, in id order. With
// Follow it goes on with the records appended later until the client leaves, o.Stop closes or
// the sink closes. It subscribes before it reads the kept records, so a record appended
// between the two is not missed, and sends each id once. A follower dropped for falling
// behind subscribes again and catches up from its last id.
func Stream(w http.ResponseWriter, r *http.Request, s Sink, f Filter, o StreamOptions) {
	ctx := r.Context()
	var ch <-chan api.LogRecord
	cancel := func() {}
	if o.Follow {
		ch, cancel = s.Subscribe(f)
	}
	defer func() { cancel() }()

	tail := o.Tail
	if tail <= 0 {
		tail = DefaultTail
	}
	first, err := s.Query(ctx, f, tail)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrClosed) {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(api.ErrorBody{Error: "reading logs: " + err.Error(), Code: "internal"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	enc := json.NewEncoder(w)
	last := f.After
	send := func(recs []api.LogRecord) bool {
		for _, rec := range recs {
			if rec.ID <= last {
				continue
			}
			if err := enc.Encode(rec); err != nil {
				return false
			}
			last = rec.ID
		}
		return true
	}
	// catchUp sends every kept record after last, a page at a time
	catchUp := func() bool {
		for {
			g := f
			g.After = last
			recs, err := s.Query(ctx, g, page)
			if err != nil || !send(recs) {
				return false
			}
			if len(recs) < page {
				return true
			}
		}
	}
	if !send(first) {
		return
	}
	// with a cursor the client wants everything after it, not only the first page
	if f.After > 0 && len(first) == tail && !catchUp() {
		return
	}
	flush()
	if !o.Follow {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.Stop:
			return
		case rec, ok := <-ch:
			if !ok {
				// dropped for falling behind, or the sink closed: subscribe again, then catch up
				cancel()
				ch, cancel = s.Subscribe(f)
				if !catchUp() {
					return
				}
				flush()
				continue
			}
			if !send([]api.LogRecord{rec}) {
				return
			}
			// send what else is already waiting before one flush
			for more := true; more; {
				select {
				case rec, ok := <-ch:
					if !ok {
						more = false
						break
					}
					if !send([]api.LogRecord{rec}) {
						return
					}
				default:
					more = false
				}
			}
			flush()
		case <-tick.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
			flush()
		}
	}
}
