package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Admin user management, for the role admin only: search accounts by
// address or name (auth's GET /v1/admin/users) and grant or revoke the
// admin role. auth checks the role again on every call; a role granted
// shows in that person's next token.

// usersPage is the content of the admin_users template.
type usersPage struct {
	Q           string
	Users       []userRow
	Next, First string
}

type userRow struct {
	Name, Email, Roles, Status string
	Admin                      bool
	Role                       *form
}

func (a *app) handleUsers(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	lang := language(r)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	params := url.Values{}
	if q != "" {
		params.Set("q", q)
	}
	p := usersPage{Q: q}
	call := url.Values{}
	for k, v := range params {
		call[k] = v
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		call.Set("cursor", c)
		p.First = "/admin/users?" + params.Encode()
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var list userPage
	if err := a.api.auth(ctx, r, http.MethodGet, "/v1/admin/users?"+call.Encode(), u.bearer(), nil, &list); err != nil {
		a.fail(w, r, u, err)
		return
	}
	back := r.URL.RequestURI()
	for _, m := range list.Items {
		isAdmin := slices.Contains(m.Roles, "admin")
		on, label := "1", translate(lang, "button.admin_grant", m.Name)
		if isAdmin {
			on, label = "0", translate(lang, "button.admin_revoke", m.Name)
		}
		p.Users = append(p.Users, userRow{Name: m.Name, Email: m.Email, Roles: strings.Join(m.Roles, ", "), Status: m.Status, Admin: isAdmin,
			Role: &form{Action: "/admin/users/" + url.PathEscape(m.ID) + "/admin", Submit: label, Class: "secondary outline",
				Hidden: []hidden{{"on", on}, {"back", back}}}})
	}
	if list.NextCursor != nil {
		next := url.Values{}
		for k, v := range params {
			next[k] = v
		}
		next.Set("cursor", *list.NextCursor)
		p.Next = "/admin/users?" + next.Encode()
	}
	a.render(w, r, http.StatusOK, "admin_users", &page{Title: translate(lang, "users.title"), User: u, Data: p})
}

// handleUserAdmin grants (on=1) or revokes (on=0) the admin role and goes
// back to the list it was pressed on.
func (a *app) handleUserAdmin(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	method, flash := http.MethodPut, "role_granted"
	if r.PostFormValue("on") == "0" {
		method, flash = http.MethodDelete, "role_revoked"
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	if err := a.api.auth(ctx, r, method, "/v1/admin/users/"+url.PathEscape(r.PathValue("id"))+"/roles/admin", u.bearer(), nil, nil); err != nil {
		a.fail(w, r, u, err)
		return
	}
	back := localPath(r.PostFormValue("back"))
	if !strings.HasPrefix(back, "/admin/users") {
		back = "/admin/users"
	}
	a.redirect(w, r, withFlash(stripFlash(back), flash))
}

// stripFlash drops an earlier flash from a local path, so a second press
// does not carry two.
func stripFlash(p string) string {
	u, err := url.Parse(p)
	if err != nil {
		return p
	}
	q := u.Query()
	q.Del("m")
	u.RawQuery = q.Encode()
	return u.RequestURI()
}
