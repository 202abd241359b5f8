package dnsname

import (
	"slices"
	"testing"
)

// TestCompare sorts RFC 4034 section 6.1's example names.
func TestCompare(t *testing.T) {
	want := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
		"zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, Compare)
	if !slices.Equal(got, want) {
		t.Errorf("sorted:\n%q\nwant\n%q", got, want)
	}
}

func TestCovers(t *testing.T) {
	for _, tt := range []struct {
		owner, next, name string
		want              bool
	}{
		{"a.example.", "d.example.", "b.example.", true},
		{"a.example.", "d.example.", "a.example.", false},
		{"a.example.", "d.example.", "d.example.", false},
		{"a.example.", "d.example.", "x.b.example.", true},
		{"z.example.", "example.", "zz.example.", true}, // the last NSEC wraps
		{"z.example.", "example.", "b.example.", false},
	} {
		if got := Covers(tt.owner, tt.next, tt.name); got != tt.want {
			t.Errorf("Covers(%s, %s, %s) = %v", tt.owner, tt.next, tt.name, got)
		}
	}
}
