package auth

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
)

func newUser(email string) User {
	return User{
		ID: uuid.NewString(), Email: email, PasswordHash: "$argon2id$…", Status: StatusPending, Locale: "en",
		Roles: []string{"user", "admin"}, CreatedAt: start.Add(123456789 * time.Nanosecond), UpdatedAt: start,
	}
}

// TestStoreContract runs on SQLite and, with KINOTEKA_TEST_POSTGRES_URL, on
// PostgreSQL: both engines must behave the same.
func TestStoreContract(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		s, ctx := NewStore(db), context.Background()

		t.Run("users", func(t *testing.T) {
			u := newUser("a@example.com")
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			got, err := s.UserByEmail(ctx, "a@example.com")
			if err != nil {
				t.Fatal(err)
			}
			// Times come back in UTC at microsecond precision.
			u.CreatedAt = u.CreatedAt.Truncate(time.Microsecond)
			if got.ID != u.ID || got.PasswordHash != u.PasswordHash || got.Status != StatusPending || !slices.Equal(got.Roles, u.Roles) ||
				!got.CreatedAt.Equal(u.CreatedAt) || got.CreatedAt.Location() != time.UTC || !got.VerifiedAt.IsZero() {
				t.Errorf("read back %+v, wrote %+v", got, u)
			}
			if byID, err := s.UserByID(ctx, u.ID); err != nil || byID.Email != u.Email {
				t.Errorf("UserByID = %+v, %v", byID, err)
			}

			dup := newUser("a@example.com")
			if err := s.CreateUser(ctx, dup); !apperr.Is(err, apperr.Conflict) {
				t.Errorf("duplicate email: err = %v, want a conflict", err)
			}
			if err := s.CreateUser(ctx, newUser("Mixed@Example.com")); err == nil {
				t.Error("the schema accepted an email that is not lower case")
			}
			if _, err := s.UserByEmail(ctx, "nobody@example.com"); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("unknown email: err = %v, want not found", err)
			}
			if _, err := s.UserByID(ctx, uuid.NewString()); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("unknown id: err = %v, want not found", err)
			}

			later := start.Add(time.Hour)
			if err := s.UpdatePending(ctx, u.ID, "new-hash", "ru", later); err != nil {
				t.Fatal(err)
			}
			if err := s.Activate(ctx, u.ID, later); err != nil {
				t.Fatal(err)
			}
			got, _ = s.UserByID(ctx, u.ID)
			if got.PasswordHash != "new-hash" || got.Locale != "ru" || !got.Verified() || !got.VerifiedAt.Equal(later) || !got.UpdatedAt.Equal(later) {
				t.Errorf("after update and activation: %+v", got)
			}
			if err := s.UpdatePending(ctx, u.ID, "other", "en", later); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("UpdatePending of an active user: err = %v, want not found", err)
			}
			if err := s.Activate(ctx, u.ID, later.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if again, _ := s.UserByID(ctx, u.ID); !again.VerifiedAt.Equal(later) {
				t.Errorf("a second activation moved verified_at to %v", again.VerifiedAt)
			}
			if err := s.SetPasswordHash(ctx, uuid.NewString(), "x", later); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("SetPasswordHash of nobody: err = %v, want not found", err)
			}
		})

		t.Run("latest code by email", func(t *testing.T) {
			u := newUser("both@example.com")
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if c, err := s.LatestCodeByEmail(ctx, "nobody@example.com", purposeVerify); err != nil || c.UserID != noUserID || c.ID != 0 || c.MAC != noMAC {
				t.Errorf("unknown address: %+v %v, want the placeholders", c, err)
			}
			if c, err := s.LatestCodeByEmail(ctx, u.Email, purposeVerify); err != nil || c.UserID != u.ID || c.ID != 0 || c.MAC != noMAC {
				t.Errorf("no code: %+v %v, want the user's id and the placeholders", c, err)
			}
			for i, mac := range []string{"mac-a", "mac-b"} {
				c := Code{UserID: u.ID, Purpose: purposeVerify, MAC: mac, ExpiresAt: start.Add(10 * time.Minute), CreatedAt: start.Add(time.Duration(i) * time.Minute)}
				if err := s.InsertCode(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			latest, err := s.LatestCode(ctx, u.ID, purposeVerify)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.AddCodeAttempt(ctx, latest.ID); err != nil {
				t.Fatal(err)
			}
			latest.Attempts++
			if c, err := s.LatestCodeByEmail(ctx, u.Email, purposeVerify); err != nil || !reflect.DeepEqual(c, latest) {
				t.Errorf("LatestCodeByEmail = %+v, %v; want %+v", c, err, latest)
			}
			if c, _ := s.LatestCodeByEmail(ctx, u.Email, purposeReset); c.ID != 0 {
				t.Errorf("another purpose's code: %+v", c)
			}
		})

		t.Run("codes", func(t *testing.T) {
			u := newUser("codes@example.com")
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if _, err := s.LatestCode(ctx, u.ID, purposeVerify); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("no code yet: err = %v, want not found", err)
			}
			for i, mac := range []string{"mac-1", "mac-2"} {
				c := Code{UserID: u.ID, Purpose: purposeVerify, MAC: mac, ExpiresAt: start.Add(10 * time.Minute), CreatedAt: start.Add(time.Duration(i) * time.Minute)}
				if err := s.InsertCode(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			c, err := s.LatestCode(ctx, u.ID, purposeVerify)
			if err != nil || c.MAC != "mac-2" || c.Attempts != 0 || !c.UsedAt.IsZero() || !c.ExpiresAt.Equal(start.Add(10*time.Minute)) {
				t.Fatalf("LatestCode = %+v, %v", c, err)
			}
			if _, err := s.LatestCode(ctx, u.ID, "reset"); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("other purpose: err = %v, want not found", err)
			}
			if err := s.InsertCode(ctx, Code{UserID: u.ID, Purpose: purposeReset, MAC: "mac-3", ExpiresAt: start.Add(time.Hour), CreatedAt: start.Add(2 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			times, err := s.RecentMailTimes(ctx, u.ID, 5) // every purpose is a mail
			if err != nil || !slices.EqualFunc(times, []time.Time{start.Add(2 * time.Minute), start.Add(time.Minute), start}, time.Time.Equal) {
				t.Errorf("RecentMailTimes = %v, %v", times, err)
			}

			for range maxCodeAttempts + 2 {
				if err := s.AddCodeAttempt(ctx, c.ID); err != nil {
					t.Fatal(err)
				}
			}
			if c, _ := s.LatestCode(ctx, u.ID, purposeVerify); c.Attempts != maxCodeAttempts {
				t.Errorf("attempts = %d, want capped at %d", c.Attempts, maxCodeAttempts)
			}
			if ok, err := s.ConsumeCode(ctx, c.ID, start); ok || err != nil {
				t.Errorf("consume a burned code = %v, %v; want false", ok, err)
			}

			fresh := Code{UserID: u.ID, Purpose: purposeVerify, MAC: "mac-3", ExpiresAt: start.Add(time.Hour), CreatedAt: start}
			if err := s.InsertCode(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			fresh, _ = s.LatestCode(ctx, u.ID, purposeVerify)
			if ok, err := s.ConsumeCode(ctx, fresh.ID, start.Add(time.Second)); !ok || err != nil {
				t.Fatalf("consume = %v, %v", ok, err)
			}
			if ok, _ := s.ConsumeCode(ctx, fresh.ID, start.Add(2*time.Second)); ok {
				t.Error("a code was consumed twice")
			}

			if err := s.AddCodeAttempt(ctx, fresh.ID); err != nil {
				t.Fatal(err)
			}
			if c, _ := s.LatestCode(ctx, u.ID, purposeVerify); c.Attempts != 0 || !c.UsedAt.Equal(start.Add(time.Second)) {
				t.Errorf("used code = %+v; want used_at kept and no attempt counted", c)
			}

			racing := Code{UserID: u.ID, Purpose: purposeVerify, MAC: "mac-4", ExpiresAt: start.Add(time.Hour), CreatedAt: start}
			if err := s.InsertCode(ctx, racing); err != nil {
				t.Fatal(err)
			}
			racing, _ = s.LatestCode(ctx, u.ID, purposeVerify)
			var (
				wg   sync.WaitGroup
				wins atomic.Int32
			)
			for range 10 {
				wg.Go(func() {
					if ok, err := s.ConsumeCode(ctx, racing.ID, start); err != nil {
						t.Error(err)
					} else if ok {
						wins.Add(1)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Errorf("%d of 10 concurrent ConsumeCode calls won, want 1", wins.Load())
			}
		})

		t.Run("refresh tokens", func(t *testing.T) {
			u := newUser("rt@example.com")
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			rt := RefreshToken{Hash: "h1", UserID: u.ID, FamilyID: uuid.NewString(), ExpiresAt: start.Add(time.Hour), CreatedAt: start}
			if err := s.InsertRefreshToken(ctx, rt); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertRefreshToken(ctx, rt); !apperr.Is(err, apperr.Conflict) {
				t.Errorf("duplicate hash: err = %v, want a conflict", err)
			}
		})

		t.Run("transactions", func(t *testing.T) {
			boom := errors.New("boom")
			err := s.InTx(ctx, func(tx *Tx) error {
				if err := tx.CreateUser(ctx, newUser("tx@example.com")); err != nil {
					return err
				}
				if _, err := tx.UserByEmail(ctx, "tx@example.com"); err != nil {
					t.Errorf("the transaction does not see its own write: %v", err)
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx = %v", err)
			}
			if _, err := s.UserByEmail(ctx, "tx@example.com"); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("rolled-back user: err = %v, want not found", err)
			}
		})
	})
}
