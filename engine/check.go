package engine

import (
	"context"
	"sync"
	"time"
)

// Check evaluates every bundle once, each in a fresh worker of its own that stops as soon as the
// bundle has loaded, with at most parallel such workers at a time. With LoadOptions.Lazy it lets
// a server refuse a broken release without starting a worker per bundle at once (a 40-function
// release would otherwise start 40 Node processes together). It returns a *LoadError naming
// the bundles that failed, or nil.
func (e *Engine) Check(ctx context.Context, bundles []Bundle, parallel int) error {
	if parallel < 1 {
		parallel = 1
	}
	errs := map[string]*FunctionError{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for _, b := range bundles {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func(b Bundle) {
			defer func() { <-sem; wg.Done() }()
			if err := e.checkOne(ctx, b); err != nil {
				mu.Lock()
				errs[b.Name] = e.asLoadError(err)
				mu.Unlock()
			}
		}(b)
	}
	wg.Wait()
	if len(errs) > 0 {
		return &LoadError{Errors: errs}
	}
	return nil
}

func (e *Engine) checkOne(ctx context.Context, b Bundle) error {
	p := newPool(e, b.Name) // never registered: it only names the load
	v := e.newVersion(b.File, b)
	w, err := startWorker(ctx, p.spec(v), e.log, nil)
	if err != nil {
		return err
	}
	defer w.stop(time.Second)
	return p.load(ctx, w, v)
}
