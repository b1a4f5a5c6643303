package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
)

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

func TestRegisterWritesUserCodeAndMailInOneTransaction(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if err := f.svc.Register(ctx, "  Anna.Petrova@Example.COM ", "correct horse", "ru-RU"); err != nil {
			t.Fatal(err)
		}
		u, err := f.svc.store.UserByEmail(ctx, "anna.petrova@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.Status != StatusPending || u.Locale != "ru" || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") ||
			len(u.Roles) != 1 || u.Roles[0] != "user" || !u.CreatedAt.Equal(start) {
			t.Errorf("user = %+v", u)
		}

		m := lastMail(t, db)
		d, err := events.Decode(m.raw, "")
		if err != nil {
			t.Fatalf("the outbox payload is not a valid event: %v", err)
		}
		if m.count != 1 || m.key != u.ID || m.env.Type != events.TypeVerificationCode || m.env.Version != 1 ||
			d.ID == "" || !m.env.OccurredAt.Equal(start) {
			t.Errorf("outbox row: count %d, key %q, envelope %+v", m.count, m.key, m.env)
		}
		if m.mail.Email != u.Email || !sixDigits.MatchString(m.mail.Code) || m.mail.Locale != "ru" ||
			!m.mail.ExpiresAt.Equal(start.Add(10*time.Minute)) {
			t.Errorf("mail data = %+v", m.mail)
		}
		if f.notified.Load() != 1 {
			t.Errorf("relay notified %d times, want once after the commit", f.notified.Load())
		}

		// Only the MAC of the code is kept with the account.
		c, err := f.svc.store.LatestCode(ctx, u.ID, purposeVerify)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(c.MAC, m.mail.Code) || c.MAC != codeMAC(testSecret, purposeVerify, u.ID, m.mail.Code) {
			t.Errorf("stored code %q is not the HMAC of the code", c.MAC)
		}
		// And the mailed code is the one that verifies.
		if _, err := f.svc.Verify(ctx, u.Email, m.mail.Code, "correct horse"); err != nil {
			t.Errorf("the mailed code does not verify: %v", err)
		}
	})
}

func TestRegisterLeavesNothingWhenTheTransactionFails(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		// The outbox insert, the last statement, fails.
		if _, err := db.Exec("ALTER TABLE outbox RENAME TO outbox_gone"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Register(context.Background(), "a@example.com", "correct horse", ""); err == nil {
			t.Fatal("register succeeded without an outbox")
		}
		if n := count(t, db, "SELECT COUNT(*) FROM users") + count(t, db, "SELECT COUNT(*) FROM one_time_codes"); n != 0 {
			t.Errorf("%d user/code rows left behind by a failed registration", n)
		}
		if f.notified.Load() != 0 {
			t.Error("the relay was woken for a rolled-back registration")
		}
	})
}

// A second registration of a pending address replaces its password and
// supersedes its code; the newest code verifies only with the newest
// password, so the account never gets a password its code holder did not
// choose.
func TestRegisterPendingAgainReplacesPasswordAndCode(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	first := f.register(t, "a@example.com")
	if err := f.svc.Register(ctx, "A@example.com", "second password", "ru"); err != nil {
		t.Fatal(err)
	}
	m := lastMail(t, f.db)
	second := m.mail.Code
	if m.count != 2 || second == first || m.mail.Locale != "ru" {
		t.Fatalf("second registration: %d mails, code %s (first %s), locale %s", m.count, second, first, m.mail.Locale)
	}
	if _, err := f.svc.Verify(ctx, "a@example.com", first, "correct horse"); !isCode(err, "invalid_code") {
		t.Errorf("superseded code: err = %v, want invalid_code", err)
	}
	if _, err := f.svc.Verify(ctx, "a@example.com", second, "correct horse"); !isCode(err, "register_again") {
		t.Errorf("newest code with the first password: err = %v, want register_again", err)
	}
	if _, err := f.svc.Verify(ctx, "a@example.com", second, "second password"); err != nil {
		t.Fatalf("newest code with the newest password: %v", err)
	}
	if _, err := f.svc.Login(ctx, "a@example.com", "correct horse"); !isCode(err, "invalid_credentials") {
		t.Errorf("first password: err = %v, want invalid_credentials", err)
	}
	if _, err := f.svc.Login(ctx, "a@example.com", "second password"); err != nil {
		t.Errorf("newest password: %v", err)
	}
}

