package auth

import (
	"strings"
	"testing"
)

func TestParseEmail(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
	for _, tc := range []struct {
		in, want string // want "" means rejected
	}{
		{"anna@example.com", "anna@example.com"},
		{"  Anna.Petrova@Example.COM\t", "anna.petrova@example.com"},
		{"first+tag@mail.example.co.uk", "first+tag@mail.example.co.uk"},
		{"o'hara_x-y@sub-domain.example", "o'hara_x-y@sub-domain.example"},
		{"a@b.c1", "a@b.c1"},
		{"", ""},
		{"   ", ""},
		{"plainaddress", ""},
		{"@example.com", ""},
		{"anna@", ""},
		{"anna@localhost", ""},
		{"anna@127.0.0.1", ""},
		{"anna@@example.com", ""},
		{"an na@example.com", ""},
		{".anna@example.com", ""},
		{"anna.@example.com", ""},
		{"an..na@example.com", ""},
		{"anna@-example.com", ""},
		{"anna@example-.com", ""},
		{"anna@example..com", ""},
		{"anna@exa_mple.com", ""},
		{"Anna <anna@example.com>", ""},
		{`"anna"@example.com`, ""},
		{"анна@пример.рф", ""},
		{"anna@example.com\r\nBcc: x@y.z", ""},
		{strings.Repeat("a", 65) + "@example.com", ""},
		{long, ""},           // 255 characters
		{long[1:], long[1:]}, // 254 characters
	} {
		got, msg := parseEmail(tc.in)
		if got != tc.want || (tc.want == "") != (msg != "") {
			t.Errorf("parseEmail(%q) = %q, %q; want %q", tc.in, got, msg, tc.want)
		}
	}
}

func TestParseNewPassword(t *testing.T) {
	for _, tc := range []struct {
		in, email string
		ok        bool
	}{
		{"", "", false},
		{"1234567", "", false},
		{"1234567x", "", true},
		{"пароль!!", "", true},               // 8 runes, 14 bytes
		{"пароль!", "", false},               // 7 runes, though 13 bytes
		{strings.Repeat("я", 128), "", true}, // 256 bytes
		{strings.Repeat("x", 129), "", false},
		{"  spaces count  ", "", true},
		// The most common passwords, whatever their case.
		{"12345678", "", false},
		{"password1", "", false},
		{"PassWord1", "", false},
		{"iloveyou", "", false},
		{"correct horse battery staple", "", true},
		// The email's local part (3 characters or more), with or without its +tag.
		{"my name is anna!", "anna@example.com", false},
		{"my name is ANNA!", "anna@example.com", false},
		{"anna+films rocks", "anna+films@example.com", false},
		{"i am anna, hello", "anna+films@example.com", false},
		{"example.com is me", "anna@example.com", true}, // the domain is not the rule
		{"alone at night", "al@example.com", true},      // too short to count
	} {
		got, msg := parseNewPassword(tc.in, tc.email)
		if (msg == "") != tc.ok || (tc.ok && got != tc.in) {
			t.Errorf("parseNewPassword(%q, %q) = %q, %q; want ok=%v and the input unchanged", tc.in, tc.email, got, msg, tc.ok)
		}
	}
}

// The embedded list is the one its README describes: 10,000 entries of 8
// characters or more, most common first.
func TestCommonPasswordsList(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(commonPasswordsText, "\n"), "\n")
	if len(lines) != 10000 || lines[0] != "password" || lines[1] != "12345678" {
		t.Fatalf("list has %d lines starting %q; want 10000 starting password, 12345678", len(lines), lines[:2])
	}
	for i, l := range lines {
		if n := len([]rune(l)); n < minPasswordLen || n > maxPasswordLen || l != strings.ToLower(l) || strings.TrimSpace(l) != l {
			t.Fatalf("line %d %q breaks the list's rules", i+1, l)
		}
	}
	if len(commonPasswords()) != 10000 {
		t.Errorf("%d distinct entries, want 10000", len(commonPasswords()))
	}
}

func TestParseLocale(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means rejected
	}{
		{"", "en"},
		{"en", "en"},
		{"ru", "ru"},
		{"RU", "ru"},
		{"ru-RU", "ru"},
		{"ru_RU", "ru"},
		{"en-GB", "en"},
		{"de", "en"},
		{"zh-Hant-TW", "en"},
		{"r", ""},
		{"russian", ""},
		{"ru-RU-verylongsubtag", ""},
		{"12", ""},
		{"ru;q=0.9", ""},
		{strings.Repeat("ab-", 13), ""},
	} {
		got, msg := parseLocale(tc.in)
		if got != tc.want || (tc.want == "") != (msg != "") {
			t.Errorf("parseLocale(%q) = %q, %q; want %q", tc.in, got, msg, tc.want)
		}
	}
}

func TestParseCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"012345", "012345"},
		{" 012345 ", "012345"},
		{"12345", ""},
		{"1234567", ""},
		{"12a456", ""},
		{"١٢٣٤٥٦", ""}, // Arabic-Indic digits
		{"", ""},
	} {
		got, msg := parseCode(tc.in)
		if got != tc.want || (tc.want == "") != (msg != "") {
			t.Errorf("parseCode(%q) = %q, %q; want %q", tc.in, got, msg, tc.want)
		}
	}
}
