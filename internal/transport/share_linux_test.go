package transport

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestListenShared: a listener on every address and one on a single
// address share a port, and a connection to that address reaches the
// single address's listener while one to another address reaches the
// other.
func TestListenShared(t *testing.T) {
	all, err := ListenShared("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	all.Close()
	port := all.Addr().(*net.TCPAddr).Port
	if all, err = ListenShared(net.JoinHostPort("", strconv.Itoa(port))); err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer all.Close()
	one, err := ListenShared(net.JoinHostPort("127.0.0.2", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("a single address beside every address: %v", err)
	}
	defer one.Close()
	for _, tt := range []struct {
		dst  string
		want net.Listener
	}{{"127.0.0.2", one}, {"127.0.0.1", all}, {"127.0.0.2", one}} {
		c, err := net.Dial("tcp", net.JoinHostPort(tt.dst, strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		tt.want.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		got, err := tt.want.Accept()
		if err != nil {
			t.Fatalf("to %s: the listener of that address got nothing: %v", tt.dst, err)
		}
		if got.LocalAddr().String() != c.RemoteAddr().String() || got.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("to %s: accepted %s→%s, dialled %s→%s", tt.dst, got.RemoteAddr(), got.LocalAddr(), c.LocalAddr(), c.RemoteAddr())
		}
		got.Close()
		c.Close()
	}
}

// TestListenSharedSameAddress: SO_REUSEPORT lets a single address share a
// port with every address, but a second listener on the same address and
// port, a second gateway on the host, is refused rather than handed half
// the connections.
func TestListenSharedSameAddress(t *testing.T) {
	for _, host := range []string{"", "127.0.0.1"} {
		first, err := ListenShared(net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		port := strconv.Itoa(first.Addr().(*net.TCPAddr).Port)
		second, err := ListenShared(net.JoinHostPort(host, port))
		if err == nil {
			second.Close()
			t.Fatalf("%q: a second listener on port %s shares it with the first", host, port)
		}
		if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), ":"+port+": bind: address already in use") {
			t.Errorf("%q: second listener: %v, want address already in use naming port %s", host, err, port)
		}
	}
}

// TestListenSharedAtOnce: of two listeners on the same address and port
// started at the same instant, exactly one stays. Each sees the other
// when it checks, and the older socket keeps the port.
func TestListenSharedAtOnce(t *testing.T) {
	probe, err := ListenShared("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	for round := range 30 {
		start := make(chan struct{})
		lns := make(chan net.Listener, 2)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				<-start
				ln, err := ListenShared(addr)
				if err != nil {
					errs <- err
					return
				}
				lns <- ln
			}()
		}
		close(start)
		var kept []net.Listener
		for range 2 {
			select {
			case ln := <-lns:
				kept = append(kept, ln)
			case err := <-errs:
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		}
		for _, ln := range kept {
			ln.Close()
		}
		if len(kept) != 1 {
			t.Fatalf("round %d: %d of two listeners started at once stayed, want 1", round, len(kept))
		}
	}
}
