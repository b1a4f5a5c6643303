package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"kinoteka/internal/apperr"
	"kinoteka/internal/events"
	"kinoteka/internal/outbox"
	"kinoteka/internal/tokens"
)

// refreshTTL is how long a refresh token lives.
const refreshTTL = 30 * 24 * time.Hour

// The answers a client can act on. Verify's failures are 400s (the request
// carries a bad code; 401 would ask for an Authorization header), and an
// unknown address answers exactly like a wrong code.
var (
	errInvalidCredentials = apperr.New(apperr.Unauthenticated, "invalid_credentials", "the email or password is wrong")
	errNotVerified        = apperr.New(apperr.Forbidden, "email_not_verified", "confirm your email address with the code sent to it first")
	errInvalidCode        = apperr.New(apperr.Invalid, "invalid_code", "the code is wrong, already used, or replaced by a newer one")
	errCodeExpired        = apperr.New(apperr.Invalid, "code_expired", "the code has expired; register again to get a new one")
	errCodeBurned         = apperr.New(apperr.Invalid, "code_attempts_exceeded", "too many wrong tries burned this code; register again to get a new one")
	errInvalidToken       = apperr.New(apperr.Unauthenticated, "invalid_token", "the access token is missing, invalid or expired")
)

// serviceConfig is what the rules depend on; time and randomness are
// injected so that tests control them.
type serviceConfig struct {
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	CodeSecret []byte
	CodeTTL    time.Duration
	Topic      string
	Argon2     Argon2Params
	Now        func() time.Time
	Rand       io.Reader              // salts, refresh tokens, ids
	NewCode    func() (string, error) // six digits; randomCode(Rand) by default
	Notify     func()                 // wakes the outbox relay after a commit
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
	// dummyHash is checked against when the email is unknown, so a login
	// takes as long whether or not the account exists.
	dummyHash string
	// beforeConsume, when set (by tests), runs between reading a code and
	// consuming it: the window in which parallel submissions race.
	beforeConsume func()
}

