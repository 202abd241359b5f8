// Command veil is the whole of the Veil VPN service: server, gateway,
// client and operator tools. See `veil --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"veil/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
