package bundler

import (
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/project"
)

// APIManifest is what a build of p runs as: every bundle with its function's configuration, and
// the project's timers. mapHashes (bundle name → sha256 of its source map) is filled for deploys;
// local runs leave it nil. Deploys leave out .env.local, which is for local runs only.
func (m *Manifest) APIManifest(p *project.Project, mapHashes map[string]string, deploy bool) api.Manifest {
	out := api.Manifest{Dialect: string(p.Dialect), Timers: p.Timers, Timezone: p.Timezone}
	for _, a := range m.Bundles {
		cfg := p.Function(a.Name)
		if deploy {
			for k := range p.LocalEnv {
				delete(cfg.Env, k)
			}
		}
		out.Bundles = append(out.Bundles, api.Bundle{Name: a.Name, Hash: a.Hash, MapHash: mapHashes[a.Name], Size: a.Size, Config: cfg})
	}
	return out
}
