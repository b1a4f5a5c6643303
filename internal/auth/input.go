package auth

import (
	"strings"

	"kinoteka/internal/apperr"
)

// Limits on what clients send.
const (
	maxEmailLen    = 254 // RFC 5321's path limit, less the angle brackets
	maxLocalLen    = 64
	minPasswordLen = 8   // characters (runes), not bytes
	maxPasswordLen = 128 // bounds the hashing work one request can cause
	codeDigits     = 6
)

// fieldErrors collects every bad field of a request, so one 400 lists them all.
type fieldErrors []apperr.FieldError

func (f *fieldErrors) add(field, message string) {
	*f = append(*f, apperr.FieldError{Field: field, Message: message})
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return apperr.Validation(f...)
}

// parseEmail normalises an address: surrounding spaces trimmed and the WHOLE
// address lower-cased. RFC 5321 lets the local part be case-sensitive, but no
// mainstream provider treats it so and users expect "Anna@Example.com" and
// "anna@example.com" to be one account. Only plain ASCII dot-atom addresses
// are accepted (no quoted local parts, comments or internationalised
// domains), which is what the mailer can deliver to.
func parseEmail(s string) (string, string) {
	s = strings.ToLower(strings.TrimSpace(s))
	const shape = "must be an email address such as name@example.com"
	switch {
	case s == "":
		return "", "is required"
	case len(s) > maxEmailLen:
		return "", "must be at most 254 characters"
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 {
		return "", shape
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > maxLocalLen {
		return "", "the part before @ must be at most 64 characters"
	}
	if !dotAtom(local) || !hostname(domain) {
		return "", shape
	}
	return s, ""
}

// dotAtom reports whether s is an RFC 5322 dot-atom: atext runs joined by
// single dots.
func dotAtom(s string) bool {
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return false
		}
		for _, c := range []byte(part) {
			if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+/=?^_`{|}~-", rune(c)) {
				return false
			}
		}
	}
	return true
}

// hostname reports whether s is a DNS name of at least two labels, each of
// letters, digits and inner hyphens, with a top-level label that is not all
// digits (so it is not an IP address).
func hostname(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// parseLocale maps a language tag to a locale the mails exist in: "ru" for
// Russian ("ru", "ru-RU", "ru_RU"), "en" for anything else well-formed and
// for nothing at all. An unsupported language is not an error: an English
// mail serves the user better than a refused registration.
func parseLocale(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "en", ""
	}
	const shape = "must be a language tag such as en, ru or ru-RU"
	if len(s) > 35 {
		return "", shape
	}
	subtags := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
	if len(subtags) == 0 || len(subtags[0]) < 2 || len(subtags[0]) > 3 {
		return "", shape
	}
	for i, t := range subtags {
		if len(t) > 8 {
			return "", shape
		}
		for _, c := range []byte(t) {
			if !isAlnum(c) || (i == 0 && c >= '0' && c <= '9') {
				return "", shape
			}
		}
	}
	if strings.EqualFold(subtags[0], "ru") {
		return "ru", ""
	}
	return "en", ""
}

// parseCode checks the shape of a one-time code: exactly six ASCII digits.
// A malformed code is a 400 and does not count as a wrong try.
func parseCode(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "is required"
	}
	if len(s) != codeDigits || strings.Trim(s, "0123456789") != "" {
		return "", "must be the 6 digits from the email"
	}
	return s, ""
}
