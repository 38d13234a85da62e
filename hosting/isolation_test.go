package hosting

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestVersionRoot(t *testing.T) {
	v := filepath.Join("/data", "apps", "a1", "versions")
	for dir, want := range map[string]string{
		filepath.Join(v, "7"):                      filepath.Join(v, "7"),
		filepath.Join(v, "7", "node_modules", "x"): filepath.Join(v, "7"),
		v:                                    "",
		filepath.Join("/data", "apps", "a1"): "",
		filepath.Join("/data", "apps", "a2", "versions", "7"): "",
		"": "",
	} {
		if got := versionRoot(v, dir); got != want {
			t.Errorf("versionRoot(%q) = %q, want %q", dir, got, want)
		}
	}
}

// chain runs the worker-start steps in order, skips nil ones and stops at the first error.
func TestChain(t *testing.T) {
	if chain(nil, nil) != nil {
		t.Fatal("a chain of nothing is a step")
	}
	var order []int
	step := func(n int, err error) func(*exec.Cmd) error {
		return func(*exec.Cmd) error { order = append(order, n); return err }
	}
	boom := errors.New("boom")
	if err := chain(step(1, nil), nil, step(2, boom), step(3, nil))(exec.Command("true")); err != boom {
		t.Fatalf("error %v, want boom", err)
	}
	if len(order) != 2 || order[0] != 1 || order[1] != 2 {
		t.Fatalf("ran %v, want [1 2]", order)
	}
}
