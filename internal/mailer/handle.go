package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"kinoteka/internal/events"
	"kinoteka/internal/telemetry"
)

// dbTimeout bounds a delivery log statement, so that a database that hangs
// slows mail down rather than stopping it (or a rebalance) for good.
const dbTimeout = 10 * time.Second

// item is a record with what could be decoded from it.
type item struct {
	r   *kgo.Record
	id  string // de-duplication key
	d   events.Decoded
	err error // why it is not a valid mail request (wraps events.ErrPoison)
}

// admit decodes records of one partition and adds them, in order, to its
// window, with what the delivery log knows of them.
func (c *consumer) admit(win *window, rs []*kgo.Record) {
	items := make([]item, len(rs))
	ids := make([]string, 0, len(rs))
	for i, r := range rs {
		it := item{r: r}
		it.d, it.err = events.Decode(r.Value, legacyID(r))
		it.id = it.d.ID
		if it.err != nil {
			it.id = poisonID(r)
		} else {
			ids = append(ids, it.id)
		}
		items[i] = it
	}
	// One look-up for the whole batch. If the log cannot answer, mail
	// anyway: a rare duplicate beats a stalled mailer.
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	sent, err := c.deliveries.Sent(ctx, ids)
	cancel()
	if err != nil {
		c.log.Warn("delivery log unavailable; re-delivered records may be mailed twice", "err", err)
		sent = map[string]bool{}
	}
	for _, it := range items {
		win.add(it, sent[it.id])
	}
}

// legacyID is the de-duplication key of a record without an event id: its
// position and its timestamp. The position alone repeats when the topic is
// deleted and recreated (or the broker loses its data), as offsets start
// again at 0, and the new topic's first records would be skipped as
// "already sent"; the timestamp (milliseconds) tells them apart, and a
// re-delivered record keeps it. The value itself holds the code, so no
// hash of it goes into the log.
func legacyID(r *kgo.Record) string {
	return fmt.Sprintf("kafka:%s/%d/%d@%d", r.Topic, r.Partition, r.Offset, r.Timestamp.UnixMilli())
}

