// Command wgplain is the `wireguard-go` daemon reduced to what the tunnel
// benchmark needs: a wireguard-go device on a kernel TUN with a UAPI
// socket, so that `wg set`/`wg setconf` configure it. It is built from the
// golang.zx2c4.com/wireguard version in Veil's go.mod, so the benchmark
// compares Veil with the very same WireGuard code, configured by hand.
//
// Usage: wgplain INTERFACE (stays in the foreground; SIGTERM stops it).
package main

import (
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wgplain INTERFACE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "wgplain:", err)
		os.Exit(1)
	}
}

func run(name string) error {
	tdev, err := tun.CreateTUN(name, device.DefaultMTU)
	if err != nil {
		return fmt.Errorf("creating TUN: %w", err)
	}
	if real, err := tdev.Name(); err == nil {
		name = real
	}
	uapiFile, err := ipc.UAPIOpen(name)
	if err != nil {
		tdev.Close()
		return fmt.Errorf("opening UAPI socket: %w", err)
	}
	logger := device.NewLogger(device.LogLevelError, "("+name+") ")
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), logger)
	defer dev.Close()
	uapi, err := ipc.UAPIListen(name, uapiFile)
	if err != nil {
		return fmt.Errorf("listening on UAPI socket: %w", err)
	}
	defer uapi.Close()
	errs := make(chan error, 1)
	go func() {
		for {
			c, err := uapi.Accept()
			if err != nil {
				errs <- err
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, os.Interrupt)
	select {
	case <-term:
	case err := <-errs:
		return fmt.Errorf("UAPI: %w", err)
	case <-dev.Wait():
	}
	return nil
}
