package throttle

import (
	"net/netip"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := New(3, 10*time.Minute)
	th.Now = func() time.Time { return now }
	a := netip.MustParseAddr("127.9.8.7")
	b := netip.MustParseAddr("127.9.8.8")
	for i := range 3 {
		if ok, _ := th.Allowed(a); !ok {
			t.Fatalf("refused after %d failures, limit 3", i)
		}
		th.Fail(a)
	}
	ok, wait := th.Allowed(a)
	if ok || wait != 10*time.Minute {
		t.Fatalf("after 3 failures: allowed=%v wait=%v", ok, wait)
	}
	if ok, _ := th.Allowed(b); !ok {
		t.Fatal("another source is refused")
	}
	now = now.Add(10 * time.Minute)
	if ok, _ := th.Allowed(a); !ok {
		t.Fatal("still refused in a new window")
	}
	if th.Sources() != 0 {
		t.Fatal("counts survived the window")
	}
}

func TestIPv6SharesSlash64(t *testing.T) {
	th := New(1, time.Hour)
	th.Fail(netip.MustParseAddr("2001:db8::1"))
	if ok, _ := th.Allowed(netip.MustParseAddr("2001:db8::ffff")); ok {
		t.Fatal("an address in the same /64 escapes the limit")
	}
	if ok, _ := th.Allowed(netip.MustParseAddr("2001:db8:0:1::1")); !ok {
		t.Fatal("another /64 is limited")
	}
}

func TestTake(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := New(2, time.Minute)
	th.Now = func() time.Time { return now }
	a := netip.MustParseAddr("127.9.8.7")
	for i := range 2 {
		if ok, _ := th.Take(a); !ok {
			t.Fatalf("use %d refused, limit 2", i+1)
		}
	}
	now = now.Add(20 * time.Second)
	if ok, wait := th.Take(a); ok || wait != 40*time.Second {
		t.Fatalf("third use: allowed=%v wait=%v, want refused for 40s", ok, wait)
	}
	if ok, _ := th.Take(netip.MustParseAddr("127.9.8.8")); !ok {
		t.Fatal("another source is refused")
	}
	now = now.Add(40 * time.Second)
	if ok, _ := th.Take(a); !ok {
		t.Fatal("refused in a new window")
	}
}

func TestConcurrent(t *testing.T) {
	c := NewConcurrent(2)
	a := netip.MustParseAddr("127.9.8.7")
	b := netip.MustParseAddr("2001:db8::1")
	r1, ok1 := c.Acquire(a)
	r2, ok2 := c.Acquire(a)
	if !ok1 || !ok2 {
		t.Fatal("a source is refused below its limit")
	}
	if _, ok := c.Acquire(a); ok {
		t.Fatal("a third use at once was allowed over a limit of 2")
	}
	if _, ok := c.Acquire(netip.MustParseAddr("::ffff:127.9.8.7")); ok {
		t.Fatal("the IPv4-mapped form of an address escapes its limit")
	}
	rb, ok := c.Acquire(b)
	if !ok {
		t.Fatal("another source is refused while the first is at its limit")
	}
	if _, ok := c.Acquire(netip.MustParseAddr("2001:db8::2")); !ok {
		t.Fatal("a second use in the same /64 is refused below the limit")
	}
	r1()
	r1() // a second call must not free another use
	if _, ok := c.Acquire(a); !ok {
		t.Fatal("a released use was not given back")
	}
	if _, ok := c.Acquire(a); ok {
		t.Fatal("a double release gave back two uses")
	}
	r2()
	rb()
	if c.Sources() != 2 {
		t.Fatalf("%d sources held, want 2 (a once, the /64 of b once)", c.Sources())
	}
}
