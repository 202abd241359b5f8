package pow

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	iss := New(8, time.Minute)
	iss.Now = func() time.Time { return now }
	c := iss.Issue()
	nonce, ok := Solve(c.Challenge, c.Bits, 1<<20)
	if !ok {
		t.Fatal("no solution found")
	}
	bad := "x" + nonce
	for LeadingZeros(c.Challenge, bad) >= c.Bits {
		bad += "x"
	}
	other := New(8, time.Minute)
	forged := other.Issue()
	fn, _ := Solve(forged.Challenge, 8, 1<<20)
	lowered := strings.Replace(c.Challenge, "v1.8.", "v1.0.", 1)
	tests := []struct {
		name             string
		challenge, nonce string
		want             error
	}{
		{"wrong nonce", c.Challenge, bad, ErrWrong},
		{"another key", forged.Challenge, fn, ErrMalformed},
		{"difficulty lowered", lowered, "0", ErrMalformed},
		{"garbage", "v1.8", "1", ErrMalformed},
		{"solved", c.Challenge, nonce, nil},
		{"replayed", c.Challenge, nonce, ErrReplayed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := iss.Verify(tt.challenge, tt.nonce); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		c := iss.Issue()
		n, _ := Solve(c.Challenge, c.Bits, 1<<20)
		now = now.Add(2 * time.Minute)
		if err := iss.Verify(c.Challenge, n); !errors.Is(err, ErrExpired) {
			t.Fatalf("Verify = %v, want ErrExpired", err)
		}
	})
	t.Run("spent set forgets expired", func(t *testing.T) {
		c := iss.Issue()
		n, _ := Solve(c.Challenge, c.Bits, 1<<20)
		if err := iss.Verify(c.Challenge, n); err != nil {
			t.Fatal(err)
		}
		if len(iss.spent) != 1 {
			t.Fatalf("%d spent challenges remembered after expiry", len(iss.spent))
		}
	})
}

func TestSpentBound(t *testing.T) {
	iss := New(0, time.Minute)
	iss.MaxSpent = 2
	for i := range 3 {
		err := iss.Verify(iss.Issue().Challenge, "0")
		if want := i == 2; (err != nil) != want || (want && !errors.Is(err, ErrBusy)) {
			t.Fatalf("sign-up %d: %v", i, err)
		}
	}
}

func TestLeadingZeros(t *testing.T) {
	// SHA-256("abc:0") starts 0x5f…: one leading zero bit. The page's
	// script hashes the same bytes.
	if n := LeadingZeros("abc", "0"); n != 1 {
		t.Fatalf("LeadingZeros = %d, want 1", n)
	}
	n, ok := Solve("test", 12, 1<<22)
	if !ok || LeadingZeros("test", n) < 12 {
		t.Fatal("Solve returned a nonce that does not solve")
	}
}

// BenchmarkSolve is the client's work at the default difficulty (18
// bits): about 2^18 hashes on average, more or less by luck.
func BenchmarkSolve(b *testing.B) {
	iss := New(18, time.Minute)
	for b.Loop() {
		c := iss.Issue()
		if _, ok := Solve(c.Challenge, c.Bits, 0); !ok {
			b.Fatal("no solution")
		}
	}
}

// BenchmarkVerify is the server's cost of checking one solution.
func BenchmarkVerify(b *testing.B) {
	iss := New(0, time.Minute)
	for b.Loop() {
		if err := iss.Verify(iss.Issue().Challenge, "0"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSharedKey: two processes of one service accept each other's
// challenges; another service does not.
func TestSharedKey(t *testing.T) {
	a, b := NewWithKey(4, time.Minute, []byte("one secret")), NewWithKey(4, time.Minute, []byte("one secret"))
	other := NewWithKey(4, time.Minute, []byte("another"))
	c := a.Issue()
	n, _ := Solve(c.Challenge, c.Bits, 1<<20)
	if err := other.Verify(c.Challenge, n); !errors.Is(err, ErrMalformed) {
		t.Fatalf("another service's challenge: %v", err)
	}
	if err := b.Verify(c.Challenge, n); err != nil {
		t.Fatalf("a sibling's challenge: %v", err)
	}
}
