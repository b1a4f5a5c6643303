package auth

import (
	"context"
	"crypto/hmac"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"kinoteka/internal/apperr"
	"kinoteka/internal/events"
	"kinoteka/internal/outbox"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/tokens"
)

// Self-service: the account's person changes their name, password and
// address, sees and ends their sessions, and deletes the account; an admin
// lists accounts and grants roles. Every route takes the access token; the
// answers tell nothing about other people's accounts (an address change
// answers 202 whether or not the new address has an account, and the code
// goes to that address, so only its owner learns more).
//
// Changes other services follow (the display name, the deletion) go to the
// users topic through the outbox, in the same transaction as the change;
// the user's version orders them.

var (
	errWrongPassword = apperr.New(apperr.Forbidden, "wrong_password", "the password is wrong")
	errNoSuchSession = apperr.New(apperr.NotFound, "no_such_session", "you have no session with this id")
	errEmailTaken    = apperr.New(apperr.Conflict, "email_taken", "another account has this address now; nothing changed")
	errNotAdmin      = apperr.New(apperr.Forbidden, "forbidden", "this route is for administrators")
	errNoSuchUser    = apperr.New(apperr.NotFound, "no_such_user", "there is no account with this id")
	errChangeExpired = apperr.New(apperr.Invalid, "code_expired", "the code has expired; ask for a new one with POST /v1/auth/email/change")
	errChangeBurned  = apperr.New(apperr.Invalid, "code_attempts_exceeded", "too many wrong tries burned this code; ask for a new one with POST /v1/auth/email/change")
)

// purposeEmailChange is the code that confirms a new address.
const purposeEmailChange = "email_change"

// maxNameLen bounds a display name, in characters.
const maxNameLen = 50

// Why a family was revoked, beside store_sessions.go's.
const (
	revokedPasswordChange = "password_change"
	revokedSessionEnded   = "session_ended"
)

// The audit events of self-service.
const (
	evNameChanged          = "name_changed"
	evPasswordChanged      = "password_changed" // detail revoked_families
	evPasswordChangeFailed = "password_change_failed"
	evEmailChangeRequested = "email_change_requested"
	evEmailChanged         = "email_changed" // the new address is the record's email
	evSessionEnded         = "session_ended" // detail family
	evAccountDeleted       = "account_deleted"
)

// parseName checks a display name: trimmed, 1 to 50 characters, no control
// or bidirectional-override characters (which could make a name render as
// something else next to other text).
func parseName(s string) (string, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", "is required"
	case !utf8.ValidString(s):
		return "", "must be UTF-8 text"
	case utf8.RuneCountInString(s) > maxNameLen:
		return "", "must be at most 50 characters"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return "", "must not contain control characters"
		}
	}
	return s, ""
}

// parseOptionalName is parseName for register, where no name is fine.
func parseOptionalName(s string) (string, string) {
	if strings.TrimSpace(s) == "" {
		return "", ""
	}
	return parseName(s)
}

// ip is the client's address as text, "" when unknown.
func (c clientInfo) ip() string {
	if !c.IP.IsValid() {
		return ""
	}
	return c.IP.String()
}

// caller is the account an access token speaks for and the token's claims.
func (s *service) caller(ctx context.Context, accessToken string) (User, tokens.Principal, error) {
	p, err := s.verifier.Verify(ctx, accessToken)
	if err != nil {
		return User{}, tokens.Principal{}, err
	}
	if _, err := uuid.Parse(p.UserID); err != nil {
		return User{}, tokens.Principal{}, errInvalidToken
	}
	u, err := s.store.UserByID(ctx, p.UserID)
	if apperr.Is(err, apperr.NotFound) {
		return User{}, tokens.Principal{}, errInvalidToken // signed for an account that is gone
	}
	if err != nil {
		return User{}, tokens.Principal{}, err
	}
	u.Roles = s.roles(u)
	return u, p, nil
}

// checkOwnPassword checks the caller's password before a change that needs
// it, throttled like a login (it is a password guess all the same).
func (s *service) checkOwnPassword(ctx context.Context, u User, password, field, action string) error {
	if password == "" {
		return apperr.Validation(apperr.FieldError{Field: field, Message: "is required"})
	}
	if len(password) > 4*maxPasswordLen {
		return apperr.Validation(apperr.FieldError{Field: field, Message: "must be at most 128 characters"})
	}
	if err := s.throttle(ctx, ActLogin, u.Email); err != nil {
		return err
	}
	ok, err := checkPassword(password, u.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		s.audit(ctx, auditEvent{Event: evPasswordChangeFailed, UserID: u.ID, Detail: map[string]string{"action": action}})
		return errWrongPassword
	}
	return nil
}

