package tokens

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"

	"kinoteka/internal/apperr"
)

// The reasons a token is refused, a small fixed set so that they can label
// a metric (kinoteka_films_token_failures_total) without exploding it.
const (
	ReasonMalformed       = "malformed"        // not a JWS of three parts, bad base64 or JSON, too large, no kid
	ReasonSignature       = "signature"        // the signature does not verify, or the algorithm is not allowed for the key
	ReasonUnknownKid      = "unknown_kid"      // no key with that kid, even after re-fetching the JWK set
	ReasonKeysUnavailable = "keys_unavailable" // the kid is unknown and the JWK set could not be fetched
	ReasonExpired         = "expired"          // exp is past (beyond the leeway)
	ReasonClaims          = "claims"           // typ, iss, aud, nbf, iat, sub or a required claim is wrong or missing
)

// Reasons lists every value FailureReason returns.
var Reasons = []string{ReasonMalformed, ReasonSignature, ReasonUnknownKid, ReasonKeysUnavailable, ReasonExpired, ReasonClaims}

// Causes the verifier wraps, so that FailureReason can tell them apart
// without reading messages.
var (
	errTooLarge   = errors.New("token too large")
	errNoKid      = errors.New("no kid")
	errWrongType  = errors.New("wrong typ")
	errUnknownKid = errors.New("unknown kid")
	errKeyAlg     = errors.New("key made for another algorithm")
	errNoSubject  = errors.New("no sub")
	errCritical   = errors.New("unknown critical header")
	// errNotNumericDate: exp, nbf or iat is not a JSON number.
	errNotNumericDate = errors.New("date claim not a number")
	// errKeysUnavailable: the kid was unknown and fetching the JWK set failed.
	errKeysUnavailable = errors.New("JWK set unavailable")
)

// FailureReason classifies an error returned by Verify into one of Reasons.
// Any other error (not from Verify) is ReasonMalformed: the token could not
// be used, and nothing more is known.
func FailureReason(err error) string {
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Cause != nil {
		err = ae.Cause
	}
	switch {
	case errors.Is(err, errUnknownKid):
		return ReasonUnknownKid
	case errors.Is(err, errKeysUnavailable):
		return ReasonKeysUnavailable
	case errors.Is(err, errKeyAlg), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ReasonSignature
	case errors.Is(err, errWrongType), errors.Is(err, errNoSubject), errors.Is(err, errCritical), errors.Is(err, errNotNumericDate):
		return ReasonClaims
	case errors.Is(err, errTooLarge), errors.Is(err, errNoKid), errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The key function's own failures are matched above; what is left
		// names no algorithm, or one the library does not know.
		return ReasonSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenInvalidClaims), errors.Is(err, jwt.ErrTokenRequiredClaimMissing),
		errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience),
		errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued),
		errors.Is(err, jwt.ErrTokenInvalidSubject), errors.Is(err, jwt.ErrTokenInvalidId):
		return ReasonClaims
	}
	return ReasonMalformed
}
