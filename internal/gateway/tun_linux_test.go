package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const netnsChildEnv = "VEIL_GATEWAY_NETNS_CHILD"

// TestTUNNetns runs a tun-mode gateway in a network namespace of its own:
// the test binary re-executes itself in a fresh namespace (so the TUN,
// nftables table, forwarding switches and sockets are all inside it) and
// there builds a second "internet" namespace joined to it by a veth pair.
// Nothing touches the host's namespace.
func TestTUNNetns(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "1" {
		tunChild(t)
		return
	}
	if os.Getenv("VEIL_TEST_NETNS") != "1" || os.Geteuid() != 0 {
		t.Skip("network-namespace test: needs root and VEIL_TEST_NETNS=1 (scripts/test.sh sets it when root)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTUNNetns$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("gateway namespace:\n%s", out)
	if err != nil {
		t.Fatalf("test in gateway namespace: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestTUNNetns") {
		t.Fatal("test in gateway namespace did not pass")
	}
}

// Addresses of the veth link between the gateway and the "internet".
var (
	gwV4, inetV4 = netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("198.51.100.2/24")
	gwV6, inetV6 = netip.MustParsePrefix("2001:db8:1::1/64"), netip.MustParsePrefix("2001:db8:1::2/64")
	// deniedV4 is on the internet host too, reachable by route, but not
	// in EgressAllow: the guard must refuse it.
	deniedV4 = netip.MustParsePrefix("203.0.113.2/32")
	// The internet host's NAT64 forms of inetV4 and deniedV4: the guard
	// judges them as those IPv4 addresses, so the first passes and the
	// second does not.
	nat64Allowed, nat64Denied = netip.MustParsePrefix("64:ff9b::198.51.100.2/128"), netip.MustParsePrefix("64:ff9b::203.0.113.2/128")
)

func tunChild(t *testing.T) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	startInternet(t)

	veth, err := netlink.LinkByName("vg0")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{gwV4, gwV6} {
		if err := netlink.AddrAdd(veth, &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"203.0.113.0/24", "64:ff9b::/96"} {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: veth.Attrs().Index, Dst: prefixNet(netip.MustParsePrefix(dst))}); err != nil {
			t.Fatal(err)
		}
	}

	control := newFakeControl(t)
	allow := []netip.Prefix{gwV4.Masked(), gwV6.Masked()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := New(Config{
		ControlURL: control.srv.URL, Token: testToken, Mode: ModeTUN, TUNName: "veiltest0",
		EgressAllow: allow, Resolver: testResolver,
		ReportEvery: 100 * time.Millisecond, PollWait: 2 * time.Second, RetryMax: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	}
	c := newClient(t, g)
	v := control.set(c.peer)
	waitFor(t, "peer applied", func() bool { return g.Stats().PeerMapVersion >= v })

	// The internet host sees the gateway's address, never the tunnel's.
	tests := []struct {
		name, url, want string
	}{
		{"ipv4 masqueraded", "http://198.51.100.2/", gwV4.Addr().String()},
		{"ipv6 masqueraded", "http://[2001:db8:1::2]/", gwV6.Addr().String()},
		{"nat64 form of an allowed address", "http://[" + nat64Allowed.Addr().String() + "]/", gwV6.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.httpGet(testCtx(t), tt.url)
			if err != nil || got != tt.want {
				t.Fatalf("internet host saw %q (%v), want %s", got, err, tt.want)
			}
		})
	}
	t.Run("guard refuses", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, u := range []string{"http://203.0.113.2/", "http://[" + nat64Denied.Addr().String() + "]/"} {
			got, err := c.httpGet(ctx, u)
			if err == nil {
				t.Fatalf("refused destination %s answered %q", u, got)
			}
			checkRefused(t, err)
		}
	})
	t.Run("host closed to peers", func(t *testing.T) {
		// A service of the gateway host on every address: peers must
		// not reach it, through the tunnel address or the veth one.
		hostSrv := startHTTP(t)
		_, port, _ := net.SplitHostPort(hostSrv.Listener.Addr().String())
		hostSrv.Listener.Close()
		ln, err := net.Listen("tcp", ":"+port)
		if err != nil {
			t.Fatal(err)
		}
		go http.Serve(ln, hostSrv.Config.Handler)
		t.Cleanup(func() { ln.Close() })
		for _, host := range []string{"10.64.0.1", "198.51.100.1"} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			got, err := c.httpGet(ctx, "http://"+net.JoinHostPort(host, port))
			cancel()
			if err == nil {
				t.Errorf("gateway host service on %s answered %q", host, got)
			}
		}
	})
	t.Run("dns", func(t *testing.T) { c.checkDNS(t) })

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, "veil-gw-") {
			t.Errorf("nftables table %s left behind", tb.Name)
		}
	}
	if _, err := netlink.LinkByName("veiltest0"); err == nil {
		t.Error("TUN left behind")
	}
}

// startInternet creates the "internet" namespace from a thread of its own,
// joins it to this one with the veth pair vi0–vg0, and serves HTTP there,
// answering each caller with its address. Sockets keep the namespace they
// were made in, so the server runs on ordinary goroutines afterwards.
func startInternet(t *testing.T) {
	t.Helper()
	here, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	errc := make(chan error, 1)
	var ln net.Listener
	go func() {
		// The thread never returns to this namespace: it exits with the
		// goroutine, still locked.
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(lo); err != nil {
				return err
			}
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vi0"}, PeerName: "vg0", PeerNamespace: netlink.NsFd(int(here))}
			if err := netlink.LinkAdd(veth); err != nil {
				return fmt.Errorf("adding veth: %w", err)
			}
			link, err := netlink.LinkByName("vi0")
			if err != nil {
				return err
			}
			for _, p := range []netip.Prefix{inetV4, inetV6, deniedV4, nat64Allowed, nat64Denied} {
				if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
					return fmt.Errorf("adding address: %w", err)
				}
			}
			if err := netlink.LinkSetUp(link); err != nil {
				return err
			}
			ln, err = net.Listen("tcp", ":80")
			return err
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("internet namespace: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprint(w, strings.TrimPrefix(host, "::ffff:"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}
