package certfile

import (
	"bytes"
	"os"
	"testing"
	"time"

	"veil/internal/dnstest"
)

func TestReloadOnChange(t *testing.T) {
	a := dnstest.NewTLSFiles(t, "a.test")
	b := dnstest.NewTLSFiles(t, "b.test")
	f, err := Load(a.CertFile, a.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := f.GetCertificate(nil)
	if first != f.Certificate() {
		t.Fatal("Certificate differs from what GetCertificate serves")
	}
	// A broken renewal keeps the certificate in use.
	if err := os.WriteFile(a.CertFile, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.checked = time.Time{}
	if got, _ := f.GetCertificate(nil); got != first {
		t.Fatal("an unreadable renewal replaced the certificate")
	}
	for _, p := range [][2]string{{b.CertFile, a.CertFile}, {b.KeyFile, a.KeyFile}} {
		data, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	future := time.Now().Add(time.Hour)
	os.Chtimes(a.CertFile, future, future)
	os.Chtimes(a.KeyFile, future, future)
	if got, _ := f.GetCertificate(nil); got != first {
		t.Fatal("read again before the recheck interval")
	}
	f.checked = time.Time{}
	got, _ := f.GetCertificate(nil)
	if got == first || bytes.Equal(got.Certificate[0], first.Certificate[0]) {
		t.Fatal("a renewed certificate was not taken up")
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load("/nonexistent/cert.pem", "/nonexistent/key.pem"); err == nil {
		t.Fatal("no error for missing files")
	}
}
