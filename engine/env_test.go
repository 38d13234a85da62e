package engine

import (
	"path/filepath"
	"testing"

	"github.com/fnhq/fn/bundler"
)

func TestWorkersDoNotSeeTheHostEnvironment(t *testing.T) {
	t.Setenv("HOST_DB_PASSWORD", "hunter2")
	t.Setenv("NODE_HOST_SETTING", "from-host")
	t.Setenv("LC_TIME", "C")
	files := map[string]string{
		"fn.yaml":                "name: conf\ndialect: wx\nfunctions:\n  env:\n    env:\n      FROM_FN: yes\n",
		"functions/env/index.js": "exports.main = async () => ({ env: Object.assign({}, process.env), home: require('os').homedir(), tmp: require('os').tmpdir() })\n",
	}
	scratch := filepath.Join(t.TempDir(), "scratch")
	for _, inherit := range []bool{false, true} {
		f := newFixture(t, files, bundler.Dev, Config{InheritEnv: inherit, ScratchDir: scratch, Env: map[string]string{"NODE_ENV": "production"}})
		got := mustOK(t, f.wx("env", `{}`, nil))
		env := got["env"].(map[string]any)
		want := map[string]any{"NODE_ENV": "production", "FROM_FN": "yes", "LC_TIME": "C", "HOME": scratch, "TMPDIR": scratch}
		if inherit {
			want["HOST_DB_PASSWORD"] = "hunter2"
			want["NODE_HOST_SETTING"] = "from-host"
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("inherit=%v: %s = %v, want %v", inherit, k, env[k], v)
			}
		}
		if !inherit {
			for _, k := range []string{"HOST_DB_PASSWORD", "NODE_HOST_SETTING"} {
				if v, ok := env[k]; ok {
					t.Errorf("the host's %s reached the function: %v", k, v)
				}
			}
		}
		if env["PATH"] == nil || env["PATH"] == "" {
			t.Errorf("inherit=%v: no PATH", inherit)
		}
		if got["home"] != scratch || got["tmp"] != scratch {
			t.Errorf("inherit=%v: home %v, tmp %v; want the scratch directory", inherit, got["home"], got["tmp"])
		}
		f.e.Close(0)
	}
}
