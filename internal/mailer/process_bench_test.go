package mailer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/launch"
)

// The mailer as its own process against a bare SMTP sink (issue 14). Run it
// alone, once:
//
//	go test -run '^$' -bench MailerProcess -benchtime=1x -timeout 30m ./internal/mailer/
//
// It builds cmd/mailer (KINOTEKA_BENCH_MAILER_BIN names a binary to use
// instead) and starts one go-smtp sink on loopback that requires STARTTLS
// (RSA-2048 certificate) and AUTH PLAIN and discards what it is given.
// Against it, each run with a fresh kfake broker in this process:
//
//   - ceiling, 1 and 4 connections: a bare go-smtp client sending one
//     pre-rendered mail processEvents times over 1 and 4 connections, each
//     secured and authenticated once: what the sink and the machine take
//     with go-smtp's client, which awaits each reply (four round trips a
//     mail): the ceiling;
//   - chunked client, 4 connections: the same through this package's SMTP
//     client, which the mailer uses (MAIL, RCPT and BDAT with the message
//     in one round trip): the stricter reference, since with it the mailer
//     can pass the go-smtp ceiling;
//   - mailer, 4 and 1 partitions: the mailer binary with production
//     settings (JSON logs at info to a file, its delivery log on SQLite, 4
//     SMTP connections) working through processEvents pre-filled records of
//     the original bare {"email","code"} payload; emails/s and the
//     process's CPU from the first mail accepted to the last;
//   - latency at latencyRate/s, 4 and 1 partitions: records produced one at
//     a time on an idle mailer; from the produce call to the sink's 250.
//
// The throughput runs come in benchRounds rounds, each between two runs of
// the 4-connection ceiling; a mailer's share is its rate over the mean of
// the two ceilings around it (of each kind), and the figures reported are
// the medians of the rounds. With KINOTEKA_BENCH_BASELINE_BIN set (say, a
// mailer built from an earlier commit), that binary runs in every round
// too, for a before/after under the same load; the two take turns at going first,
// since the first run after a ceiling measured lower than the second in
// runs of one binary against itself (4 partitions: 64–68 % against
// 71–74 %). Each ceiling and throughput run also starts with this
// process's heap collected and returned to the system (the ceiling's
// client runs in it and leaves the most garbage): with both, such runs
// gave 72 / 73 % and 72 / 74 %.
//
// CPU per mail is the mailer process's user+system time (/proc/PID/stat)
// over the measured span divided by the mails sent in it. The machine's
// other load moves absolute figures a lot; read the ratios, which come from
// neighbouring runs.

const (
	processEvents  = 5000
	benchRounds    = 4   // even: each binary goes first as often
	latencyRate    = 100 // records per second
	latencyWarmup  = 50
	latencyRecords = 500
	sinkUser       = "mailer"
	sinkPassword   = "s3cret"
)

