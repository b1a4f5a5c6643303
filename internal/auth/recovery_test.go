package auth

import (
	"context"
	"testing"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
)

// forgot asks for a reset code and returns the one the outbox would mail.
func (f *fixture) forgot(t *testing.T, email string) string {
	t.Helper()
	before := lastMail(t, f.db).count
	if err := f.svc.Forgot(context.Background(), email); err != nil {
		t.Fatal(err)
	}
	m := lastMail(t, f.db)
	if m.count != before+1 || m.env.Type != events.TypePasswordResetCode {
		t.Fatalf("forgot wrote %d mails, the last of type %s; want one password_reset_code", m.count-before, m.env.Type)
	}
	return m.mail.Code
}

func TestPasswordResetSetsThePasswordAndRevokesEverySession(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		phone := f.registerVerified(t, "a@example.com")
		laptop := f.login(t, "a@example.com")
		f.clock.Advance(2 * time.Minute)
		code := f.forgot(t, "A@Example.com")
		m := lastMail(t, db)
		if m.mail.Email != "a@example.com" || !m.mail.ExpiresAt.Equal(f.clock.Now().Add(10*time.Minute)) {
			t.Errorf("reset mail = %+v", m.mail)
		}
		// A verification code is no reset code, nor the other way round.
		if _, err := f.svc.Verify(ctx, "a@example.com", code, "correct horse"); !isCode(err, "invalid_code") {
			t.Errorf("reset code used to verify: %v", err)
		}
		if err := f.svc.Reset(ctx, "a@example.com", code, "a brand new secret"); err != nil {
			t.Fatal(err)
		}
		f.refused(t, phone.Refresh, "phone after the reset")
		f.refused(t, laptop.Refresh, "laptop after the reset")
		if _, err := f.svc.Login(ctx, "a@example.com", "correct horse"); !isCode(err, "invalid_credentials") {
			t.Errorf("old password after the reset: %v", err)
		}
		if _, err := f.svc.Login(ctx, "a@example.com", "a brand new secret"); err != nil {
			t.Errorf("new password after the reset: %v", err)
		}
		if err := f.svc.Reset(ctx, "a@example.com", code, "yet another secret"); !isCode(err, "invalid_code") {
			t.Errorf("second use of the reset code: %v", err)
		}
		if n := auditCount(t, db, evPasswordReset); n != 1 {
			t.Errorf("%d password_reset events, want 1", n)
		}
	})
}

func TestPasswordResetCodeRules(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	f.registerVerified(t, "a@example.com")
	f.clock.Advance(mailGap)
	code := f.forgot(t, "a@example.com")
	wrong := "000000"

	// The new password is checked before the code, and a bad one costs no try.
	err := f.svc.Reset(ctx, "a@example.com", code, "password1")
	if e, ok := apperr.As(err); !ok || len(e.Fields) != 1 || e.Fields[0].Field != "new_password" {
		t.Fatalf("reset to a common password = %v, want a new_password field error", err)
	}
	if err := f.svc.Reset(ctx, "nobody@example.com", code, "a brand new secret"); !isCode(err, "invalid_code") {
		t.Errorf("unknown address: %v", err)
	}
	for range maxCodeAttempts {
		if err := f.svc.Reset(ctx, "a@example.com", wrong, "a brand new secret"); !isCode(err, "invalid_code") {
			t.Fatalf("wrong code: %v", err)
		}
	}
	if err := f.svc.Reset(ctx, "a@example.com", code, "a brand new secret"); !isCode(err, "code_attempts_exceeded") {
		t.Errorf("right code after %d wrong ones: %v", maxCodeAttempts, err)
	}
	f.clock.Advance(mailGap + time.Second)
	code = f.forgot(t, "a@example.com")
	f.clock.Advance(10 * time.Minute)
	if err := f.svc.Reset(ctx, "a@example.com", code, "a brand new secret"); !isCode(err, "code_expired") {
		t.Errorf("code after 10 minutes: %v", err)
	}
}

// A reset proves the address as a verification does, so it also activates
// an account still pending — whoever registered it first.
func TestPasswordResetActivatesAPendingAccount(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	f.register(t, "a@example.com")
	f.clock.Advance(mailGap)
	code := f.forgot(t, "a@example.com")
	if err := f.svc.Reset(ctx, "a@example.com", code, "the owner's secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(ctx, "a@example.com", "the owner's secret"); err != nil {
		t.Errorf("login after resetting a pending account: %v", err)
	}
}

func TestResendReplacesTheCode(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	old := f.register(t, "a@example.com")
	f.clock.Advance(mailGap)
	if err := f.svc.Resend(ctx, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	m := lastMail(t, f.db)
	if m.count != 2 || m.env.Type != events.TypeVerificationCode || m.mail.Code == old {
		t.Fatalf("after resend: %d mails, last %s with code %s (old %s)", m.count, m.env.Type, m.mail.Code, old)
	}
	if _, err := f.svc.Verify(ctx, "a@example.com", old, "correct horse"); !isCode(err, "invalid_code") {
		t.Errorf("the replaced code: %v", err)
	}
	if _, err := f.svc.Verify(ctx, "a@example.com", m.mail.Code, "correct horse"); err != nil {
		t.Errorf("the new code: %v", err)
	}
	// Verified now: a resend mails nothing.
	f.clock.Advance(mailGap)
	if err := f.svc.Resend(ctx, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := lastMail(t, f.db).count; n != 2 {
		t.Errorf("resend to a verified account mailed: %d mails", n)
	}
}

// However often anyone asks, one address gets at most one mail a minute,
// five an hour and ten a day, across register, resend and forgot.
func TestMailLimitsPerAddress(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	f.register(t, "a@example.com")
	mails := func() int { return lastMail(t, f.db).count }
	ask := func(i int) {
		var err error
		switch i % 3 {
		case 0:
			err = f.svc.Resend(ctx, "a@example.com")
		case 1:
			err = f.svc.Forgot(ctx, "a@example.com")
		default:
			err = f.svc.Register(ctx, "a@example.com", "correct horse", "en")
		}
		if err != nil {
			t.Fatalf("ask %d: %v", i, err)
		}
	}
	// Within the first minute: resend and forgot send nothing more.
	ask(0)
	ask(1)
	if n := mails(); n != 1 {
		t.Fatalf("%d mails within a minute, want 1", n)
	}
	// Asking every 5 minutes for a day: 5 mails in the first hour, then
	// the daily cap.
	perHour := map[int]int{}
	for i := range 24 * 12 {
		f.clock.Advance(5 * time.Minute)
		before := mails()
		ask(i)
		if mails() > before {
			perHour[int(f.clock.Now().Sub(start)/time.Hour)]++
		}
	}
	if perHour[0] != maxCodesPerHour-1 {
		t.Errorf("first hour: %d more mails, want %d (by hour: %v)", perHour[0], maxCodesPerHour-1, perHour)
	}
	if n := mails(); n < maxMailsPerDay {
		t.Errorf("%d mails in a day of asking, want the cap of %d to be reached", n, maxMailsPerDay)
	}
	recent, err := f.svc.store.RecentMailTimes(ctx, mustUser(t, f, "a@example.com").ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recent {
		window := 0
		for _, r := range recent {
			if !r.After(recent[i]) && r.After(recent[i].Add(-24*time.Hour)) {
				window++
			}
		}
		if window > maxMailsPerDay {
			t.Fatalf("%d mails in the 24 hours before %s", window, recent[i])
		}
	}
}

func mustUser(t *testing.T, f *fixture, email string) User {
	t.Helper()
	u, err := f.svc.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
