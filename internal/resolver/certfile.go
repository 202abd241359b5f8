package resolver

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certRecheck is how often the certificate files are looked at again.
const certRecheck = time.Minute

// CertFiles reads a PEM certificate chain and its key, and returns an
// EncryptedConfig.GetCertificate that serves them and reads them again
// when either file changes (checked once a minute), so that a renewed
// certificate is taken up without a restart. A renewal that cannot be
// read leaves the certificate in use unchanged.
func CertFiles(certFile, keyFile string) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	cf := &certFiles{cert: certFile, key: keyFile}
	if err := cf.load(); err != nil {
		return nil, err
	}
	return cf.get, nil
}

type certFiles struct {
	cert, key string

	mu      sync.Mutex
	current *tls.Certificate
	stamp   [2]time.Time // the files' modification times when read
	checked time.Time
}

func (cf *certFiles) stamps() ([2]time.Time, error) {
	var s [2]time.Time
	for i, f := range []string{cf.cert, cf.key} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, err
		}
		s[i] = fi.ModTime()
	}
	return s, nil
}

func (cf *certFiles) load() error {
	s, err := cf.stamps()
	if err != nil {
		return fmt.Errorf("reading DNS certificate: %w", err)
	}
	c, err := tls.LoadX509KeyPair(cf.cert, cf.key)
	if err != nil {
		return fmt.Errorf("reading DNS certificate: %w", err)
	}
	cf.current, cf.stamp, cf.checked = &c, s, time.Now()
	return nil
}

func (cf *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if time.Since(cf.checked) >= certRecheck {
		cf.checked = time.Now()
		if s, err := cf.stamps(); err == nil && s != cf.stamp {
			_ = cf.load() // keeps the current one on failure
		}
	}
	return cf.current, nil
}
