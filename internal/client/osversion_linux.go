package client

import (
	"runtime"
	"strings"
	"syscall"
)

// OSVersion is the OS name and, on Linux, the kernel's major.minor
// version: coarse enough to be shared by many people ("linux 6.1").
func OSVersion() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return runtime.GOOS
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	parts := strings.SplitN(b.String(), ".", 3)
	if len(parts) < 2 {
		return runtime.GOOS
	}
	minor := strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	return runtime.GOOS + " " + parts[0] + "." + minor
}
