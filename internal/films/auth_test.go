package films

import (
	"net/http"
	"testing"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header  string
		token   string
		wantErr bool
	}{
		{"Bearer abc.def", "abc.def", false},
		{"bearer   abc.def", "abc.def", false},
		{"Bearer abc def", "", true},
		{"Bearer abc\tdef", "", true},
		{"Bearer abc.def\t", "", true},
		{"Bearer ", "", true},
		{"Basic abc", "", true},
	} {
		token, present, err := bearerToken(http.Header{"Authorization": {tc.header}})
		if !present || token != tc.token || (err != nil) != tc.wantErr {
			t.Errorf("bearerToken(%q) = %q, %v, %v", tc.header, token, present, err)
		}
	}
}
