package localrun

import "github.com/fnhq/fn/console"

// consoleLocal tells the console the project's identities and where its saved events are.
func (d *dev) consoleLocal() console.Local {
	d.mu.Lock()
	p := d.p
	d.mu.Unlock()
	l := console.Local{Dir: p.Dir, Default: p.DefaultIdentity, AppID: d.keys.AppID, AppKey: d.keys.AppKey}
	for n := range p.Identities {
		l.Identities = append(l.Identities, n)
	}
	return l
}
