package certfile

import (
	"bytes"
	"os"
	"path/filepath"
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

// TestLoadErrors checks the exact text of a load error: the loader names
// the files and the cause once; what the files are for is the caller's to say.
func TestLoadErrors(t *testing.T) {
	files := dnstest.NewTLSFiles(t, "a.test")
	corrupt := filepath.Join(t.TempDir(), "corrupt.pem")
	if err := os.WriteFile(corrupt, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, cert, key, want string
	}{
		{"missing", "/nonexistent/cert.pem", "/nonexistent/key.pem",
			"stat /nonexistent/cert.pem: no such file or directory"},
		{"corrupt certificate", corrupt, files.KeyFile,
			corrupt + " and " + files.KeyFile + ": tls: failed to find any PEM data in certificate input"},
		{"corrupt key", files.CertFile, corrupt,
			files.CertFile + " and " + corrupt + ": tls: failed to find any PEM data in key input"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.cert, tt.key)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}
