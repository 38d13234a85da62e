package commands

import (
	"context"
	"testing"

	"github.com/spf13/viper"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/iostreams"
)

// fn dev's port and host: flag > FN_* env > fn.yaml's dev: section > default, decided by the one
// scoped viper.
func TestDevSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: pr\ndialect: wx\ndev:\n  port: 4000\n  host: 0.0.0.0\n")
	testutil.WriteFile(t, dir, "functions/f/index.js", "exports.main = async () => 1\n")
	run := func(env map[string]string, args ...string) *devOptions {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		ios, _, _, _ := iostreams.Test()
		f := &Factory{IO: ios, Config: viper.New(), Global: &GlobalOptions{}, Version: "test"}
		root := NewRootCmd(f)
		old, _, _ := root.Find([]string{"dev"})
		root.RemoveCommand(old)
		var got *devOptions
		dev := newCmdDev(f, func(ctx context.Context, o *devOptions) error { got = o; return nil })
		dev.GroupID = old.GroupID
		root.AddCommand(dev)
		root.SetArgs(append([]string{"-C", dir, "dev"}, args...))
		if err := root.ExecuteContext(context.WithValue(context.Background(), factoryKey{}, f)); err != nil {
			t.Fatalf("%v %v: %v", env, args, err)
		}
		return got
	}
	if o := run(nil); o.Port != 4000 || o.Host != "0.0.0.0" {
		t.Errorf("fn.yaml over the defaults: %d %s", o.Port, o.Host)
	}
	if o := run(map[string]string{"FN_PORT": "5000"}); o.Port != 5000 || o.Host != "0.0.0.0" {
		t.Errorf("FN_PORT over fn.yaml: %d %s", o.Port, o.Host)
	}
	if o := run(map[string]string{"FN_PORT": "5000", "FN_HOST": "127.0.0.2"}, "--port", "6000"); o.Port != 6000 || o.Host != "127.0.0.2" {
		t.Errorf("the flag over FN_PORT, FN_HOST over fn.yaml: %d %s", o.Port, o.Host)
	}
}
