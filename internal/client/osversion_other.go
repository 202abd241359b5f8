//go:build !linux

package client

import "runtime"

// OSVersion is the OS name.
func OSVersion() string { return runtime.GOOS }
