package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"veil/internal/wg"
)

// Tunnel MTU bounds. The search starts at wg.DefaultMTU (what fits a
// 1500-byte path) and goes no lower than MinMTU, IPv6's minimum link MTU:
// below it the kernel would take IPv6 off the interface.
const (
	MinMTU = 1280
	MaxMTU = 8192 // the largest the stream transports frame
)

// Probe timing: a round sends every size, again after probeResend to
// those still unanswered, and ends probeWait after the first send, or
// once the largest size has answered.
const (
	probeResend = 300 * time.Millisecond
	probeWait   = 900 * time.Millisecond
	// probeStep is the spacing of the first round's sizes; the second
	// tries every size between the largest answered and the next.
	probeStep = 20
	// probeSmall is a size any path carries: whether it answers tells a
	// gateway that does not answer pings from a path narrower than MinMTU.
	probeSmall = 128
)

// probeRound sends an ICMP echo request of each of sizes (whole IP
// packets, with DF) through the tunnel to the gateway's tunnel address
// and returns the largest size whose reply came back, zero if none did.
type probeRound func(ctx context.Context, sizes []int) (int, error)

// ValidMTU checks a tunnel MTU given by the user (--mtu).
func ValidMTU(mtu int) error {
	if mtu != 0 && (mtu < MinMTU || mtu > MaxMTU) {
		return fmt.Errorf("MTU %d: want %d to %d", mtu, MinMTU, MaxMTU)
	}
	return nil
}

// searchMTU finds the largest tunnel MTU in [MinMTU, hi] that the path
// to the gateway carries both ways, in two rounds of probes: every
// probeStep bytes down from hi, then every byte between the largest that
// answered and the next size up. ok is false when not even a small probe
// answered (the gateway ignores pings, or the tunnel carries nothing):
// nothing was learnt. A path that carries less than MinMTU gets MinMTU,
// the least IPv6 allows.
func searchMTU(ctx context.Context, hi int, round probeRound) (mtu int, ok bool, err error) {
	var sizes []int
	for s := hi; s > MinMTU; s -= probeStep {
		sizes = append(sizes, s)
	}
	sizes = append(sizes, MinMTU, probeSmall)
	best, err := round(ctx, sizes)
	switch {
	case err != nil:
		return 0, false, err
	case best == 0:
		return 0, false, nil
	case best < MinMTU:
		return MinMTU, true, nil
	case best == hi:
		return hi, true, nil
	}
	sizes = sizes[:0]
	for s := min(best+probeStep-1, hi-1); s > best; s-- {
		sizes = append(sizes, s)
	}
	next, err := round(ctx, sizes)
	if err != nil {
		return 0, false, err
	}
	return max(best, next), true, nil
}

// tunnelMTU is the MTU the tunnel starts with: the user's, or the
// default, which probing may then lower.
func (t *Tunnel) tunnelMTU() int {
	if t.cfg.MTU != 0 {
		return t.cfg.MTU
	}
	return wg.DefaultMTU
}

// findMTU probes the path to the gateway, in tun mode and unless the user
// set the MTU, and lowers the TUN's MTU to what the path carries: on a
// path narrower than 1500 bytes that drops ICMP "fragmentation needed"
// (an MTU black hole), full-sized tunnel packets would vanish and large
// transfers stall.
func (t *Tunnel) findMTU(ctx context.Context) error {
	t.mtu.Store(int64(t.tunnelMTU()))
	if t.cfg.MTU != 0 || t.tun == nil {
		return nil
	}
	if err := t.probeMTU(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A tunnel at the default MTU is still a tunnel.
		t.log.Warn("keeping the default MTU", "err", err)
	}
	return nil
}

// reprobeMTU probes again once a tunnel that was reconnecting works: the
// gateway, or the network this machine is on, may have changed, and with
// them the path.
func (t *Tunnel) reprobeMTU(ctx context.Context) {
	if t.cfg.MTU != 0 || t.tun == nil {
		return
	}
	if err := t.probeMTU(ctx); err != nil {
		t.log.Warn("probing the path MTU again failed", "err", err)
	}
}

// probeMTU searches from the starting MTU down, the TUN first set back to
// it (the kernel sends nothing larger than the link's MTU), and leaves the
// TUN at what the search found.
func (t *Tunnel) probeMTU(ctx context.Context) error {
	t.mu.Lock()
	gw, err := parseAddr(t.server.TunnelIPv4)
	t.mu.Unlock()
	if err != nil || !gw.Is4() {
		return nil // nothing to probe: keep what is set
	}
	start, cur := t.tunnelMTU(), int(t.mtu.Load())
	if cur != start {
		if err := setLinkMTU(t.cfg.TUNName, start); err != nil {
			return err
		}
	}
	mtu, ok, err := searchMTU(ctx, start, func(ctx context.Context, sizes []int) (int, error) {
		return pingSizes(ctx, t.cfg.TUNName, gw, sizes)
	})
	if err == nil && !ok {
		t.log.Warn("the gateway did not answer MTU probes; keeping the MTU", "mtu", cur)
		mtu = cur
	}
	if err != nil {
		mtu, err = cur, fmt.Errorf("probing the path MTU: %w", err)
	}
	if mtu != start {
		if serr := setLinkMTU(t.cfg.TUNName, mtu); serr != nil {
			return errors.Join(err, serr)
		}
	}
	t.mtu.Store(int64(mtu))
	if err == nil && ok {
		t.log.Info("path MTU probed", "mtu", mtu)
	}
	return err
}
