package relay

import (
	"net/netip"
	"testing"
	"time"

	"veil/internal/wg"
)

func keys(t *testing.T) (client, entry wg.Key) {
	t.Helper()
	c, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return c, e
}

func TestOpenRoundTrip(t *testing.T) {
	c, e := keys(t)
	ck, err := Key(c, e.Public(), c.Public())
	if err != nil {
		t.Fatal(err)
	}
	ek, err := Key(e, c.Public(), c.Public())
	if err != nil {
		t.Fatal(err)
	}
	if ck != ek {
		t.Fatal("client and entry derive different keys")
	}
	for _, exit := range []string{"203.0.113.2:51820", "[2001:db8::2]:443"} {
		o := Open{Client: c.Public(), Time: time.Unix(0, 1234567890), Exit: netip.MustParseAddrPort(exit)}
		msg := o.Marshal(ck)
		if !IsOpen(msg) || IsReply(msg) {
			t.Fatal("open not recognised as one")
		}
		got, err := ParseOpen(msg)
		if err != nil || got != o {
			t.Fatalf("ParseOpen = %+v, %v; want %+v", got, err, o)
		}
		if !CheckOpen(msg, ek) {
			t.Fatal("the entry's key does not check the open")
		}
	}
}

func TestOpenTampered(t *testing.T) {
	c, e := keys(t)
	other, _ := keys(t)
	ck, _ := Key(c, e.Public(), c.Public())
	msg := Open{Client: c.Public(), Time: time.Now(), Exit: netip.MustParseAddrPort("203.0.113.2:51820")}.Marshal(ck)
	// The exit's port changed on the way: the MAC must not hold.
	bad := append([]byte(nil), msg...)
	bad[61] ^= 1
	if CheckOpen(bad, ck) {
		t.Error("a changed exit passes the MAC")
	}
	// Someone without the device key claims it: their key differs.
	forged, _ := Key(other, e.Public(), c.Public())
	if CheckOpen(Open{Client: c.Public(), Time: time.Now()}.Marshal(forged), ck) {
		t.Error("an open made without the device key passes")
	}
}

func TestReply(t *testing.T) {
	c, e := keys(t)
	k, _ := Key(c, e.Public(), c.Public())
	r := Reply{Time: time.Unix(0, 42), Status: OK, Port: 40000}
	msg := r.Marshal(k)
	got, err := ParseReply(msg, k)
	if err != nil || got != r {
		t.Fatalf("ParseReply = %+v, %v", got, err)
	}
	msg[13] ^= 0xff
	if _, err := ParseReply(msg, k); err == nil {
		t.Error("a changed port passes the MAC")
	}
	if UnknownExit.Err() == nil || OK.Err() != nil {
		t.Error("Status.Err")
	}
}
