package config

import "testing"

func TestTransportPorts(t *testing.T) {
	tests := []struct {
		wg, tls, quic int
		ok            bool
	}{
		{51820, 443, 443, true},
		{51820, 0, 0, true},
		{51820, 443, 51820, false},
		{51820, -1, 443, false},
		{51820, 443, 70000, false},
	}
	for _, tt := range tests {
		if err := checkTransportPorts(tt.wg, tt.tls, tt.quic); (err == nil) != tt.ok {
			t.Errorf("checkTransportPorts(%d, %d, %d) = %v, want ok=%v", tt.wg, tt.tls, tt.quic, err, tt.ok)
		}
	}
	g := DefaultGateway()
	g.Control, g.Token = "https://veil.example", "t"
	if err := g.Validate(); err != nil || g.TLSPort != 443 || g.QUICPort != 443 {
		t.Fatalf("default gateway: %v, TLS %d, QUIC %d", err, g.TLSPort, g.QUICPort)
	}
	g.TLSCert = "/nonexistent.pem"
	if err := g.Validate(); err == nil {
		t.Fatal("tls_cert without tls_key accepted")
	}
}
