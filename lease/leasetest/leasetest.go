// Package leasetest is the conformance suite of lease.Lease: every backend runs it.
package leasetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fnhq/fn/lease"
)

// Options describe what a backend can do beyond the interface.
type Options struct {
	// Share returns another handle on the storage of l, as another replica would open it (nil:
	// a single-process backend, whose claims all go through l).
	Share func(t *testing.T, l lease.Lease) lease.Lease
}

// Run runs the suite; open returns a lease over new, empty storage for one test.
func Run(t *testing.T, open func(t *testing.T) lease.Lease, o Options) {
	ctx := context.Background()
	share := o.Share
	if share == nil {
		share = func(_ *testing.T, l lease.Lease) lease.Lease { return l }
	}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

	t.Run("OneWinnerPerFire", func(t *testing.T) {
		l := open(t)
		replicas := []lease.Lease{l, share(t, l), share(t, l)}
		const n = 30
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := replicas[i%len(replicas)].Claim(ctx, "app/production/nightly", at)
				if err != nil {
					t.Errorf("Claim: %v", err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Fatalf("%d of %d concurrent claims of one fire won, want exactly 1", got, n)
		}
		// a later claim of the same fire loses too
		if ok, err := l.Claim(ctx, "app/production/nightly", at); err != nil || ok {
			t.Fatalf("a repeated claim = %v, %v; want false", ok, err)
		}
	})

	t.Run("LaterFiresWinAgain", func(t *testing.T) {
		l := open(t)
		for i := 0; i < 5; i++ {
			fire := at.Add(time.Duration(i) * time.Minute)
			for j, h := range []lease.Lease{l, share(t, l)} {
				ok, err := h.Claim(ctx, "k", fire)
				if err != nil {
					t.Fatal(err)
				}
				if want := j == 0; ok != want {
					t.Fatalf("claim %d of fire %d = %v, want %v", j, i, ok, want)
				}
			}
		}
	})

	t.Run("EarlierFireAfterLaterLoses", func(t *testing.T) {
		// a replica whose clock lags must not fire again what another replica already moved past
		l := open(t)
		if ok, err := l.Claim(ctx, "k", at.Add(time.Hour)); err != nil || !ok {
			t.Fatalf("first claim = %v, %v", ok, err)
		}
		if ok, err := share(t, l).Claim(ctx, "k", at); err != nil || ok {
			t.Fatalf("claim of an earlier fire = %v, %v; want false", ok, err)
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		l := open(t)
		var wg sync.WaitGroup
		wins := make([]atomic.Int32, 8)
		for k := range wins {
			for r := 0; r < 4; r++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := share(t, l).Claim(ctx, fmt.Sprintf("app%d/staging/t", k), at)
					if err != nil {
						t.Errorf("Claim: %v", err)
					}
					if ok {
						wins[k].Add(1)
					}
				}()
			}
		}
		wg.Wait()
		for k := range wins {
			if got := wins[k].Load(); got != 1 {
				t.Errorf("key %d: %d winners, want 1", k, got)
			}
		}
	})

	t.Run("SameInstantInOtherZone", func(t *testing.T) {
		// replicas may evaluate a schedule in different zones: one instant is one fire
		l := open(t)
		if ok, err := l.Claim(ctx, "k", at); err != nil || !ok {
			t.Fatalf("first claim = %v, %v", ok, err)
		}
		shanghai := time.FixedZone("CST", 8*3600)
		if ok, err := share(t, l).Claim(ctx, "k", at.In(shanghai)); err != nil || ok {
			t.Fatalf("claim of the same instant in another zone = %v, %v; want false", ok, err)
		}
	})
}
