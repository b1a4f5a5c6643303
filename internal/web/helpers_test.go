package web

import (
	"net/http"
	"net/http/httptest"
)

func newRequest(langCookie, accept string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if langCookie != "" {
		r.AddCookie(&http.Cookie{Name: "lang", Value: langCookie})
	}
	if accept != "" {
		r.Header.Set("Accept-Language", accept)
	}
	return r
}