// publishUser writes u's user.updated event to the outbox in tx.
func (s *service) publishUser(ctx context.Context, tx *Tx, u User, now time.Time) error {
	return s.enqueueUser(ctx, tx, events.UserUpdated{ID: u.ID, Name: events.DisplayName(u.ID, u.Name), Version: u.Version}, false, now)
}

func (s *service) enqueueUser(ctx context.Context, tx *Tx, data events.UserUpdated, deleted bool, now time.Time) error {
	eventID, err := s.newID()
	if err != nil {
		return err
	}
	env, err := events.NewUserEvent(eventID, now, data, deleted)
	if err != nil {
		return err
	}
	payload, err := env.Encode()
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx.SQL(), outbox.Message{
		EventID: eventID, Topic: s.cfg.UsersTopic, Key: data.ID, EventType: env.Type, Payload: payload, CreatedAt: now,
		Traceparent: telemetry.Traceparent(ctx),
	})
}

// enqueueMail writes a mail event of type typ to address, in u's locale, to
// the outbox in tx. code and expires are for the code mails only.
func (s *service) enqueueMail(ctx context.Context, tx *Tx, u User, typ, address, code string, expires, now time.Time) error {
	eventID, err := s.newID()
	if err != nil {
		return err
	}
	env, err := events.NewCodeMail(eventID, typ, now, events.CodeMail{Email: address, Code: code, Locale: u.Locale, ExpiresAt: expires})
	if err != nil {
		return err
	}
	payload, err := env.Encode()
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx.SQL(), outbox.Message{
		EventID: eventID, Topic: s.cfg.Topic, Key: u.ID, EventType: env.Type, Payload: payload, CreatedAt: now,
		Traceparent: telemetry.Traceparent(ctx),
	})
}

// UpdateName sets the caller's display name and tells the other services.
func (s *service) UpdateName(ctx context.Context, accessToken, name string) (User, error) {
	u, _, err := s.caller(ctx, accessToken)
	if err != nil {
		return User{}, err
	}
	name, msg := parseName(name)
	if msg != "" {
		return User{}, apperr.Validation(apperr.FieldError{Field: "name", Message: msg})
	}
	now := s.now()
	err = s.store.InTx(ctx, func(tx *Tx) error {
		if err := tx.SetName(ctx, u.ID, name, now); err != nil {
			return err
		}
		fresh, err := tx.UserByID(ctx, u.ID)
		if err != nil {
			return err
		}
		u.Name, u.Version, u.UpdatedAt = fresh.Name, fresh.Version, fresh.UpdatedAt
		return s.publishUser(ctx, tx, u, now)
	})
	if err != nil {
		return User{}, err
	}
	s.cfg.Notify()
	s.audit(ctx, auditEvent{Event: evNameChanged, UserID: u.ID})
	return u, nil
}

// ChangePassword replaces the caller's password after checking the current
// one, ends every other session (this one stays) and mails a notice.
func (s *service) ChangePassword(ctx context.Context, accessToken, current, next string) error {
	u, p, err := s.caller(ctx, accessToken)
	if err != nil {
		return err
	}
	next, msg := parseNewPassword(next, u.Email)
	if msg != "" {
		return apperr.Validation(apperr.FieldError{Field: "new_password", Message: msg})
	}
	if err := s.checkOwnPassword(ctx, u, current, "current_password", "password_change"); err != nil {
		return err
	}
	hash, err := hashPassword(next, s.cfg.Argon2, s.cfg.Rand)
	if err != nil {
		return err
	}
	now := s.now()
	var revoked int64
	err = s.store.InTx(ctx, func(tx *Tx) error {
		if err := tx.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if revoked, err = tx.RevokeOtherFamilies(ctx, u.ID, p.SessionID, revokedPasswordChange, now); err != nil {
			return err
		}
		return s.enqueueMail(ctx, tx, u, events.TypePasswordChanged, u.Email, "", time.Time{}, now)
	})
	if err != nil {
		return err
	}
	s.cfg.Notify()
	s.audit(ctx, auditEvent{Event: evPasswordChanged, UserID: u.ID, Detail: map[string]string{"revoked_families": strconv.FormatInt(revoked, 10)}})
	return nil
}

