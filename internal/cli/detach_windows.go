package cli

import (
	"os/exec"
	"syscall"
)

// detach puts the background process in a process group of its own, so
// that the console's Ctrl-C does not reach it.
func detach(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
