package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrNotConnected is returned when no process holds a tunnel.
var ErrNotConnected = errors.New("not connected")

// The holding process answers one JSON request per connection on a unix
// socket in the state directory (mode 0600, in a 0700 directory).
type ctlRequest struct {
	Cmd string `json:"cmd"` // "status", "disconnect" or "portal"
	// For is the portal window's length ("portal"; zero seals it).
	For time.Duration `json:"for,omitempty"`
}

type ctlResponse struct {
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// Hold serves status and disconnect requests for t on the state
// directory's socket until a disconnect request (the tunnel is closed,
// kill switch and DNS undone) or until ctx ends (the tunnel stops, but a
// kill switch and the DNS setting stay until `veil disconnect`).
// Meanwhile it runs t.Watch, which follows a gateway that changes its key
// or endpoint, or moves to another when it goes away.
func Hold(ctx context.Context, dir string, t *Tunnel) error {
	path := filepath.Join(dir, socketFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	os.Remove(path) // the caller has checked that nobody answers on it
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Close()
		return fmt.Errorf("opening the control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		t.Close()
		return fmt.Errorf("securing the control socket: %w", err)
	}
	defer os.Remove(path)
	defer ln.Close()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go t.Watch(wctx)
	go t.rotateKeys(wctx, dir)
	disconnect := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var req ctlRequest
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := json.NewDecoder(c).Decode(&req); err != nil {
				c.Close()
				continue
			}
			switch req.Cmd {
			case "status":
				st := t.Status()
				st.PID = os.Getpid()
				json.NewEncoder(c).Encode(ctlResponse{Status: &st})
				c.Close()
			case "portal":
				resp := ctlResponse{}
				if err := t.openPortal(req.For); err != nil {
					resp.Error = err.Error()
				} else {
					st := t.Status()
					st.PID = os.Getpid()
					resp.Status = &st
				}
				json.NewEncoder(c).Encode(resp)
				c.Close()
			case "disconnect":
				select {
				case disconnect <- c: // answered once the tunnel is down
				default:
					c.Close()
				}
			default:
				json.NewEncoder(c).Encode(ctlResponse{Error: "unknown request"})
				c.Close()
			}
		}
	}()
	select {
	case c := <-disconnect:
		err := t.Close()
		resp := ctlResponse{}
		if err != nil {
			resp.Error = err.Error()
		}
		json.NewEncoder(c).Encode(resp)
		c.Close()
		return err
	case <-ctx.Done():
		return t.Shutdown()
	}
}

func request(ctx context.Context, dir string, req ctlRequest) (*ctlResponse, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, socketFile))
	if err != nil {
		return nil, ErrNotConnected
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("talking to the veil process: %w", err)
	}
	var resp ctlResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("talking to the veil process: %w", err)
	}
	if resp.Error != "" {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}

// QueryStatus asks the holding process for the tunnel's state, or
// ErrNotConnected.
func QueryStatus(ctx context.Context, dir string) (*Status, error) {
	resp, err := request(ctx, dir, ctlRequest{Cmd: "status"})
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, errors.New("the veil process gave no status")
	}
	return resp.Status, nil
}

// Lockdown says what a dead connection left behind: its kill switch and
// DNS setting, which stay until Disconnect.
type Lockdown struct {
	KillSwitch bool
	Interface  string
}

// Leftover reports what a tun-mode connection whose process is gone left
// in place, or nil.
func Leftover(dir string) (*Lockdown, error) {
	rec, err := loadRecord(dir)
	if err != nil || rec == nil {
		return nil, err
	}
	return &Lockdown{KillSwitch: rec.KillSwitch, Interface: rec.Interface}, nil
}

// Disconnect asks the holding process to take the tunnel down. If none
// answers, it undoes what a dead one left: routing rules, DNS, kill switch.
// It returns ErrNotConnected when there was nothing to undo.
func Disconnect(ctx context.Context, dir string) error {
	_, err := request(ctx, dir, ctlRequest{Cmd: "disconnect"})
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotConnected) {
		return err
	}
	rec, err := loadRecord(dir)
	if errors.Is(err, errRecordDamaged) {
		// What it said is lost; what a connection sets up by default
		// is undone, so that a damaged file cannot keep the kill
		// switch on for good.
		rec, err = defaultRecord(), nil
	}
	if err != nil {
		return err
	}
	if rec == nil {
		return ErrNotConnected
	}
	if err := undo(dir, rec); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, socketFile))
	return nil
}