func BenchmarkMailerProcess(b *testing.B) {
	type target struct{ name, bin string }
	targets := []target{{"mailer", buildMailer(b)}}
	if bin := os.Getenv("KINOTEKA_BENCH_BASELINE_BIN"); bin != "" {
		targets = append(targets, target{"baseline", bin})
	}
	s := startBareSink(b)
	msg := benchMessage(b, 0)
	// The table goes to standard output: a benchmark's log is cut short.
	header := func() {
		fmt.Printf("%-36s %9s %9s %10s %9s %9s %12s", "run", "emails/s", "of 4conn", "of chunked", "p50 ms", "p99 ms", "CPU µs/mail")
		fmt.Println()
	}
	row := func(name string, r runResult, ceiling, chunked float64) {
		cpu, p50, p99, rate, share, shareChunked := "—", "—", "—", "—", "—", "—"
		if r.cpuPerMail > 0 {
			cpu = fmt.Sprintf("%.0f", r.cpuPerMail.Seconds()*1e6)
		}
		if r.p99 > 0 {
			p50, p99 = fmt.Sprintf("%.2f", ms(r.p50)), fmt.Sprintf("%.2f", ms(r.p99))
		}
		if r.rate > 0 {
			rate = fmt.Sprintf("%.0f", r.rate)
		}
		if ceiling > 0 {
			share = fmt.Sprintf("%.0f %%", 100*r.rate/ceiling)
			shareChunked = fmt.Sprintf("%.0f %%", 100*r.rate/chunked)
		}
		fmt.Printf("%-36s %9s %9s %10s %9s %9s %12s\n", name, rate, share, shareChunked, p50, p99, cpu)
	}
	for range b.N {
		header()
		row("ceiling, 1 connection", s.ceiling(b, msg, 1), 0, 0)
		ceilings := []float64{s.ceiling(b, msg, 4).rate}
		row("ceiling, 4 connections", runResult{rate: ceilings[0]}, 0, 0)
		chunked := []float64{s.chunkedCeiling(b, msg, 4).rate}
		row("chunked client, 4 connections", runResult{rate: chunked[0]}, 0, 0)
		type measure struct{ share, shareChunked, cpu []float64 }
		results := map[string]*measure{}
		for round := range benchRounds {
			var runs []struct {
				name string
				r    runResult
			}
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				for _, partitions := range []int{4, 1} {
					runs = append(runs, struct {
						name string
						r    runResult
					}{fmt.Sprintf("%s, %d partition(s)", t.name, partitions), s.mailerThroughput(b, t.bin, partitions)})
				}
			}
			ceilings = append(ceilings, s.ceiling(b, msg, 4).rate)
			chunked = append(chunked, s.chunkedCeiling(b, msg, 4).rate)
			ceiling := (ceilings[round] + ceilings[round+1]) / 2
			chunkedCeiling := (chunked[round] + chunked[round+1]) / 2
			for _, run := range runs {
				row(fmt.Sprintf("round %d: %s", round+1, run.name), run.r, ceiling, chunkedCeiling)
				m := results[run.name]
				if m == nil {
					m = &measure{}
					results[run.name] = m
				}
				m.share = append(m.share, 100*run.r.rate/ceiling)
				m.shareChunked = append(m.shareChunked, 100*run.r.rate/chunkedCeiling)
				m.cpu = append(m.cpu, run.r.cpuPerMail.Seconds()*1e6)
			}
			row(fmt.Sprintf("round %d: ceiling, 4 connections", round+1), runResult{rate: ceilings[round+1]}, 0, 0)
			row(fmt.Sprintf("round %d: chunked client, 4 connections", round+1), runResult{rate: chunked[round+1]}, 0, 0)
		}
		for _, t := range targets {
			for _, partitions := range []int{4, 1} {
				l := s.mailerLatency(b, t.bin, partitions)
				row(fmt.Sprintf("%s, latency at %d/s, %d partition(s)", t.name, latencyRate, partitions), l, 0, 0)
				b.ReportMetric(ms(l.p99), fmt.Sprintf("%s-%dp-p99-ms", t.name, partitions))
			}
		}
		fmt.Printf("medians of %d rounds:\n", benchRounds)
		for _, t := range targets {
			for _, partitions := range []int{4, 1} {
				m := results[fmt.Sprintf("%s, %d partition(s)", t.name, partitions)]
				share, shareChunked, cpu := median(m.share), median(m.shareChunked), median(m.cpu)
				fmt.Printf("  %s, %d partition(s): %.0f %% of the 4-connection ceiling (%.0f %% of the chunked client's), %.0f µs of CPU per mail\n", t.name, partitions, share, shareChunked, cpu)
				b.ReportMetric(share, fmt.Sprintf("%s-%dp-%%ceiling", t.name, partitions))
				b.ReportMetric(shareChunked, fmt.Sprintf("%s-%dp-%%chunked", t.name, partitions))
				b.ReportMetric(cpu, fmt.Sprintf("%s-%dp-cpu-µs/mail", t.name, partitions))
			}
		}
		b.ReportMetric(median(ceilings), "ceiling4-emails/s")
		b.ReportMetric(median(chunked), "chunked4-emails/s")
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runResult is one measured run.
type runResult struct {
	rate       float64 // emails/s, first accepted to last
	p50, p99   time.Duration
	cpuPerMail time.Duration // the mailer process's CPU over the span, per mail
}

// buildMailer builds cmd/mailer into a temporary folder, or returns
// KINOTEKA_BENCH_MAILER_BIN when set: a mailer built elsewhere, say from an
// earlier commit, to compare with in the same run of the sink.
func buildMailer(b *testing.B) string {
	b.Helper()
	if bin := os.Getenv("KINOTEKA_BENCH_MAILER_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(b.TempDir(), "mailer")
	cmd := exec.Command("go", "build", "-o", bin, "kinoteka/cmd/mailer")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build cmd/mailer: %v\n%s", err, out)
	}
	return bin
}

// bareSink is a go-smtp server that requires STARTTLS and AUTH PLAIN and
// discards every message after reading it, telling the current tally which
// recipient (u<i>@example.com) it accepted.
type bareSink struct {
	addr   string
	caFile string
	tls    *tls.Config // a client's, trusting the sink's certificate
	tally  atomic.Pointer[tally]
}

func startBareSink(b *testing.B) *bareSink {
	b.Helper()
	serverTLS, certPEM := rsaCertificate(b)
	s := &bareSink{caFile: filepath.Join(b.TempDir(), "ca.pem")}
	if err := os.WriteFile(s.caFile, certPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	roots, err := trustPEM(certPEM)
	if err != nil {
		b.Fatal(err)
	}
	s.tls = &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := smtp.NewServer(sinkBackend{s})
	srv.Domain = "sink"
	srv.TLSConfig = serverTLS
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 1 << 20
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close(); <-done })
	return s
}

