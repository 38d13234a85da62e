package store_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/fnhq/fn/store"
	"github.com/fnhq/fn/store/storetest"
)

func TestSQLiteConformance(t *testing.T) {
	var paths sync.Map
	open := func(t *testing.T, path string) store.Store {
		s, err := store.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		paths.Store(store.Store(s), path)
		t.Cleanup(func() { s.Close() })
		return s
	}
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, filepath.Join(t.TempDir(), "data.db")) }, storetest.Options{
		Reopen: func(t *testing.T, old store.Store) store.Store {
			p, _ := paths.Load(old)
			return open(t, p.(string))
		},
	})
}
