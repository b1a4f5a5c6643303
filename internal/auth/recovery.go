package auth

import (
	"context"
	"strconv"

	"kinoteka/internal/apperr"
)

// Resend mails a new verification code to a pending account; the new code
// replaces the old. It answers alike for every address — unknown, pending,
// verified, or out of mail for now (mailAllowed with the one-minute gap) —
// so it tells no one which addresses have accounts, and cannot be used to
// bomb a mailbox: at most one mail a minute and ten a day reach an address,
// whoever asks.
func (s *service) Resend(ctx context.Context, email string) error {
	return s.mailCode(ctx, ActResend, email, purposeVerify)
}

// Forgot mails a password reset code to the account of email, verified or
// still pending (a reset proves the address as a verification does). Like
// Resend it answers alike for every address and obeys the same mail limits.
func (s *service) Forgot(ctx context.Context, email string) error {
	return s.mailCode(ctx, ActForgot, email, purposeReset)
}

func (s *service) mailCode(ctx context.Context, act Action, email, purpose string) error {
	email, msg := parseEmail(email)
	if msg != "" {
		return apperr.Validation(apperr.FieldError{Field: "email", Message: msg})
	}
	if err := s.throttle(ctx, act, email); err != nil {
		return err
	}
	now := s.now()
	outcome, userID := "unknown_email", ""
	err := s.store.InTx(ctx, func(tx *Tx) error {
		outcome, userID = "unknown_email", "" // InTx may run this twice
		u, err := tx.UserByEmail(ctx, email)
		if apperr.Is(err, apperr.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		userID = u.ID
		if purpose == purposeVerify && u.Verified() {
			outcome = "ignored_verified"
			return nil
		}
		if ok, err := s.mailAllowed(ctx, tx, u.ID, now, true); err != nil || !ok {
			outcome = "ignored_mail_limit"
			return err
		}
		outcome = "sent"
		return s.issueCode(ctx, tx, u, purpose, now)
	})
	if err != nil {
		return err
	}
	if outcome == "sent" {
		s.cfg.Notify()
	}
	event := evResent
	if purpose == purposeReset {
		event = evResetRequested
	}
	s.audit(ctx, auditEvent{Event: event, UserID: userID, Email: email, Detail: map[string]string{"outcome": outcome}})
	return nil
}

// Reset sets a new password with a reset code, activates the account if it
// was pending (the code proved the address), and revokes every refresh
// family of the user: whoever knew the old password is logged out
// everywhere. The code failures are Verify's (see checkCode).
func (s *service) Reset(ctx context.Context, email, code, newPassword string) error {
	email, code, bad := parseEmailAndCode(email, code)
	newPassword, msg := parseNewPassword(newPassword, email)
	if msg != "" {
		bad.add("new_password", msg)
	}
	if err := bad.err(); err != nil {
		return err
	}
	if err := s.throttle(ctx, ActReset, email); err != nil {
		return err
	}
	now := s.now()
	u, c, err := s.checkCode(ctx, email, purposeReset, code, now)
	if err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	var revoked int64
	err = s.store.InTx(ctx, func(tx *Tx) error {
		ok, err := tx.ConsumeCode(ctx, c.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			return errInvalidCode
		}
		if err := tx.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if err := tx.Activate(ctx, u.ID, now); err != nil {
			return err
		}
		revoked, err = tx.RevokeUserFamilies(ctx, u.ID, revokedReset, now)
		return err
	})
	if err != nil {
		return err
	}
	s.audit(ctx, auditEvent{Event: evPasswordReset, UserID: u.ID, Email: u.Email,
		Detail: map[string]string{"revoked_families": strconv.FormatInt(revoked, 10)}})
	return nil
}