// rsaCertificate is a self-signed RSA-2048 certificate for localhost and
// 127.0.0.1, as a server TLS config and PEM.
func rsaCertificate(b *testing.B) (*tls.Config, []byte) {
	b.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certPEM
}

type sinkBackend struct{ s *bareSink }

func (be sinkBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &sinkSession{s: be.s, tls: isTLS}, nil
}

type sinkSession struct {
	s      *bareSink
	tls    bool
	authed bool
	rcpt   int
}

var errSinkNeedAuth = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != sinkUser || pass != sinkPassword {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	if !ss.tls || !ss.authed {
		return errSinkNeedAuth
	}
	ss.rcpt = -1
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	local, _, _ := strings.Cut(to, "@")
	i, err := strconv.Atoi(strings.TrimPrefix(local, "u"))
	if err != nil {
		i = -1
	}
	ss.rcpt = i
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if t := ss.s.tally.Load(); t != nil {
		t.accepted(ss.rcpt, time.Now())
	}
	return nil
}

func (ss *sinkSession) Reset()        { ss.rcpt = -1 }
func (ss *sinkSession) Logout() error { return nil }

// tally counts the mails of one run by recipient index.
type tally struct {
	n       int
	at      []atomic.Int64 // first acceptance of u<i>, Unix ns
	unique  atomic.Int64
	twice   atomic.Int64
	first   atomic.Int64 // Unix ns of the first acceptance
	onFirst func()       // called once, at the first acceptance
	onLast  func()       // called once, at the n-th distinct acceptance
	done    chan struct{}
}

func newTally(n int) *tally {
	return &tally{n: n, at: make([]atomic.Int64, n), done: make(chan struct{})}
}

func (t *tally) accepted(i int, at time.Time) {
	if i < 0 || i >= t.n {
		t.twice.Add(1) // a stray: count it as wrong
		return
	}
	if !t.at[i].CompareAndSwap(0, at.UnixNano()) {
		t.twice.Add(1)
		return
	}
	if t.first.CompareAndSwap(0, at.UnixNano()) && t.onFirst != nil {
		t.onFirst()
	}
	if t.unique.Add(1) == int64(t.n) {
		if t.onLast != nil {
			t.onLast()
		}
		close(t.done)
	}
}

// wait waits for all n mails, failing after 5 minutes.
func (t *tally) wait(b *testing.B) time.Time {
	b.Helper()
	select {
	case <-t.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d mails after 5 minutes", t.unique.Load(), t.n)
	}
	var last int64
	for i := range t.at {
		last = max(last, t.at[i].Load())
	}
	return time.Unix(0, last)
}

