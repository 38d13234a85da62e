package leanstorage

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/fnhq/fn/store"
)

// principal is who reads or writes: a user (or nobody), the roles they hold (loaded on the first
// ACL that names a role), and the request's keys.
type principal struct {
	s     *Service
	ctx   context.Context
	user  *store.Object
	auth  Auth
	roles map[string]bool // nil until loaded
}

// can applies an object's ACL: absent means public; the master key bypasses it. Entries are "*",
// a user id, or "role:<name>" (held directly or through the roles relation of a parent role).
func (p *principal) can(o *store.Object, perm string) bool {
	if p.auth.Master {
		return true
	}
	acl, ok := o.Fields["ACL"].(map[string]any)
	if !ok {
		return true
	}
	grant := func(who string) bool {
		e, ok := acl[who].(map[string]any)
		return ok && e[perm] == true
	}
	if grant("*") {
		return true
	}
	if p.user == nil {
		return false
	}
	if grant(p.user.ID) {
		return true
	}
	for who := range acl {
		name, isRole := strings.CutPrefix(who, "role:")
		if isRole && grant(who) && p.hasRole(name) {
			return true
		}
	}
	return false
}

func (p *principal) hasRole(name string) bool {
	if p.roles == nil {
		roles, err := p.s.userRoles(p.ctx, p.user.ID)
		if err != nil {
			p.s.log("error", "reading the roles of user "+p.user.ID+": "+err.Error())
			roles = map[string]bool{}
		}
		p.roles = roles
	}
	return p.roles[name]
}

func (s *Service) allowed(ctx context.Context, o *store.Object, user *store.Object, perm string, auth Auth) bool {
	p := principal{s: s, ctx: ctx, user: user, auth: auth}
	return p.can(o, perm)
}

// maxRoleDepth bounds role inheritance (a cycle of roles ends there too).
const maxRoleDepth = 16

// userRoles is the names of the roles a user holds: those whose users relation lists them, and
// every role whose roles relation lists one of those, transitively.
func (s *Service) userRoles(ctx context.Context, userID string) (map[string]bool, error) {
	ids, err := s.st.RelationOwners(ctx, "_Role", "users", userID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	frontier := ids
	for depth := 0; len(frontier) > 0 && depth < maxRoleDepth; depth++ {
		var next []string
		for _, id := range frontier {
			if seen[id] {
				continue
			}
			seen[id] = true
			parents, err := s.st.RelationOwners(ctx, "_Role", "roles", id)
			if err != nil {
				return nil, err
			}
			next = append(next, parents...)
		}
		frontier = next
	}
	names := map[string]bool{}
	for id := range seen {
		r, err := s.st.Get(ctx, "_Role", id)
		if err != nil {
			continue // a deleted role leaves no grant
		}
		if n, ok := r.Fields["name"].(string); ok {
			names[n] = true
		}
	}
	return names, nil
}

var roleNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Za-z_\- ]{1,128}$`) })

// checkRole applies _Role's rules to a create (current nil) or an update.
func (s *Service) checkRole(ctx context.Context, fields map[string]any, current *store.Object) error {
	name, hasName := fields["name"]
	if current != nil {
		if hasName && name != current.Fields["name"] {
			return apiErr(http.StatusBadRequest, 139, "Role's name cannot be changed.")
		}
		if acl, has := fields["ACL"]; has && acl == nil {
			return apiErr(http.StatusBadRequest, 1, "Role ACL is required.")
		}
		return nil
	}
	n, _ := name.(string)
	if !roleNameRE().MatchString(n) {
		return apiErr(http.StatusBadRequest, 139, "Role's name is invalid: it contains letters, digits, '_', '-' and spaces.")
	}
	if _, ok := fields["ACL"].(map[string]any); !ok {
		return apiErr(http.StatusBadRequest, 1, "Role ACL is required.")
	}
	roles, err := s.st.Scan(ctx, "_Role")
	if err != nil {
		return err
	}
	for _, r := range roles {
		if r.Fields["name"] == n {
			return apiErr(http.StatusBadRequest, 137, "A unique field was given a value that is already taken: a role named %q exists.", n)
		}
	}
	return nil
}
