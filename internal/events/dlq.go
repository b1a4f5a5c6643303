package events

// Headers the mailer adds to a record it parks in the dead-letter topic
// (DLQ(topic)). The record keeps its key, value and original headers.
const (
	HeaderDLQError     = "error"              // why, in words; never the code
	HeaderDLQKind      = "error-kind"         // one of the DLQKind values
	HeaderDLQAttempts  = "attempts"           // SMTP attempts made, decimal
	HeaderDLQTopic     = "original-topic"     // where the record was read
	HeaderDLQPartition = "original-partition" // decimal
	HeaderDLQOffset    = "original-offset"    // decimal
	HeaderDLQAt        = "dead-lettered-at"   // RFC 3339, UTC
	// HeaderReplayedFrom marks a record a replay put back on the main topic:
	// "<dlq topic>/<partition>/<offset>" of the dead letter.
	HeaderReplayedFrom = "replayed-from"
)

// Why a record was dead-lettered (HeaderDLQKind).
const (
	DLQKindPoison   = "poison"   // not a valid mail request: undecodable, unknown type or version, bad address
	DLQKindRejected = "rejected" // the SMTP server refused the message for good (5yz)
	DLQKindGaveUp   = "gave-up"  // the SMTP server kept deferring it (4yz) for every allowed attempt
)

// DLQHeaders are the header names a dead-lettering adds, which a replay
// strips again.
var DLQHeaders = []string{
	HeaderDLQError, HeaderDLQKind, HeaderDLQAttempts, HeaderDLQTopic,
	HeaderDLQPartition, HeaderDLQOffset, HeaderDLQAt, HeaderReplayedFrom,
}
