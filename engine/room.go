package engine

// makeRoom keeps an engine within Config.MaxWorkers before a new worker starts: the least
// recently used idle workers of exclusive pools (wx functions) are retired until the count fits.
// Busy workers are never stopped, so a burst may exceed the cap while it lasts; the server's
// concurrency cap bounds those. It takes one pool's lock at a time.
func (e *Engine) makeRoom() {
	max := e.cfg.MaxWorkers
	if max <= 0 {
		return
	}
	e.mu.Lock()
	pools := make([]*pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	e.mu.Unlock()
	total := 0
	for _, p := range pools {
		p.mu.Lock()
		total += len(p.workers) + p.starting
		p.mu.Unlock()
	}
	for ; total > max; total-- {
		var victim *worker
		var from *pool
		for _, p := range pools {
			if !p.exclusive {
				continue
			}
			p.mu.Lock()
			for _, w := range p.idle {
				if victim == nil || w.lastUsed.Load() < victim.lastUsed.Load() {
					victim, from = w, p
				}
			}
			p.mu.Unlock()
		}
		if victim == nil {
			return
		}
		from.mu.Lock()
		removed := false
		for i, w := range from.idle {
			if w == victim {
				from.idle = append(from.idle[:i], from.idle[i+1:]...)
				delete(from.workers, w)
				removed = true
				break
			}
		}
		from.mu.Unlock()
		if removed {
			e.stopLater(victim)
		}
	}
}
