package auth

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
)

func TestDefaultArgon2MeetsOWASP(t *testing.T) {
	p := DefaultArgon2
	if p.Memory < 19456 || p.Time < 2 || p.Threads < 1 || p.SaltLen < 16 || p.KeyLen < 32 {
		t.Errorf("DefaultArgon2 = %+v, below OWASP's m=19456 KiB, t=2, p=1 with a 16-byte salt and 32-byte key", p)
	}
}

func TestPasswordHashIsAPHCString(t *testing.T) {
	hash, err := hashPassword("correct horse", testArgon2, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(hash) {
		t.Errorf("hash %q is not $argon2id$v=19$m=64,t=1,p=1$<16-byte salt>$<32-byte key>", hash)
	}
	again, _ := hashPassword("correct horse", testArgon2, rand.Reader)
	if again == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horse ": false, "Correct horse": false, "": false} {
		if ok, err := checkPassword(pw, hash); ok != want || err != nil {
			t.Errorf("checkPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}

func TestCheckPasswordUsesTheHashsOwnParameters(t *testing.T) {
	// A hash made with other parameters than today's still verifies:
	// the parameters are read back from the string.
	for _, p := range []Argon2Params{
		{Memory: 32, Time: 3, Threads: 2, SaltLen: 8, KeyLen: 16},
		{Memory: 128, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 64},
	} {
		hash, err := hashPassword("pw", p, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := checkPassword("pw", hash); !ok || err != nil {
			t.Errorf("%+v: checkPassword = %v, %v", p, ok, err)
		}
		if !needsRehash(hash, DefaultArgon2) {
			t.Errorf("%+v: a weaker hash does not ask to be re-hashed", p)
		}
	}
	current, _ := hashPassword("pw", testArgon2, rand.Reader)
	if needsRehash(current, testArgon2) {
		t.Error("a hash with the current parameters asks to be re-hashed")
	}
}

func TestCheckPasswordRejectsBadHashes(t *testing.T) {
	good, _ := hashPassword("pw", testArgon2, bytes.NewReader(make([]byte, 16)))
	for _, bad := range []string{
		"",
		"plaintext",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64", "m=99999999", 1), // a corrupted row must not allocate 95 GiB
		strings.Replace(good, "t=1", "t=0", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Replace(good, "m=64,", "m=64,x=1,", 1),
		good[:len(good)-44] + "$!!!",
		good + "$extra",
	} {
		if ok, err := checkPassword("pw", bad); ok || err == nil {
			t.Errorf("checkPassword(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}
