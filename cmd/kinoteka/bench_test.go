package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// BenchmarkRegisterToMail measures, on the embedded system, the time from
// sending POST /v1/auth/register to the mail being in the catcher: password
// hashing, the transaction with the outbox row, the relay, Kafka, the
// mailer's consumer group, rendering and SMTP. Run it with -benchtime=100x.
// The baseline in the same run is one argon2id hash with auth's parameters,
// which every registration pays.
func BenchmarkRegisterToMail(b *testing.B) {
	hashes := make([]time.Duration, 0, 20)
	for range 20 {
		start := time.Now()
		argon2.IDKey([]byte("correct horse battery"), []byte("0123456789abcdef"), 2, 19*1024, 1, 32)
		hashes = append(hashes, time.Since(start))
	}

	// One client registering 100 addresses is exactly what auth's throttle
	// stops; this measures the pipeline, so the throttle is off.
	s, _, stop := runSystem(b, "-throttle", "off")

	client := &http.Client{Timeout: 30 * time.Second}
	register := func(i int) time.Duration {
		start := time.Now()
		body := fmt.Sprintf(`{"email":"bench-%d-%d@example.com","password":"correct horse battery"}`, time.Now().UnixNano(), i)
		resp, err := client.Post(s.authURL()+"/v1/auth/register", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("register: %s", resp.Status)
		}
		return time.Since(start)
	}
	waitMails := func(n int) {
		for len(s.catcher.Messages()) < n {
			time.Sleep(200 * time.Microsecond)
		}
	}
	register(-1) // warm up: the consumer group joins, connections open
	waitMails(1)

	var toMail, toAnswer []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		have := len(s.catcher.Messages())
		start := time.Now()
		toAnswer = append(toAnswer, register(i))
		waitMails(have + 1)
		toMail = append(toMail, time.Since(start))
	}
	b.StopTimer()
	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(d[(len(d)*99)/100].Microseconds())/1000, name+"-p99-ms")
	}
	report("register-to-mail", toMail)
	report("register-answer", toAnswer)
	report("argon2id-baseline", hashes)
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}
