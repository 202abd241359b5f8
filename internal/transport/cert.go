package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// SelfSigned makes a certificate for name (a host name, or empty) whose
// key lives in RAM only, as the gateway's WireGuard key does when no key
// file is set. Clients trust it by its pin, not by a signature.
func SelfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating TLS certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if name != "" {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Pin is the base64 SHA-256 of a certificate's public key (its
// SubjectPublicKeyInfo), as in HTTP public key pinning: it stays the same
// when a certificate is renewed with the same key.
func Pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// CertPin returns the pin of c's leaf certificate.
func CertPin(c tls.Certificate) (string, error) {
	leaf := c.Leaf
	if leaf == nil {
		if len(c.Certificate) == 0 {
			return "", errors.New("TLS certificate is empty")
		}
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return "", fmt.Errorf("reading TLS certificate: %w", err)
		}
	}
	return Pin(leaf), nil
}

// ErrPin is wrapped by the error of a handshake with a server whose
// certificate does not match the pin the control plane published.
var ErrPin = errors.New("the gateway's TLS certificate does not match its published pin")

// clientTLS is the TLS configuration of a client dialing a gateway: TLS
// 1.3 only, the server name if it has one, and the certificate accepted
// only if its key matches pin. The usual chain check is replaced, not
// skipped: a self-signed certificate with the pinned key is accepted, any
// other is refused whoever signed it.
func clientTLS(pin, serverName string, alpn []string) *tls.Config {
	want, _ := base64.StdEncoding.DecodeString(pin)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		NextProtos: alpn,
		// The chain is checked by VerifyConnection against the pin.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || len(want) != sha256.Size {
				return ErrPin
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if subtle.ConstantTimeCompare(sum[:], want) != 1 {
				return ErrPin
			}
			return nil
		},
	}
}
