package auth

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/outbox"
)

// serviceMetrics is the counters auth's rules and its relay feed, in the
// service's registry (next to the HTTP series the stack counts). A nil
// *serviceMetrics counts nothing, so the rule tests need none.
type serviceMetrics struct {
	http          *httpapi.Metrics
	throttled     *prometheus.CounterVec
	loginFailures *prometheus.CounterVec
	publishErrors prometheus.Counter
	hashRefused   prometheus.Counter
}

// newServiceMetrics adds to h's registry kinoteka_auth_throttled_total
// {action,scope}, kinoteka_auth_login_failures_total{reason},
// kinoteka_auth_hash_refused_total and kinoteka_outbox_publish_errors_total.
func newServiceMetrics(h *httpapi.Metrics) *serviceMetrics {
	m := &serviceMetrics{
		http: h,
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinoteka_auth_throttled_total",
			Help: "Requests refused with 429 by the throttle, by action and by the bucket that was empty (ip or account).",
		}, []string{"action", "scope"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinoteka_auth_login_failures_total",
			Help: "Failed logins by reason: unknown_email, wrong_password, not_verified.",
		}, []string{"reason"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinoteka_outbox_publish_errors_total",
			Help: "Outbox records a publish attempt did not publish: refused by Kafka, or unanswered when the attempt's 10 s bound ran out (each is retried).",
		}),
		hashRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinoteka_auth_hash_refused_total",
			Help: "Requests answered 503 because every password-hashing slot stayed taken for AUTH_HASH_WAIT.",
		}),
	}
	// Every series starts at zero, so that a rate exists from the start.
	for act := range DefaultLimits {
		for _, scope := range []string{"ip", "account"} {
			m.throttled.WithLabelValues(string(act), scope)
		}
	}
	h.Registry.MustRegister(m.throttled, m.loginFailures, m.publishErrors, m.hashRefused)
	return m
}

// watchHashes exports how many requests wait for a hashing slot.
func (m *serviceMetrics) watchHashes(g *hashGate) {
	m.http.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kinoteka_auth_hash_waiting",
		Help: "Requests waiting for a password-hashing slot now (AUTH_HASH_CONCURRENCY are hashing).",
	}, func() float64 { return float64(g.waiting.Load()) }))
}

// hashBusy counts a request refused by the hash gate.
func (m *serviceMetrics) hashBusy() {
	if m != nil {
		m.hashRefused.Inc()
	}
}

// watchOutbox exports relay's backlog.
func (m *serviceMetrics) watchOutbox(relay *outbox.Relay) {
	m.http.Registry.MustRegister(newOutboxCollector(relay))
}

// publishFailed is the relay's Options.OnPublishError.
func (m *serviceMetrics) publishFailed(records int, _ error) {
	m.publishErrors.Add(float64(records))
}

func (m *serviceMetrics) throttledRequest(act Action, scope string) {
	if m != nil {
		m.throttled.WithLabelValues(string(act), scope).Inc()
	}
}

func (m *serviceMetrics) loginFailed(reason string) {
	if m != nil {
		m.loginFailures.WithLabelValues(reason).Inc()
	}
}

// outboxStatsTimeout bounds the backlog query a scrape makes.
const outboxStatsTimeout = 2 * time.Second

// outboxCollector exports the outbox backlog, read from the database at
// each scrape (one query), so every replica reports the same shared
// backlog: alert on max(), not sum(). A failed query leaves the series out
// of that scrape rather than reporting a false zero.
//
// Pending means "not marked published". A replica that crashed between
// Kafka's acknowledgement and the mark leaves its batch pending, under its
// lease, until the lease (40 s) expires and another relay publishes it
// again (the mailer drops the second copy): a crash shows as a backlog
// of up to one batch for up to a lease, not as a stuck outbox.
type outboxCollector struct {
	relay                  *outbox.Relay
	pending, failing, aged *prometheus.Desc
}

func newOutboxCollector(relay *outbox.Relay) *outboxCollector {
	return &outboxCollector{
		relay:   relay,
		pending: prometheus.NewDesc("kinoteka_outbox_pending_rows", "Outbox rows not yet published to Kafka.", nil, nil),
		failing: prometheus.NewDesc("kinoteka_outbox_failing_rows", "Pending outbox rows that failed at least one publish attempt.", nil, nil),
		aged:    prometheus.NewDesc("kinoteka_outbox_oldest_age_seconds", "How long the oldest pending outbox row has waited; 0 when none.", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.failing
	ch <- c.aged
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxStatsTimeout)
	defer cancel()
	st, err := c.relay.Stats(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, float64(st.Failing))
	ch <- prometheus.MustNewConstMetric(c.aged, prometheus.GaugeValue, st.OldestAge.Seconds())
}
