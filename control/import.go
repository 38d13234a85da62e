package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/fnhq/fn/api"
)

// stateJSON is the control plane of fn serve before it had a database: one JSON file.
type stateJSON struct {
	AdminTokenHash string                       `json:"adminTokenHash"`
	Apps           map[string]*api.App          `json:"apps"`
	Versions       map[string][]*api.Version    `json:"versions"` // app id → versions, oldest first
	Secrets        map[string]map[string]string `json:"Secrets"`
	WXSecrets      map[string]string            `json:"WXSecrets"`
}

// ImportStateJSON copies an old state.json into p once, when p is new (no admin token and no
// apps); otherwise, or when there is no file at path, it does nothing. Version ids are kept, so
// logs and rollback targets still name the right versions; the active version of each
// environment stays active. Two versions the old file gave the same id (concurrent deploys to two
// environments) keep theirs in file order: the first keeps the id, the second gets a new one.
// The admin token is written last, so an import that fails half way is recognised on the next
// start instead of passing for a complete one.
func ImportStateJSON(ctx context.Context, p Plane, path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	token, err := p.AdminTokenHash(ctx)
	if err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	apps, err := p.Apps(ctx)
	if err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	switch {
	case token != "":
		return nil // imported before, or a database that never needed it
	case len(apps) > 0:
		return fmt.Errorf("importing %s: the control plane has apps but no admin token, so an earlier import of this file did not finish; remove the control-plane database and start again", path)
	}
	var st stateJSON
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	ids := make([]string, 0, len(st.Apps))
	for id := range st.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		app := st.Apps[id]
		if app == nil {
			return fmt.Errorf("importing %s: app %q is null", path, id)
		}
		if app.ID != id {
			return fmt.Errorf("importing %s: app %q is stored under %q", path, app.ID, id)
		}
		if err := importApp(ctx, p, *app, st.WXSecrets[id], st.Versions[id], st.Secrets[id]); err != nil {
			return fmt.Errorf("importing %s: app %s: %w", path, app.Name, err)
		}
	}
	if st.AdminTokenHash == "" {
		return fmt.Errorf("importing %s: it has no admin token hash", path)
	}
	if err := p.SetAdminTokenHash(ctx, st.AdminTokenHash); err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	return nil
}

func importApp(ctx context.Context, p Plane, app api.App, wxSecret string, versions []*api.Version, secrets map[string]string) error {
	if err := p.CreateApp(ctx, app, wxSecret); err != nil {
		return err
	}
	for name, value := range secrets {
		if err := p.SetSecret(ctx, app.ID, name, value); err != nil {
			return err
		}
	}
	// oldest first by id; a repeated id waits for the end
	ordered := make([]*api.Version, 0, len(versions))
	for _, v := range versions {
		if v == nil {
			return errors.New("a version is null")
		}
		if v.ID < 1 {
			return fmt.Errorf("version id %d is not positive", v.ID)
		}
		ordered = append(ordered, v)
	}
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].ID < ordered[j].ID })
	var repeated []*api.Version
	newID := map[*api.Version]int{}
	last := 0
	for _, v := range ordered {
		if v.ID == last {
			repeated = append(repeated, v)
			continue
		}
		// ids the old file skipped are taken and given back, so that this one keeps its number
		for {
			created, err := p.CreateVersion(ctx, app.ID, withoutActive(v))
			if err != nil {
				return err
			}
			if created.ID == v.ID {
				break
			}
			if created.ID > v.ID {
				return fmt.Errorf("version %d came out as %d: the app's version counter was not new", v.ID, created.ID)
			}
			if err := p.DiscardVersion(ctx, app.ID, created.ID); err != nil {
				return err
			}
		}
		newID[v] = v.ID
		last = v.ID
	}
	for _, v := range repeated {
		created, err := p.CreateVersion(ctx, app.ID, withoutActive(v))
		if err != nil {
			return err
		}
		newID[v] = created.ID
	}
	// the old runtime restarted, per environment, the latest version marked active
	active := map[string]*api.Version{}
	for _, v := range versions {
		if v.Active {
			active[v.Env] = v
		}
	}
	envs := make([]string, 0, len(active))
	for env := range active {
		envs = append(envs, env)
	}
	sort.Strings(envs)
	for _, env := range envs {
		if err := p.Activate(ctx, app.ID, env, newID[active[env]]); err != nil {
			return err
		}
	}
	return nil
}

func withoutActive(v *api.Version) api.Version {
	c := *v
	c.Active = false
	return c
}