// RequestEmailChange mails a code to newEmail, after the caller's password.
// It answers the same whether or not newEmail has an account, and mails
// nothing beyond the mail limits. Unlike resend, the caller is signed in
// and the limits are their own account's, so going over one is a 429 with
// the wait: it tells nothing about newEmail, and a silent answer would leave
// the person waiting for a mail that never comes.
func (s *service) RequestEmailChange(ctx context.Context, accessToken, newEmail, password string) error {
	u, _, err := s.caller(ctx, accessToken)
	if err != nil {
		return err
	}
	addr, msg := parseEmail(newEmail)
	if msg != "" {
		return apperr.Validation(apperr.FieldError{Field: "new_email", Message: msg})
	}
	if err := s.checkOwnPassword(ctx, u, password, "password", "email_change"); err != nil {
		return err
	}
	if addr == u.Email {
		return nil
	}
	now := s.now()
	err = s.store.InTx(ctx, func(tx *Tx) error {
		recent, err := tx.RecentMailTimes(ctx, u.ID, maxMailsPerDay)
		if err != nil {
			return err
		}
		if wait := mailWait(recent, now, true); wait > 0 {
			return errThrottled(wait)
		}
		code, err := s.cfg.NewCode()
		if err != nil {
			return err
		}
		expires := now.Add(s.cfg.CodeTTL)
		err = tx.InsertTargetCode(ctx, Code{
			UserID: u.ID, Purpose: purposeEmailChange, MAC: codeMAC(s.cfg.CodeSecret, purposeEmailChange, u.ID, code),
			ExpiresAt: expires, CreatedAt: now,
		}, addr)
		if err != nil {
			return err
		}
		return s.enqueueMail(ctx, tx, u, events.TypeEmailChangeCode, addr, code, expires, now)
	})
	if err != nil {
		return err
	}
	s.cfg.Notify()
	s.audit(ctx, auditEvent{Event: evEmailChangeRequested, UserID: u.ID})
	return nil
}

// ConfirmEmailChange moves the caller's account to the address the newest
// email change code was mailed to, and mails a notice to the old address.
// The failures are those of verify's codes; email_taken (409) when another
// account took the address meanwhile.
func (s *service) ConfirmEmailChange(ctx context.Context, accessToken, code string) (User, error) {
	u, _, err := s.caller(ctx, accessToken)
	if err != nil {
		return User{}, err
	}
	code, msg := parseCode(code)
	if msg != "" {
		return User{}, apperr.Validation(apperr.FieldError{Field: "code", Message: msg})
	}
	if err := s.throttle(ctx, ActVerify, u.Email); err != nil {
		return User{}, err
	}
	now := s.now()
	c, target, err := s.store.LatestTargetCode(ctx, u.ID, purposeEmailChange)
	if apperr.Is(err, apperr.NotFound) {
		return User{}, errInvalidCode
	}
	if err != nil {
		return User{}, err
	}
	if !hmac.Equal([]byte(codeMAC(s.cfg.CodeSecret, purposeEmailChange, u.ID, code)), []byte(c.MAC)) {
		if err := s.store.AddCodeAttempt(ctx, c.ID); err != nil {
			return User{}, err
		}
		return User{}, errInvalidCode
	}
	switch {
	case !c.UsedAt.IsZero():
		return User{}, errInvalidCode
	case c.Attempts >= maxCodeAttempts:
		return User{}, errChangeBurned
	case !now.Before(c.ExpiresAt):
		return User{}, errChangeExpired
	}
	old := u.Email
	err = s.store.InTx(ctx, func(tx *Tx) error {
		ok, err := tx.ConsumeCode(ctx, c.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			return errInvalidCode
		}
		if err := tx.SetEmail(ctx, u.ID, target, now); err != nil {
			if apperr.Is(err, apperr.Conflict) {
				return errEmailTaken
			}
			return err
		}
		return s.enqueueMail(ctx, tx, u, events.TypeEmailChanged, old, "", time.Time{}, now)
	})
	if err != nil {
		return User{}, err
	}
	s.cfg.Notify()
	u.Email, u.UpdatedAt = target, now
	u.Roles = s.roles(u) // a configured admin address may have been left or reached
	s.audit(ctx, auditEvent{Event: evEmailChanged, UserID: u.ID, Email: target})
	return u, nil
}

// Session is a login (a refresh family) as its person sees it.
type Session struct {
	ID         string
	CreatedAt  time.Time // the login
	LastUsedAt time.Time // the last refresh, or the login
	UserAgent  string
	IP         string
	Current    bool // the session of the access token that asked
}

// Sessions lists the caller's live sessions, the most recently used first.
func (s *service) Sessions(ctx context.Context, accessToken string) ([]Session, error) {
	u, p, err := s.caller(ctx, accessToken)
	if err != nil {
		return nil, err
	}
	list, err := s.store.LiveSessions(ctx, u.ID, s.now())
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Current = list[i].ID == p.SessionID
	}
	return list, nil
}

// EndSession revokes one of the caller's sessions: its refresh token is
// refused from now on. Another person's session is "no such session".
func (s *service) EndSession(ctx context.Context, accessToken, id string) error {
	u, _, err := s.caller(ctx, accessToken)
	if err != nil {
		return err
	}
	if _, err := uuid.Parse(id); err != nil {
		return errNoSuchSession
	}
	n, err := s.store.RevokeUserFamily(ctx, u.ID, id, revokedSessionEnded, s.now())
	if err != nil {
		return err
	}
	if n == 0 {
		return errNoSuchSession
	}
	s.audit(ctx, auditEvent{Event: evSessionEnded, UserID: u.ID, Detail: map[string]string{"family": id}})
	return nil
}

