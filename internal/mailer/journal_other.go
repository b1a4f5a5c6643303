//go:build !unix

package mailer

import (
	"errors"
	"time"
)

// Without flock, no journal: a send is durable once its log write commits.
type sentJournal struct{}

type journalFile struct{}

type journalEntry struct {
	EventID, EventType, Topic string
	Partition                 int32
	Offset                    int64
	At                        time.Time
}

func openJournal(string) (*sentJournal, error)                { return nil, nil }
func (j *sentJournal) append(Delivery) (*journalFile, error)  { return nil, errors.ErrUnsupported }
func (j *sentJournal) written(*journalFile)                   {}
func (j *sentJournal) close()                                 {}
func orphanedJournals(string) ([]journalEntry, func(), error) { return nil, func() {}, nil }
