package main

import (
	"fmt"
	"net/http"
	"runtime/metrics"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"kinoteka/internal/argon2id"
)

// BenchmarkRegisterToMail measures, on the embedded system, the time from
// sending POST /v1/auth/register to the mail being in the catcher: password
// hashing, the transaction with the outbox row, the relay, Kafka, the
// mailer's consumer group, rendering and SMTP. Run it with -benchtime=100x.
//
// The baseline is one argon2id hash with auth's parameters, which every
// registration pays, timed in the same process between the registrations
// (before one, after the next, in turn), so that it sees the same machine,
// the same heap and the same neighbours (the broker, the mailer, the
// catcher) as the registrations do. argon2id-idle is the baseline this
// benchmark used before issue 14: 20 hashes before the system starts, on an
// idle heap. The GC figures are the process's during the registrations
// (runtime/metrics). While an answer (or a baseline hash) is awaited, the
// process's CPU time and minor page faults are counted too (getrusage): the
// CPU time is the process's own work, which other processes' load on the
// machine does not change, and a hash whose 19 MiB the runtime had given
// back to the OS takes thousands of faults (docs/benchmarks.md).
func BenchmarkRegisterToMail(b *testing.B) {
	idle := make([]time.Duration, 0, 20)
	for range 20 {
		idle = append(idle, bareHash())
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

	var toMail, toAnswer, hashes, answerCPU, hashCPU []time.Duration
	var answerFaults, hashFaults []int64
	baseline := func() {
		u := usage(b)
		hashes = append(hashes, bareHash())
		d := usage(b).since(u)
		hashCPU, hashFaults = append(hashCPU, d.cpu), append(hashFaults, d.faults)
	}
	gcBefore := gcStats()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			baseline()
		}
		have := len(s.catcher.Messages())
		u := usage(b)
		start := time.Now()
		toAnswer = append(toAnswer, register(i))
		d := usage(b).since(u)
		answerCPU, answerFaults = append(answerCPU, d.cpu), append(answerFaults, d.faults)
		waitMails(have + 1)
		toMail = append(toMail, time.Since(start))
		if i%2 == 1 {
			baseline()
		}
	}
	b.StopTimer()
	gc := gcStats().since(gcBefore)
	report := func(name string, d []time.Duration) (p99 time.Duration) {
		slices.Sort(d)
		at := func(q int) time.Duration { return d[(len(d)*q)/100] }
		b.ReportMetric(float64(at(50).Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(at(90).Microseconds())/1000, name+"-p90-ms")
		b.ReportMetric(float64(at(99).Microseconds())/1000, name+"-p99-ms")
		return at(99)
	}
	report("register-to-mail", toMail)
	answer := report("register-answer", toAnswer)
	hash := report("argon2id-baseline", hashes)
	report("argon2id-idle", idle)
	b.ReportMetric(answer.Seconds()/hash.Seconds(), "answer/hash-p99")
	answer = report("register-answer-cpu", answerCPU)
	hash = report("argon2id-baseline-cpu", hashCPU)
	b.ReportMetric(answer.Seconds()/hash.Seconds(), "answer/hash-cpu-p99")
	for name, faults := range map[string][]int64{"register-answer": answerFaults, "argon2id-baseline": hashFaults} {
		slices.Sort(faults)
		b.ReportMetric(float64(faults[len(faults)/2]), name+"-faults-p50")
		b.ReportMetric(float64(faults[len(faults)-1]), name+"-faults-max")
	}
	b.ReportMetric(float64(gc.cycles)/float64(b.N), "gc-cycles/op")
	b.ReportMetric(gc.maxPause.Seconds()*1000, "gc-max-pause-ms")
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}

// bareHash times one argon2id hash with auth's parameters.
func bareHash() time.Duration {
	start := time.Now()
	argon2id.IDKey([]byte("correct horse battery"), []byte("0123456789abcdef"), 2, 19*1024, 1, 32)
	return time.Since(start)
}

// rusage is the process's CPU time and minor page faults so far.
type rusage struct {
	cpu    time.Duration
	faults int64
}

func usage(b *testing.B) rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return rusage{time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Minflt}
}

func (u rusage) since(earlier rusage) rusage {
	return rusage{u.cpu - earlier.cpu, u.faults - earlier.faults}
}

// gcSample is what runtime/metrics says about the collector so far.
type gcSample struct {
	cycles   uint64
	pauses   *metrics.Float64Histogram
	maxPause time.Duration
}

func gcStats() gcSample {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	return gcSample{cycles: s[0].Value.Uint64(), pauses: s[1].Value.Float64Histogram()}
}

// since is the collections after earlier, with the longest stop-the-world
// pause among them (the upper bound of its histogram bucket).
func (g gcSample) since(earlier gcSample) gcSample {
	out := gcSample{cycles: g.cycles - earlier.cycles}
	for i, n := range g.pauses.Counts {
		if n > earlier.pauses.Counts[i] {
			out.maxPause = time.Duration(g.pauses.Buckets[i+1] * float64(time.Second))
		}
	}
	return out
}