// A password that is not the pending one is refused with register_again,
// changes nothing, counts as a wrong try and is audited; the code still
// verifies with the right password until the tries are used up.
func TestVerifyNeedsThePendingPassword(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		code := f.register(t, "a@example.com")
		for range maxCodeAttempts - 1 {
			if _, err := f.svc.Verify(ctx, "a@example.com", code, "not my password"); !isCode(err, "register_again") {
				t.Fatalf("wrong password: err = %v, want register_again", err)
			}
		}
		u, err := f.svc.store.UserByEmail(ctx, "a@example.com")
		if err != nil || u.Verified() {
			t.Fatalf("after wrong passwords: %+v, %v; want still pending", u, err)
		}
		recs, err := f.svc.store.AuditEvents(ctx, "", 1)
		if err != nil || len(recs) != 1 || recs[0].Event != evCodeRejected || recs[0].Detail["reason"] != "password_mismatch" {
			t.Errorf("audit = %+v, %v; want code_rejected for password_mismatch", recs, err)
		}
		if _, err := f.svc.Verify(ctx, "a@example.com", code, "correct horse"); err != nil {
			t.Fatalf("the right password after %d wrong ones: %v", maxCodeAttempts-1, err)
		}

		g := newFixture(t, db)
		code = g.register(t, "b@example.com")
		for range maxCodeAttempts {
			_, _ = g.svc.Verify(ctx, "b@example.com", code, "not my password")
		}
		if _, err := g.svc.Verify(ctx, "b@example.com", code, "correct horse"); !isCode(err, "code_attempts_exceeded") {
			t.Errorf("after %d wrong passwords: err = %v, want code_attempts_exceeded", maxCodeAttempts, err)
		}
	})
}

// A registration that replaces the password between the checks of a
// verification and its transaction makes the verification fail: the
// account is never activated with a password other than the one checked.
func TestVerifyLosesToARegistrationInTheMeantime(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		code := f.register(t, "a@example.com")
		f.svc.beforeConsume = func() {
			f.svc.beforeConsume = nil
			if err := f.svc.Register(ctx, "a@example.com", "attacker password", ""); err != nil {
				t.Error(err)
			}
		}
		if _, err := f.svc.Verify(ctx, "a@example.com", code, "correct horse"); !isCode(err, "invalid_code") {
			t.Fatalf("verify overtaken by a registration: err = %v, want invalid_code", err)
		}
		u, err := f.svc.store.UserByEmail(ctx, "a@example.com")
		if err != nil || u.Verified() {
			t.Fatalf("user = %+v, %v; want still pending", u, err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM one_time_codes WHERE used_at IS NOT NULL"); n != 0 {
			t.Errorf("%d codes consumed by a verification that failed", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM refresh_tokens"); n != 0 {
			t.Errorf("%d refresh tokens issued by a verification that failed", n)
		}
	})
}

func TestRegisterVerifiedAddressChangesNothing(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	f.registerVerified(t, "a@example.com")
	before := f.notified.Load()
	if err := f.svc.Register(ctx, "a@example.com", "attacker password", "ru"); err != nil {
		t.Fatal(err)
	}
	if m := lastMail(t, f.db); m.count != 1 || f.notified.Load() != before {
		t.Errorf("a registration of a verified address sent mail (%d rows)", m.count)
	}
	if _, err := f.svc.Login(ctx, "a@example.com", "correct horse"); err != nil {
		t.Errorf("the owner's password stopped working: %v", err)
	}
}

func TestRegisterIssuesAtMostFiveCodesAnHour(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	for range maxCodesPerHour {
		f.register(t, "a@example.com")
		f.clock.Advance(time.Minute)
	}
	capped := lastMail(t, f.db)
	if err := f.svc.Register(ctx, "a@example.com", "other password", ""); err != nil {
		t.Fatal(err)
	}
	if m := lastMail(t, f.db); m.count != maxCodesPerHour {
		t.Errorf("%d codes issued within the hour, want %d", m.count, maxCodesPerHour)
	}
	// Nothing changed with the refused registration: the last code still
	// goes with the last accepted password.
	if _, err := f.svc.Verify(ctx, "a@example.com", capped.mail.Code, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(ctx, "a@example.com", "correct horse"); err != nil {
		t.Errorf("password of the refused registration replaced the old one: %v", err)
	}

	g := sqliteFixture(t)
	for range maxCodesPerHour {
		g.register(t, "b@example.com")
	}
	g.clock.Advance(time.Hour)
	g.register(t, "b@example.com")
	if m := lastMail(t, g.db); m.count != maxCodesPerHour+1 {
		t.Errorf("after an hour: %d codes, want %d", m.count, maxCodesPerHour+1)
	}
}

// isCode reports whether err is an apperr with the given problem code.
func isCode(err error, code string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == code
}

func TestVerifyCodeExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		elapsed time.Duration
		want    string // problem code; "" for success
	}{
		{"just in time", 10*time.Minute - time.Microsecond, ""},
		{"at expiry", 10 * time.Minute, "code_expired"},
		{"long after", 48 * time.Hour, "code_expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sqliteFixture(t)
			code := f.register(t, "a@example.com")
			f.clock.Advance(tc.elapsed)
			_, err := f.svc.Verify(context.Background(), "a@example.com", code, "correct horse")
			if tc.want == "" && err != nil || tc.want != "" && !isCode(err, tc.want) {
				t.Errorf("after %s: err = %v, want %q", tc.elapsed, err, tc.want)
			}
		})
	}
}

