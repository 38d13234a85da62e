package engine

import (
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

func sparePID(e *Engine) int {
	select {
	case w := <-e.spare:
		e.spare <- w
		return w.pid
	default:
		return 0
	}
}

func TestSpareWorkerIsAdoptedWithTheFunctionsEnv(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.yaml":                 "name: sp\ndialect: wx\nfunctions:\n  env:\n    env:\n      COLOR: green\n  big:\n    memory: 512\n",
		"functions/env/index.js":  "const atLoad = process.env.COLOR\nexports.main = async () => ({ atLoad, now: process.env.COLOR, pid: process.pid })\n",
		"functions/big/index.js":  "exports.main = async () => ({ pid: process.pid })\n",
		"functions/boom/index.js": "exports.main = async () => { process.exit(1) }\n",
	}, bundler.Dev, Config{Spare: true})
	// the initial load took the spare for one function; a new spare is there soon after
	var spare int
	testutil.Eventually(t, 10*time.Second, "a spare worker", func() bool { spare = sparePID(f.e); return spare != 0 })
	got := mustOK(t, f.wx("env", `{}`, nil))
	if got["atLoad"] != "green" || got["now"] != "green" {
		t.Fatalf("a function on an adopted worker must see its env at load and at run time: %v", got)
	}
	// a crash is replaced by the spare: the replacement is the spare's process
	f.wx("boom", `{}`, nil)
	testutil.Eventually(t, 10*time.Second, "the crashed worker to be replaced", func() bool {
		for _, w := range f.e.Stats().Workers {
			if w.Bundle == "boom" && w.PID == spare {
				return true
			}
		}
		return false
	})
	// a function with another memory limit never takes the default-memory spare
	pid := mustOK(t, f.wx("big", `{}`, nil))["pid"]
	if int(pid.(float64)) == sparePID(f.e) {
		t.Fatal("big took the spare")
	}
	// Close stops the spare too
	testutil.Eventually(t, 10*time.Second, "a new spare", func() bool { spare = sparePID(f.e); return spare != 0 })
	f.e.Close(time.Second)
	if processAlive(spare) {
		t.Fatalf("the spare %d survived Close", spare)
	}
}
