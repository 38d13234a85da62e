package sandbox

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The test binary is its own trampoline.
func TestMain(m *testing.M) {
	if IsTrampoline(os.Args) {
		os.Stderr.WriteString("trampoline: " + Exec(os.Args).Error() + "\n")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

const probe = `
const fs = require('fs')
const out = {}
const tryRead = (k, p) => { try { fs.readFileSync(p); out[k] = 'read' } catch (e) { out[k] = e.code } }
const tryWrite = (k, p) => { try { fs.writeFileSync(p, 'x'); out[k] = 'wrote' } catch (e) { out[k] = e.code } }
tryRead('own', __dirname + '/own.txt')
tryRead('secret', process.argv[2])
tryRead('passwd', '/etc/passwd')
tryRead('shadow', '/etc/shadow')
tryRead('environ', '/proc/' + process.ppid + '/environ')
tryWrite('scratch', process.argv[3] + '/x')
tryWrite('outside', process.argv[4] + '/x')
try { process.kill(process.ppid, 0); out.signal = 'ok' } catch (e) { out.signal = e.code }
out.child = require('child_process').execFileSync('sh', ['-c', 'cat ' + process.argv[2] + ' 2>/dev/null || echo denied']).toString().trim()
console.log(JSON.stringify(out))
`

func run(t *testing.T, o Options) map[string]string {
	t.Helper()
	st := Check()
	if !st.Enforced {
		t.Skip("sandbox not enforced here: " + st.Reason)
	}
	data := t.TempDir()
	version := filepath.Join(data, "apps", "a", "versions", "1")
	scratch := filepath.Join(data, "apps", "a", "scratch", "production")
	for _, d := range []string{version, scratch} {
		os.MkdirAll(d, 0o700)
	}
	os.WriteFile(filepath.Join(version, "probe.js"), []byte(probe), 0o600)
	os.WriteFile(filepath.Join(version, "own.txt"), []byte("mine"), 0o600)
	secret := filepath.Join(data, "control.db")
	os.WriteFile(secret, []byte("keys"), 0o600)
	o.Self, o.Protect = os.Args[0], []string{data}
	hook, err := o.Hook(nil, []string{scratch})
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node")
	}
	cmd := exec.Command(node, filepath.Join(version, "probe.js"), secret, scratch, data)
	cmd.Dir = version
	if err := hook(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s", out)
	}
	return got
}

func TestLandlockConfinesNodeAndItsChildren(t *testing.T) {
	got := run(t, Options{})
	want := map[string]string{"own": "read", "secret": "EACCES", "passwd": "read", "shadow": "EACCES", "environ": "EACCES",
		"scratch": "wrote", "outside": "EACCES", "signal": "EPERM", "child": "denied"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestNodePermissionsLayer(t *testing.T) {
	got := run(t, Options{NodePermissions: true})
	for _, k := range []string{"secret", "outside"} {
		if !strings.HasPrefix(got[k], "E") {
			t.Errorf("%s: %q", k, got[k])
		}
	}
	if got["own"] != "read" || got["scratch"] != "wrote" || got["child"] != "denied" {
		t.Errorf("allowed paths refused: %v", got)
	}
}

func TestRuleThatWouldExposeTheDataDirIsRefused(t *testing.T) {
	data := t.TempDir()
	os.MkdirAll(filepath.Join(data, "fn-data"), 0o700)
	hook, err := Options{Self: "/bin/true", Protect: []string{filepath.Join(data, "fn-data")}}.Hook([]string{data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh")
	cmd.Dir = filepath.Join(data, "fn-data")
	err = hook(cmd)
	if err == nil || !strings.Contains(err.Error(), "would expose") {
		t.Fatalf("a read rule on the data directory's parent must be refused, got %v", err)
	}
}
