// Package pow is the sign-up's proof of work, hashcash-style: the server
// hands out a challenge, signed with a key only it holds and valid for a
// few minutes, and accepts it back once with a nonce such that
// SHA-256(challenge ":" nonce) starts with the challenge's number of zero
// bits. Challenges are stateless (nothing stored per visitor); a solved
// one is remembered in memory until it expires, so it is accepted once.
//
// The work is small for one person (a second or so in a browser) and
// large for whoever wants thousands of accounts; the in-memory throttle
// does the rest.
package pow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors Verify returns; the text is for the person signing up.
var (
	ErrMalformed = errors.New("proof of work: malformed challenge or nonce")
	ErrExpired   = errors.New("proof of work: the challenge expired; ask for a new one")
	ErrWrong     = errors.New("proof of work: the nonce does not solve the challenge")
	ErrReplayed  = errors.New("proof of work: this challenge was used already; ask for a new one")
	ErrBusy      = errors.New("proof of work: too many sign-ups right now; try again in a few minutes")
)

// Issuer makes and checks challenges.
type Issuer struct {
	// Bits is the difficulty: leading zero bits of the hash.
	Bits int
	// TTL is how long a challenge may be solved and used.
	TTL time.Duration
	// MaxSpent bounds the solved challenges remembered; past it, new
	// solutions are refused until older ones expire. 0: 100000.
	MaxSpent int
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	key    [32]byte
	mu     sync.Mutex
	spent  map[string]time.Time
	pruned time.Time
}

// New returns an Issuer of challenges of bits zero bits, valid for ttl,
// signed with a random key (challenges do not survive a restart, nor
// travel between processes).
func New(bits int, ttl time.Duration) *Issuer {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic("pow: crypto/rand failed: " + err.Error())
	}
	return NewWithKey(bits, ttl, key[:])
}

// NewWithKey is New with a key of the caller's, so that the processes of
// one service (which derive it from their shared secret) accept each
// other's challenges. Each remembers the challenges used with it: behind
// a balancer, one solution may be spent once per process.
func NewWithKey(bits int, ttl time.Duration, key []byte) *Issuer {
	i := &Issuer{Bits: bits, TTL: ttl, spent: map[string]time.Time{}}
	i.key = sha256.Sum256(key)
	return i
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// Challenge is a challenge to solve, as the API hands it out.
type Challenge struct {
	Challenge string    `json:"challenge"`
	Bits      int       `json:"bits"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Issue returns a new challenge: "v1.BITS.EXPIRY.RANDOM.MAC", all in
// URL-safe characters.
func (i *Issuer) Issue() Challenge {
	exp := i.now().Add(i.TTL).Truncate(time.Second)
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic("pow: crypto/rand failed: " + err.Error())
	}
	body := "v1." + strconv.Itoa(i.Bits) + "." + strconv.FormatInt(exp.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(r[:])
	return Challenge{Challenge: body + "." + i.mac(body), Bits: i.Bits, ExpiresAt: exp.UTC()}
}

func (i *Issuer) mac(body string) string {
	m := hmac.New(sha256.New, i.key[:])
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Verify accepts a solved challenge once.
func (i *Issuer) Verify(challenge, nonce string) error {
	if len(challenge) > 200 || len(nonce) == 0 || len(nonce) > 32 {
		return ErrMalformed
	}
	parts := strings.Split(challenge, ".")
	if len(parts) != 5 || parts[0] != "v1" {
		return ErrMalformed
	}
	body := strings.Join(parts[:4], ".")
	if !hmac.Equal([]byte(parts[4]), []byte(i.mac(body))) {
		return ErrMalformed
	}
	bitsWanted, err1 := strconv.Atoi(parts[1])
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return ErrMalformed
	}
	now := i.now()
	expiry := time.Unix(exp, 0)
	if !now.Before(expiry) {
		return ErrExpired
	}
	if LeadingZeros(challenge, nonce) < bitsWanted {
		return ErrWrong
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	max := i.MaxSpent
	if max == 0 {
		max = 100000
	}
	// Forgetting expired challenges walks the set: every few seconds, or
	// when it is full, not on every sign-up.
	if now.Sub(i.pruned) > 5*time.Second || now.Before(i.pruned) || len(i.spent) >= max {
		i.pruned = now
		for c, e := range i.spent {
			if !now.Before(e) {
				delete(i.spent, c)
			}
		}
	}
	if _, ok := i.spent[challenge]; ok {
		return ErrReplayed
	}
	if len(i.spent) >= max {
		return ErrBusy
	}
	if i.spent == nil {
		i.spent = map[string]time.Time{}
	}
	i.spent[challenge] = expiry
	return nil
}

// LeadingZeros counts the leading zero bits of SHA-256(challenge ":" nonce).
func LeadingZeros(challenge, nonce string) int {
	sum := sha256.Sum256([]byte(challenge + ":" + nonce))
	n := 0
	for k := 0; k < len(sum); k += 8 {
		w := binary.BigEndian.Uint64(sum[k:])
		if w != 0 {
			return n + bits.LeadingZeros64(w)
		}
		n += 64
	}
	return n
}

// Solve finds a nonce for a challenge of bits zero bits, as the CLI and
// tests do (the site's page does the same in JavaScript): decimal
// counters from 0. It gives up after max tries (0: no bound), returning
// false.
func Solve(challenge string, bits int, max uint64) (string, bool) {
	for n := uint64(0); max == 0 || n < max; n++ {
		s := strconv.FormatUint(n, 10)
		if LeadingZeros(challenge, s) >= bits {
			return s, true
		}
	}
	return "", false
}
