package main

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/e2e"
	"kinoteka/internal/events"
)

// usersRecords reads every record of the users topic now on the broker.
func usersRecords(t *testing.T, broker string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(events.UsersTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, events.UsersTopic)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("read the users topic: %v", err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// produce writes records to the broker as a re-delivery would.
func produce(t *testing.T, broker string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range recs {
		r := &kgo.Record{Topic: events.UsersTopic, Key: r.Key, Value: r.Value}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// A users event films sees again, or late, changes nothing: films applies
// an account's event only when its version is newer than the one it holds.
// The topic has one partition here, so a later rename of another account,
// once films shows it, proves films has read every record before it.
func TestUsersEventsReplayedChangeNothing(t *testing.T) {
	s, env, _ := runSystem(t, "-partitions", "1")
	broker := s.kafkaAddr()
	anna := env.SignUp(t, "anna@example.com", "correct horse battery")
	bob := env.SignUp(t, "bob@example.com", "correct horse battery")
	const film = "/v1/films/1"
	for _, tok := range []e2e.Tokens{anna, bob} {
		if r := env.Do(t, "PUT", env.FilmsURL+film+"/reviews/me", map[string]int{"rating": 6}, tok.AccessToken); r.Status != http.StatusCreated {
			t.Fatalf("review: %d %s", r.Status, r.Body)
		}
	}
	authors := func() map[string]string {
		var page reviewAuthors
		env.Do(t, "GET", env.FilmsURL+film+"/reviews", nil, "").JSON(t, &page)
		out := map[string]string{}
		for _, it := range page.Items {
			out[it.UserID] = it.Author.Name
		}
		return out
	}
	rename := func(tok e2e.Tokens, name string) string {
		t.Helper()
		var me struct{ ID string }
		r := env.Do(t, "PATCH", env.AuthURL+"/v1/auth/me", map[string]string{"name": name}, tok.AccessToken)
		if r.Status != http.StatusOK {
			t.Fatalf("rename: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &me)
		waitFor(t, "the name "+name+" at films", func() bool { return authors()[me.ID] == name })
		return me.ID
	}
	annaID := rename(anna, "Anna One")
	rename(anna, "Anna Two")

	var annas []*kgo.Record
	for _, r := range usersRecords(t, broker) {
		if string(r.Key) == annaID {
			annas = append(annas, r)
		}
	}
	if len(annas) < 2 {
		t.Fatalf("%d users records of anna, want her two renames at least", len(annas))
	}
	// Every one of anna's events again, newest first (so the oldest comes
	// last), the newest twice, and one forged with the lowest version.
	replay := slices.Clone(annas)
	slices.Reverse(replay)
	replay = append([]*kgo.Record{annas[len(annas)-1]}, replay...)
	stale, err := events.NewUserEvent("forged-stale", time.Now(), events.UserUpdated{ID: annaID, Name: "Stale Name", Version: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := stale.Encode()
	replay = append(replay, &kgo.Record{Key: []byte(annaID), Value: b})
	produce(t, broker, replay...)
	rename(bob, "Bob After The Replay")
	if got := authors()[annaID]; got != "Anna Two" {
		t.Errorf("after the replay anna's reviews show %q, want Anna Two", got)
	}
	var f struct {
		ReviewCount int `json:"review_count"`
	}
	if env.Do(t, "GET", env.FilmsURL+film, nil, "").JSON(t, &f); f.ReviewCount != 2 {
		t.Errorf("review count after the replay: %d, want 2", f.ReviewCount)
	}

	// After the deletion, her old updates replayed do not bring the account
	// back: her token stays refused at films, her review stays gone.
	if r := env.Do(t, "DELETE", env.AuthURL+"/v1/auth/me", map[string]string{"password": "correct horse battery"}, anna.AccessToken); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	waitFor(t, "anna's review gone", func() bool { _, ok := authors()[annaID]; return !ok })
	produce(t, broker, annas...)
	rename(bob, "Bob After The Second Replay")
	if _, ok := authors()[annaID]; ok {
		t.Error("a replayed update brought a deleted account's review back")
	}
	if r := env.Do(t, "GET", env.FilmsURL+"/v1/me/favorites", nil, anna.AccessToken); r.Status != http.StatusUnauthorized {
		t.Errorf("a replayed update made films take a deleted account's token again: %d", r.Status)
	}
	if r := env.Do(t, "PUT", env.FilmsURL+film+"/reviews/me", map[string]int{"rating": 1}, anna.AccessToken); r.Status != http.StatusUnauthorized {
		t.Errorf("a deleted account wrote a review: %d", r.Status)
	}
}

// login signs addr in and returns the tokens.
func login(t *testing.T, env e2e.Env, addr, password string) e2e.Tokens {
	t.Helper()
	var tk e2e.Tokens
	r := env.Do(t, "POST", env.AuthURL+"/v1/auth/login", map[string]string{"email": addr, "password": password}, "")
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", addr, r.Status, r.Body)
	}
	r.JSON(t, &tk)
	return tk
}

// refreshStatus is auth's answer to a refresh with tk's refresh token.
func refreshStatus(t *testing.T, env e2e.Env, tk e2e.Tokens) int {
	t.Helper()
	return env.Do(t, "POST", env.AuthURL+"/v1/auth/refresh", map[string]string{"refresh_token": tk.RefreshToken}, "").Status
}

// Self-service through auth's public API on the embedded system: a listed
// session can be ended; a password change ends every other session and
// keeps this one; an address change moves the address only with the code
// mailed to the new one.
func TestSelfServiceEndToEnd(t *testing.T) {
	s, env, _ := runSystem(t)
	const pw = "correct horse battery"
	here := env.SignUp(t, "self@example.com", pw)
	other := login(t, env, "self@example.com", pw)
	third := login(t, env, "self@example.com", pw)

	t.Run("a listed session can be ended", func(t *testing.T) {
		var list struct {
			Items []struct {
				ID      string
				Current bool
			}
		}
		env.Do(t, "GET", env.AuthURL+"/v1/auth/sessions", nil, here.AccessToken).JSON(t, &list)
		if len(list.Items) != 3 {
			t.Fatalf("%d sessions listed, want 3: %+v", len(list.Items), list.Items)
		}
		// The third login's own listing marks its session current: end it
		// from here.
		var mine struct {
			Items []struct {
				ID      string
				Current bool
			}
		}
		env.Do(t, "GET", env.AuthURL+"/v1/auth/sessions", nil, third.AccessToken).JSON(t, &mine)
		id := ""
		for _, it := range mine.Items {
			if it.Current {
				id = it.ID
			}
		}
		if id == "" {
			t.Fatal("no session is marked current")
		}
		if r := env.Do(t, "DELETE", env.AuthURL+"/v1/auth/sessions/"+id, nil, here.AccessToken); r.Status != http.StatusNoContent {
			t.Fatalf("end the session: %d %s", r.Status, r.Body)
		}
		if st := refreshStatus(t, env, third); st != http.StatusUnauthorized {
			t.Errorf("the ended session's refresh: %d", st)
		}
		if r := env.Do(t, "DELETE", env.AuthURL+"/v1/auth/sessions/"+id, nil, here.AccessToken); r.Status != http.StatusNotFound {
			t.Errorf("end it again: %d", r.Status)
		}
	})

	t.Run("a password change ends the other sessions and keeps this one", func(t *testing.T) {
		r := env.Do(t, "POST", env.AuthURL+"/v1/auth/password/change", map[string]string{"current_password": "wrong password", "new_password": "a new good secret"}, here.AccessToken)
		if r.Status != http.StatusForbidden {
			t.Fatalf("a wrong current password: %d %s", r.Status, r.Body)
		}
		if st := refreshStatus(t, env, other); st != http.StatusOK {
			t.Fatalf("a refused change ended a session: %d", st)
		}
		other = login(t, env, "self@example.com", pw) // the refresh above rotated it
		r = env.Do(t, "POST", env.AuthURL+"/v1/auth/password/change", map[string]string{"current_password": pw, "new_password": "a new good secret"}, here.AccessToken)
		if r.Status != http.StatusNoContent {
			t.Fatalf("change: %d %s", r.Status, r.Body)
		}
		if st := refreshStatus(t, env, other); st != http.StatusUnauthorized {
			t.Errorf("the other session's refresh after the change: %d", st)
		}
		// The notice reaches the person: a mail without a code goes
		// through the mailer, not to its dead letters.
		if text := env.WaitForMail(t, "self@example.com", "password was changed", 20*time.Second); !strings.Contains(text, "password") {
			t.Errorf("the notice: %q", text)
		}
		var next e2e.Tokens
		r = env.Do(t, "POST", env.AuthURL+"/v1/auth/refresh", map[string]string{"refresh_token": here.RefreshToken}, "")
		if r.Status != http.StatusOK {
			t.Fatalf("this session's refresh after the change: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &next)
		here = next
		if r := env.Do(t, "POST", env.AuthURL+"/v1/auth/login", map[string]string{"email": "self@example.com", "password": pw}, ""); r.Status != http.StatusUnauthorized {
			t.Errorf("the old password still signs in: %d", r.Status)
		}
		login(t, env, "self@example.com", "a new good secret")
	})

	t.Run("an address change needs the code", func(t *testing.T) {
		// auth mails one code a minute at most; the sign-up's went out
		// seconds ago.
		backdateCodes(t, filepath.Join(s.cfg.DataDir, "auth.db"), 2*time.Minute)
		r := env.Do(t, "POST", env.AuthURL+"/v1/auth/email/change", map[string]string{"new_email": "moved@example.com", "password": "a new good secret"}, here.AccessToken)
		if r.Status != http.StatusAccepted {
			t.Fatalf("change: %d %s", r.Status, r.Body)
		}
		email := func() string {
			var me struct{ Email string }
			env.Do(t, "GET", env.AuthURL+"/v1/auth/me", nil, here.AccessToken).JSON(t, &me)
			return me.Email
		}
		if got := email(); got != "self@example.com" {
			t.Errorf("the address moved before the code: %s", got)
		}
		if r := env.Do(t, "POST", env.AuthURL+"/v1/auth/email/confirm", map[string]string{"code": "000000"}, here.AccessToken); r.Status != http.StatusBadRequest {
			t.Errorf("a wrong code: %d %s", r.Status, r.Body)
		}
		if got := email(); got != "self@example.com" {
			t.Errorf("the address moved with a wrong code: %s", got)
		}
		code := env.WaitForCode(t, "moved@example.com", 60*time.Second)
		if r := env.Do(t, "POST", env.AuthURL+"/v1/auth/email/confirm", map[string]string{"code": code}, here.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
		if got := email(); got != "moved@example.com" {
			t.Errorf("after the code the address is %s", got)
		}
		login(t, env, "moved@example.com", "a new good secret")
		if r := env.Do(t, "POST", env.AuthURL+"/v1/auth/login", map[string]string{"email": "self@example.com", "password": "a new good secret"}, ""); r.Status != http.StatusUnauthorized {
			t.Errorf("the old address still signs in: %d", r.Status)
		}
	})
}
