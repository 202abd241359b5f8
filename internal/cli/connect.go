package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/proxy"

	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/config"
	"veil/internal/tools/dnsleak"
)

type connectFlags struct {
	state, location, mode, socks, httpProxy string
	via                                     string
	transport, portalCheck                  string
	killSwitch, foreground, noPQ            bool
	readyFD                                 int
	mtu                                     int
	timeout, keyRotation                    time.Duration
	logLevel                                string
	block                                   []string
	settings                                *clientFlags
}

func newConnectCmd() *cobra.Command {
	var f connectFlags
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Connect to a Veil gateway",
		Long: `Connect to the least loaded online gateway of a location and keep the
tunnel up in a background process; return once it is up.

Modes: tun (root) routes the whole system through the tunnel, sets DNS to
the gateway's resolver and, unless --kill-switch=false, installs a kill
switch that lets nothing out but the tunnel until ` + "`veil disconnect`" + `.
A kill switch left on by a connection that died or failed is taken over
by the next tun-mode connect, which reaches the control plane through it.
proxy (no root) offers the tunnel as a SOCKS5 and an HTTP proxy on
127.0.0.1; names are resolved through the tunnel. The default is tun as
root, proxy otherwise.

--transport auto (the default) tries plain WireGuard over UDP, then, if
the gateway does not answer, WireGuard over QUIC and then over TLS on
TCP 443, for networks that block WireGuard; udp, quic or tls picks one.

--via ENTRY (multihop) enters at the gateway ENTRY names and exits at the
one --location names: the entry forwards the encrypted WireGuard packets
without seeing where they go, and the exit sees the entry's address, not
this host's. Multihop relays plain UDP only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.settings.load(cmd, config.Client{SOCKS: client.DefaultSOCKS, HTTPProxy: client.DefaultHTTPProxy, Transport: client.DefaultTransport,
				KeyRotation: config.Duration(client.DefaultKeyRotation)})
			if err != nil {
				return err
			}
			f.state, f.socks, f.httpProxy, f.transport = cfg.State, cfg.SOCKS, cfg.HTTPProxy, cfg.Transport
			f.noPQ = cfg.NoPQ
			if f.keyRotation = time.Duration(cfg.KeyRotation); f.keyRotation < 0 {
				return errors.New("--key-rotation: want a duration such as 168h, or 0 for never")
			}
			if f.mode == "" {
				f.mode = client.ModeProxy
				if os.Geteuid() == 0 {
					f.mode = client.ModeTUN
				}
			}
			switch f.mode {
			case client.ModeTUN:
				if !cmd.Flags().Changed("kill-switch") {
					f.killSwitch = true
				}
			case client.ModeProxy:
				if f.killSwitch {
					return errors.New("the kill switch needs --mode tun")
				}
			default:
				return fmt.Errorf("unknown --mode %q: tun or proxy", f.mode)
			}
			if err := client.ValidMTU(f.mtu); err != nil {
				return fmt.Errorf("--mtu: %w", err)
			}
			dir, err := stateDir(f.state)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("block") {
				if err := setBlock(cmd.Context(), dir, f.mode, f.block); err != nil {
					return err
				}
			}
			if f.foreground {
				return runForeground(cmd, dir, f)
			}
			return runBackground(cmd, dir, f)
		},
	}
	f.settings = addClientFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.location, "location", "", "country (se), location (se-sto) or gateway name")
	fl.StringVar(&f.via, "via", "", "multihop: enter at this gateway (country, location or name) and exit at --location's")
	fl.StringVar(&f.mode, "mode", "", "tun (root) or proxy (default: tun as root, proxy otherwise)")
	fl.StringVar(&f.socks, "socks", client.DefaultSOCKS, `proxy mode: SOCKS5 listener on loopback, or "off"`)
	fl.StringVar(&f.httpProxy, "http-proxy", client.DefaultHTTPProxy, `proxy mode: HTTP proxy listener on loopback, or "off"`)
	fl.StringVar(&f.transport, "transport", client.DefaultTransport, "how WireGuard reaches the gateway: udp, tls (TCP 443), quic, or auto (UDP, then QUIC, then TLS)")
	fl.BoolVar(&f.killSwitch, "kill-switch", false, "tun mode: block all traffic outside the tunnel until veil disconnect (default on in tun mode)")
	fl.IntVar(&f.mtu, "mtu", 0, "tunnel MTU (default: tun mode probes the path to the gateway, from 1420 down to 1280)")
	fl.BoolVar(&f.foreground, "foreground", false, "stay attached instead of returning once connected")
	fl.BoolVar(&f.noPQ, "no-pq", false, "do not agree a post-quantum (ML-KEM-768) pre-shared key with the gateway")
	fl.DurationVar(&f.timeout, "timeout", 20*time.Second, "how long to wait for the gateway's first handshake")
	fl.Duration("key-rotation", client.DefaultKeyRotation, "replace the device's WireGuard key this often, without dropping the tunnel (0: never)")
	fl.StringVar(&f.logLevel, "log-level", "warn", "foreground log level: debug, info, warn, error")
	fl.StringSliceVar(&f.block, "block", nil, "DNS blocking for this device: "+strings.Join(apitypes.BlockCategories, ",")+" (empty: none; kept for later connections)")
	fl.StringVar(&f.portalCheck, "portal-check", "", `tun mode: plain HTTP URL that answers 204 unless a captive portal intercepts it, fetched before connecting (default: the control plane's /generate_204; "off": no check)`)
	fl.IntVar(&f.readyFD, "ready-fd", 0, "internal: file descriptor to report readiness on")
	fl.MarkHidden("ready-fd")
	return cmd
}

// setBlock saves this device's DNS blocking categories at the control
// plane, which passes them to every gateway's resolver.
func setBlock(ctx context.Context, dir, mode string, block []string) error {
	st, err := loadForConnect(dir, mode)
	if err != nil {
		return err
	}
	api, err := st.API(ctx, dir)
	if err != nil {
		return err
	}
	if _, err := api.SetDeviceBlock(ctx, st.DeviceID, block); err != nil {
		return fmt.Errorf("setting DNS blocking: %w", err)
	}
	return nil
}

// loadForConnect loads the saved login for a connection in mode. When a
// dead tun-mode connection left its kill switch on, a new tun-mode one
// reaches the control plane through it (client.OpenLockdown) and takes it
// over without a moment unprotected; proxy mode cannot get through it.
func loadForConnect(dir, mode string) (*client.State, error) {
	st, err := client.LoadState(dir)
	if err != nil {
		return nil, err
	}
	if mode == client.ModeTUN {
		st.HTTP, err = client.OpenLockdown(dir) // nil when none was left
		return st, err
	}
	left, err := client.Leftover(dir)
	if err == nil && left != nil && left.KillSwitch {
		err = errors.New("the kill switch of an earlier tun-mode connection is on and blocks all traffic: `veil disconnect` lifts it")
	}
	return st, err
}

// runBackground starts `veil connect --foreground` detached (own session,
// no terminal) and waits for it to report, on a pipe, that the tunnel is
// up or why it failed.
func runBackground(cmd *cobra.Command, dir string, f connectFlags) error {
	if _, err := client.QueryStatus(cmd.Context(), dir); err == nil {
		return errors.New("already connected (see `veil status`; `veil disconnect` first)")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the veil binary: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := []string{"connect", "--foreground", "--ready-fd", "3",
		"--state", dir, "--location", f.location, "--via", f.via, "--mode", f.mode,
		"--socks", f.socks, "--http-proxy", f.httpProxy, "--transport", f.transport,
		"--kill-switch=" + strconv.FormatBool(f.killSwitch), "--no-pq=" + strconv.FormatBool(f.noPQ),
		"--portal-check", f.portalCheck,
		"--timeout", f.timeout.String(), "--log-level", f.logLevel, "--key-rotation", f.keyRotation.String()}
	if f.mtu != 0 {
		args = append(args, "--mtu", strconv.Itoa(f.mtu))
	}
	child := exec.Command(exe, args...)
	child.ExtraFiles = []*os.File{w}
	detach(child)
	child.Dir = "/"
	if err := child.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the background process: %w", err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	line, err := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ok":
		st, err := client.QueryStatus(cmd.Context(), dir)
		if err == nil {
			printConnected(cmd.OutOrStdout(), st)
		}
		return nil
	case strings.HasPrefix(line, "error: "):
		<-exited
		return errors.New(strings.TrimPrefix(line, "error: "))
	}
	werr := <-exited
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("the background process did not report: %w", err)
	}
	return fmt.Errorf("the background process exited before the tunnel came up (%v)", werr)
}

