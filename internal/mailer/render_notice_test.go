package mailer

import (
	"strings"
	"testing"

	"kinoteka/internal/events"
)

// Each account notice renders in both languages, as text and HTML, with its
// own subject and no code; the email change code reads as such.
func TestRenderAccountMails(t *testing.T) {
	r := testRenderer(t)
	cases := []struct {
		typ, locale, code, subject, text string
	}{
		{events.TypePasswordChanged, "en", "", "Your password was changed", "every other\nsession was signed out"},
		{events.TypePasswordChanged, "ru", "", "Ваш пароль изменён", "все другие\nсеансы завершены"},
		{events.TypeEmailChanged, "en", "", "Your sign-in address was changed", "no longer signs in with this address"},
		{events.TypeEmailChanged, "ru", "", "Адрес для входа изменён", "больше не входит по этому адресу"},
		{events.TypeAccountDeleted, "en", "", "Your Kinoteka account is deleted", "last mail you get from us"},
		{events.TypeAccountDeleted, "ru", "", "Ваша учётная запись в Кинотеке удалена", "последнее письмо от нас"},
		{events.TypeEmailChangeCode, "en", "123456", "Confirm your new address", "make this your sign-in address"},
		{events.TypeEmailChangeCode, "ru", "123456", "Подтвердите новый адрес", "сделать этот адрес адресом для входа"},
	}
	for _, c := range cases {
		t.Run(c.typ+"/"+c.locale, func(t *testing.T) {
			msg, err := r.render(events.Decoded{ID: "e1", Type: c.typ, Mail: events.CodeMail{Email: "a@example.com", Code: c.code, Locale: c.locale}})
			if err != nil {
				t.Fatal(err)
			}
			m := readMail(t, msg.Data)
			m.text = strings.ReplaceAll(m.text, "\r\n", "\n")
			if m.subject != c.subject {
				t.Errorf("subject %q, want %q", m.subject, c.subject)
			}
			if !strings.Contains(m.text, c.text) {
				t.Errorf("text lacks %q:\n%s", c.text, m.text)
			}
			if !strings.Contains(m.html, strings.ReplaceAll(c.text, "\n", " ")) {
				t.Errorf("HTML lacks %q:\n%s", c.text, m.html)
			}
			if hasCode := strings.Contains(m.text, "123456"); hasCode != (c.code != "") {
				t.Errorf("code shown: %v, want %v", hasCode, c.code != "")
			}
		})
	}
}
