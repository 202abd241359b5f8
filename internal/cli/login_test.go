package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A relative --state must name the same directory in the background
// process of `veil connect`, which runs from the root directory.
func TestStateDirIsAbsolute(t *testing.T) {
	got, err := stateDir("some/state")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(got) || filepath.Base(got) != "state" {
		t.Errorf("stateDir(relative) = %q", got)
	}
}

func TestReadCode(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"argument", []string{"1234 5678 9012 3456"}, "", "1234 5678 9012 3456"},
		{"dash reads stdin", []string{"-"}, "1234567890123456\n", "1234567890123456"},
		{"piped", nil, "  1234567890123456  \nrest\n", "1234567890123456"},
		{"no newline", nil, "1234567890123456", "1234567890123456"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := &cobra.Command{}
			cmd.SetIn(strings.NewReader(tc.stdin))
			got, err := readCode(cmd, tc.args)
			if err != nil || got != tc.want {
				t.Errorf("readCode = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	cmd := &cobra.Command{}
	cmd.SetIn(strings.NewReader("\n"))
	if _, err := readCode(cmd, []string{"-"}); err == nil || !strings.Contains(err.Error(), "standard input") {
		t.Errorf("empty stdin: %v", err)
	}
}

// --check says in one line why it cannot run against a control plane on
// this machine, whose view of the visitor says nothing of the tunnel.
func TestCheckable(t *testing.T) {
	for control, ok := range map[string]bool{
		"http://127.0.0.1:8080":      false,
		"http://[::1]:8080":          false,
		"http://localhost:8080":      false,
		"http://veil.localhost":      false,
		"http://0.0.0.0:8080":        false,
		"https://veil.example":       true,
		"http://198.51.100.7:8080":   true,
		"http://[2001:db8::1]:8080/": true,
	} {
		err := checkable(control)
		if (err == nil) != ok {
			t.Errorf("checkable(%s) = %v", control, err)
		}
		if err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), control)) {
			t.Errorf("checkable(%s): want one line naming it, got %q", control, err)
		}
	}
}
