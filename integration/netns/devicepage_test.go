//go:build linux

package netns

import (
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"veil/integration/harness"
)

// TestDevicePageWGQuick is a phone or router set up from the account
// page: Chromium adds a device there, the test reads the QR code the
// page drew from a screenshot, as the WireGuard app's camera would, and
// the decoded file, brought up with wg-quick in the client namespace,
// reaches the internet host through the gateway.
func TestDevicePageWGQuick(t *testing.T) {
	requireNetns(t, "wg-quick", "wireguard-go")
	ctx := harness.Chromium(t, 3*time.Minute)
	tp := newTopo(t)
	gw := tp.startGateway(t, tunGateway)
	code := tp.veil(t, tp.g, "admin", "account", "create", "--days", "30", "--control", control, "--data", gw.data)
	// The browser runs on the host; its connections reach the site from
	// the client namespace, as a browser there would.
	site := forwardFrom(t, tp.c, strings.TrimPrefix(control, "http://"))
	pd := harness.AddDeviceOnPage(t, ctx, "http://"+site, code, "router")
	if pd.QR != pd.Download {
		t.Fatalf("the QR code and the download differ:\n%s\n---\n%s", pd.QR, pd.Download)
	}
	if !strings.Contains(pd.QR, "Endpoint = "+gwIn4+":"+gw.port) {
		t.Fatalf("the page's file is not for the gateway:\n%s", pd.QR)
	}
	down := tp.wgQuickUp(t, "vq1", pd.QR)
	t.Cleanup(down)
	tp.checkExit(t)
}

// forwardFrom listens on the host's loopback and carries each connection
// to addr from inside namespace ns. It returns the address listened on.
func forwardFrom(t *testing.T, ns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := dialIn(ns, addr)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// dialIn opens a TCP connection from inside namespace ns: the socket is
// made on a thread moved into ns, and stays there.
func dialIn(ns, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	// A thread that cannot go back stays locked, and ends with its
	// goroutine instead of serving others from the wrong namespace.
	if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return c, err
}
