package lcpassword

import "testing"

// The golden vector from LeanCloud's dashboard guide ("导出用户数据的加密算法").
const (
	goldenSalt = "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2"
	goldenHash = "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug=="
)

func TestGoldenVector(t *testing.T) {
	if got := Hash(goldenSalt, "password"); got != goldenHash {
		t.Fatalf("Hash = %s, want %s", got, goldenHash)
	}
	if !VerifyLeanCloudPassword(goldenSalt, goldenHash, "password") {
		t.Fatal("the golden password does not verify")
	}
}

func TestRejects(t *testing.T) {
	for _, c := range []struct{ name, salt, hash, pw string }{
		{"wrong password", goldenSalt, goldenHash, "Password"},
		{"empty password", goldenSalt, goldenHash, ""},
		{"wrong salt", goldenSalt + "x", goldenHash, "password"},
		{"empty salt", "", goldenHash, "password"},
		{"empty hash", goldenSalt, "", "password"},
		{"truncated hash", goldenSalt, goldenHash[:40], "password"},
	} {
		if VerifyLeanCloudPassword(c.salt, c.hash, c.pw) {
			t.Errorf("%s: verified", c.name)
		}
	}
}