func printConnected(w io.Writer, st *client.Status) {
	fmt.Fprintf(w, "Connected to %s (%s), mode %s, over %s", st.Gateway, st.Location, st.Mode, st.Transport)
	if st.Via != "" {
		fmt.Fprintf(w, ", via %s", st.Via)
	}
	if st.KillSwitch {
		fmt.Fprint(w, ", kill switch on")
	}
	fmt.Fprintln(w)
	if st.SOCKS != "" {
		fmt.Fprintf(w, "SOCKS5 proxy: %s\n", st.SOCKS)
	}
	if st.HTTPProxy != "" {
		fmt.Fprintf(w, "HTTP proxy:   %s\n", st.HTTPProxy)
	}
}

// runForeground connects and holds the tunnel until `veil disconnect` or
// a signal. After a signal the kill switch and DNS setting stay: only
// `veil disconnect` lifts them.
func runForeground(cmd *cobra.Command, dir string, f connectFlags) (err error) {
	var ready *os.File
	if f.readyFD > 0 {
		ready = os.NewFile(uintptr(f.readyFD), "ready")
		defer func() {
			if ready == nil {
				return
			}
			if err != nil {
				msg := strings.ReplaceAll(err.Error(), "\n", " ")
				fmt.Fprintf(ready, "error: %s\n", msg)
			}
			ready.Close()
		}()
	}
	stopOn := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}
	if ready != nil {
		// In the background, the hang-up of the terminal that started
		// it is no reason to stop.
		signal.Ignore(syscall.SIGHUP)
		stopOn = stopOn[:2]
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), stopOn...)
	defer stop()
	if _, err := client.QueryStatus(ctx, dir); err == nil {
		return errors.New("already connected (see `veil status`; `veil disconnect` first)")
	}
	st, err := loadForConnect(dir, f.mode)
	if err != nil {
		return err
	}
	log := newLogger(cmd.ErrOrStderr(), f.logLevel).With("component", "client")
	tun, err := up(ctx, dir, st, f, log)
	if err != nil {
		if st.HTTP == nil {
			return err
		}
		// Through a kill switch left on, which stays, and lets the
		// control plane out no longer.
		if serr := client.SealLockdown(dir); serr != nil {
			err = fmt.Errorf("%w; %w", err, serr)
		}
		if !errors.Is(err, client.ErrLockedDown) {
			err = fmt.Errorf("%w; %w", err, client.ErrLockedDown)
		}
		return err
	}
	done := make(chan error, 1)
	go func() { done <- client.Hold(ctx, dir, tun) }()
	// Report readiness once the control socket answers.
	for range 500 {
		if _, err := client.QueryStatus(ctx, dir); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ready != nil {
		fmt.Fprintln(ready, "ok")
		ready.Close()
		ready = nil
	} else {
		s := tun.Status()
		printConnected(cmd.OutOrStdout(), &s)
	}
	return <-done
}

