// Package lcpassword checks passwords against the hashes LeanCloud exports for its users, so
// that users imported from LeanCloud keep logging in with the passwords they already have.
//
// LeanCloud's scheme (documented with its data export): SHA-512 over salt+password, then 512
// more rounds of SHA-512 over the previous digest, base64-encoded.
package lcpassword

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
)

// Rounds is how many times LeanCloud re-hashes the first digest.
const Rounds = 512

// Hash computes LeanCloud's hash of password with salt.
func Hash(salt, password string) string {
	h := sha512.New()
	h.Write([]byte(salt))
	h.Write([]byte(password))
	sum := h.Sum(nil)
	for range Rounds {
		next := sha512.Sum512(sum)
		sum = next[:]
	}
	return base64.StdEncoding.EncodeToString(sum)
}

// VerifyLeanCloudPassword reports whether password matches a LeanCloud export's salt and
// password hash. It compares in constant time; an empty salt or hash never matches.
func VerifyLeanCloudPassword(salt, hash, password string) bool {
	if salt == "" || hash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Hash(salt, password)), []byte(hash)) == 1
}
