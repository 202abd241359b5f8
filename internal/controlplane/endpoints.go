package controlplane

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// endpointResolver resolves the host names in gateways' endpoints for the
// server list. A client in tun mode needs it: when its gateway stops
// answering, its DNS points into the tunnel that is down, so it can only
// follow a gateway whose endpoint is a name through addresses the control
// plane resolved. Answers are cached; the names are the operator's, never
// a client's.
type endpointResolver struct {
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]endpointEntry // by host
}

type endpointEntry struct {
	addrs   []netip.Addr
	expires time.Time
}

const (
	endpointTTL           = 5 * time.Minute
	endpointFailTTL       = 30 * time.Second // a name that failed is tried again after this
	endpointLookupTimeout = 2 * time.Second
)

func newEndpointResolver(now func() time.Time) *endpointResolver {
	return &endpointResolver{
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		now:   now,
		cache: make(map[string]endpointEntry),
	}
}

// resolve returns, for each endpoint "HOST:PORT" whose host is a name,
// its addresses as "ADDR:PORT". Names not cached are looked up at once,
// together, within endpointLookupTimeout; an endpoint that does not
// resolve is left out.
func (e *endpointResolver) resolve(ctx context.Context, endpoints []string) map[string][]string {
	ports := make(map[string][]string) // host -> endpoints naming it
	for _, ep := range endpoints {
		host, _, err := net.SplitHostPort(ep)
		if err != nil || host == "" {
			continue
		}
		if _, err := netip.ParseAddr(host); err == nil {
			continue // an address already
		}
		ports[host] = append(ports[host], ep)
	}
	now := e.now()
	var missing []string
	e.mu.Lock()
	for host := range ports {
		if ent, ok := e.cache[host]; !ok || !now.Before(ent.expires) {
			missing = append(missing, host)
		}
	}
	e.mu.Unlock()
	if len(missing) > 0 {
		ctx, cancel := context.WithTimeout(ctx, endpointLookupTimeout)
		var wg sync.WaitGroup
		for _, host := range missing {
			wg.Go(func() {
				addrs, err := e.lookup(ctx, host)
				ent := endpointEntry{addrs: addrs, expires: now.Add(endpointTTL)}
				if err != nil || len(addrs) == 0 {
					ent = endpointEntry{expires: now.Add(endpointFailTTL)}
				}
				e.mu.Lock()
				e.cache[host] = ent
				e.mu.Unlock()
			})
		}
		wg.Wait()
		cancel()
	}
	out := make(map[string][]string)
	e.mu.Lock()
	defer e.mu.Unlock()
	for host, eps := range ports {
		addrs := e.cache[host].addrs
		for _, ep := range eps {
			_, port, _ := net.SplitHostPort(ep)
			for _, a := range addrs {
				out[ep] = append(out[ep], net.JoinHostPort(a.Unmap().String(), port))
			}
		}
	}
	return out
}
