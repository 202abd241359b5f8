package gateway

import "github.com/prometheus/client_golang/prometheus"

// collector exports the gateway's aggregate counts: how many devices the
// peer map authorises, how many are on the WireGuard device now, how many
// of those are capped and how many packets the caps dropped. No
// label names a peer (P1, P3).
type collector struct {
	g                       *Gateway
	active, authorized, max *prometheus.Desc
	capped, capDrops        *prometheus.Desc
}

// Collector returns the gateway's Prometheus collector.
func (g *Gateway) Collector() prometheus.Collector {
	return &collector{
		g:          g,
		active:     prometheus.NewDesc("veil_gateway_active_peers", "Devices on this gateway's WireGuard device now (put there by their first handshake, removed when idle).", nil, nil),
		authorized: prometheus.NewDesc("veil_gateway_authorized_peers", "Devices the peer map lets into this gateway.", nil, nil),
		max:        prometheus.NewDesc("veil_gateway_active_peers_max", "The most devices active at once on this gateway.", nil, nil),
		capped:     prometheus.NewDesc("veil_gateway_capped_peers", "Active devices whose plan caps their bandwidth (the free plan).", nil, nil),
		capDrops:   prometheus.NewDesc("veil_gateway_cap_drops_total", "Packets dropped over a plan's bandwidth cap, all devices together.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.authorized
	ch <- c.max
	ch <- c.capped
	ch <- c.capDrops
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.g.mu.Lock()
	active, authorized := len(c.g.peers.active), len(c.g.peers.peers)
	c.g.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(c.authorized, prometheus.GaugeValue, float64(authorized))
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(c.g.maxPeers()))
	ch <- prometheus.MustNewConstMetric(c.capped, prometheus.GaugeValue, float64(c.g.peers.caps.len()))
	ch <- prometheus.MustNewConstMetric(c.capDrops, prometheus.CounterValue, float64(c.g.peers.caps.drops.Load()))
}