// poisonID names a record that could not be decoded: by its event-id
// header, else the id field of a malformed envelope, else its position.
func poisonID(r *kgo.Record) string {
	if id := headerValue(r, events.HeaderEventID); id != "" {
		return id
	}
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(r.Value, &probe) == nil && probe.ID != "" && len(probe.ID) <= 100 {
		return probe.ID
	}
	return legacyID(r)
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// handle processes one record. It returns true when the record is finished
// (sent, already sent, or dead-lettered) and false when quit stopped it.
// p says whether the event was already sent (by the delivery log, or an
// earlier record of the same event) and hears how the sending went.
// Log lines and the span name the record and the event, never the address
// or the code.
func (c *consumer) handle(quit <-chan struct{}, it item, p *progress) bool {
	r := it.r
	ctx, span := c.startSpan(it)
	defer span.End()
	// A code mail whose code is not six digits is poison (docs/events.md);
	// notices carry no code.
	if it.err == nil && events.HasCode(it.d.Type) {
		it.err = sixDigitCode(it.d.Mail.Code)
	}
	if it.err != nil {
		log := recordLogger{c.log, []any{"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", it.id}}
		return c.deadLetterSpan(span, quit, log, it, events.DLQKindPoison, it.err, 0)
	}
	log := recordLogger{c.log, []any{"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", it.id, "type", it.d.Type, "legacy", it.d.Legacy}}
	if *p.sent {
		c.stats.duplicates.Add(1)
		span.SetAttributes(attrOutcome.String("duplicate"))
		log.Info("mail already sent for this event; not sending it again")
		return true
	}
	if c.expired(it) {
		return c.expire(span, log, it)
	}
	m, err := c.render.render(it.d)
	if err != nil {
		if !errors.Is(err, events.ErrPoison) {
			err = fmt.Errorf("%w: rendering failed: %v", events.ErrPoison, err)
		}
		return c.deadLetterSpan(span, quit, log, it, events.DLQKindPoison, err, 0)
	}

	deferred := 0 // 4yz answers to this message, as opposed to connection trouble
	for attempt := 1; ; attempt++ {
		// The send itself is not cut short by a stop: the message in
		// flight is finished, bounded by the SMTP timeouts.
		sendCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		t := &finalTurn{gate: p.final}
		m.final = t.take
		err := c.send.Send(sendCtx, m)
		cancel()
		if err == nil {
			c.stats.sent.Add(1)
			*p.sent = true // the same event again in the window is a duplicate
			p.firstTry = attempt == 1
			c.recordDurable(log, it, StatusSent, 1, "", t.give)
			t.give()
			span.SetAttributes(attrOutcome.String("sent"), attrAttempts.Int(attempt))
			log.Info("mail sent", "attempts", attempt)
			return true
		}
		t.give()
		c.stats.failures.Add(1)
		span.AddEvent("smtp attempt failed", trace.WithAttributes(smtpFailure(attempt, err)...))
		if isRejected(err) {
			return c.deadLetterSpan(span, quit, log, it, events.DLQKindRejected, err, attempt)
		}
		if isDeferred(err) {
			deferred++
			if deferred >= c.maxAttempts {
				return c.deadLetterSpan(span, quit, log, it, events.DLQKindGaveUp,
					fmt.Errorf("deferred %d times, the last: %w", deferred, err), attempt)
			}
		}
		c.stats.retried.Add(1)
		p.retrying()
		c.record(log, it, StatusRetrying, 1, err.Error())
		// 4yz, network trouble, or a refusal of our connection (no
		// STARTTLS, wrong credentials) that every message would meet:
		// wait and try the same message again, committing nothing.
		delay := c.backoff(attempt)
		level := slog.LevelWarn
		if IsPermanent(err) {
			level = slog.LevelError // needs an operator: the configuration is wrong
		}
		log.Log(context.Background(), level, "mail not sent; will retry", "err", err, "attempts", attempt, "retry_in", delay)
		if !sleep(quit, delay) {
			span.SetAttributes(attrOutcome.String("interrupted"), attrAttempts.Int(attempt))
			log.Info("giving way to a group rebalance or shutdown; the record will be retried")
			return false
		}
		if c.expired(it) {
			// The SMTP server was away for longer than the code lives.
			return c.expire(span, log, it)
		}
	}
}

// recordLogger logs lines about one record, each with the record's
// attributes. Logger.With would format them once per record, logged or
// not, and then the line again: a CPU profile of the mailer put With at 7
// µs a mail, as much as the one line most records get ("mail sent").
type recordLogger struct {
	l     *slog.Logger
	attrs []any
}

func (r recordLogger) Info(msg string, args ...any) {
	r.Log(context.Background(), slog.LevelInfo, msg, args...)
}

func (r recordLogger) Warn(msg string, args ...any) {
	r.Log(context.Background(), slog.LevelWarn, msg, args...)
}

func (r recordLogger) Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if r.l.Enabled(ctx, level) {
		r.l.Log(ctx, level, msg, r.with(args...).attrs...)
	}
}

// with returns a logger whose lines have args too.
func (r recordLogger) with(args ...any) recordLogger {
	return recordLogger{r.l, append(r.attrs[:len(r.attrs):len(r.attrs)], args...)}
}

// sixDigitCode refuses a code that is not six ASCII digits, as the contract
// (docs/events.md) has it: such a mail could not be used, so it is poison.
func sixDigitCode(code string) error {
	if len(code) != 6 || strings.IndexFunc(code, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return fmt.Errorf("%w: the code is not six digits", events.ErrPoison)
	}
	return nil
}

// expired reports whether the event's code stopped working before it could
// be mailed (after a long outage): mailing it would only mislead. A bare
// payload carries no expiry and never expires here.
func (c *consumer) expired(it item) bool {
	at := it.d.Mail.ExpiresAt
	return !at.IsZero() && !c.tune.now().Before(at)
}

// expire finishes a record whose code has expired: logged as expired in the
// delivery log, counted, not mailed. The user asks for a new code.
func (c *consumer) expire(span trace.Span, log recordLogger, it item) bool {
	c.stats.expired.Add(1)
	at := it.d.Mail.ExpiresAt.UTC().Format(time.RFC3339)
	c.record(log, it, StatusExpired, 0, "the code expired at "+at+" before it could be mailed")
	span.SetAttributes(attrOutcome.String("expired"))
	log.Warn("the code expired before it could be mailed; not sending it", "expired_at", at)
	return true
}

// Span attributes of mail.send beyond the messaging conventions.
const (
	attrOutcome  = attribute.Key("kinoteka.mail.outcome") // sent, duplicate, expired, dead_lettered, interrupted
	attrDLQKind  = attribute.Key("kinoteka.mail.dlq_kind")
	attrAttempts = attribute.Key("kinoteka.smtp.attempts")
)

