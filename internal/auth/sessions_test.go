package auth

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
)

// login logs email in with the fixture's password: a new refresh family.
func (f *fixture) login(t *testing.T, email string) Tokens {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), email, "correct horse")
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return tok
}

// refresh must succeed.
func (f *fixture) refresh(t *testing.T, token string) Tokens {
	t.Helper()
	tok, err := f.svc.Refresh(context.Background(), token)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return tok
}

// refused asserts that token no longer refreshes.
func (f *fixture) refused(t *testing.T, token, why string) {
	t.Helper()
	if tok, err := f.svc.Refresh(context.Background(), token); !isCode(err, "invalid_refresh_token") {
		t.Errorf("%s: refresh = %+v, %v; want invalid_refresh_token", why, tok, err)
	}
}

func familyOf(t *testing.T, f *fixture, token string) RefreshToken {
	t.Helper()
	rt, err := f.svc.store.RefreshTokenByHash(context.Background(), hashRefreshToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func auditCount(t *testing.T, db *sqldb.DB, event string) int {
	t.Helper()
	return count(t, db, "SELECT COUNT(*) FROM audit_events WHERE event = $1", event)
}

func TestRefreshRotatesWithinTheFamily(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		first := f.registerVerified(t, "a@example.com")
		f.clock.Advance(time.Hour)
		second := f.refresh(t, first.Refresh)
		if second.Refresh == first.Refresh || second.Access == first.Access || len(second.Refresh) != refreshTokenLen {
			t.Fatalf("refresh did not issue a new pair: %+v", second)
		}
		if second.ExpiresIn != 15*time.Minute {
			t.Errorf("expires_in = %s", second.ExpiresIn)
		}
		if u, err := f.svc.Me(context.Background(), second.Access); err != nil || u.Email != "a@example.com" {
			t.Errorf("the refreshed access token: %+v %v", u, err)
		}
		third := f.refresh(t, second.Refresh)

		a, b, c := familyOf(t, f, first.Refresh), familyOf(t, f, second.Refresh), familyOf(t, f, third.Refresh)
		if a.FamilyID != b.FamilyID || b.FamilyID != c.FamilyID {
			t.Errorf("families %s %s %s, want one", a.FamilyID, b.FamilyID, c.FamilyID)
		}
		if a.UsedAt.IsZero() || b.UsedAt.IsZero() || !c.UsedAt.IsZero() || b.ParentHash != a.Hash || a.SuccessorHash != b.Hash {
			t.Errorf("chain: %+v / %+v / %+v", a, b, c)
		}
		if !c.ExpiresAt.Equal(start.Add(time.Hour).Add(f.svc.cfg.RefreshTTL)) {
			t.Errorf("the new token expires %s, want 30 days after the refresh", c.ExpiresAt)
		}
		// Once b is rotated, a's sealed answer can never be needed again.
		if len(a.SuccessorBox) != 0 || len(b.SuccessorBox) == 0 {
			t.Errorf("sealed successors: a %d bytes, b %d bytes; want a dropped, b kept", len(a.SuccessorBox), len(b.SuccessorBox))
		}
		f.clock.Advance(f.svc.cfg.RefreshTTL)
		f.refused(t, third.Refresh, "a token 30 days old")
		// A day after the last expiry, the sweep forgets the family.
		f.clock.Advance(25 * time.Hour)
		if err := f.svc.sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM refresh_tokens"); n != 0 {
			t.Errorf("%d refresh tokens left after the sweep", n)
		}
	})
}

func TestRefreshRejectsWhatItDidNotIssue(t *testing.T) {
	f := sqliteFixture(t)
	f.registerVerified(t, "a@example.com")
	for _, tok := range []string{"", "short", strings.Repeat("A", refreshTokenLen), strings.Repeat("!", refreshTokenLen),
		strings.Repeat("A", refreshTokenLen-1) + "B" /* non-canonical base64 */, strings.Repeat("A", 4096)} {
		f.refused(t, tok, "token "+tok[:min(len(tok), 10)])
	}
}

