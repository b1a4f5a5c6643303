package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
)

// Issue 3: with the broker down, 200 registrations are all answered 202;
// when it is back, exactly 200 mails arrive — none lost, none twice.
func TestBrokerDownDuring200Registrations(t *testing.T) {
	const n = 200
	s, _, stop := runSystem(t)
	ctx := context.Background()

	s.stopBroker()
	addrs := make([]string, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	work := make(chan int)
	// 200 people, not one client: auth throttles registrations per IP, so
	// the requests come from 20 loopback addresses, 10 from each.
	clients := make([]*http.Client, 20)
	for i := range clients {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i))}, Timeout: 5 * time.Second}
		clients[i] = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	}
	for range 4 { // argon2id makes each registration cost ~40 ms of CPU
		wg.Go(func() {
			for i := range work {
				client := clients[i%len(clients)]
				addrs[i] = fmt.Sprintf("outage-%03d@example.com", i)
				body := fmt.Sprintf(`{"email":%q,"password":"correct horse battery"}`, addrs[i])
				resp, err := client.Post(s.authURL()+"/v1/auth/register", "application/json", strings.NewReader(body))
				if err != nil {
					continue // status stays 0 and fails the test below
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusAccepted {
			t.Fatalf("registration %d with the broker down: status %d, want 202", i, st)
		}
	}
	if got := len(s.catcher.Messages()); got != 0 {
		t.Fatalf("%d mails while the broker was down", got)
	}

	if err := s.startBroker(); err != nil {
		t.Fatal(err)
	}
	// Settled: auth's outbox has nothing pending and the mailer group has
	// committed every partition to its end, so no further mail can come.
	authDB, err := sqldb.Open(ctx, "sqlite:"+filepath.Join(s.cfg.DataDir, "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer authDB.Close()
	admin, err := kgo.NewClient(kgo.SeedBrokers(s.kafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	settled := func() bool {
		var pending int
		if err := authDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").Scan(&pending); err != nil || pending > 0 {
			return false
		}
		ends, err := adm.ListEndOffsets(ctx, events.Topic)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, "kinoteka-mailer")
		if err != nil {
			return false
		}
		all := true
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(events.Topic, o.Partition)
			if o.Offset > 0 && (!ok || c.At != o.Offset) {
				all = false
			}
		})
		return all
	}
	deadline := time.Now().Add(90 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			t.Fatalf("not settled 90 s after the broker came back; %d mails so far", len(s.catcher.Messages()))
		}
		time.Sleep(100 * time.Millisecond)
	}

	perAddr := map[string]int{}
	for _, m := range s.catcher.Messages() {
		for _, to := range m.RcptTo {
			perAddr[to]++
		}
	}
	var missing, twice []string
	for _, a := range addrs {
		switch perAddr[a] {
		case 0:
			missing = append(missing, a)
		case 1:
		default:
			twice = append(twice, a)
		}
	}
	if total := len(s.catcher.Messages()); len(missing) > 0 || len(twice) > 0 || total != n {
		t.Errorf("%d mails for %d registrations; missing %v; more than once %v", total, n, missing, twice)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
