package config

import (
	"fmt"
	"io"
	"os"
)

// MaxTextFile bounds the text files an operator names: the configuration
// file, the policy text, the root hints, the gateway's key file.
const MaxTextFile = 1 << 20

// MaxBlocklistFile bounds a DNS blocklist, which may list millions of
// names.
const MaxBlocklistFile = 64 << 20

// ReadFile reads path, a file the operator named: a regular file of at
// most limit bytes, so that a device such as /dev/zero or an endless file
// stops start-up with one line naming it instead of filling memory.
func ReadFile(path string, limit int64) ([]byte, error) {
	if err := CheckFile(path, limit); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The size can change after the check, or lie (files under /proc).
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(path, limit)
	}
	return b, nil
}

// CheckFile reports, without reading it, whether path is a regular file
// of at most limit bytes; the error names the file.
func CheckFile(path string, limit int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return tooLarge(path, limit)
	}
	return nil
}

func tooLarge(path string, limit int64) error {
	if limit%(1<<20) == 0 {
		return fmt.Errorf("%s is larger than %d MiB", path, limit>>20)
	}
	return fmt.Errorf("%s is larger than %d bytes", path, limit)
}

// OpenFile opens path, a file the operator named, to be read as a
// stream: a regular file, whose reader fails once it has given more than
// limit bytes (the file can grow after the check).
func OpenFile(path string, limit int64) (io.ReadCloser, error) {
	if err := CheckFile(path, limit); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &boundedFile{f: f, path: path, left: limit}, nil
}

type boundedFile struct {
	f    *os.File
	path string
	left int64
}

func (b *boundedFile) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.grew()
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.f.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, b.grew()
	}
	return n, err
}

func (b *boundedFile) grew() error {
	return fmt.Errorf("%s grew past its limit while being read", b.path)
}

func (b *boundedFile) Close() error { return b.f.Close() }