func TestVerifyWrongTriesBurnTheCode(t *testing.T) {
	for _, tc := range []struct {
		wrong int
		want  string
	}{
		{0, ""},
		{maxCodeAttempts - 1, ""},
		{maxCodeAttempts, "code_attempts_exceeded"},
		{maxCodeAttempts + 3, "code_attempts_exceeded"},
	} {
		t.Run(fmt.Sprintf("%d wrong", tc.wrong), func(t *testing.T) {
			f := sqliteFixture(t)
			ctx := context.Background()
			code := f.register(t, "a@example.com")
			wrong := "000000"
			if code == wrong {
				wrong = "000001"
			}
			for i := range tc.wrong {
				if _, err := f.svc.Verify(ctx, "a@example.com", wrong, "correct horse"); !isCode(err, "invalid_code") {
					t.Fatalf("wrong try %d: err = %v, want invalid_code", i+1, err)
				}
			}
			_, err := f.svc.Verify(ctx, "a@example.com", code, "correct horse")
			if tc.want == "" && err != nil || tc.want != "" && !isCode(err, tc.want) {
				t.Errorf("right code after %d wrong tries: err = %v, want %q", tc.wrong, err, tc.want)
			}
			if n := count(t, f.db, "SELECT attempts FROM one_time_codes"); n != min(tc.wrong, maxCodeAttempts) {
				t.Errorf("attempts = %d after %d wrong tries", n, tc.wrong)
			}
		})
	}
}

func TestVerifyIsSingleUse(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	code := f.register(t, "a@example.com")
	if _, err := f.svc.Verify(ctx, "a@example.com", code, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(ctx, "a@example.com", code, "correct horse"); !isCode(err, "invalid_code") {
		t.Errorf("second use: err = %v, want invalid_code", err)
	}
}

func TestVerifyUnknownAddressAnswersLikeAWrongCode(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	f.register(t, "known@example.com")
	_, unknown := f.svc.Verify(ctx, "nobody@example.com", "123456", "correct horse")
	_, wrong := f.svc.Verify(ctx, "known@example.com", "999999", "correct horse")
	if !isCode(unknown, "invalid_code") || unknown.Error() != wrong.Error() {
		t.Errorf("unknown address: %v; wrong code: %v; want the same invalid_code", unknown, wrong)
	}
}

func TestVerifyParallelSubmissionsSucceedOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		code := f.register(t, "a@example.com")
		const n = 10
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok       int
			failures []error
			arrived  sync.WaitGroup
		)
		// Every submission has read the unused code before any consumes it.
		arrived.Add(n)
		f.svc.beforeConsume = func() { arrived.Done(); arrived.Wait() }
		for range n {
			wg.Go(func() {
				_, err := f.svc.Verify(context.Background(), "a@example.com", code, "correct horse")
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else {
					failures = append(failures, err)
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d of %d parallel submissions succeeded, want exactly 1", ok, n)
		}
		for _, err := range failures {
			if !isCode(err, "invalid_code") {
				t.Errorf("a losing submission failed with %v, want invalid_code", err)
			}
		}
		if r := count(t, db, "SELECT COUNT(*) FROM refresh_tokens"); r != 1 {
			t.Errorf("%d refresh tokens issued, want 1", r)
		}
	})
}

func TestVerifyParallelWrongTriesAreAllCounted(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		code := f.register(t, "a@example.com")
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for range maxCodeAttempts - 1 {
			wg.Go(func() {
				<-gate
				_, _ = f.svc.Verify(context.Background(), "a@example.com", wrong, "correct horse")
			})
		}
		close(gate)
		wg.Wait()
		if n := count(t, db, "SELECT attempts FROM one_time_codes"); n != maxCodeAttempts-1 {
			t.Errorf("attempts = %d after %d parallel wrong tries", n, maxCodeAttempts-1)
		}
		// One try is left, and the right code takes it.
		if _, err := f.svc.Verify(context.Background(), "a@example.com", code, "correct horse"); err != nil {
			t.Errorf("right code with one try left: %v", err)
		}
	})
}