// startSpan starts the record's "mail.send" consumer span as a child of
// the relay's publish span, whose traceparent the record carries, so the
// mail joins the trace of the request that asked for it. It covers the
// rendering, every SMTP attempt and a dead-lettering.
func (c *consumer) startSpan(it item) (context.Context, trace.Span) {
	r := it.r
	ctx := telemetry.WithTraceparent(context.Background(), headerValue(r, events.HeaderTraceparent))
	return c.tr.Start(ctx, "mail.send",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(r.Topic),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
			semconv.MessagingKafkaOffset(int(r.Offset)),
			semconv.MessagingMessageID(it.id),
			attribute.String("kinoteka.event.type", it.d.Type),
		))
}

// smtpFailure describes a failed SMTP attempt by its step and reply code
// only: the reply text may quote the recipient's address.
func smtpFailure(attempt int, err error) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.Int("attempt", attempt)}
	var se *SendError
	if errors.As(err, &se) {
		attrs = append(attrs, attribute.String("smtp.step", se.Step), attribute.Int("smtp.code", se.Code))
	}
	return attrs
}

// deadLetterSpan is deadLetter, noted on the record's span.
func (c *consumer) deadLetterSpan(span trace.Span, quit <-chan struct{}, log recordLogger, it item, kind string, cause error, attempts int) bool {
	span.SetAttributes(attrDLQKind.String(kind), attrAttempts.Int(attempts))
	if !c.deadLetter(quit, log, it, kind, cause, attempts) {
		span.SetAttributes(attrOutcome.String("interrupted"))
		return false
	}
	span.SetAttributes(attrOutcome.String("dead_lettered"))
	span.SetStatus(codes.Error, "dead-lettered: "+kind)
	return true
}

// isDeferred reports a 4yz answer to this message (at MAIL, RCPT or DATA),
// other than 421, which is the server closing the connection.
func isDeferred(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Code >= 400 && se.Code <= 499 && se.Code != 421 &&
		(se.Step == StepMail || se.Step == StepRcpt || se.Step == StepData)
}

// record writes an outcome to the delivery log. A failure to write is
// logged, not fatal: the record is still finished, and the log only serves
// re-deliveries and operators.
func (c *consumer) record(log recordLogger, it item, status Status, attempts int, lastErr string) {
	c.recordDurable(log, it, status, attempts, lastErr, nil)
}

// recordDurable is record, calling durable once the outcome would survive
// a crash (see DeliveryLog.record).
func (c *consumer) recordDurable(log recordLogger, it item, status Status, attempts int, lastErr string, durable func()) {
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	err := c.deliveries.record(ctx, Delivery{
		EventID: it.id, EventType: it.d.Type, Status: status, Attempts: attempts, LastError: lastErr,
		Topic: it.r.Topic, Partition: it.r.Partition, Offset: it.r.Offset, Updated: c.tune.now(),
	}, durable)
	if err != nil {
		log.Warn("could not write the delivery log", "status", status, "err", err)
	}
}

// deadLetter parks the record in the dead-letter topic, retrying while the
// broker does not take it, and logs the outcome, counting the failed SMTP
// attempt that led to it if there was one; false means quit came first.
func (c *consumer) deadLetter(quit <-chan struct{}, log recordLogger, it item, kind string, cause error, attempts int) bool {
	log = log.with("reason", kind, "err", cause, "attempts", attempts)
	for try := 1; ; try++ {
		err := c.dlq.park(it.r, kind, cause.Error(), attempts, c.tune.now())
		if err == nil {
			break
		}
		if errors.Is(err, kerr.UnknownTopicID) {
			// The dead-letter topic was recreated: produce to the new one.
			c.cl.PurgeTopicsFromProducing(c.dlq.topic)
		}
		delay := c.backoff(try)
		log.Warn("could not write to the dead-letter topic; will retry", "dlq_err", err, "retry_in", delay)
		if !sleep(quit, delay) {
			return false
		}
	}
	c.stats.deadLettered.Add(1)
	c.record(log, it, StatusDeadLettered, min(attempts, 1), cause.Error())
	log.Warn("record moved to the dead-letter topic", "dlq", c.dlq.topic)
	return true
}

// backoff is the delay before retry attempt+1: exponential from
// backoffBase, capped at backoffMax, with jitter so that replicas do not
// retry in step.
func (c *consumer) backoff(attempt int) time.Duration {
	d := c.tune.backoffBase
	for i := 1; i < attempt && d < c.tune.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.tune.backoffMax)
	return d/2 + rand.N(d/2+1)
}
