package mailer

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/httpapi"
)

// registerCounters exports the mailer's totals from m's registry. The
// counters stay plain atomics (the consumer's hot path and the tests read
// them); the registry reads them at each scrape.
func registerCounters(m *httpapi.Metrics, stats *counters) {
	for _, c := range []struct {
		name, help string
		value      func() int64
	}{
		{"kinoteka_mailer_sent_total", "Mails the SMTP server accepted.", stats.sent.Load},
		{"kinoteka_mailer_retried_total", "Failed SMTP attempts that will be tried again (4xx, network, TLS or AUTH trouble).", stats.retried.Load},
		{"kinoteka_mailer_dead_lettered_total", "Records parked in the dead-letter topic (poison, rejected with 5xx, or deferred too often).", stats.deadLettered.Load},
		{"kinoteka_mailer_duplicates_skipped_total", "Re-delivered records not mailed again because the delivery log had them as sent.", stats.duplicates.Load},
		{"kinoteka_mailer_send_failures_total", "Failed SMTP attempts (each is retried or dead-lettered).", stats.failures.Load},
		{"kinoteka_mailer_expired_total", "Events not mailed because their code had expired before it could be (logged as expired in the delivery log).", stats.expired.Load},
	} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.value()) }))
	}
}

// registerMembership exports kinoteka_mailer_partitions_owned: the
// partitions of the mail topic this replica owns in the group. Summed over
// the replicas it is the partition count; a replica at 0 for long is idle.
func registerMembership(m *httpapi.Metrics, member *membership) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kinoteka_mailer_partitions_owned",
		Help: "Partitions this replica owns in the consumer group.",
	}, func() float64 { return float64(member.ownedCount()) }))
}

// timedSender times every SMTP send, by outcome.
type timedSender struct {
	Sender
	duration *prometheus.HistogramVec
}

// timeSends wraps s so that kinoteka_mailer_send_duration_seconds{outcome}
// (ok or error) observes each send: the time to hand one mail to the SMTP
// server, a pooled connection's reuse included.
func timeSends(m *httpapi.Metrics, s Sender) Sender {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kinoteka_mailer_send_duration_seconds",
		Help:    "SMTP send latency per mail, by outcome (ok, error).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"outcome"})
	m.Registry.MustRegister(h)
	return &timedSender{Sender: s, duration: h}
}

func (t *timedSender) Send(ctx context.Context, msg Message) error {
	start := time.Now()
	err := t.Sender.Send(ctx, msg)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	t.duration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return err
}

// lagTimeout bounds the broker round trips of one scrape's lag query.
const lagTimeout = 2 * time.Second

// lagCollector exports kinoteka_mailer_consumer_lag{topic,partition}: the
// records of each partition not yet committed by the group, asked of the
// brokers at each scrape. Every replica reports the whole group's lag, so
// alert on max by partition, not sum. A failed query leaves the series
// out of that scrape.
type lagCollector struct {
	adm   *kadm.Client
	group string
	desc  *prometheus.Desc
}

func newLagCollector(cl *kgo.Client, group string) *lagCollector {
	return &lagCollector{
		adm:   kadm.NewClient(cl),
		group: group,
		desc: prometheus.NewDesc("kinoteka_mailer_consumer_lag",
			"Records of a partition the consumer group has not committed yet.", []string{"topic", "partition"}, nil),
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	lags, err := c.adm.Lag(ctx, c.group)
	if err != nil {
		return
	}
	g, ok := lags[c.group]
	if !ok || g.Error() != nil {
		return
	}
	for _, l := range g.Lag.Sorted() {
		if l.Err != nil || l.Lag < 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.Lag), l.Topic, strconv.Itoa(int(l.Partition)))
	}
}
