package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"time"

	"kinoteka/internal/apperr"
)

// Sessions are refresh token families (RFC 9700 §4.14.2): a login starts a
// family, every refresh replaces its one live token by a new one, and a
// rotated token that comes back means two parties hold the family — the
// client and a thief, in some order — so the family is revoked. Only that
// family: the user's other devices stay logged in.
//
// The grace window. A client whose refresh answer was lost (a dropped
// connection, a mobile app killed mid-request) sends the same token again.
// Within RefreshGrace of the rotation, and while the successor has not been
// used, it gets the very pair it missed instead of a revoked session. To
// give the same pair the server must know the successor's plaintext, which
// it otherwise never stores; so at rotation the pair is sealed with AES-256-
// GCM under a key derived (HKDF-SHA-256) from the plaintext of the token
// being rotated. The database holds only that token's hash, so neither a
// copy of the database nor anyone without the rotated token can open the
// box; and whoever holds the rotated token could have refreshed with it
// anyway. The box is dropped when the successor is rotated or the family
// revoked. Parallel refreshes of one token are the same case: one wins the
// conditional update, the others find it rotated a moment ago and answer
// with the winner's pair, so the family continues as one chain. A grace of
// zero or less turns the repeat answer off: every repeat is a reuse.

var errInvalidRefresh = apperr.New(apperr.Unauthenticated, "invalid_refresh_token",
	"the refresh token is invalid, expired or revoked; log in again")

// refreshTokenLen is the length of a refresh token: 32 random bytes, base64url.
const refreshTokenLen = 43

