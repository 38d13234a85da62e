package engine

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The runner's header, its T table and PROTOCOL must say what protocol.go says.
func TestRunnerSpeaksTheSameProtocol(t *testing.T) {
	src := string(runnerJS)
	m := regexp.MustCompile(`const PROTOCOL = (\d+);`).FindStringSubmatch(src)
	if m == nil {
		t.Fatal("runner.js has no PROTOCOL constant")
	}
	if v, _ := strconv.Atoi(m[1]); v != protocolVersion {
		t.Errorf("runner.js PROTOCOL = %d, protocol.go protocolVersion = %d", v, protocolVersion)
	}
	table := regexp.MustCompile(`(?s)const T = Object\.freeze\(\{(.*?)\}\);`).FindStringSubmatch(src)
	if table == nil {
		t.Fatal("runner.js has no T table")
	}
	var js []string
	for _, kv := range regexp.MustCompile(`(\w+): '(\w+)'`).FindAllStringSubmatch(table[1], -1) {
		if kv[1] != kv[2] {
			t.Errorf("runner.js T.%s = %q", kv[1], kv[2])
		}
		js = append(js, kv[2])
	}
	var goKinds []string
	for _, k := range protocolKinds {
		goKinds = append(goKinds, string(k))
		if !regexp.MustCompile(`(?m)^//\s+` + string(k) + `\s`).MatchString(src) {
			t.Errorf("the runner.js header does not list %q", k)
		}
	}
	sort.Strings(js)
	sort.Strings(goKinds)
	if strings.Join(js, ",") != strings.Join(goKinds, ",") {
		t.Errorf("kinds differ:\n runner.js   %v\n protocol.go %v", js, goKinds)
	}
	// every kind the runner sends is named through T, not written out
	if lit := regexp.MustCompile(`\bt: '\w+'`).FindString(src); lit != "" {
		t.Errorf("runner.js sends a literal kind: %s", lit)
	}
}

func TestPeekHeader(t *testing.T) {
	for _, c := range []struct {
		line string
		want header
		ok   bool
	}{
		{`{"t":"result","id":42,"ok":true,"value":{"t":"x"}}`, header{T: msgResult, ID: 42}, true},
		{`{"t":"log","level":"info"}`, header{T: msgLog}, true},
		{`{"id":7,"t":"pong"}`, header{T: msgPong, ID: 7}, true},
		{`{"ok":true}`, header{}, false},
		{`not json`, header{}, false},
	} {
		got, ok := peekHeader([]byte(c.line))
		if got != c.want || ok != c.ok {
			t.Errorf("peekHeader(%s) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// A runner of another protocol version is refused with both versions named.
func TestProtocolVersionMismatchIsRefused(t *testing.T) {
	dir := t.TempDir()
	old := strings.Replace(string(runnerJS), "const PROTOCOL = "+strconv.Itoa(protocolVersion)+";", "const PROTOCOL = 1;", 1)
	file := filepath.Join(dir, "runner.js")
	if err := os.WriteFile(file, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := startWorker(context.Background(), workerSpec{node: "node", runner: file, dir: dir, env: os.Environ(), name: "x"}, nil, nil)
	if err == nil {
		w.kill()
		t.Fatal("a runner of protocol 1 was accepted")
	}
	want := "protocol version 1, this engine speaks version " + strconv.Itoa(protocolVersion)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name both versions (%q)", err, want)
	}
}
