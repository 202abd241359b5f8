//go:build unix

package cli

import (
	"os/exec"
	"syscall"
)

// detach gives the background process a process group of its own, which
// keeps the terminal's Ctrl-C and job control away from it (and it
// ignores SIGHUP), but leaves it in the caller's session, as the
// wireguard-go daemon does: a session of its own would put it in a
// scheduler autogroup of its own, and on a busy machine a tunnel in its
// own autogroup moves 10-20% less traffic (bench/tunnel/RESULTS.md, path
// wg/sid).
func detach(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
