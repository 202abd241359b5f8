package client

import (
	"context"
	"slices"
	"testing"
)

// pathRound is a probe round over a path that carries packets up to
// limit bytes both ways (zero: a gateway that answers no ping).
func pathRound(limit int, rounds *int) probeRound {
	return func(_ context.Context, sizes []int) (int, error) {
		*rounds++
		best := 0
		for _, s := range sizes {
			if s <= limit {
				best = max(best, s)
			}
		}
		return best, nil
	}
}

func TestSearchMTU(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		want   int
		ok     bool
		rounds int
	}{
		{"full path", 1500, 1420, true, 1},
		{"exactly default", 1420, 1420, true, 1},
		{"one below default", 1419, 1419, true, 2},
		{"narrow link", 1328, 1328, true, 2},
		{"between steps", 1333, 1333, true, 2},
		{"at the floor", 1280, 1280, true, 2},
		{"just above the floor", 1281, 1281, true, 2},
		{"below the floor", 1200, MinMTU, true, 1},
		{"no answers", 0, 0, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rounds int
			got, ok, err := searchMTU(context.Background(), 1420, pathRound(tt.limit, &rounds))
			if err != nil || got != tt.want || ok != tt.ok || rounds != tt.rounds {
				t.Errorf("searchMTU over a %d-byte path = %d, %v, %v in %d rounds; want %d, %v in %d",
					tt.limit, got, ok, err, rounds, tt.want, tt.ok, tt.rounds)
			}
		})
	}
}

// The first round's sizes cover the range down to the floor, largest
// first, and include a size any path carries.
func TestSearchMTUSizes(t *testing.T) {
	var first []int
	searchMTU(context.Background(), 1420, func(_ context.Context, sizes []int) (int, error) {
		if first == nil {
			first = slices.Clone(sizes)
		}
		return 0, nil
	})
	if first[0] != 1420 || !slices.Contains(first, MinMTU) || !slices.Contains(first, probeSmall) {
		t.Errorf("first round sizes %v", first)
	}
}

func TestValidMTU(t *testing.T) {
	for mtu, ok := range map[int]bool{0: true, 1280: true, 1420: true, 1279: false, 9000: false, -1: false} {
		if err := ValidMTU(mtu); (err == nil) != ok {
			t.Errorf("ValidMTU(%d) = %v", mtu, err)
		}
	}
}