func TestLoginAnswers(t *testing.T) {
	f := sqliteFixture(t)
	f.registerVerified(t, "active@example.com")
	f.register(t, "pending@example.com")
	for _, tc := range []struct {
		email, password string
		want            string // problem code; "" for tokens
	}{
		{"nobody@example.com", "correct horse", "invalid_credentials"},
		{"pending@example.com", "wrong password", "invalid_credentials"},
		{"pending@example.com", "correct horse", "email_not_verified"},
		{"active@example.com", "wrong password", "invalid_credentials"},
		{"active@example.com", "Correct horse", "invalid_credentials"},
		{"ACTIVE@example.com", "correct horse", ""},
	} {
		tok, err := f.svc.Login(context.Background(), tc.email, tc.password)
		switch {
		case tc.want == "" && (err != nil || tok.Access == "" || tok.Refresh == ""):
			t.Errorf("%s / %s: %v, want tokens", tc.email, tc.password, err)
		case tc.want != "" && !isCode(err, tc.want):
			t.Errorf("%s / %s: err = %v, want %s", tc.email, tc.password, err, tc.want)
		}
	}
	_, err := f.svc.Login(context.Background(), "nobody@example.com", "x")
	if k := apperr.KindOf(err); k != apperr.Unauthenticated {
		t.Errorf("unknown address: kind %v, want unauthenticated (401)", k)
	}
	_, err = f.svc.Login(context.Background(), "pending@example.com", "correct horse")
	if k := apperr.KindOf(err); k != apperr.Forbidden {
		t.Errorf("unverified: kind %v, want forbidden (403)", k)
	}
}

func TestLoginUpgradesWeakerHashes(t *testing.T) {
	db := sqliteDB(t)
	newFixture(t, db).registerVerified(t, "a@example.com")
	stronger := testArgon2
	stronger.Memory, stronger.Time = 128, 2
	f := newFixtureWith(t, db, stronger)
	if _, err := f.svc.Login(context.Background(), "a@example.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	u, err := f.svc.store.UserByEmail(context.Background(), "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=128,t=2,p=1$") {
		t.Errorf("hash after login = %s, want re-hashed with m=128,t=2", u.PasswordHash[:30])
	}
	if _, err := f.svc.Login(context.Background(), "a@example.com", "correct horse"); err != nil {
		t.Errorf("login with the upgraded hash: %v", err)
	}
}

func TestRefreshTokenIsStoredOnlyAsItsHash(t *testing.T) {
	f := sqliteFixture(t)
	tok := f.registerVerified(t, "a@example.com")
	raw, err := base64.RawURLEncoding.DecodeString(tok.Refresh)
	if err != nil || len(raw) != 32 {
		t.Fatalf("refresh token %q: %d bytes, %v; want 256 bits of base64url", tok.Refresh, len(raw), err)
	}
	var (
		hash, userID, family string
		expires              time.Time
	)
	err = f.db.QueryRow("SELECT token_hash, user_id, family_id, expires_at FROM refresh_tokens").Scan(&hash, &userID, &family, &expires)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok.Refresh))
	u, _ := f.svc.store.UserByEmail(context.Background(), "a@example.com")
	if hash != hex.EncodeToString(sum[:]) || userID != u.ID || family == "" || !expires.Equal(start.Add(30*24*time.Hour)) {
		t.Errorf("stored refresh token: %s %s %s %v", hash, userID, family, expires)
	}
	if n := count(t, f.db, "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = $1", tok.Refresh); n != 0 {
		t.Error("the refresh token is stored in plain text")
	}
}

func TestRegisterValidationListsEveryField(t *testing.T) {
	f := sqliteFixture(t)
	err := f.svc.Register(context.Background(), "not-an-email", "short", "!!")
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.Invalid || len(e.Fields) != 3 {
		t.Fatalf("err = %v, want a validation error with 3 fields", err)
	}
	for i, field := range []string{"email", "password", "locale"} {
		if e.Fields[i].Field != field || e.Fields[i].Message == "" {
			t.Errorf("field %d = %+v, want %s with a message", i, e.Fields[i], field)
		}
	}
	if n := count(t, f.db, "SELECT COUNT(*) FROM users"); n != 0 {
		t.Errorf("an invalid registration created %d users", n)
	}
}
