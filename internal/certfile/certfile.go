// Package certfile is the one place that reads a TLS certificate and its
// key from PEM files, and reads them again when they change, so that a
// renewed certificate is taken up without a restart.
package certfile

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// recheck is how often the files are looked at again.
const recheck = time.Minute

// Files is a certificate chain and key read from two PEM files.
type Files struct {
	cert, key string

	mu      sync.Mutex
	current *tls.Certificate
	stamp   [2]time.Time // the files' modification times when read
	checked time.Time
}

// Load reads the PEM certificate chain in certFile and its key in keyFile.
func Load(certFile, keyFile string) (*Files, error) {
	f := &Files{cert: certFile, key: keyFile}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// Certificate is the certificate as read last, for servers that fix
// their certificate (and its pin) at start.
func (f *Files) Certificate() *tls.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// GetCertificate is a tls.Config.GetCertificate that serves the files
// and reads them again when either changes (checked once a minute). A
// renewal that cannot be read leaves the certificate in use unchanged.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) >= recheck {
		f.checked = time.Now()
		if s, err := f.stamps(); err == nil && s != f.stamp {
			_ = f.load() // keeps the current one on failure
		}
	}
	return f.current, nil
}

func (f *Files) stamps() ([2]time.Time, error) {
	var s [2]time.Time
	for i, name := range []string{f.cert, f.key} {
		fi, err := os.Stat(name)
		if err != nil {
			return s, err
		}
		s[i] = fi.ModTime()
	}
	return s, nil
}

func (f *Files) load() error {
	// The caller says what the certificate is for; the loader says which
	// files failed, which the os error already does and the tls one does not.
	s, err := f.stamps()
	if err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return fmt.Errorf("%s and %s: %w", f.cert, f.key, err)
	}
	f.current, f.stamp, f.checked = &c, s, time.Now()
	return nil
}
