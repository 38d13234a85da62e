package localrun

import (
	"encoding/json"
	"os"

	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
	"github.com/fnhq/fn/wxdb"
	"github.com/fnhq/fn/wxopenapi"
	"github.com/fnhq/fn/wxstorage"
)

// OpenWXStorage opens a wx project's local cloud storage (.fn/storage), emptied with reset.
func OpenWXStorage(p *project.Project, reset bool) (*wxstorage.Store, error) {
	dir := p.StatePath("storage")
	if reset {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	return wxstorage.Open(dir, wxstorage.Options{})
}

// OpenAPIConfig is the openapi emulation that fn.yaml's wx.openapi section asks for.
func OpenAPIConfig(p *project.Project) wxopenapi.Config {
	c := wxopenapi.Config{Blocklist: p.WX.OpenAPI.Blocklist}
	if len(p.WX.OpenAPI.Responses) > 0 {
		c.Responses = map[string]json.RawMessage{}
		for api, v := range p.WX.OpenAPI.Responses {
			if b, err := json.Marshal(v); err == nil {
				c.Responses[api] = b
			}
		}
	}
	return c
}

// storageOrNil keeps a nil store out of the interface (lean projects have none).
func storageOrNil(s *wxstorage.Store) server.WXStorage {
	if s == nil {
		return nil
	}
	return s
}

// DBPermissions is fn.yaml's wx.permissions: each collection's permission for mini-program
// clients (creator-only when not listed, as a new collection on the platform).
func DBPermissions(p *project.Project) func(string) wxdb.Permission {
	perms := p.WX.Permissions
	return func(coll string) wxdb.Permission {
		cp, ok := perms[coll]
		if !ok {
			return wxdb.Permission{Mode: "creator"}
		}
		return wxdb.Permission{Mode: cp.Mode, Read: cp.Read, Write: cp.Write}
	}
}