// ceiling sends processEvents copies of msg over conns connections with
// go-smtp's client: MAIL, RCPT, DATA and the message, each awaiting its
// reply (four round trips a mail).
func (s *bareSink) ceiling(b *testing.B, msg Message, conns int) runResult {
	b.Helper()
	return s.timed(b, conns, func(c int) {
		cl, err := smtp.DialStartTLS(s.addr, s.tls)
		if err != nil {
			b.Error(err)
			return
		}
		defer cl.Close()
		if err := cl.Auth(sasl.NewPlainClient("", sinkUser, sinkPassword)); err != nil {
			b.Error(err)
			return
		}
		for i := c; i < processEvents; i += conns {
			if err := cl.SendMail(msg.From, []string{fmt.Sprintf("u%d@example.com", i)}, bytes.NewReader(msg.Data)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// chunkedCeiling is ceiling with this package's SMTP client instead, as
// the mailer sends with it but without Kafka, rendering or the delivery
// log: MAIL, RCPT and BDAT with the message in one round trip a mail. Its
// connections, like go-smtp's above, are not recycled.
func (s *bareSink) chunkedCeiling(b *testing.B, msg Message, conns int) runResult {
	b.Helper()
	cfg := DefaultConfig().SMTP
	cfg.Addr, cfg.ServerName, cfg.CAFile, cfg.Username, cfg.Password = s.addr, "localhost", s.caFile, sinkUser, sinkPassword
	cfg.Connections, cfg.MessagesPerConnection = conns, processEvents
	sender, err := NewSMTPSender(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sender.Close()
	return s.timed(b, conns, func(c int) {
		for i := c; i < processEvents; i += conns {
			m := msg
			m.To = fmt.Sprintf("u%d@example.com", i)
			if err := sender.Send(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// timed runs send on conns goroutines, which between them send the sink
// processEvents mails, and returns the sink's rate from the first mail it
// accepted to the last.
func (s *bareSink) timed(b *testing.B, conns int, send func(c int)) runResult {
	b.Helper()
	debug.FreeOSMemory()
	t := newTally(processEvents)
	s.tally.Store(t)
	defer s.tally.Store(nil)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() { send(c) })
	}
	wg.Wait()
	last := t.wait(b)
	return runResult{rate: float64(processEvents-1) / last.Sub(time.Unix(0, t.first.Load())).Seconds()}
}

// mailerProc is a running mailer binary.
type mailerProc struct {
	cmd    *exec.Cmd
	health string
	done   chan error
}

// startMailerBinary starts the mailer binary against the sink and brokers,
// with production settings, logging at info to a file, and waits until it
// answers /readyz.
// started, when set, gets the process as soon as it runs.
func (s *bareSink) startMailerBinary(b *testing.B, bin string, brokers []string, group string, started *atomic.Pointer[mailerProc]) *mailerProc {
	b.Helper()
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logFile, err := os.Create(filepath.Join(dir, "mailer.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"LOG_LEVEL=info",
		"MAILER_ADDR=" + addr,
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"MAIL_TOPIC=" + topic,
		"MAILER_GROUP=" + group,
		"MAILER_DATABASE_URL=sqlite:" + filepath.Join(dir, "mailer.db"),
		"SMTP_ADDR=" + s.addr,
		"SMTP_CA_FILE=" + s.caFile,
		"SMTP_USERNAME=" + sinkUser,
		"SMTP_PASSWORD=" + sinkPassword,
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &mailerProc{cmd: cmd, health: "http://" + addr, done: make(chan error, 1)}
	if started != nil {
		started.Store(p)
	}
	go func() { p.done <- cmd.Wait(); logFile.Close() }()
	b.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(p.health + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("mailer not ready after a minute (log in %s)", logFile.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the mailer with SIGTERM and waits for it.
func (p *mailerProc) stop(b *testing.B) {
	b.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	if err := <-p.done; err != nil {
		b.Errorf("mailer exit: %v", err)
	}
}

// cpu returns the process's user+system CPU time so far.
func (p *mailerProc) cpu() time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is
	// the 3rd field, utime the 14th and stime the 15th.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// bareRecord is the original design's payload for mail i.
func bareRecord(i int, partitions int) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: int32(i % partitions),
		Value: fmt.Appendf(nil, `{"email":"u%d@example.com","code":"%06d"}`, i, i%1000000)}
}

func benchCluster(b *testing.B, partitions int) (*kfake.Cluster, *kgo.Client) {
	b.Helper()
	kc, err := kfake.NewCluster(kfake.SeedTopics(int32(partitions), topic, events.DLQ(topic)))
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kafka.NewClient(kafka.Config{Brokers: kc.ListenAddrs()}, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		kc.Close()
		b.Fatal(err)
	}
	return kc, cl
}

var benchGroups atomic.Int64

// mailerThroughput pre-fills a topic of the given partitions with
// processEvents bare records, starts the mailer binary and measures from
// the first mail accepted to the last.
func (s *bareSink) mailerThroughput(b *testing.B, bin string, partitions int) runResult {
	b.Helper()
	debug.FreeOSMemory()
	kc, cl := benchCluster(b, partitions)
	defer kc.Close()
	defer cl.Close()
	records := make([]*kgo.Record, processEvents)
	for i := range records {
		records[i] = bareRecord(i, partitions)
	}
	if err := cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	t := newTally(processEvents)
	var (
		cpuFirst, cpuLast atomic.Int64
		proc              atomic.Pointer[mailerProc] // set before the process can send
	)
	t.onFirst = func() { cpuFirst.Store(int64(proc.Load().cpu())) }
	t.onLast = func() { cpuLast.Store(int64(proc.Load().cpu())) }
	s.tally.Store(t)
	p := s.startMailerBinary(b, bin, kc.ListenAddrs(), fmt.Sprintf("bench-%d", benchGroups.Add(1)), &proc)
	last := t.wait(b)
	s.tally.Store(nil)
	p.stop(b)
	if n := t.twice.Load(); n > 0 {
		b.Errorf("%d mails sent twice", n)
	}
	span := last.Sub(time.Unix(0, t.first.Load()))
	return runResult{
		rate:       float64(processEvents-1) / span.Seconds(),
		cpuPerMail: time.Duration(cpuLast.Load()-cpuFirst.Load()) / (processEvents - 1),
	}
}

// mailerLatency starts the mailer binary on an empty topic, then produces
// bare records one at a time at latencyRate per second and measures from
// each produce call to the sink's acceptance.
func (s *bareSink) mailerLatency(b *testing.B, bin string, partitions int) runResult {
	b.Helper()
	kc, cl := benchCluster(b, partitions)
	defer kc.Close()
	defer cl.Close()
	const n = latencyWarmup + latencyRecords
	t := newTally(n)
	s.tally.Store(t)
	defer s.tally.Store(nil)
	p := s.startMailerBinary(b, bin, kc.ListenAddrs(), fmt.Sprintf("bench-%d", benchGroups.Add(1)), nil)
	produced := make([]time.Time, n)
	// The warm-up waits for each mail, so measuring starts with the
	// group joined and every connection warm.
	produce := func(i int) {
		produced[i] = time.Now()
		cl.Produce(context.Background(), bareRecord(i, partitions), func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	for i := range latencyWarmup {
		produce(i)
		for t.at[i].Load() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	cpu0 := p.cpu()
	tick := time.NewTicker(time.Second / latencyRate)
	for i := latencyWarmup; i < n; i++ {
		<-tick.C
		produce(i)
	}
	tick.Stop()
	t.wait(b)
	cpu := p.cpu() - cpu0
	p.stop(b)
	if n := t.twice.Load(); n > 0 {
		b.Errorf("%d mails sent twice", n)
	}
	lat := make([]time.Duration, 0, latencyRecords)
	for i := latencyWarmup; i < n; i++ {
		lat = append(lat, time.Unix(0, t.at[i].Load()).Sub(produced[i]))
	}
	slices.Sort(lat)
	return runResult{p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], cpuPerMail: cpu / latencyRecords}
}

// BenchmarkMailerInProcess is mailer/4part and mailer/1part run inside the
// test process, for a CPU profile of the mailer's own code (the sink and
// the broker show up in it too, under their own packages):
//
//	go test -run '^$' -bench MailerInProcess -benchtime=1x -cpuprofile cpu.out ./internal/mailer/
//	go tool pprof -top -focus 'kinoteka/internal/mailer' mailer.test cpu.out
func BenchmarkMailerInProcess(b *testing.B) {
	s := startBareSink(b)
	for _, partitions := range []int{4, 1} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			for range b.N {
				kc, cl := benchCluster(b, partitions)
				records := make([]*kgo.Record, processEvents)
				for i := range records {
					records[i] = bareRecord(i, partitions)
				}
				if err := cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
					b.Fatal(err)
				}
				t := newTally(processEvents)
				s.tally.Store(t)
				cfg := DefaultConfig()
				cfg.Kafka.Brokers = kc.ListenAddrs()
				cfg.Group = fmt.Sprintf("bench-%d", benchGroups.Add(1))
				cfg.DatabaseURL = "sqlite:" + filepath.Join(b.TempDir(), "mailer.db")
				cfg.SMTP.Addr, cfg.SMTP.CAFile, cfg.SMTP.ServerName = s.addr, s.caFile, "localhost"
				cfg.SMTP.Username, cfg.SMTP.Password = sinkUser, sinkPassword
				logFile, err := os.Create(filepath.Join(b.TempDir(), "mailer.log"))
				if err != nil {
					b.Fatal(err)
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				// Buffered, as cmd/mailer's are (launch.Run).
				log, flush := launch.BufferedLogger(logFile, "info")
				go func() { done <- run(ctx, cfg, log, ln, defaultTuning, nil) }()
				last := t.wait(b)
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				flush()
				s.tally.Store(nil)
				logFile.Close()
				cl.Close()
				kc.Close()
				b.ReportMetric(float64(processEvents-1)/last.Sub(time.Unix(0, t.first.Load())).Seconds(), "emails/s")
			}
		})
	}
}
