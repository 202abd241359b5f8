package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics exposes aggregate figures only: counts of accounts and peers,
// gateway load totals, the peer-map version. No metric has a label that
// could hold a client address, a key or a name a client asked for (P1–P3).
type metrics struct {
	s *Service

	accounts, gwPeers, gwRx, gwTx, gwOnline, peerVersion *prometheus.Desc
}

func newMetrics(s *Service) *metrics {
	return &metrics{
		s:           s,
		accounts:    prometheus.NewDesc("veil_accounts", "Accounts held.", nil, nil),
		gwPeers:     prometheus.NewDesc("veil_gateway_peers", "Peers a gateway reports connected.", []string{"gateway", "location"}, nil),
		gwRx:        prometheus.NewDesc("veil_gateway_rx_bytes_total", "Bytes a gateway reports received from all its peers.", []string{"gateway", "location"}, nil),
		gwTx:        prometheus.NewDesc("veil_gateway_tx_bytes_total", "Bytes a gateway reports sent to all its peers.", []string{"gateway", "location"}, nil),
		gwOnline:    prometheus.NewDesc("veil_gateway_online", "1 when the gateway reported in the last 90 seconds.", []string{"gateway", "location"}, nil),
		peerVersion: prometheus.NewDesc("veil_peer_map_version", "Current version of the peer map.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.accounts, m.gwPeers, m.gwRx, m.gwTx, m.gwOnline, m.peerVersion} {
		ch <- d
	}
}

// Collect implements prometheus.Collector, reading the store at scrape time.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := m.s.Store
	if n, err := st.CountAccounts(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(m.accounts, prometheus.GaugeValue, float64(n))
	}
	if v, err := st.PeerVersion(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(m.peerVersion, prometheus.GaugeValue, float64(v))
	}
	gws, err := st.Gateways(ctx)
	if err != nil {
		return
	}
	for _, g := range gws {
		online := 0.0
		if !g.LastSeen.IsZero() && time.Since(g.LastSeen) < 90*time.Second {
			online = 1
		}
		ch <- prometheus.MustNewConstMetric(m.gwPeers, prometheus.GaugeValue, float64(g.Peers), g.Name, g.Location)
		ch <- prometheus.MustNewConstMetric(m.gwRx, prometheus.CounterValue, float64(g.RxBytes), g.Name, g.Location)
		ch <- prometheus.MustNewConstMetric(m.gwTx, prometheus.CounterValue, float64(g.TxBytes), g.Name, g.Location)
		ch <- prometheus.MustNewConstMetric(m.gwOnline, prometheus.GaugeValue, online, g.Name, g.Location)
	}
}

// MetricsMux serves GET /metrics with cs and the Go runtime's and the
// process's collectors: the operator listener of serve and of gateway.
func MetricsMux(cs ...prometheus.Collector) *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// startAdminHTTP serves /metrics on the operator listener, never on the
// public one.
func (s *Service) startAdminHTTP() error {
	if s.Config.AdminHTTP == "" {
		return nil
	}
	mux := MetricsMux(newMetrics(s), builtinMetrics{s})
	ln, err := net.Listen("tcp", s.Config.AdminHTTP)
	if err != nil {
		return fmt.Errorf("listening on %s (admin_http): %w", s.Config.AdminHTTP, err)
	}
	s.adminAddr = ln.Addr()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog}
	s.adminSrv = srv
	s.goRun(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving admin http: %w", err)
		}
		return nil
	})
	return nil
}

// AdminURL is the base URL of the operator listener, or "" when off.
func (s *Service) AdminURL() string {
	if s.adminAddr == nil {
		return ""
	}
	return "http://" + s.adminAddr.String()
}