// up picks the gateway and brings the tunnel up.
func up(ctx context.Context, dir string, st *client.State, f connectFlags, log *slog.Logger) (*client.Tunnel, error) {
	if f.mode == client.ModeTUN && st.HTTP == nil {
		if err := beforePortal(ctx, st.Control, f.portalCheck); err != nil {
			return nil, err
		}
	}
	api, err := st.API(ctx, dir)
	if err != nil {
		return nil, err
	}
	reportVersion(ctx, api)
	servers, err := api.Servers(ctx)
	if err != nil {
		return nil, err
	}
	var srv apitypes.Server
	var via *apitypes.Server
	if f.via != "" {
		entry, exit, err := client.PickHops(servers, f.via, f.location)
		if err != nil {
			return nil, err
		}
		srv, via = exit, &entry
	} else if srv, err = client.PickServer(servers, f.location); err != nil {
		return nil, err
	}
	return client.Up(ctx, client.TunnelConfig{
		State: st, Server: srv, Via: via, Location: f.location, Mode: f.mode,
		SOCKS: f.socks, HTTPProxy: f.httpProxy, KillSwitch: f.killSwitch, Transport: f.transport,
		Dir: dir, HandshakeTimeout: f.timeout, Logger: log, KeyRotation: f.keyRotation,
		MTU: f.mtu, NoPQ: f.noPQ,
	})
}

