package films

import (
	"slices"
	"testing"
)

func TestSearchWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Star Wars", []string{"star", "wars"}},
		{"  Star   Wars! ", []string{"star", "wars"}},
		{"Amélie", []string{"amelie"}},
		{"Schindler's List", []string{"schindlers", "list"}},
		{"Schindler’s List", []string{"schindlers", "list"}},
		{"Star Trek: The Motion Picture", []string{"star", "trek", "the", "motion", "picture"}},
		{"Ben-Hur", []string{"ben", "hur"}},
		{"Tron 2.0", []string{"tron", "2", "0"}},
		{"20,000 Leagues", []string{"20", "000", "leagues"}},
		{"Ёжик в тумане", []string{"ежик", "в", "тумане"}},
		{"WALL·E", []string{"wall", "e"}},
		{"!!!", nil},
		{"", nil},
	} {
		if got := searchWords(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("searchWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSortKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"The  Empire", "the empire"},
		{"Amélie", "amelie"},
		{"ÉTÉ", "ete"},
		{"Сталкер", "сталкер"},
		{"Star Trek: The Motion Picture", "star trek: the motion picture"},
	} {
		if got := sortKey(tc.in); got != tc.want {
			t.Errorf("sortKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRatingKey(t *testing.T) {
	for _, tc := range []struct{ sum, count, want int }{
		{0, 0, 0}, {10, 1, 10000}, {25, 3, 8333}, {17, 2, 8500}, {20, 3, 6667}, {1, 1, 1000},
	} {
		if got := ratingKey(tc.sum, tc.count); got != tc.want {
			t.Errorf("ratingKey(%d, %d) = %d, want %d", tc.sum, tc.count, got, tc.want)
		}
	}
}