// A rotated token that comes back after the grace window revokes its family
// — and only its family: the user's other session is untouched.
func TestRefreshReuseRevokesOnlyThatFamily(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		phone := f.registerVerified(t, "a@example.com")
		laptop := f.login(t, "a@example.com")
		phone2 := f.refresh(t, phone.Refresh)
		f.clock.Advance(11 * time.Second) // past the 10 s grace

		f.refused(t, phone.Refresh, "the stolen, rotated token")
		f.refused(t, phone2.Refresh, "the phone's live token after the reuse")
		if rt := familyOf(t, f, phone2.Refresh); rt.RevokedAt.IsZero() || rt.RevokeReason != revokedReuse {
			t.Errorf("live token of the family: revoked %v reason %q", rt.RevokedAt, rt.RevokeReason)
		}
		if got := f.refresh(t, laptop.Refresh); got.Refresh == "" {
			t.Error("the other family was hurt")
		}
		f.refused(t, phone.Refresh, "a second reuse")
		if n := auditCount(t, db, evRefreshReused); n != 1 {
			t.Errorf("%d refresh_reused events, want 1", n)
		}
	})
}

func TestRefreshGraceWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  time.Duration
		wait   time.Duration
		before func(f *fixture, next Tokens) // what happens between the rotation and the repeat
		same   bool                          // the repeat gets the same pair; else the family is revoked
	}{
		{name: "repeated at once", grace: 10 * time.Second, same: true},
		{name: "repeated at the edge", grace: 10 * time.Second, wait: 10 * time.Second, same: true},
		{name: "repeated a second late", grace: 10 * time.Second, wait: 11 * time.Second},
		{name: "grace off", grace: 0},
		{name: "successor already used", grace: 10 * time.Second, wait: time.Second,
			before: func(f *fixture, next Tokens) { f.svc.Refresh(context.Background(), next.Refresh) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, sqliteDB(t), func(c *serviceConfig) { c.RefreshGrace = tc.grace })
			first := f.registerVerified(t, "a@example.com")
			next := f.refresh(t, first.Refresh)
			f.clock.Advance(tc.wait)
			if tc.before != nil {
				tc.before(f, next)
			}
			again, err := f.svc.Refresh(context.Background(), first.Refresh)
			if !tc.same {
				if !isCode(err, "invalid_refresh_token") {
					t.Fatalf("repeat = %+v, %v; want invalid_refresh_token", again, err)
				}
				f.refused(t, next.Refresh, "the successor after a reuse")
				return
			}
			if err != nil {
				t.Fatalf("repeat within the grace window: %v", err)
			}
			if again.Refresh != next.Refresh || again.Access != next.Access {
				t.Error("the repeat got a different pair")
			}
			if again.ExpiresIn != 15*time.Minute-tc.wait {
				t.Errorf("expires_in = %s, want what is left of the same access token", again.ExpiresIn)
			}
			f.refresh(t, next.Refresh) // the family goes on
		})
	}
}

// Parallel refreshes of one token — a client retrying on a flaky network,
// two tabs — continue the family once: one rotation, everyone gets its pair.
func TestParallelRefreshesContinueOneFamily(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		first := f.registerVerified(t, "a@example.com")
		const n = 8
		var (
			arrived sync.WaitGroup
			wg      sync.WaitGroup
			mu      sync.Mutex
			got     []Tokens
		)
		arrived.Add(n)
		// Every request has read the token as live before any rotates it.
		f.svc.beforeRotate = func() { arrived.Done(); arrived.Wait() }
		for range n {
			wg.Go(func() {
				tok, err := f.svc.Refresh(context.Background(), first.Refresh)
				if err != nil {
					t.Errorf("parallel refresh: %v", err)
					return
				}
				mu.Lock()
				got = append(got, tok)
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, tok := range got[1:] {
			if tok.Refresh != got[0].Refresh || tok.Access != got[0].Access {
				t.Fatal("parallel refreshes got different pairs: the family forked")
			}
		}
		fam := familyOf(t, f, first.Refresh).FamilyID
		if rows := count(t, db, "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1", fam); rows != 2 {
			t.Errorf("the family has %d tokens, want 2 (the old and one successor)", rows)
		}
		if revoked := count(t, db, "SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL"); revoked != 0 {
			t.Errorf("%d tokens revoked by a race", revoked)
		}
		f.svc.beforeRotate = nil
		f.refresh(t, got[0].Refresh)
	})
}

func TestLogoutRevokesOneFamily(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		phone := f.registerVerified(t, "a@example.com")
		laptop := f.login(t, "a@example.com")
		phone = f.refresh(t, phone.Refresh)
		if err := f.svc.Logout(ctx, phone.Refresh); err != nil {
			t.Fatal(err)
		}
		f.refused(t, phone.Refresh, "after logout")
		f.refresh(t, laptop.Refresh)
		// Logging out again, or with something that never was a token, is fine.
		for _, tok := range []string{phone.Refresh, "not-a-token", strings.Repeat("A", refreshTokenLen)} {
			if err := f.svc.Logout(ctx, tok); err != nil {
				t.Errorf("logout(%.10s…) = %v, want nil", tok, err)
			}
		}
		if err := f.svc.Logout(ctx, ""); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("logout without a token = %v, want a validation error", err)
		}
		if n := auditCount(t, db, evLogout); n != 1 {
			t.Errorf("%d logout events, want 1", n)
		}
	})
}