// beforePortal fetches the portal check URL (checkURL, or the control
// plane's) before a tun-mode connection's kill switch is in place, and
// fails when a captive portal answers instead: the user can log in now,
// while nothing blocks the browser. No answer says nothing of a portal;
// the connection goes ahead.
func beforePortal(ctx context.Context, control, checkURL string) error {
	if checkURL == "off" {
		return nil
	}
	if checkURL == "" {
		var err error
		if checkURL, err = client.PortalCheckURL(control); err != nil {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	pc, err := client.CheckPortal(ctx, &http.Client{}, checkURL)
	if err != nil || !pc.Intercepted {
		return nil
	}
	where := "any plain http:// address"
	if pc.Location != "" {
		where = pc.Location
	}
	return fmt.Errorf("a captive portal answers in the control plane's place (HTTP %d): log in to it first (open %s in a browser), then connect again; --portal-check=off skips this check", pc.Status, where)
}

func newStatusCmd() *cobra.Command {
	var f *clientFlags
	var asJSON, check bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the tunnel's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.stateDir(cmd)
			if err != nil {
				return err
			}
			st, err := client.QueryStatus(cmd.Context(), dir)
			if errors.Is(err, client.ErrNotConnected) {
				left, lerr := client.Leftover(dir)
				if lerr == nil && left != nil && left.KillSwitch {
					return errors.New("not connected; the kill switch is still on and blocks all traffic (`veil connect` takes it over, `veil disconnect` lifts it)")
				}
				if asJSON {
					return printJSON(cmd, map[string]any{"connected": false})
				}
				fmt.Fprintln(cmd.OutOrStdout(), "Not connected")
				return nil
			}
			if err != nil {
				return err
			}
			if asJSON && !check {
				return printJSON(cmd, st)
			}
			if !asJSON {
				printStatus(cmd.OutOrStdout(), st)
			}
			if check {
				return runCheck(cmd, dir, st, asJSON)
			}
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&check, "check", false, "also check the exit address and run a DNS leak test")
	return cmd
}

func printStatus(w io.Writer, st *client.Status) {
	if st.State == client.StateReconnecting {
		// The gateway stopped answering: the holding process is looking
		// for its new key or endpoint, or another gateway; the kill
		// switch, if on, still blocks everything outside the tunnel.
		fmt.Fprintf(w, "Reconnecting to %s (%s), mode %s\n", st.Gateway, st.Location, st.Mode)
	} else {
		fmt.Fprintf(w, "Connected to %s (%s), mode %s\n", st.Gateway, st.Location, st.Mode)
	}
	if st.Via != "" {
		fmt.Fprintf(w, "  via %s (entry; %s is the exit)\n", st.Via, st.Gateway)
	}
	fmt.Fprintf(w, "  endpoint:       %s\n", st.Endpoint)
	if st.Transport != "" {
		fmt.Fprintf(w, "  transport:      %s\n", st.Transport)
	}
	fmt.Fprintf(w, "  post-quantum:   %s\n", map[bool]string{true: "yes (ML-KEM-768 pre-shared key)", false: "no"}[st.QuantumResistant])
	if st.IPv4 != "" {
		fmt.Fprintf(w, "  tunnel IPv4:    %s\n", st.IPv4)
	}
	if st.IPv6 != "" {
		fmt.Fprintf(w, "  tunnel IPv6:    %s\n", st.IPv6)
	}
	if st.DNS != "" {
		fmt.Fprintf(w, "  DNS:            %s\n", st.DNS)
	}
	if st.HandshakeAge >= 0 {
		fmt.Fprintf(w, "  last handshake: %s ago\n", time.Duration(st.HandshakeAge)*time.Second)
	} else {
		fmt.Fprintf(w, "  last handshake: none yet\n")
	}
	if st.MTU != 0 {
		fmt.Fprintf(w, "  MTU:            %d\n", st.MTU)
	}
	fmt.Fprintf(w, "  transfer:       %d B received, %d B sent\n", st.RxBytes, st.TxBytes)
	if st.Mode == client.ModeTUN {
		fmt.Fprintf(w, "  kill switch:    %s\n", map[bool]string{true: "on", false: "off"}[st.KillSwitch])
	}
	if st.PortalLeft > 0 {
		fmt.Fprintf(w, "  portal window:  open, %s left (`veil portal --for 0` seals it)\n", time.Duration(st.PortalLeft)*time.Second)
	}
	if st.SOCKS != "" {
		fmt.Fprintf(w, "  SOCKS5 proxy:   %s\n", st.SOCKS)
	}
	if st.HTTPProxy != "" {
		fmt.Fprintf(w, "  HTTP proxy:     %s\n", st.HTTPProxy)
	}
}

// checkResult is `veil status --check --json`.
type checkResult struct {
	Status    *client.Status  `json:"status"`
	ExitIP    string          `json:"exit_ip"`
	Protected bool            `json:"protected"`
	ExitVia   string          `json:"exit_gateway,omitempty"`
	DNSLeak   *dnsleak.Result `json:"dns_leak"`
}

// runCheck asks the control plane's My IP service which address it sees,
// through the tunnel, and runs its DNS leak test with the resolver this
// machine's programs use (tun mode) or the tunnel's (proxy mode).
func runCheck(cmd *cobra.Command, dir string, st *client.Status, asJSON bool) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
	defer cancel()
	s, err := client.LoadState(dir)
	if err != nil {
		return err
	}
	if st.Mode == client.ModeTUN {
		// The kernel delivers loopback traffic locally, never through
		// the tunnel: the control plane would see this machine's own
		// address, and name it the gateway's when that is loopback too.
		if err := checkable(s.Control); err != nil {
			return err
		}
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	resolve := func(ctx context.Context, name string) error {
		_, err := net.DefaultResolver.LookupHost(ctx, name)
		return err
	}
	if st.Mode == client.ModeProxy {
		if st.SOCKS == "" {
			return errors.New("--check in proxy mode needs the SOCKS5 proxy")
		}
		d, err := proxy.SOCKS5("tcp", st.SOCKS, nil, proxy.Direct)
		if err != nil {
			return err
		}
		cd := d.(proxy.ContextDialer)
		hc.Transport = &http.Transport{DialContext: cd.DialContext}
		// The proxy resolves the name through the tunnel before it
		// connects; whether it connects does not matter.
		resolve = func(ctx context.Context, name string) error {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			c, err := cd.DialContext(ctx, "tcp", net.JoinHostPort(name, "80"))
			if err == nil {
				c.Close()
			}
			return err
		}
	}
	var res checkResult
	res.Status = st
	var ip struct {
		IP        string `json:"ip"`
		Protected bool   `json:"protected"`
		Gateway   string `json:"gateway"`
	}
	if err := (&client.API{Base: s.Control, HTTP: hc}).Do(ctx, http.MethodGet, "/api/v1/ip", nil, &ip); err != nil {
		if cerr := checkable(s.Control); cerr != nil {
			return cerr
		}
		return fmt.Errorf("exit check: %w", err)
	}
	res.ExitIP, res.Protected, res.ExitVia = ip.IP, ip.Protected, ip.Gateway
	leak, err := dnsleak.Check(ctx, hc, s.Control, resolve)
	if err != nil {
		return fmt.Errorf("dns leak test: %w", err)
	}
	res.DNSLeak = leak
	if asJSON {
		if err := printJSON(cmd, res); err != nil {
			return err
		}
	} else {
		w := cmd.OutOrStdout()
		verdict := "NOT through Veil"
		if ip.Protected {
			verdict = "through Veil"
		}
		fmt.Fprintf(w, "  exit address:   %s (%s)\n", ip.IP, verdict)
		fmt.Fprintf(w, "  DNS leak test:  %s — %s\n", leak.Verdict, leak.Summary)
	}
	if !ip.Protected || leak.Verdict != dnsleak.NoLeak {
		return exitCode(2)
	}
	return nil
}

// checkable says why --check cannot work against the control plane at
// control: on this machine's loopback it is not reached through the
// tunnel (the proxy keeps loopback destinations off it, and in tun mode
// the kernel delivers them locally), so what it sees says nothing of the
// tunnel.
func checkable(control string) error {
	u, err := url.Parse(control)
	if err != nil {
		return fmt.Errorf("control plane URL: %w", err)
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || (err == nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		return fmt.Errorf("--check cannot run here: the control plane %s is on this machine, which traffic through the tunnel never reaches, so it cannot see the tunnel's exit; it needs a control plane at a public address", control)
	}
	return nil
}

func newDisconnectCmd() *cobra.Command {
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "disconnect",
		Short: "Take the tunnel down, restore DNS and lift the kill switch",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.stateDir(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			err = client.Disconnect(ctx, dir)
			if errors.Is(err, client.ErrNotConnected) {
				fmt.Fprintln(cmd.OutOrStdout(), "Not connected")
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Disconnected")
			return nil
		},
	}
	f = addClientFlags(cmd)
	return cmd
}
