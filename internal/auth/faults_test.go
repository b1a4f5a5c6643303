package auth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/sqldb/sqldbtest"
)

// A mail topic deleted and created again (to purge codes, or by a broker
// that came back without its log) has a new topic id, which the producer
// refused with UNKNOWN_TOPIC_ID until auth restarted. The relay now makes
// the client forget the old topic and publishes to the new one.
func TestRunRecoversFromARecreatedTopic(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(2, events.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	srv := startRun(t, brokers)
	if status, body := post(t, srv.url+"/v1/auth/register", `{"email":"a@example.com","password":"correct horse"}`); status != 202 {
		t.Fatalf("register: %d %s", status, body)
	}
	consumeOne(t, brokers)

	adm, err := kafka.NewClient(kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(adm).DeleteTopic(ctx, events.Topic); err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, events.Topic); err != nil {
		t.Fatal(err)
	}
	recreated := time.Now()
	if status, body := post(t, srv.url+"/v1/auth/register", `{"email":"b@example.com","password":"correct horse"}`); status != 202 {
		t.Fatalf("register after the topic was recreated: %d %s", status, body)
	}
	d, err := events.Decode(consumeOne(t, brokers).Value, "")
	if err != nil || d.Mail.Email != "b@example.com" {
		t.Fatalf("first record of the new topic: %+v, %v", d, err)
	}
	t.Logf("the relay published to the recreated topic %v after it was recreated", time.Since(recreated).Round(time.Millisecond))
	waitReady(t, srv.opsURL, "OK")
}

// Each pooled connection the server terminated used to turn the next
// registration that drew it into a 500. The registration's transaction
// failed before its commit: it runs again on a live connection.
func TestRunRegistersThroughTerminatedConnections(t *testing.T) {
	sqldbtest.NeedPostgres(t, "terminates the server's connections")
	dbURL := sqldbtest.FreshPostgresURL(t)
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	srv := startRun(t, cluster.ListenAddrs(), func(c *Config) {
		c.DatabaseURL = dbURL
		c.Throttle.Store = "off" // many registrations from one address
		// The relay's safety-net poll would draw the dead connections
		// first; Notify still wakes it after each registration.
		c.OutboxPoll = time.Hour
	})

	next := 0
	burst := func(n int) []string {
		var (
			mu     sync.Mutex
			failed []string
			wg     sync.WaitGroup
		)
		for i := range n {
			body := fmt.Sprintf(`{"email":"user%d@example.com","password":"correct horse"}`, next+i)
			wg.Go(func() {
				resp, err := client.Post(srv.url+"/v1/auth/register", "application/json", strings.NewReader(body))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err.Error())
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failed = append(failed, fmt.Sprintf("%s: %d", body, resp.StatusCode))
				}
			})
		}
		wg.Wait()
		next += n
		return failed
	}
	// Small bursts: a registration hashes its password before it touches
	// the database, and the connections must still be fresh in the pool
	// (used in the last second, so not pinged) when it does.
	for round := range 5 {
		if failed := burst(4); len(failed) > 0 {
			t.Fatalf("round %d, before terminating: %v", round, failed)
		}
		if n := sqldbtest.TerminateConnections(t, dbURL); n < 2 {
			t.Fatalf("round %d: terminated %d connections, want the pool's", round, n)
		}
		if failed := burst(4); len(failed) > 0 {
			t.Errorf("round %d, registrations after the connections were terminated: %v", round, failed)
		}
	}
}
