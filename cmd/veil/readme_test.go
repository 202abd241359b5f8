package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// readmeBlock returns the indented command lines under a heading of
// README.md.
func readmeBlock(t testing.TB, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(rest))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "    ") {
			lines = append(lines, strings.TrimSpace(l))
		} else if strings.TrimSpace(l) != "" && len(lines) > 0 {
			break
		}
	}
	if len(lines) == 0 {
		t.Fatalf("README.md has no commands under %q", heading)
	}
	return lines
}

// freePort returns a TCP port on loopback nothing listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestReadmeOneMachine pastes the README's "Try it on one machine" block
// into a fresh bash, as a new user would, with a fresh data directory
// and free ports given through the VEIL_* variables serve, admin and the
// client all read. `make build` is the binary this test built (the
// block runs outside the source tree); curl is left out, as tests send
// nothing beyond loopback.
func TestReadmeOneMachine(t *testing.T) {
	bin := veilBin(t)
	work := t.TempDir()
	shims := filepath.Join(work, "shims")
	os.Mkdir(shims, 0o755)
	os.WriteFile(filepath.Join(shims, "make"), []byte("#!/bin/sh\n[ \"$1\" = build ] || exit 2\nmkdir -p bin && cp \"$VEIL_TEST_BIN\" bin/veil\n"), 0o755)
	dir := filepath.Join(work, "cwd")
	os.Mkdir(dir, 0o755)

	var script []string
	for _, l := range readmeBlock(t, "## Try it on one machine") {
		if strings.HasPrefix(l, "curl ") {
			continue
		}
		script = append(script, l)
	}
	httpAddr := freePort(t)
	env := append(os.Environ(),
		"PATH="+shims+":"+os.Getenv("PATH"), "VEIL_TEST_BIN="+bin,
		"XDG_CONFIG_HOME="+filepath.Join(work, "xdg"),
		"VEIL_HTTP="+httpAddr, "VEIL_CONTROL=http://"+httpAddr,
		"VEIL_WG_PORT=0", "VEIL_ADMIN_HTTP=127.0.0.1:0",
		"VEIL_SOCKS=127.0.0.1:0", "VEIL_HTTP_PROXY=127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", strings.Join(script, "\n"))
	cmd.Dir, cmd.Env = dir, env
	// Its own process group, so that whatever the block left running
	// (serve, if it failed early) goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		c := exec.Command(filepath.Join(dir, "bin", "veil"), "disconnect")
		c.Env = env
		c.Run()
	})
	err = cmd.Wait()
	got := out.String()
	t.Logf("the block:\n%s\nprinted:\n%s", strings.Join(script, "\n"), got)
	if err != nil {
		t.Errorf("bash: %v", err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Logged in\. This device's tunnel addresses: 10\.64\.0\.2/32`),
		regexp.MustCompile(`(?m)^local\s+xx-local\s+\d+%\s+online\s`),
		regexp.MustCompile(`(?m)^Connected to local \(xx-local\), mode proxy$`),
		regexp.MustCompile(`(?m)^veil: --check cannot run here: the control plane http://` + regexp.QuoteMeta(httpAddr) + ` is on this machine.*$`),
		regexp.MustCompile(`(?m)^Disconnected$`),
		// Wait returns once every process holding the output has closed
		// it: serve has stopped, on the block's last line.
		regexp.MustCompile(`(?m)level=INFO msg=stopped$`),
	} {
		if !want.MatchString(got) {
			t.Errorf("the block's output lacks %s", want)
		}
	}
	// --check's line is the only complaint.
	if n := strings.Count(got, "veil: "); n != 1 {
		t.Errorf("%d lines of errors, want only --check's", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "veil-data", "admin-token")); err != nil {
		t.Errorf("serve did not keep its data in ./veil-data: %v", err)
	}
}

func TestVersion(t *testing.T) {
	bin := veilBin(t)
	flag, _, code := veil(t, bin, "--version")
	sub, _, _ := veil(t, bin, "version")
	if code != 0 || !regexp.MustCompile(`^veil \S+\n$`).MatchString(flag) || flag != sub {
		t.Errorf("--version printed %q (exit %d), version %q", flag, code, sub)
	}
	tagged := filepath.Join(t.TempDir(), "veil")
	if out, err := exec.Command("go", "build", "-ldflags", "-X veil/internal/cli.Version=1.4.2", "-o", tagged, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, _, _ := veil(t, tagged, "--version"); out != "veil 1.4.2\n" {
		t.Errorf("built with Version=1.4.2, --version printed %q", out)
	}
}

// TestLoginKeepsCodeOffCommandLine: the access code is read at a prompt
// that does not echo it, or from standard input, so that it never shows
// in the process list.
func TestLoginKeepsCodeOffCommandLine(t *testing.T) {
	bin := veilBin(t)
	data := filepath.Join(t.TempDir(), "veil-data")
	srv := startServe(t, bin, "--data", data, "--http", "127.0.0.1:0", "--wg-port", "0", "--admin-http", "", "--builtin-gateway=false")
	defer srv.stop(t)
	admin := func() string {
		t.Helper()
		out, stderr, rc := veil(t, bin, "admin", "account", "create", "--data", data, "--control", srv.url)
		if rc != 0 || stderr != "" || !regexp.MustCompile(`^\d{16}\n$`).MatchString(out) {
			t.Fatalf("account create: exit %d, stdout %q, stderr %q; want the code alone", rc, out, stderr)
		}
		return strings.TrimSpace(out)
	}

	t.Run("stdin", func(t *testing.T) {
		for _, args := range [][]string{{"login", "-"}, {"login"}} {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "VEIL_CONTROL="+srv.url, "VEIL_STATE="+t.TempDir())
			cmd.Stdin = strings.NewReader(admin() + "\n")
			if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "Logged in.") {
				t.Errorf("%v with the code on stdin: %v\n%s", args, err, out)
			}
		}
	})

	t.Run("prompt", func(t *testing.T) {
		code := admin()
		cmd := exec.Command(bin, "login", "--control", srv.url, "--state", t.TempDir())
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		var seen bytes.Buffer
		buf := make([]byte, 256)
		for !strings.Contains(seen.String(), "Access code: ") {
			n, err := tty.Read(buf)
			if err != nil {
				t.Fatalf("no prompt: %v, %q", err, seen.String())
			}
			seen.Write(buf[:n])
		}
		// The prompt is printed just before echo goes off: type once it is
		// off, as a person does, not in that instant.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); err == nil && tio.Lflag&unix.ECHO == 0 {
				break
			}
		}
		tty.WriteString(code + "\n")
		for {
			n, err := tty.Read(buf)
			seen.Write(buf[:n])
			if err != nil {
				break // the command exited and closed its end
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("login at a prompt: %v\n%s", err, seen.String())
		}
		if !strings.Contains(seen.String(), "Logged in.") {
			t.Errorf("login at a prompt printed %q", seen.String())
		}
		if strings.Contains(seen.String(), code) || strings.Contains(seen.String(), code[:8]) {
			t.Errorf("the prompt echoed the code: %q", seen.String())
		}
	})
}
