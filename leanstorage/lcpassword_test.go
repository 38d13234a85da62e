package leanstorage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/store"
)

// A user imported from LeanCloud logs in with their old password; the LeanCloud hash is then
// replaced by fn's own, and a wrong password still fails.
func TestImportedLeanCloudPasswordLogsInAndUpgrades(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	// the dashboard guide's vector: salt and the 512-round SHA-512 hash of "password"
	err := s.st.Insert(ctx, &store.Object{Class: "_User", ID: "u1", CreatedAt: time.Now(), UpdatedAt: time.Now(), Fields: map[string]any{
		"username": "old", "_lc_salt": "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2",
		"_lc_password": "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug=="}})
	if err != nil {
		t.Fatal(err)
	}
	if st, body := s.do(t, "POST", "login", nil, `{"username":"old","password":"wrong"}`, Auth{RemoteAddr: "10.0.0.1"}); st != 400 || body["code"] != 210.0 {
		t.Fatalf("a wrong password: %d %v", st, body)
	}
	st, body := s.do(t, "POST", "login", nil, `{"username":"old","password":"password"}`, Auth{RemoteAddr: "10.0.0.2"})
	if st != 200 || body["objectId"] != "u1" || body["sessionToken"] == nil {
		t.Fatalf("login with the LeanCloud password: %d %v", st, body)
	}
	for k := range body {
		if strings.HasPrefix(k, "_") {
			t.Errorf("a hidden field reached the client: %s", k)
		}
	}
	u, _ := s.st.Get(ctx, "_User", "u1")
	if _, ok := u.Fields["_lc_password"]; ok || u.Fields["_hashed_password"] == nil {
		t.Fatalf("the hash should be upgraded to fn's: %v", u.Fields)
	}
	if st, _ := s.do(t, "POST", "login", nil, `{"username":"old","password":"password"}`, Auth{RemoteAddr: "10.0.0.2"}); st != 200 {
		t.Fatalf("login after the upgrade: %d", st)
	}
	if st, _ := s.do(t, "POST", "login", nil, `{"username":"old","password":"Password"}`, Auth{RemoteAddr: "10.0.0.3"}); st != 400 {
		t.Fatalf("a wrong password after the upgrade: %d", st)
	}
}