func TestLogoutAllRevokesEveryFamily(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		phone := f.registerVerified(t, "a@example.com")
		laptop := f.login(t, "a@example.com")
		other := f.registerVerified(t, "b@example.com")
		if err := f.svc.LogoutAll(ctx, laptop.Access); err != nil {
			t.Fatal(err)
		}
		f.refused(t, phone.Refresh, "phone after logout-all")
		f.refused(t, laptop.Refresh, "laptop after logout-all")
		f.refresh(t, other.Refresh)
		if err := f.svc.LogoutAll(ctx, "not a token"); !isCode(err, "invalid_token") {
			t.Errorf("logout-all with a bad token = %v", err)
		}
		recs, err := f.svc.store.AuditEvents(ctx, familyOf(t, f, phone.Refresh).UserID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Event != evLogoutAll || recs[0].Detail["revoked_families"] != "2" {
			t.Errorf("newest audit event = %+v, want logout_all of 2 families", recs[0])
		}
	})
}

func TestSuccessorBoxOpensOnlyWithTheRotatedToken(t *testing.T) {
	f := sqliteFixture(t)
	token, _ := f.svc.randomToken()
	other, _ := f.svc.randomToken()
	pair := Tokens{Refresh: strings.Repeat("R", refreshTokenLen), Access: "header.payload.signature"}
	box, err := sealSuccessor(token, hashRefreshToken(token), pair, f.svc.cfg.Rand)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(box, []byte(pair.Refresh)) || bytes.Contains(box, []byte(pair.Access)) {
		t.Fatal("the box holds the pair in the clear")
	}
	got, err := openSuccessor(token, hashRefreshToken(token), box)
	if err != nil || got.Refresh != pair.Refresh || got.Access != pair.Access {
		t.Fatalf("open with the token = %+v, %v", got, err)
	}
	if _, err := openSuccessor(other, hashRefreshToken(token), box); err == nil {
		t.Error("another token opened the box")
	}
	if _, err := openSuccessor(token, hashRefreshToken(other), box); err == nil {
		t.Error("the box opened for another row")
	}
	box[len(box)-1] ^= 1
	if _, err := openSuccessor(token, hashRefreshToken(token), box); err == nil {
		t.Error("a tampered box opened")
	}
}

// AUTH_REFRESH_GRACE=0s reaches the rules as off: a repeated rotated token
// revokes the family at once.
func TestRefreshGraceZeroFromTheEnvironmentIsOff(t *testing.T) {
	cfg, err := LoadConfig(func(name string) string {
		return map[string]string{"AUTH_CODE_SECRET": string(testSecret), "AUTH_ISSUER": "http://auth.test", "AUTH_REFRESH_GRACE": "0s"}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, sqliteDB(t), func(c *serviceConfig) { c.Config = cfg })
	first := f.registerVerified(t, "a@example.com")
	next := f.refresh(t, first.Refresh)
	if again, err := f.svc.Refresh(context.Background(), first.Refresh); !isCode(err, "invalid_refresh_token") {
		t.Fatalf("repeat at once with the grace off = %+v, %v; want invalid_refresh_token", again, err)
	}
	f.refused(t, next.Refresh, "the successor after a reuse")
}