// DeleteAccount deletes the caller's account after the password: the row
// and with it every code and session goes, the audit trail keeps its events
// and the id but loses the address, IP and user agent, the other services
// hear user.deleted, a goodbye is mailed, and the address can register again.
func (s *service) DeleteAccount(ctx context.Context, accessToken, password string) error {
	u, _, err := s.caller(ctx, accessToken)
	if err != nil {
		return err
	}
	if err := s.checkOwnPassword(ctx, u, password, "password", "delete_account"); err != nil {
		return err
	}
	now := s.now()
	err = s.store.InTx(ctx, func(tx *Tx) error {
		if err := s.enqueueUser(ctx, tx, events.UserUpdated{ID: u.ID, Version: u.Version + 1}, true, now); err != nil {
			return err
		}
		if err := s.enqueueMail(ctx, tx, u, events.TypeAccountDeleted, u.Email, "", time.Time{}, now); err != nil {
			return err
		}
		// The version is checked: a concurrent rename committed first
		// would otherwise publish a version equal to the deletion's.
		if err := tx.DeleteUser(ctx, u.ID, u.Version); err != nil {
			return err
		}
		return tx.EraseAudit(ctx, u.ID, u.Email)
	})
	if err != nil {
		return err
	}
	s.cfg.Notify()
	// Recorded without the request's IP and user agent: they would tie the
	// erased account to a person again.
	s.log.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", evAccountDeleted), slog.String("user_id", u.ID))
	if err := s.store.InsertAudit(ctx, AuditRecord{OccurredAt: now, Event: evAccountDeleted, UserID: u.ID}); err != nil {
		s.log.ErrorContext(ctx, "audit event not stored", "event", evAccountDeleted, "err", err)
	}
	return nil
}

// UserPage is one page of the admin's user list.
type UserPage struct {
	Items []User
	Next  string // the cursor of the next page; "" on the last
}

// maxUserPage is the size of a page of users.
const maxUserPage = 50

// ListUsers answers an admin's search of accounts by address or name
// (q, case-insensitive substring; "" for all), in id order, which is
// creation order (ids are UUIDv7).
func (s *service) ListUsers(ctx context.Context, accessToken, q, cursor string) (UserPage, error) {
	if _, err := s.admin(ctx, accessToken); err != nil {
		return UserPage{}, err
	}
	q = strings.ToLower(strings.TrimSpace(q))
	if len(q) > maxEmailLen {
		return UserPage{}, apperr.Validation(apperr.FieldError{Field: "q", Message: "must be at most 254 characters"})
	}
	after := uuid.Nil.String()
	if cursor != "" {
		id, err := uuid.Parse(cursor)
		if err != nil {
			return UserPage{}, apperr.Validation(apperr.FieldError{Field: "cursor", Message: "must be the next_cursor of a previous page"})
		}
		after = id.String()
	}
	users, err := s.store.SearchUsers(ctx, q, after, maxUserPage+1)
	if err != nil {
		return UserPage{}, err
	}
	var page UserPage
	if len(users) > maxUserPage {
		users = users[:maxUserPage]
		page.Next = users[maxUserPage-1].ID
	}
	for i := range users {
		users[i].Roles = s.roles(users[i])
	}
	page.Items = users
	return page, nil
}

// SetUserRole grants (grant true) or revokes a stored role of account id,
// for an admin; audited with the admin as "by". It returns the account.
func (s *service) SetUserRole(ctx context.Context, accessToken, id, role string, grant bool) (User, error) {
	admin, err := s.admin(ctx, accessToken)
	if err != nil {
		return User{}, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return User{}, errNoSuchUser
	}
	u, err := s.store.UserByID(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return User{}, errNoSuchUser
	}
	if err != nil {
		return User{}, err
	}
	if _, err := changeRole(ctx, s.store.db, u.Email, role, "admin:"+admin.ID, s.now(), grant); err != nil {
		return User{}, err
	}
	if u, err = s.store.UserByID(ctx, id); err != nil {
		return User{}, err
	}
	u.Roles = s.roles(u)
	return u, nil
}

// admin is the caller when their account holds the admin role now (not
// merely when the token said so at issue).
func (s *service) admin(ctx context.Context, accessToken string) (User, error) {
	u, _, err := s.caller(ctx, accessToken)
	if err != nil {
		return User{}, err
	}
	for _, r := range u.Roles {
		if r == RoleAdmin {
			return u, nil
		}
	}
	return User{}, errNotAdmin
}
