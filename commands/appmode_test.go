package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

// fn invoke in a LeanEngine project without fn.yaml: pure cloud code takes the shared workers,
// a project with server.js runs the call inside its app process; realtime hooks get the
// realtime service's sample payload with --sample.
func TestInvokeLeanEngineProjectsWithoutFnYAML(t *testing.T) {
	hooks := `AV.Cloud.define('_messageReceived', (req) => ({ content: JSON.parse(req.params.content)._lctext, from: req.params.fromPeer, signed: /^\d+,[0-9a-f]{40}$/.test(req.params.__sign) }))
AV.Cloud.define('_conversationUpdate', (req) => ({ name: req.params.attr.name }))
AV.Cloud.define('where', () => ({ pid: process.pid, ppidIsFn: process.ppid !== 1, viaServer: !!global.viaServer }))
`
	cloudOnly := t.TempDir()
	testutil.WriteFile(t, cloudOnly, "package.json", `{"name":"rt","dependencies":{"leanengine":"3"}}`)
	testutil.WriteFile(t, cloudOnly, "cloud.js", "const AV = require('leanengine')\n"+hooks)
	testutil.LinkNodeModules(t, cloudOnly)

	app := t.TempDir()
	testutil.WriteFile(t, app, "package.json", `{"name":"rtapp","scripts":{"start":"node server.js"},"dependencies":{"leanengine":"3","express":"4"}}`)
	testutil.WriteFile(t, app, "cloud.js", "const AV = require('leanengine')\n"+hooks)
	testutil.WriteFile(t, app, "server.js", `const AV = require('leanengine')
AV.init({ appId: process.env.LEANCLOUD_APP_ID, appKey: process.env.LEANCLOUD_APP_KEY, masterKey: process.env.LEANCLOUD_APP_MASTER_KEY })
global.viaServer = true
require('./cloud')
const app = require('express')()
app.use(AV.express())
app.listen(parseInt(process.env.LEANCLOUD_APP_PORT))
`)
	testutil.LinkNodeModules(t, app)

	for _, c := range []struct {
		dir       string
		viaServer bool
	}{{cloudOnly, false}, {app, true}} {
		r := fn(t, c.dir, "invoke", "_messageReceived", "--sample", "--local")
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", c.dir, r.code, r.err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.out), &got); err != nil {
			t.Fatalf("stdout: %v\n%s", err, r.out)
		}
		if got["content"] != "耗子,起床!" || got["from"] != "Tom" || got["signed"] != true {
			t.Errorf("_messageReceived --sample: %v", got)
		}
		if r := fn(t, c.dir, "invoke", "_conversationUpdate", "--sample", "--local"); r.code != 0 || !strings.Contains(r.out, "聰明的喵星人") {
			t.Errorf("_conversationUpdate --sample: %d %s %s", r.code, r.out, r.err)
		}
		r = fn(t, c.dir, "invoke", "where", "--local")
		if r.code != 0 {
			t.Fatalf("where: %d %s", r.code, r.err)
		}
		json.Unmarshal([]byte(r.out), &got)
		if got["viaServer"] != c.viaServer {
			t.Errorf("%s: ran via server.js = %v, want %v", c.dir, got["viaServer"], c.viaServer)
		}
		if r := fn(t, c.dir, "invoke", "where", "--sample"); r.code != 2 || !strings.Contains(r.err, "--sample is for LeanCloud realtime hooks") {
			t.Errorf("--sample on a plain function: %d %s", r.code, r.err)
		}
	}
}
