package auth

import (
	_ "embed"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// commonPasswordsText is the list of the 10,000 most common passwords long
// enough to pass the length rule; wordlists/README.md says where it comes
// from and how to make it again.
//
//go:embed wordlists/common-passwords.txt
var commonPasswordsText string

// commonPasswords is that list, sorted for binary search: about 250 KB,
// built on first use.
var commonPasswords = sync.OnceValue(func() []string {
	list := strings.Split(strings.TrimSuffix(commonPasswordsText, "\n"), "\n")
	slices.Sort(list)
	return slices.Compact(list)
})

// isCommonPassword reports whether password, in lower case, is on the list
// (so "Password1" counts as "password1").
func isCommonPassword(password string) bool {
	_, found := slices.BinarySearch(commonPasswords(), strings.ToLower(password))
	return found
}

// minLocalPartInPassword is the shortest local part the "contains your
// address" rule looks for: shorter ones ("al", "jo") turn up by chance in
// good passwords.
const minLocalPartInPassword = 3

// parseNewPassword checks a password being set, by NIST SP 800-63B: 8 to
// 128 characters counted as Unicode code points, no composition rules, not
// one of the most common passwords, and not containing the part of the
// account's email before the @ (nor that part without a +tag). email is the
// normalised address, or "" when it is itself invalid. The password is taken
// verbatim (no trimming or normalisation): what the user typed is hashed.
func parseNewPassword(s, email string) (string, string) {
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", "is required"
	case n < minPasswordLen:
		return "", "must be at least 8 characters"
	case n > maxPasswordLen:
		return "", "must be at most 128 characters"
	}
	if isCommonPassword(s) {
		return "", "is one of the most common passwords; choose one that is harder to guess"
	}
	if local, _, ok := strings.Cut(email, "@"); ok {
		lower := strings.ToLower(s)
		base, _, _ := strings.Cut(local, "+")
		for _, part := range []string{local, base} {
			if len(part) >= minLocalPartInPassword && strings.Contains(lower, part) {
				return "", "must not contain your email address or the part of it before the @"
			}
		}
	}
	return s, ""
}
