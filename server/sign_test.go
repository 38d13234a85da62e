package server

import "testing"

// The golden vector of LeanCloud's X-LC-Sign (md5(timestamp + key)).
func TestSignGoldenVector(t *testing.T) {
	const key, ts = "UtOCzqb67d3sN12Kts4URwy8", int64(1453014943466)
	if got := Sign(key, ts, false); got != "d5bcbb897e19b2f6633c716dfdfaf9be,1453014943466" {
		t.Fatalf("Sign = %s", got)
	}
	cases := []struct {
		header         string
		master, wantOK bool
	}{
		{"d5bcbb897e19b2f6633c716dfdfaf9be,1453014943466", false, true},
		{"D5BCBB897E19B2F6633C716DFDFAF9BE,1453014943466", false, true},
		{"d5bcbb897e19b2f6633c716dfdfaf9be,1453014943467", false, false},
		{"d5bcbb897e19b2f6633c716dfdfaf9be", false, false},
		{Sign("masterKey", ts, true), true, true},
		{Sign(key, ts, false) + ",admin", false, false},
	}
	for _, c := range cases {
		master, ok := VerifySign(c.header, key, "masterKey")
		if ok != c.wantOK || (ok && master != c.master) {
			t.Errorf("VerifySign(%q) = %v, %v", c.header, master, ok)
		}
	}
}
