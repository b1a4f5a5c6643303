package auth

import (
	"context"
	"crypto"
	"crypto/hmac"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"kinoteka/internal/apperr"
	"kinoteka/internal/events"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/outbox"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/tokens"
)

// The answers a client can act on. Verify's failures are 400s (the request
// carries a bad code; 401 would ask for an Authorization header), and an
// unknown address answers exactly like a wrong code.
var (
	errInvalidCredentials = apperr.New(apperr.Unauthenticated, "invalid_credentials", "the email or password is wrong")
	errNotVerified        = apperr.New(apperr.Forbidden, "email_not_verified", "confirm your email address with the code sent to it first")
	errInvalidCode        = apperr.New(apperr.Invalid, "invalid_code", "the code is wrong, already used, or replaced by a newer one")
	errInvalidToken       = apperr.New(apperr.Unauthenticated, "invalid_token", "the access token is missing, invalid or expired")
)

// errRegisterAgain answers the right verification code with a password that
// is not the one of the registration the code was mailed for: someone else
// may have registered the address since (docs/security.md, "Pre-hijacking").
// Only the holder of the code ever sees it.
var errRegisterAgain = apperr.New(apperr.Invalid, "register_again",
	"the password is not the one this code's registration was made with; enter that password, or register again with POST /v1/auth/register to get a new code")

// codeErrors are the answers to a right code that can no longer be used;
// each says where a new code comes from.
var codeErrors = map[string]struct{ expired, burned error }{
	purposeVerify: {
		apperr.New(apperr.Invalid, "code_expired", "the code has expired; ask for a new one with POST /v1/auth/verify/resend"),
		apperr.New(apperr.Invalid, "code_attempts_exceeded", "too many wrong tries burned this code; ask for a new one with POST /v1/auth/verify/resend"),
	},
	purposeReset: {
		apperr.New(apperr.Invalid, "code_expired", "the code has expired; ask for a new one with POST /v1/auth/password/forgot"),
		apperr.New(apperr.Invalid, "code_attempts_exceeded", "too many wrong tries burned this code; ask for a new one with POST /v1/auth/password/forgot"),
	},
}

// serviceConfig is what the rules depend on: the operator's settings (a
// Config that passed Validate) and what tests replace — time, randomness,
// codes, the relay's wake-up, the throttle's store and the metrics.
type serviceConfig struct {
	Config
	Argon2  Argon2Params
	Now     func() time.Time
	Rand    io.Reader              // salts, refresh tokens, ids
	NewCode func() (string, error) // six digits; randomCode(Rand) by default
	Notify  func()                 // wakes the outbox relay after a commit
	Relay   httpapi.Check          // the outbox relay's health, for /readyz; nil: not reported
	Limiter limiter                // nil: no throttling
	Metrics *serviceMetrics        // nil: nothing counted
}

// Tokens is what a successful verification or login returns.
type Tokens struct {
	Access    string
	Refresh   string
	ExpiresIn time.Duration
}

// service holds auth's rules.
type service struct {
	store    *Store
	signer   *tokens.Signer
	verifier *tokens.Verifier
	log      *slog.Logger
	cfg      serviceConfig
	admins   []string // cfg.AdminEmails normalised
	// hashes bounds the password hashes computed at once; every hash a
	// request makes goes through it (hashPassword, checkPassword).
	hashes *hashGate
	// dummyHash is checked against when the email is unknown, so a login
	// takes as long whether or not the account exists.
	dummyHash string
	// beforeConsume, when set (by tests), runs between reading a code and
	// consuming it: the window in which parallel submissions race.
	beforeConsume func()
	// beforeRotate, likewise, runs between reading a live refresh token and
	// rotating it.
	beforeRotate func()
}

