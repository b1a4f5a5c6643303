package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
)

// Code purposes; a code made for one cannot be used for another.
const (
	purposeVerify = "verify" // proves the address: POST /v1/auth/verify
	purposeReset  = "reset"  // sets a new password: POST /v1/auth/password/reset
)

// Rules of one-time codes.
const (
	maxCodeAttempts = 5 // wrong tries before a code is burned
	// maxCodesPerHour bounds the codes (of any purpose) issued to one account
	// per hour. With maxCodeAttempts it caps guessing at 25 tries an hour and
	// 50 a day (maxMailsPerDay), whatever an attacker sends to register,
	// resend or forgot.
	maxCodesPerHour = 5
)

// codeSpace is the number of six-digit codes; codeLimit is the largest
// multiple of it that fits in a uint32. Draws at or above codeLimit are
// rejected, so every code is equally likely (no modulo bias).
const (
	codeSpace = 1_000_000
	codeLimit = (1 << 32) / codeSpace * codeSpace
)

// randomCode draws a uniform six-digit code from rnd (crypto/rand in
// production), by rejection sampling.
func randomCode(rnd io.Reader) (string, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return "", fmt.Errorf("one-time code: %w", err)
		}
		if v := binary.BigEndian.Uint32(b[:]); v < codeLimit {
			return fmt.Sprintf("%06d", v%codeSpace), nil
		}
	}
}

// codeMAC is what the database keeps of a code: HMAC-SHA256 under the server
// secret, bound to the purpose and the user, so a stolen table reveals no
// code (a million candidates are nothing without the key) and a code cannot
// be replayed for another user or purpose.
func codeMAC(secret []byte, purpose, userID, code string) string {
	m := hmac.New(sha256.New, secret)
	// NUL separators keep the fields from running into each other.
	m.Write([]byte("kinoteka-otc-v1\x00" + purpose + "\x00" + userID + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}
