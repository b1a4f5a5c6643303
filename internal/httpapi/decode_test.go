package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"kinoteka/internal/apperr"
)

type loginBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Age      int    `json:"age"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCode    string // "" means success
		wantDetail  string
	}{
		{"valid", "application/json", `{"email":"a@b.c","password":"x"}`, "", ""},
		{"charset parameter", "application/json; charset=utf-8", `{"email":"a@b.c"}`, "", ""},
		{"wrong content type", "text/plain", `{"email":"a@b.c"}`, "unsupported_media_type", "Content-Type"},
		{"no content type", "", `{"email":"a@b.c"}`, "unsupported_media_type", "Content-Type"},
		{"malformed", "application/json", `{"email":`, "malformed_json", "ends in the middle"},
		{"syntax error", "application/json", `{"email" "a"}`, "malformed_json", "byte"},
		{"empty", "application/json", ``, "malformed_json", "empty"},
		{"unknown field", "application/json", `{"email":"a@b.c","admin":true}`, "unknown_field", `"admin"`},
		{"wrong type", "application/json", `{"email":42}`, "validation_failed", ""},
		{"array instead of object", "application/json", `[1,2]`, "malformed_json", "object"},
		{"two objects", "application/json", `{"email":"a"}{"email":"b"}`, "malformed_json", "single JSON object"},
		{"too large", "application/json", `{"email":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "body_too_large", "65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var dst loginBody
			err := Decode(httptest.NewRecorder(), r, &dst)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.Invalid || e.Code != tt.wantCode {
				t.Fatalf("want Invalid %q, got %#v", tt.wantCode, err)
			}
			if !strings.Contains(e.Message, tt.wantDetail) {
				t.Fatalf("message %q does not mention %q", e.Message, tt.wantDetail)
			}
		})
	}
}

func TestDecodeWrongTypeNamesTheField(t *testing.T) {
	var dst loginBody
	err := DecodeReader(strings.NewReader(`{"age":"old"}`), &dst)
	e, ok := apperr.As(err)
	if !ok || len(e.Fields) != 1 || e.Fields[0].Field != "age" || e.Fields[0].Message != "must be a JSON number" {
		t.Fatalf("got %#v", err)
	}
}

func TestErrorWritesProblemJSON(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantDetail string
	}{
		{apperr.Validation(apperr.FieldError{Field: "email", Message: "is required"}), 400, "the request has invalid fields"},
		{apperr.New(apperr.Forbidden, "email_not_verified", "verify first"), 403, "verify first"},
		{apperr.New(apperr.NotFound, "", "no such film"), 404, "no such film"},
		{errors.New("pq: connection refused"), 500, "an internal error occurred"},
		{apperr.Wrap(errors.New("secret cause"), apperr.Internal, "boom"), 500, "an internal error occurred"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		Error(w, httptest.NewRequest(http.MethodGet, "/x", nil), nil, tt.err)
		if w.Code != tt.wantStatus || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%v: status %d, type %q", tt.err, w.Code, w.Header().Get("Content-Type"))
		}
		var p Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Status != tt.wantStatus || p.Detail != tt.wantDetail || p.Title == "" || p.Type == "" {
			t.Fatalf("%v: problem %+v", tt.err, p)
		}
		if strings.Contains(w.Body.String(), "secret cause") || strings.Contains(w.Body.String(), "connection refused") {
			t.Fatalf("internal cause leaked: %s", w.Body)
		}
	}
}

func FuzzDecodeReader(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.c","password":"x","age":3}`, `{`, `[]`, `{"age":1e999}`, `{"email":"\u0000"}`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var dst loginBody
		err := DecodeReader(strings.NewReader(body), &dst)
		if err != nil && apperr.KindOf(err) != apperr.Invalid {
			t.Fatalf("decode error of kind %v: %v", apperr.KindOf(err), err)
		}
	})
}