// newService returns auth's rules over store, signing with signer's key
// ring (whose issuer, audience and TTL must match cfg).
func newService(store *Store, signer *tokens.Signer, log *slog.Logger, cfg serviceConfig) (*service, error) {
	if cfg.NewCode == nil {
		cfg.NewCode = func() (string, error) { return randomCode(cfg.Rand) }
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	dummy, err := hashPassword("no account has this password", cfg.Argon2, cfg.Rand)
	if err != nil {
		return nil, err
	}
	var keys []crypto.PublicKey
	for _, jwk := range signer.JWKSet().Keys {
		pub, _, err := jwk.Key()
		if err != nil {
			return nil, err
		}
		keys = append(keys, pub)
	}
	return &service{
		store:  store,
		signer: signer,
		// /me and logout-all check tokens by exactly the rules films uses,
		// against the service's own public keys.
		verifier: tokens.NewVerifier(tokens.VerifierConfig{
			Issuer:     cfg.Issuer,
			Audience:   cfg.Audience,
			Algorithms: signer.Algorithms(),
			StaticKeys: keys,
			Now:        cfg.Now,
		}),
		log:       log,
		cfg:       cfg,
		admins:    cfg.adminEmails(),
		hashes:    newHashGate(cfg.HashConcurrency, cfg.HashWait, cfg.Metrics.hashBusy),
		dummyHash: dummy,
	}, nil
}

// hashPassword hashes a new password with the service's parameters, in a
// slot of the hash gate.
func (s *service) hashPassword(ctx context.Context, password string) (string, error) {
	release, err := s.hashes.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return hashPassword(password, s.cfg.Argon2, s.cfg.Rand)
}

// checkPassword checks password against a stored hash, in a slot of the
// hash gate.
func (s *service) checkPassword(ctx context.Context, password, hash string) (bool, error) {
	release, err := s.hashes.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return checkPassword(password, hash)
}

func (s *service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

func (s *service) newID() (string, error) {
	id, err := uuid.NewV7FromReader(s.cfg.Rand)
	return id.String(), err
}

// Register creates a pending account and sends it a code, answering the same
// way whatever the address's state, so no one learns which addresses have
// accounts:
//   - new address: user (pending), code MAC and the mail event are written in
//     one transaction;
//   - pending address: the newest registration's password and locale replace
//     the old ones and a fresh code supersedes the old one — unless the
//     address had its fill of mail (mailAllowed), in which case nothing
//     changes. Verify then takes the code together with the password, and
//     activates only if it is the pending one: whoever registered last, the
//     account gets the password of the person who holds the code
//     (docs/security.md, "Pre-hijacking");
//   - verified address: nothing happens (the password is hashed all the same,
//     so the answer takes about as long).
func (s *service) Register(ctx context.Context, email, password, locale string) error {
	return s.RegisterNamed(ctx, email, password, locale, "")
}

// RegisterNamed is Register with a display name ("" for none: people then
// see events.DisplayName's default). A pending account's name is replaced
// like its password.
func (s *service) RegisterNamed(ctx context.Context, email, password, locale, name string) error {
	var bad fieldErrors
	name, msg := parseOptionalName(name)
	if msg != "" {
		bad.add("name", msg)
	}
	email, msg = parseEmail(email)
	if msg != "" {
		bad.add("email", msg)
	}
	password, msg = parseNewPassword(password, email)
	if msg != "" {
		bad.add("password", msg)
	}
	locale, msg = parseLocale(locale)
	if msg != "" {
		bad.add("locale", msg)
	}
	if err := bad.err(); err != nil {
		return err
	}
	if err := s.throttle(ctx, ActRegister, email); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	newID, err := s.newID()
	if err != nil {
		return err
	}
	now := s.now()
	var (
		issued  bool
		outcome string
		userID  string
	)
	err = s.store.InTx(ctx, func(tx *Tx) error {
		issued, outcome = false, ""
		u, err := tx.UserByEmail(ctx, email)
		switch {
		case apperr.Is(err, apperr.NotFound):
			u = User{
				ID: newID, Email: email, PasswordHash: hash, Status: StatusPending, Locale: locale,
				Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now, Name: name,
			}
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			outcome = "created"
		case err != nil:
			return err
		case u.Verified():
			userID, outcome = u.ID, "ignored_verified"
			return nil
		default:
			if ok, err := s.mailAllowed(ctx, tx, u.ID, now, false); err != nil || !ok {
				userID, outcome = u.ID, "ignored_mail_limit"
				return err
			}
			if err := tx.UpdatePending(ctx, u.ID, hash, locale, now); apperr.Is(err, apperr.NotFound) {
				// Verified since it was read (PostgreSQL's READ COMMITTED):
				// as for any verified address, nothing happens.
				userID, outcome = u.ID, "ignored_verified"
				return nil
			} else if err != nil {
				return err
			}
			if err := tx.SetPendingName(ctx, u.ID, name); err != nil {
				return err
			}
			u.Locale, outcome = locale, "updated"
		}
		issued, userID = true, u.ID
		return s.issueCode(ctx, tx, u, purposeVerify, now)
	})
	if apperr.Is(err, apperr.Conflict) {
		// A concurrent registration of the same new address committed
		// first and sent its code; this one has nothing to add.
		return nil
	}
	if err != nil {
		return err
	}
	if issued {
		s.cfg.Notify()
	}
	s.audit(ctx, auditEvent{Event: evRegistered, UserID: userID, Email: email, Detail: map[string]string{"outcome": outcome}})
	return nil
}

// Limits on the mail one address receives, whatever asks for it (register,
// resend, forgot): with maxCodeAttempts they also cap code guessing.
const (
	mailGap        = time.Minute // resend and forgot: at most one mail a minute
	maxMailsPerDay = 10
)

// mailAllowed reports whether another code may be mailed to userID at now:
// fewer than maxCodesPerHour in the last hour and maxMailsPerDay in the last
// day, and, when gap is set, none in the last minute.
func (s *service) mailAllowed(ctx context.Context, tx *Tx, userID string, now time.Time, gap bool) (bool, error) {
	recent, err := tx.RecentMailTimes(ctx, userID, maxMailsPerDay)
	if err != nil {
		return false, err
	}
	return countSince(recent, now.Add(-time.Hour)) < maxCodesPerHour &&
		countSince(recent, now.Add(-24*time.Hour)) < maxMailsPerDay &&
		(!gap || countSince(recent, now.Add(-mailGap)) == 0), nil
}

// mailWait is how long until mailAllowed would say yes, given the same
// recent mail times: 0 when it already does.
func mailWait(recent []time.Time, now time.Time, gap bool) time.Duration {
	var wait time.Duration
	for _, w := range []struct {
		window time.Duration
		max    int
	}{{time.Hour, maxCodesPerHour}, {24 * time.Hour, maxMailsPerDay}, {mailGap, 1}} {
		if w.window == mailGap && !gap {
			continue
		}
		var in []time.Time
		for _, t := range recent {
			if t.After(now.Add(-w.window)) {
				in = append(in, t)
			}
		}
		if len(in) < w.max {
			continue
		}
		// The window opens again when enough of its mails have aged out:
		// the (len-max+1)-th oldest.
		slices.SortFunc(in, time.Time.Compare)
		wait = max(wait, in[len(in)-w.max].Add(w.window).Sub(now))
	}
	return wait
}

// countSince counts the times strictly after since.
func countSince(times []time.Time, since time.Time) int {
	n := 0
	for _, t := range times {
		if t.After(since) {
			n++
		}
	}
	return n
}

// mailTypes are the events that carry each purpose's code.
var mailTypes = map[string]string{
	purposeVerify: events.TypeVerificationCode,
	purposeReset:  events.TypePasswordResetCode,
}

// issueCode stores a fresh code's MAC for purpose and, in the same
// transaction, the outbox event that mails the code. The newest code of a
// purpose is the only live one, so this replaces any earlier code.
func (s *service) issueCode(ctx context.Context, tx *Tx, u User, purpose string, now time.Time) error {
	code, err := s.cfg.NewCode()
	if err != nil {
		return err
	}
	expires := now.Add(s.cfg.CodeTTL)
	err = tx.InsertCode(ctx, Code{
		UserID: u.ID, Purpose: purpose, MAC: codeMAC(s.cfg.CodeSecret, purpose, u.ID, code),
		ExpiresAt: expires, CreatedAt: now,
	})
	if err != nil {
		return err
	}
	eventID, err := s.newID()
	if err != nil {
		return err
	}
	env, err := events.NewCodeMail(eventID, mailTypes[purpose], now,
		events.CodeMail{Email: u.Email, Code: code, Locale: u.Locale, ExpiresAt: expires})
	if err != nil {
		return err
	}
	payload, err := env.Encode()
	if err != nil {
		return err
	}
	// The traceparent of the request lets the relay's publish, and the
	// mailer's send, join the request's trace.
	return outbox.Enqueue(ctx, tx.SQL(), outbox.Message{
		EventID: eventID, Topic: s.cfg.Topic, Key: u.ID, EventType: env.Type, Payload: payload, CreatedAt: now,
		Traceparent: telemetry.Traceparent(ctx),
	})
}

// checkCode finds the account of email and checks code against its newest
// code for purpose, without consuming it. The failures, all 400:
//   - invalid_code: wrong, already used or superseded code, or no such
//     account (so the answer does not tell whether the address is known);
//     a wrong code counts as one of maxCodeAttempts tries;
//   - code_attempts_exceeded: the right code, but burned by wrong tries;
//   - code_expired: the right code, too late.
//
// The last two are told only to someone holding the right code, so they
// leak nothing to a guesser. A wrong code costs the same work whatever the
// address — unknown, without a live code, or with one: the same one-row
// look-up of the same shape (LatestCodeByEmail), the same MAC, and one
// transaction that counts the try (on no row when there is no code) and
// audits it (rejectCode) — so its timing does not tell either.
func (s *service) checkCode(ctx context.Context, email, purpose, code string, now time.Time) (User, Code, error) {
	c, err := s.store.LatestCodeByEmail(ctx, email, purpose)
	if err != nil {
		return User{}, Code{}, err
	}
	// For an unknown address or no code the MAC is computed all the same,
	// and matches nothing (c.MAC is noMAC).
	if !hmac.Equal([]byte(codeMAC(s.cfg.CodeSecret, purpose, c.UserID, code)), []byte(c.MAC)) {
		reason := "wrong_code"
		switch {
		case c.UserID == noUserID:
			reason = "unknown_email"
		case c.ID == 0:
			reason = "no_code"
		}
		// With no code, c.ID is 0: the try is counted against no row.
		if err := s.rejectCode(ctx, c.ID, email, purpose, reason); err != nil {
			return User{}, Code{}, err
		}
		return User{}, Code{}, errInvalidCode
	}
	switch {
	case !c.UsedAt.IsZero():
		return User{}, Code{}, errInvalidCode
	case c.Attempts >= maxCodeAttempts:
		return User{}, Code{}, codeErrors[purpose].burned
	case !now.Before(c.ExpiresAt):
		return User{}, Code{}, codeErrors[purpose].expired
	}
	// Only the holder of the right code gets this far: reading the whole
	// account now tells no one anything.
	u, err := s.store.UserByID(ctx, c.UserID)
	if apperr.Is(err, apperr.NotFound) {
		return User{}, Code{}, errInvalidCode // the account went since the look-up
	} else if err != nil {
		return User{}, Code{}, err
	}
	if s.beforeConsume != nil {
		s.beforeConsume()
	}
	return u, c, nil
}

// rejectCode counts a refused code submission as one wrong try against
// codeID (0: there is no live code, and the statement changes no row) and
// audits it, in one transaction: every refusal commits once, whatever the
// address. The audit row names the address only, never the account, so it
// is the same row for every address. It shares the transaction, so, unlike
// other events, a failure to write it fails the request (as the count's
// would).
func (s *service) rejectCode(ctx context.Context, codeID int64, email, purpose, reason string) error {
	rec := s.auditRecord(ctx, auditEvent{Event: evCodeRejected, Email: email,
		Detail: map[string]string{"purpose": purpose, "reason": reason}})
	return s.store.InTx(ctx, func(tx *Tx) error {
		if err := tx.AddCodeAttempt(ctx, codeID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, rec)
	})
}

// parseEmailAndCode checks the two fields every code submission has.
func parseEmailAndCode(email, code string) (string, string, fieldErrors) {
	var bad fieldErrors
	email, msg := parseEmail(email)
	if msg != "" {
		bad.add("email", msg)
	}
	code, msg = parseCode(code)
	if msg != "" {
		bad.add("code", msg)
	}
	return email, code, bad
}

// parseGivenPassword checks a password that is compared, not stored (login,
// verify): present, and short enough to bound the hashing work — no stored
// password is longer (maxPasswordLen characters of up to 4 bytes).
func parseGivenPassword(password string) string {
	switch {
	case password == "":
		return "is required"
	case len(password) > 4*maxPasswordLen:
		return "must be at most 128 characters"
	}
	return ""
}

// Verify proves the address of a pending account with the newest code
// mailed to it and the password it was registered with, activates the
// account and logs it in, starting a refresh family. See checkCode for the
// code's failures; a password that is not the pending one is 400
// register_again (counted as a wrong try): only a password chosen by
// whoever holds the code can become the account's. The activation is
// conditional on the password hash still being the one checked, so a
// registration that replaces it in the meantime makes this one fail
// (invalid_code: its code is superseded) instead of activating the
// newcomer's password.
func (s *service) Verify(ctx context.Context, email, code, password string) (Tokens, error) {
	email, code, bad := parseEmailAndCode(email, code)
	if msg := parseGivenPassword(password); msg != "" {
		bad.add("password", msg)
	}
	if err := bad.err(); err != nil {
		return Tokens{}, err
	}
	if err := s.throttle(ctx, ActVerify, email); err != nil {
		return Tokens{}, err
	}
	now := s.now()
	u, c, err := s.checkCode(ctx, email, purposeVerify, code, now)
	if err != nil {
		return Tokens{}, err
	}
	ok, err := s.checkPassword(ctx, password, u.PasswordHash)
	if err != nil {
		return Tokens{}, err
	}
	if !ok {
		if err := s.rejectCode(ctx, c.ID, u.Email, purposeVerify, "password_mismatch"); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, errRegisterAgain
	}
	var refresh, family string
	err = s.store.InTx(ctx, func(tx *Tx) error {
		// The conditional update is what makes the code single-use: of
		// parallel submissions only one changes the row.
		ok, err := tx.ConsumeCode(ctx, c.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			return errInvalidCode
		}
		ok, err = tx.ActivateWithHash(ctx, u.ID, u.PasswordHash, now)
		if err != nil {
			return err
		}
		if !ok {
			return errInvalidCode // a newer registration replaced the password and the code
		}
		if !u.Verified() { // the account is real now: others may show its name
			if err := s.publishUser(ctx, tx, u, now); err != nil {
				return err
			}
		}
		refresh, family, err = s.newFamily(ctx, tx.queries, u.ID, now)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	if !u.Verified() {
		u.Status, u.VerifiedAt = StatusActive, now
	}
	s.audit(ctx, auditEvent{Event: evVerified, UserID: u.ID, Email: u.Email, Detail: map[string]string{"family": family}})
	return s.tokens(u, refresh, family)
}

// Login checks an email and password. Any wrong pair is 401
// invalid_credentials, taking as long for an unknown address as for a known
// one; email_not_verified (403) is told only after the right password. A
// success starts a new refresh family (one per device or app).
func (s *service) Login(ctx context.Context, email, password string) (Tokens, error) {
	var bad fieldErrors
	email, msg := parseEmail(email)
	if msg != "" {
		bad.add("email", msg)
	}
	if msg := parseGivenPassword(password); msg != "" {
		bad.add("password", msg)
	}
	if err := bad.err(); err != nil {
		return Tokens{}, err
	}
	if err := s.throttle(ctx, ActLogin, email); err != nil {
		return Tokens{}, err
	}
	failed := func(userID, reason string) {
		s.cfg.Metrics.loginFailed(reason)
		s.audit(ctx, auditEvent{Event: evLoginFailed, UserID: userID, Email: email, Detail: map[string]string{"reason": reason}})
	}
	u, err := s.store.UserByEmail(ctx, email)
	if apperr.Is(err, apperr.NotFound) {
		if _, err := s.checkPassword(ctx, password, s.dummyHash); err != nil {
			return Tokens{}, err // busy: the same answer as for a known address
		}
		failed("", "unknown_email")
		return Tokens{}, errInvalidCredentials
	}
	if err != nil {
		return Tokens{}, err
	}
	ok, err := s.checkPassword(ctx, password, u.PasswordHash)
	if err != nil {
		return Tokens{}, err
	}
	if !ok {
		failed(u.ID, "wrong_password")
		return Tokens{}, errInvalidCredentials
	}
	if !u.Verified() {
		failed(u.ID, "not_verified")
		return Tokens{}, errNotVerified
	}
	now := s.now()
	if needsRehash(u.PasswordHash, s.cfg.Argon2) {
		s.rehash(ctx, u.ID, password, now)
	}
	refresh, family, err := s.newFamily(ctx, s.store.queries, u.ID, now)
	if err != nil {
		return Tokens{}, err
	}
	s.audit(ctx, auditEvent{Event: evLoginOK, UserID: u.ID, Email: u.Email, Detail: map[string]string{"family": family}})
	return s.tokens(u, refresh, family)
}

// rehash upgrades a hash made with weaker parameters; a failure costs
// nothing but the upgrade, so it is logged and the login goes on.
func (s *service) rehash(ctx context.Context, userID, password string, now time.Time) {
	hash, err := s.hashPassword(ctx, password)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, userID, hash, now)
	}
	if err != nil {
		s.log.WarnContext(ctx, "password re-hash failed", "user_id", userID, "err", err)
	}
}

// Me returns the account an access token speaks for, with its effective roles.
func (s *service) Me(ctx context.Context, accessToken string) (User, error) {
	p, err := s.verifier.Verify(ctx, accessToken)
	if err != nil {
		return User{}, err
	}
	if _, err := uuid.Parse(p.UserID); err != nil {
		return User{}, errInvalidToken
	}
	u, err := s.store.UserByID(ctx, p.UserID)
	if apperr.Is(err, apperr.NotFound) {
		return User{}, errInvalidToken // signed for an account that is gone
	}
	if err != nil {
		return User{}, err
	}
	u.Roles = s.roles(u)
	return u, nil
}

// JWKSet is the public key set that verifies this service's tokens.
func (s *service) JWKSet() tokens.JWKSet { return s.signer.JWKSet() }

// tokens signs an access token for u in session (refresh family) family
// and pairs it with a refresh token.
func (s *service) tokens(u User, refresh, family string) (Tokens, error) {
	access, err := s.signer.Issue(tokens.Claims{Subject: u.ID, Email: u.Email, EmailVerified: u.Verified(), Roles: s.roles(u), SessionID: family})
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: access, Refresh: refresh, ExpiresIn: s.signer.TTL()}, nil
}
