package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
)

// The roles. Every account is a user; admin may change the catalogue.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// grantableRoles are the roles an operator may store on an account ("user"
// every account has anyway).
var grantableRoles = []string{RoleAdmin}

// roles are u's effective roles: "user", what is stored on the account
// (granted by `kinoteka admin grant-role`), and admin when the address is
// in AUTH_ADMIN_EMAILS. The configured grant is not stored, so taking an
// address off the list takes the role away at the next token.
func (s *service) roles(u User) []string {
	roles := append([]string{RoleUser}, u.Roles...)
	if slices.Contains(s.admins, u.Email) {
		roles = append(roles, RoleAdmin)
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

func jsonRoles(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	b, err := json.Marshal(roles)
	return string(b), err
}

// GrantRole stores role on the account of email, in auth's migrated
// database, and records it in the audit table (by names who did it, such
// as "cli"). It reports whether anything changed. NotFound when there is no
// such account; Invalid for a role that cannot be granted.
func GrantRole(ctx context.Context, db *sqldb.DB, email, role, by string, now time.Time) (bool, error) {
	return changeRole(ctx, db, email, role, by, now, true)
}

// RevokeRole takes a stored role off the account of email; the configured
// admin list (AUTH_ADMIN_EMAILS) is not touched.
func RevokeRole(ctx context.Context, db *sqldb.DB, email, role, by string, now time.Time) (bool, error) {
	return changeRole(ctx, db, email, role, by, now, false)
}

func changeRole(ctx context.Context, db *sqldb.DB, email, role, by string, now time.Time, grant bool) (bool, error) {
	addr, msg := parseEmail(email)
	if msg != "" {
		return false, apperr.Validation(apperr.FieldError{Field: "email", Message: msg})
	}
	if !slices.Contains(grantableRoles, role) {
		return false, apperr.New(apperr.Invalid, "unknown_role", "role %q cannot be granted (roles: %s)", role, strings.Join(grantableRoles, ", "))
	}
	now = dbTime(now)
	store := NewStore(db)
	var (
		changed bool
		userID  string
	)
	err := store.InTx(ctx, func(tx *Tx) error {
		u, err := tx.UserByEmail(ctx, addr)
		if apperr.Is(err, apperr.NotFound) {
			return apperr.New(apperr.NotFound, "no_such_account", "no account has the address %s", addr)
		}
		if err != nil {
			return err
		}
		userID = u.ID
		roles := slices.DeleteFunc(slices.Clone(u.Roles), func(r string) bool { return r == role })
		if grant {
			roles = append(roles, role)
		}
		slices.Sort(roles)
		if changed = !slices.Equal(roles, sortedCopy(u.Roles)); !changed {
			return nil
		}
		return tx.SetRoles(ctx, u.ID, roles, now)
	})
	if err != nil || !changed {
		return false, err
	}
	event := evRoleGranted
	if !grant {
		event = evRoleRevoked
	}
	err = store.InsertAudit(ctx, AuditRecord{OccurredAt: now, Event: event, UserID: userID, Email: addr,
		Detail: map[string]string{"role": role, "by": by}})
	if err != nil {
		return true, fmt.Errorf("role changed, audit record not written: %w", err)
	}
	return true, nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
