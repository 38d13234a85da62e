package security

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

const uidCloud = `const AV = require('leanengine'), fs = require('fs'), path = require('path')
AV.Cloud.define('hello', async () => 'hello')
AV.Cloud.define('plant', async () => {
  const file = path.join(process.env.HOME, 'secret.txt')
  fs.writeFileSync(file, 'only for this app')
  return { file, uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() }
})
AV.Cloud.define('attack', async (req) => {
  const p = req.params, out = { uid: process.getuid() }
  const tryRead = (k, f) => { try { fs.readFileSync(f); out[k] = 'READ' } catch (e) { out[k] = e.code } }
  const tryList = (k, d) => { try { fs.readdirSync(d); out[k] = 'LISTED' } catch (e) { out[k] = e.code } }
  const tryWrite = (k, f) => { try { fs.writeFileSync(f, 'x'); out[k] = 'WROTE' } catch (e) { out[k] = e.code } }
  tryRead('otherScratch', p.file)
  tryList('otherScratchDir', path.dirname(p.file))
  tryRead('controlDB', path.join(p.data, 'control.db'))
  tryRead('logsDB', path.join(p.data, 'logs.db'))
  tryRead('otherData', path.join(p.data, 'apps', p.other, 'data.db'))
  tryRead('ownData', path.join(p.data, 'apps', p.self, 'data.db'))
  tryList('listData', p.data)
  tryList('listOther', path.join(p.data, 'apps', p.other))
  tryList('otherVersions', path.join(p.data, 'apps', p.other, 'versions'))
  tryRead('environ', '/proc/' + p.serve + '/environ')
  try { process.kill(p.serve, 0); out.signal = 'SENT' } catch (e) { out.signal = e.code }
  tryWrite('versionDir', path.join(process.cwd(), 'planted.js'))
  tryWrite('dataDir', path.join(p.data, 'planted'))
  tryWrite('scratch', path.join(process.env.HOME, 'mine.txt'))
  return out
})
`

// With fn serve running as root, each app's workers run as a uid of their own: app A's function
// cannot read app B's scratch files, the data directory's databases or fn serve's environment,
// cannot list the data directory or B's directories and cannot signal fn serve, with Landlock
// off (--sandbox off) so that the uid alone is what refuses it, and with both layers.
func TestAppUIDsIsolateApps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a uid per app needs fn serve to run as root")
	}
	t.Run("without Landlock", func(t *testing.T) { testAppUIDs(t, "--sandbox", "off") })
	t.Run("with Landlock where available", func(t *testing.T) { testAppUIDs(t, "--sandbox", "auto") })
}

func testAppUIDs(t *testing.T, sandboxFlags ...string) {
	// workers running as other uids must reach the data directory
	base, err := os.MkdirTemp("", "fn-uids-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o711)
	dataDir := filepath.Join(base, "data")
	s := startServe(t, dataDir, newFakeWeChat(t), append(sandboxFlags, "--app-uids", "300000-300999")...)
	a, b := s.createApp("uida"), s.createApp("uidb")
	for _, name := range []string{"uida", "uidb"} {
		s.mustDeploy(leanProject(t, name, uidCloud), name, "production")
	}
	call := func(who app, fn string, params map[string]any) map[string]any {
		t.Helper()
		body, _ := json.Marshal(params)
		status, m := lean(t, s, who, http.MethodPost, "/1.1/functions/"+fn, nil, string(body))
		if status != 200 {
			t.Fatalf("%s of %s: %d %v\n%s", fn, who.ID, status, m, s.stderr)
		}
		out, _ := m["result"].(map[string]any)
		return out
	}
	planted := call(b, "plant", nil)
	file, _ := planted["file"].(string)
	uidB := int(planted["uid"].(float64))
	if uidB < 300000 || uidB > 300999 || int(planted["gid"].(float64)) != uidB {
		t.Fatalf("app B's worker runs as uid %v gid %v, want one uid and gid of 300000-300999", planted["uid"], planted["gid"])
	}
	if groups, _ := planted["groups"].([]any); len(groups) > 1 || (len(groups) == 1 && int(groups[0].(float64)) != uidB) {
		t.Fatalf("app B's worker keeps supplementary groups %v", groups)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("B's scratch file: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uidB {
		t.Fatalf("B's scratch file is owned by uid %d, want B's uid %d", st.Uid, uidB)
	}
	got := call(a, "attack", map[string]any{"file": file, "data": dataDir, "other": b.ID, "self": a.ID, "serve": s.cmd.Process.Pid})
	if uidA := int(got["uid"].(float64)); uidA == uidB || uidA < 300000 || uidA > 300999 {
		t.Fatalf("app A runs as uid %d, app B as %d: want two distinct uids of the range", uidA, uidB)
	}
	want := map[string]string{
		"otherScratch": "EACCES", "otherScratchDir": "EACCES", "controlDB": "EACCES", "logsDB": "EACCES",
		"otherData": "EACCES", "ownData": "EACCES", "listData": "EACCES", "listOther": "EACCES", "otherVersions": "EACCES",
		"environ": "EACCES", "signal": "EPERM", "versionDir": "EACCES", "dataDir": "EACCES", "scratch": "WROTE",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("app A's %s: %v, want %s", k, got[k], w)
		}
	}
	// the same app gets the same uid after a restart
	s.restart()
	if again := int(call(b, "plant", nil)["uid"].(float64)); again != uidB {
		t.Errorf("after a restart app B runs as uid %d, before as %d", again, uidB)
	}
	if got := call(a, "attack", map[string]any{"file": file, "data": dataDir, "other": b.ID, "self": a.ID, "serve": s.cmd.Process.Pid}); got["otherScratch"] != "EACCES" || got["controlDB"] != "EACCES" {
		t.Errorf("after a restart app A reads B's scratch: %v, control.db: %v", got["otherScratch"], got["controlDB"])
	}
}
