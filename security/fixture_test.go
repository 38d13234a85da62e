package security

import (
	"net/http"
	"os"
	"sync"
	"testing"
)

// The probe tries everything a hostile function would: other apps' files, the runtime's
// databases, fn serve's own environment, writes outside its scratch directory.
const probeJS = `
const fs = require('fs'), path = require('path'), cp = require('child_process')
module.exports = (other) => {
  const out = { cwd: process.cwd(), home: process.env.HOME,
    leaked: Object.keys(process.env).filter((k) => k === 'HOST_DB_PASSWORD' || String(process.env[k]).includes('hunter2')) }
  const data = path.resolve(process.cwd(), '../../../..')
  out.data = data
  const tryRead = (k, p) => { try { fs.readFileSync(p); out[k] = 'READ' } catch (e) { out[k] = e.code } }
  const tryWrite = (k, p) => { try { fs.writeFileSync(p, 'x'); out[k] = 'WROTE' } catch (e) { out[k] = e.code } }
  tryRead('controlDB', path.join(data, 'control.db'))
  tryRead('logsDB', path.join(data, 'logs.db'))
  tryRead('stateJSON', path.join(data, 'state.json'))
  tryRead('otherApp', path.join(data, 'apps', other || 'none', 'data.db'))
  tryRead('ownData', path.join(data, 'apps', path.basename(path.resolve(process.cwd(), '../..')), 'data.db'))
  tryRead('environ', '/proc/' + process.ppid + '/environ')
  tryRead('shadow', '/etc/shadow')
  tryWrite('versionDir', path.join(process.cwd(), 'planted.js'))
  tryWrite('tmp', '/tmp/fn-sec-' + process.pid)
  tryWrite('scratch', path.join(process.env.HOME, 'ok.txt'))
  try { fs.readdirSync(data); out.listData = 'LISTED' } catch (e) { out.listData = e.code }
  out.shell = cp.execFileSync('sh', ['-c', 'cat "$0" >/dev/null 2>&1 && echo READ || echo denied', path.join(data, 'control.db')]).toString().trim()
  return out
}
`

const wxProbe = `const probe = require('./probe')
exports.main = async (event) => probe(event.other)
`

const wxInternal = `exports.main = async () => ({ secret: 'internal-only-result' })
`

// nested calls internal the way real code does: through the wx-server-sdk and /admin
const wxNested = `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async () => {
  const res = await cloud.callFunction({ name: 'internal', data: {} })
  return res.result
}
`

// storm misbehaves on request: loops, OOMs, exits, floods stdout, spawns orphans
const wxStorm = `const cp = require('child_process')
exports.main = async (event) => {
  switch (event.mode) {
    case 'loop': for (;;) {}
    case 'oom': { const a = []; for (;;) a.push(new Array(1e6).fill(Math.random())) }
    case 'exit': process.exit(3)
    case 'flood': process.stdout.write('x'.repeat(100 << 20)); return 'flooded'
    case 'spawn': {
      const a = cp.spawn('sleep', ['300'], { detached: true, stdio: 'ignore' }); a.unref()
      const b = cp.spawn('sleep', ['301'], { stdio: 'ignore' })
      return [a.pid, b.pid]
    }
  }
  return 'calm'
}
`

const leanCloud = `const AV = require('leanengine')
const probe = require('./probe')
AV.Cloud.define('hello', async () => 'hello')
AV.Cloud.define('probe', async (req) => probe(req.params.other))
`

// fixture is one fn serve shared by the tests that only attack it (they leave it as it was).
type fixture struct {
	s             *serve
	wx, lean, oth app
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  string
	fixStop []func()
)

func shared(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		ok := false
		defer func() {
			if !ok && fixErr == "" {
				fixErr = "the shared fn serve did not start"
			}
		}()
		wechat := newFakeWeChat(noCleanup{T: t})
		fixStop = append(fixStop, wechat.Close)
		dir, err := os.MkdirTemp("", "fn-security-data-")
		if err != nil {
			fixErr = err.Error()
			return
		}
		fixStop = append(fixStop, func() { os.RemoveAll(dir) })
		s := newServe(t, dir+"/data", wechat)
		fixStop = append([]func(){s.stop}, fixStop...)
		f := &fixture{s: s}
		f.wx = s.createApp("alpha", "--wx-appid", "wxSec", "--wx-secret", "shh-app-secret")
		f.lean = s.createApp("beta")
		f.oth = s.createApp("gamma")
		wxDir := wxProject(t, "alpha", map[string]string{"probe": wxProbe, "internal": wxInternal, "nested": wxNested, "storm": wxStorm},
			"  storm:\n    timeout: 2\n    memory: 128\n  nested:\n    timeout: 10\n")
		for _, fn := range []string{"probe"} {
			writeFile(t, wxDir+"/functions/"+fn+"/probe.js", probeJS)
		}
		s.mustDeploy(wxDir, "alpha", "production")
		leanDir := leanProject(t, "beta", leanCloud)
		writeFile(t, leanDir+"/probe.js", probeJS)
		s.mustDeploy(leanDir, "beta", "production")
		// gamma has data of its own
		if status, _ := lean(t, s, f.oth, http.MethodPost, "/1.1/classes/Private", nil, `{"v":"gamma's"}`); status != 201 {
			fixErr = "gamma's data"
			return
		}
		fix, ok = f, true
	})
	if fix == nil {
		t.Fatal(fixErr)
	}
	return fix
}

func stopShared() {
	for _, f := range fixStop {
		f()
	}
}

// noCleanup is a T whose cleanups are left to the package (the shared fixture outlives a test).
type noCleanup struct{ *testing.T }

func (noCleanup) Cleanup(func()) {}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