// parseRefreshToken checks a refresh token's shape; anything else is simply
// not a token this service issued.
func parseRefreshToken(s string) (string, bool) {
	if len(s) != refreshTokenLen {
		return "", false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

func hashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// randomToken returns 256 random bits, base64url.
func (s *service) randomToken() (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// newFamily stores the first token of a new family for userID and returns
// the token and the family id.
func (s *service) newFamily(ctx context.Context, q queries, userID string, now time.Time) (string, string, error) {
	token, err := s.randomToken()
	if err != nil {
		return "", "", err
	}
	family, err := s.newID()
	if err != nil {
		return "", "", err
	}
	c := clientOf(ctx)
	err = q.InsertRefreshToken(ctx, RefreshToken{
		Hash: hashRefreshToken(token), UserID: userID, FamilyID: family, ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now,
		UserAgent: c.UserAgent, IP: c.ip(),
	})
	return token, family, err
}

// Refresh exchanges a live refresh token for a new access token and a new
// refresh token of the same family (see the comment at the top of this file
// for reuse and the grace window). Every failure is 401 invalid_refresh_token.
func (s *service) Refresh(ctx context.Context, token string) (Tokens, error) {
	token, ok := parseRefreshToken(token)
	if !ok {
		return Tokens{}, errInvalidRefresh
	}
	if err := s.throttle(ctx, ActRefresh, ""); err != nil {
		return Tokens{}, err
	}
	hash := hashRefreshToken(token)
	old, err := s.store.RefreshTokenByHash(ctx, hash)
	if apperr.Is(err, apperr.NotFound) {
		return Tokens{}, errInvalidRefresh
	}
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	if !old.RevokedAt.IsZero() || !now.Before(old.ExpiresAt) {
		return Tokens{}, errInvalidRefresh
	}
	if err := s.throttle(ctx, ActRefresh, old.UserID); err != nil {
		return Tokens{}, err
	}
	if old.UsedAt.IsZero() {
		if s.beforeRotate != nil {
			s.beforeRotate()
		}
		t, rotated, err := s.rotate(ctx, token, old, now)
		if err != nil || rotated {
			return t, err
		}
		// Another request rotated it first: answer as to a repeat.
		if old, err = s.store.RefreshTokenByHash(ctx, hash); err != nil {
			return Tokens{}, err
		}
	}
	return s.repeatOrReuse(ctx, token, old, now)
}

// rotate replaces the live token old (whose plaintext is token) by a new
// one; rotated is false when a concurrent request won.
func (s *service) rotate(ctx context.Context, token string, old RefreshToken, now time.Time) (Tokens, bool, error) {
	u, err := s.store.UserByID(ctx, old.UserID)
	if err != nil {
		return Tokens{}, false, err
	}
	next, err := s.randomToken()
	if err != nil {
		return Tokens{}, false, err
	}
	t, err := s.tokens(u, next, old.FamilyID)
	if err != nil {
		return Tokens{}, false, err
	}
	box, err := sealSuccessor(token, old.Hash, t, s.cfg.Rand)
	if err != nil {
		return Tokens{}, false, err
	}
	var rotated bool
	err = s.store.InTx(ctx, func(tx *Tx) error {
		var err error
		rotated, err = tx.MarkRotated(ctx, old.Hash, hashRefreshToken(next), box, now)
		if err != nil || !rotated {
			return err
		}
		if old.ParentHash != "" {
			if err := tx.ForgetSuccessor(ctx, old.ParentHash); err != nil {
				return err
			}
		}
		c := clientOf(ctx)
		return tx.InsertRefreshToken(ctx, RefreshToken{
			Hash: hashRefreshToken(next), UserID: old.UserID, FamilyID: old.FamilyID, ParentHash: old.Hash,
			ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now, UserAgent: c.UserAgent, IP: c.ip(),
		})
	})
	if err != nil {
		return Tokens{}, false, err
	}
	return t, rotated, nil
}

// repeatOrReuse answers a token that was already rotated: the same pair
// again within the grace window while the successor is unused, otherwise a
// reuse, which revokes the family.
func (s *service) repeatOrReuse(ctx context.Context, token string, old RefreshToken, now time.Time) (Tokens, error) {
	if since := now.Sub(old.UsedAt); s.cfg.RefreshGrace > 0 && since <= s.cfg.RefreshGrace && len(old.SuccessorBox) > 0 {
		next, err := s.store.RefreshTokenByHash(ctx, old.SuccessorHash)
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			return Tokens{}, err
		}
		if err == nil && next.Live(now) {
			t, err := openSuccessor(token, old.Hash, old.SuccessorBox)
			if err != nil {
				return Tokens{}, err
			}
			t.ExpiresIn = s.signer.TTL() - since // the access token is the one issued then
			return t, nil
		}
	}
	n, err := s.store.RevokeFamily(ctx, old.FamilyID, revokedReuse, now)
	if err != nil {
		return Tokens{}, err
	}
	if n > 0 { // the first reuse revokes; later ones find nothing left to do
		s.audit(ctx, auditEvent{Event: evRefreshReused, UserID: old.UserID, Detail: map[string]string{
			"family": old.FamilyID, "revoked_tokens": strconv.FormatInt(n, 10), "rotated_at": old.UsedAt.Format(time.RFC3339),
		}})
	}
	return Tokens{}, errInvalidRefresh
}

// Logout revokes the family of a refresh token. It answers the same whether
// or not the token was known: logging out twice is not an error.
func (s *service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return apperr.Validation(apperr.FieldError{Field: "refresh_token", Message: "is required"})
	}
	token, ok := parseRefreshToken(token)
	if !ok {
		return nil
	}
	if err := s.throttle(ctx, ActRefresh, ""); err != nil {
		return err
	}
	t, err := s.store.RefreshTokenByHash(ctx, hashRefreshToken(token))
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	n, err := s.store.RevokeFamily(ctx, t.FamilyID, revokedLogout, s.now())
	if err != nil {
		return err
	}
	if n > 0 {
		s.audit(ctx, auditEvent{Event: evLogout, UserID: t.UserID, Detail: map[string]string{"family": t.FamilyID}})
	}
	return nil
}

// LogoutAll revokes every refresh family of the access token's user. Access
// tokens already issued stay valid until they expire (at most AccessTTL):
// they are checked without a call to auth, which is their point.
func (s *service) LogoutAll(ctx context.Context, accessToken string) error {
	u, err := s.Me(ctx, accessToken)
	if err != nil {
		return err
	}
	n, err := s.store.RevokeUserFamilies(ctx, u.ID, revokedLogoutAll, s.now())
	if err != nil {
		return err
	}
	s.audit(ctx, auditEvent{Event: evLogoutAll, UserID: u.ID, Detail: map[string]string{"revoked_families": strconv.FormatInt(n, 10)}})
	return nil
}

// sweep deletes refresh tokens expired for more than a day, and the shared
// throttle's full buckets.
func (s *service) sweep(ctx context.Context) error {
	now := s.now()
	_, err := s.store.DeleteRefreshTokensExpiredBefore(ctx, now.Add(-24*time.Hour))
	if l, ok := s.cfg.Limiter.(*sqlLimiter); ok {
		err = errors.Join(err, l.sweep(ctx, now))
	}
	return err
}

// sweepEvery runs sweep every interval until ctx is done.
func (s *service) sweepEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "sweep of expired sessions failed", "err", err)
			}
		}
	}
}

// The successor box: nonce ‖ AES-256-GCM(key = HKDF-SHA-256(token), refresh
// ‖ access), with the token's hash as associated data so a box cannot be
// moved to another row.
const boxInfo = "kinoteka refresh successor v1"

func boxCipher(token string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(token), nil, boxInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealSuccessor(token, hash string, t Tokens, rnd io.Reader) ([]byte, error) {
	aead, err := boxCipher(token)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+refreshTokenLen+len(t.Access)+aead.Overhead())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, []byte(t.Refresh+t.Access), []byte(hash)), nil
}

func openSuccessor(token, hash string, box []byte) (Tokens, error) {
	aead, err := boxCipher(token)
	if err != nil {
		return Tokens{}, err
	}
	if len(box) < aead.NonceSize() {
		return Tokens{}, errors.New("refresh successor box: too short")
	}
	plain, err := aead.Open(nil, box[:aead.NonceSize()], box[aead.NonceSize():], []byte(hash))
	if err != nil || len(plain) <= refreshTokenLen {
		return Tokens{}, errors.New("refresh successor box: cannot open")
	}
	return Tokens{Refresh: string(plain[:refreshTokenLen]), Access: string(plain[refreshTokenLen:])}, nil
}
