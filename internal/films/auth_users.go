package films

import (
	"context"

	"kinoteka/internal/tokens"
)

// liveAccounts refuses the tokens of accounts films heard were deleted: an
// access token stays signed until it expires, but its account is gone.
// Without the users topic this is a no-op, and such a token works until
// its exp (at most auth's access TTL).
type liveAccounts struct {
	verifier
	store *Store
}

func (v liveAccounts) Verify(ctx context.Context, token string) (tokens.Principal, error) {
	p, err := v.verifier.Verify(ctx, token)
	if err != nil {
		return p, err
	}
	deleted, err := v.store.AccountDeleted(ctx, p.UserID)
	if err != nil {
		return tokens.Principal{}, err
	}
	if deleted {
		return tokens.Principal{}, errAccountDeleted
	}
	return p, nil
}