func newService(store *Store, key *rsa.PrivateKey, log *slog.Logger, cfg serviceConfig) (*service, error) {
	if cfg.NewCode == nil {
		cfg.NewCode = func() (string, error) { return randomCode(cfg.Rand) }
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	signer := tokens.NewSigner(key, cfg.Issuer, cfg.Audience, cfg.AccessTTL, cfg.Now)
	set, err := json.Marshal(signer.JWKSet())
	if err != nil {
		return nil, err
	}
	dummy, err := hashPassword("no account has this password", cfg.Argon2, cfg.Rand)
	if err != nil {
		return nil, err
	}
	return &service{
		store:  store,
		signer: signer,
		// /me checks tokens by exactly the rules films uses, against the
		// service's own key set served in-process rather than over HTTP.
		verifier: tokens.NewVerifier(tokens.VerifierConfig{
			JWKSURL:  cfg.Issuer + "/.well-known/jwks.json",
			Issuer:   cfg.Issuer,
			Audience: cfg.Audience,
			Client:   &http.Client{Transport: staticJSON(set)},
			Now:      cfg.Now,
		}),
		log:       log,
		cfg:       cfg,
		dummyHash: dummy,
	}, nil
}

// staticJSON is an http.RoundTripper that answers every request with one
// JSON document.
type staticJSON []byte

func (b staticJSON) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Request: r,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
	}, nil
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
//     the old ones and a fresh code supersedes the old one (so an attacker who
//     registered someone's address first does not keep a password on the
//     account the owner then verifies) — unless maxCodesPerHour codes went out
//     in the last hour, in which case nothing changes;
//   - verified address: nothing happens (the password is hashed all the same,
//     so the answer takes about as long).
func (s *service) Register(ctx context.Context, email, password, locale string) error {
	var bad fieldErrors
	email, msg := parseEmail(email)
	if msg != "" {
		bad.add("email", msg)
	}
	password, msg = parseNewPassword(password)
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
	hash, err := hashPassword(password, s.cfg.Argon2, s.cfg.Rand)
	if err != nil {
		return err
	}
	newID, err := s.newID()
	if err != nil {
		return err
	}
	now := s.now()
	var issued bool
	err = s.store.InTx(ctx, func(tx *Tx) error {
		issued = false
		u, err := tx.UserByEmail(ctx, email)
		switch {
		case apperr.Is(err, apperr.NotFound):
			u = User{
				ID: newID, Email: email, PasswordHash: hash, Status: StatusPending, Locale: locale,
				Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now,
			}
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
		case err != nil:
			return err
		case u.Verified():
			return nil
		default:
			recent, err := tx.RecentCodeTimes(ctx, u.ID, purposeVerify, maxCodesPerHour)
			if err != nil {
				return err
			}
			if countSince(recent, now.Add(-time.Hour)) >= maxCodesPerHour {
				return nil
			}
			if err := tx.UpdatePending(ctx, u.ID, hash, locale, now); err != nil {
				return err
			}
			u.Locale = locale
		}
		issued = true
		return s.issueCode(ctx, tx, u, now)
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
	return nil
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

// issueCode stores a fresh verification code's MAC and, in the same
// transaction, the outbox event that mails the code.
func (s *service) issueCode(ctx context.Context, tx *Tx, u User, now time.Time) error {
	code, err := s.cfg.NewCode()
	if err != nil {
		return err
	}
	expires := now.Add(s.cfg.CodeTTL)
	err = tx.InsertCode(ctx, Code{
		UserID: u.ID, Purpose: purposeVerify, MAC: codeMAC(s.cfg.CodeSecret, purposeVerify, u.ID, code),
		ExpiresAt: expires, CreatedAt: now,
	})
	if err != nil {
		return err
	}
	eventID, err := s.newID()
	if err != nil {
		return err
	}
	env, err := events.NewCodeMail(eventID, events.TypeVerificationCode, now,
		events.CodeMail{Email: u.Email, Code: code, Locale: u.Locale, ExpiresAt: expires})
	if err != nil {
		return err
	}
	payload, err := env.Encode()
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx.SQL(), outbox.Message{
		EventID: eventID, Topic: s.cfg.Topic, Key: u.ID, EventType: env.Type, Payload: payload, CreatedAt: now,
	})
}

// Verify consumes the newest verification code of the account, activates it
// and logs it in. The failures, all 400:
//   - invalid_code: wrong, already used or superseded code, or no such
//     account (so the answer does not tell whether the address is known);
//     a wrong code counts as one of maxCodeAttempts tries;
//   - code_attempts_exceeded: the right code, but burned by wrong tries;
//   - code_expired: the right code, too late.
//
// The last two are told only to someone holding the right code, so they
// leak nothing to a guesser.
func (s *service) Verify(ctx context.Context, email, code string) (Tokens, error) {
	var bad fieldErrors
	email, msg := parseEmail(email)
	if msg != "" {
		bad.add("email", msg)
	}
	code, msg = parseCode(code)
	if msg != "" {
		bad.add("code", msg)
	}
	if err := bad.err(); err != nil {
		return Tokens{}, err
	}
	now := s.now()
	u, err := s.store.UserByEmail(ctx, email)
	if apperr.Is(err, apperr.NotFound) {
		return Tokens{}, errInvalidCode
	}
	if err != nil {
		return Tokens{}, err
	}
	c, err := s.store.LatestCode(ctx, u.ID, purposeVerify)
	if apperr.Is(err, apperr.NotFound) {
		return Tokens{}, errInvalidCode
	}
	if err != nil {
		return Tokens{}, err
	}
	if !hmac.Equal([]byte(codeMAC(s.cfg.CodeSecret, purposeVerify, u.ID, code)), []byte(c.MAC)) {
		if err := s.store.AddCodeAttempt(ctx, c.ID); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, errInvalidCode
	}
	switch {
	case !c.UsedAt.IsZero():
		return Tokens{}, errInvalidCode
	case c.Attempts >= maxCodeAttempts:
		return Tokens{}, errCodeBurned
	case !now.Before(c.ExpiresAt):
		return Tokens{}, errCodeExpired
	}
	if s.beforeConsume != nil {
		s.beforeConsume()
	}
	var refresh string
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
		if err := tx.Activate(ctx, u.ID, now); err != nil {
			return err
		}
		refresh, err = s.newRefreshToken(ctx, tx.queries, u.ID, now)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	u.Status, u.VerifiedAt = StatusActive, now
	return s.tokens(u, refresh)
}

// Login checks an email and password. Any wrong pair is 401
// invalid_credentials, taking as long for an unknown address as for a known
// one; email_not_verified (403) is told only after the right password.
func (s *service) Login(ctx context.Context, email, password string) (Tokens, error) {
	var bad fieldErrors
	email, msg := parseEmail(email)
	if msg != "" {
		bad.add("email", msg)
	}
	if password == "" {
		bad.add("password", "is required")
	}
	if err := bad.err(); err != nil {
		return Tokens{}, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if apperr.Is(err, apperr.NotFound) {
		_, _ = checkPassword(password, s.dummyHash)
		return Tokens{}, errInvalidCredentials
	}
	if err != nil {
		return Tokens{}, err
	}
	ok, err := checkPassword(password, u.PasswordHash)
	if err != nil {
		return Tokens{}, err
	}
	if !ok {
		return Tokens{}, errInvalidCredentials
	}
	if !u.Verified() {
		return Tokens{}, errNotVerified
	}
	now := s.now()
	if needsRehash(u.PasswordHash, s.cfg.Argon2) {
		s.rehash(ctx, u.ID, password, now)
	}
	refresh, err := s.newRefreshToken(ctx, s.store.queries, u.ID, now)
	if err != nil {
		return Tokens{}, err
	}
	return s.tokens(u, refresh)
}

// rehash upgrades a hash made with weaker parameters; a failure costs
// nothing but the upgrade, so it is logged and the login goes on.
func (s *service) rehash(ctx context.Context, userID, password string, now time.Time) {
	hash, err := hashPassword(password, s.cfg.Argon2, s.cfg.Rand)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, userID, hash, now)
	}
	if err != nil {
		s.log.WarnContext(ctx, "password re-hash failed", "user_id", userID, "err", err)
	}
}

// Me returns the account an access token speaks for.
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
	return u, err
}

// JWKSet is the public key set that verifies this service's tokens.
func (s *service) JWKSet() tokens.JWKSet { return s.signer.JWKSet() }

// tokens signs an access token for u and pairs it with a refresh token.
func (s *service) tokens(u User, refresh string) (Tokens, error) {
	access, err := s.signer.Issue(tokens.Claims{Subject: u.ID, Email: u.Email, EmailVerified: u.Verified(), Roles: u.Roles})
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: access, Refresh: refresh, ExpiresIn: s.signer.TTL()}, nil
}

// newRefreshToken makes 256 random bits, stores their SHA-256 under a new
// token family and returns the token (base64url) for the client.
func (s *service) newRefreshToken(ctx context.Context, q queries, userID string, now time.Time) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	family, err := s.newID()
	if err != nil {
		return "", err
	}
	err = q.InsertRefreshToken(ctx, RefreshToken{
		Hash: hashRefreshToken(token), UserID: userID, FamilyID: family, ExpiresAt: now.Add(refreshTTL), CreatedAt: now,
	})
	return token, err
}

func hashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
