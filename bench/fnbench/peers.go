//go:build unix

package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// peersBench puts the same trivial function behind the peers' own local runtimes (installed by
// bench/peers.sh at pinned versions) next to bare node:http and fn dev, in one run.
func peersBench(fn, nodeModules, peers string) {
	printf("## Peers\n\n")
	if _, err := os.Stat(peers); err != nil {
		printf("skipped: %s is missing (bash bench/peers.sh installs the peers)\n\n", peers)
		return
	}
	dir, _ := os.MkdirTemp("", "fnbench-peers-")
	defer os.RemoveAll(dir)
	write := func(rel, s string) string {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	fnFile := write("tcb/index.js", fnSource)
	gcf := write("gcf/index.js", "exports.main = (req, res) => res.json({ ok: true, n: req.body.n })\n")
	bare := write("bare.js", bareServer)
	le := write("leanengine.js", leanengineServer)
	write("dev/fn.yaml", "name: peerbench\ndialect: wx\n")
	write("dev/functions/hello/index.js", fnSource)
	nodeEnv := []string{"NODE_PATH=" + nodeModules, "LEANCLOUD_APP_ID=bench-fnDev", "LEANCLOUD_APP_KEY=benchKey", "LEANCLOUD_APP_MASTER_KEY=benchMaster"}
	bareURL, barePID, stopBare := startNode(nodeEnv, bare, fnFile)
	defer stopBare()
	leURL, lePID, stopLE := startNode(nodeEnv, le)
	defer stopLE()
	d := startFnDev(fn, filepath.Join(dir, "dev"))
	defer d.stop()
	tcbURL, stopTCB := startPeer(filepath.Join(dir, "tcb"), filepath.Join(peers, ".bin", "tcb-ff"), "--target=main", "--source=index.js")
	defer stopTCB()
	gcfURL, stopGCF := startPeer(filepath.Join(dir, "gcf"), filepath.Join(peers, ".bin", "functions-framework"), "--target=main", "--source="+gcf)
	defer stopGCF()
	lean := leanHeader("bench-fnDev", "benchKey")
	loadTable([]target{
		{name: "bare node:http", url: bareURL, pid: barePID},
		{name: "fn dev wx", url: d.url + "/wx/functions/hello", pid: d.cmd.Process.Pid},
		{name: "CloudBase functions framework (tcb-ff)", url: tcbURL},
		{name: "Google Cloud functions framework", url: gcfURL},
		{name: "leanengine 3.8 + express", url: leURL + "1.1/functions/hello", header: lean, pid: lePID},
	}, []int{1, 32})
}

// startPeer runs a peer's CLI on a free port and waits until it answers.
func startPeer(dir, bin string, args ...string) (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, append(args, fmt.Sprintf("--port=%d", port))...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(cmd.Start())
	stop := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Post(url, "application/json", strings.NewReader(`{"n":1}`)); err == nil {
			resp.Body.Close()
			return url, stop
		}
	}
	stop()
	must(fmt.Errorf("%s did not answer within 30 s: %s", bin, stderr.String()))
	return "", nil
}
