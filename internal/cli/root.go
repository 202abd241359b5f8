// Package cli is the veil command line: one file per command noun. Each
// command parses its flags, loads what it needs and hands over to the
// package that does the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X veil/internal/cli.Version=…";
// left at "dev", the module version Go stamped into the binary is shown
// (version).
var Version = "dev"

// version is the version `veil --version` prints: Version when the
// build set it, else the main module's version from the build info (a
// tagged release, or a pseudo-version naming the commit), else "dev".
func version() string {
	if Version != "dev" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	// Built from a checkout with -buildvcs=false: no module version, but
	// perhaps the commit.
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = "-" + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return Version
	}
	return Version + rev + dirty
}

// releaseVersion matches a release's version, which is all the client
// reports for the aggregate counts: any other build reports "dev", so
// that a commit of one's own does not set one apart.
var releaseVersion = regexp.MustCompile(`^v?([0-9]{1,4}\.[0-9]{1,4}(\.[0-9]{1,4})?(-[a-z0-9]{1,12})?)$`)

// appVersion is the version reported to the control plane.
func appVersion() string {
	if m := releaseVersion.FindStringSubmatch(version()); m != nil {
		return m[1]
	}
	return "dev"
}

// Run executes the command line args and returns the process exit code.
// Errors are printed as one line on stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		// A command that asks for a status has printed its own verdict.
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ")
		fmt.Fprintf(stderr, "veil: %s\n", msg)
		return 1
	}
	return 0
}

// exitCode lets a command ask for a specific exit status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "veil",
		Short: "Veil: a no-logs VPN service in one binary",
		Long: `Veil is a no-logs VPN service: WireGuard gateways, accounts, its own DNS
resolvers and privacy tools, in one binary. Nothing it keeps holds a client
address, a DNS query or a destination.`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("veil {{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newServeCmd(),
		newGatewayCmd(),
		newAdminCmd(),
		newSignupCmd(),
		newLoginCmd(),
		newRedeemCmd(),
		newAccountCmd(),
		newServersCmd(),
		newConnectCmd(),
		newStatusCmd(),
		newDisconnectCmd(),
		newPortalCmd(),
		newWGConfigCmd(),
		newDevicesCmd(),
		newLogoutCmd(),
		newCompletionCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "veil", version())
			return nil
		},
	}
}

// newLogger returns a text logger on stderr at the named level.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
