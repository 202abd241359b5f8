package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"veil/internal/apitypes"
	"veil/internal/device"
	"veil/internal/store"
)

func (s *Server) deviceView(d *store.Device) apitypes.Device {
	a4, a6 := s.cfg.Pools.AllowedIPs(d.AddrIndex)
	return apitypes.Device{
		ID: d.ID, Name: d.Name, PublicKey: d.PublicKey,
		IPv4: a4.String(), IPv6: a6.String(), Block: nonNil(d.Block), CreatedAt: d.CreatedAt.UTC(),
		KeyCreatedAt: d.KeyCreatedAt.UTC(),
		Kind:         deviceKind(d),
	}
}

// Devices are the account's devices.
func (s *Server) Devices(ctx context.Context, accountID int64) ([]apitypes.Device, error) {
	devs, err := s.cfg.Store.Devices(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Device, 0, len(devs))
	for i := range devs {
		out = append(out, s.deviceView(&devs[i]))
	}
	return out, nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	devs, err := s.Devices(r.Context(), accountFrom(r).ID)
	if err != nil {
		s.fail(w, "listing devices", err)
		return
	}
	writeJSON(w, http.StatusOK, devs)
}

// errKeyTaken is the one answer to a key that cannot be registered
// because a device holds it, this account's or another's. It says
// neither which nor that the key is registered: a key is unique among all
// of Veil's devices (the gateways know peers by key), so a refusal cannot
// be avoided, but it must not tell a stranger whose key it is or that it
// belongs to this account rather than another. A freshly generated key
// never collides, so the honest advice serves every real client.
const errKeyTaken = "this public key cannot be used; generate a new key pair and try again"

// deviceError answers the store's registration errors in the user's terms.
func (s *Server) deviceError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrDeviceLimit):
		writeError(w, http.StatusConflict, fmt.Sprintf("this account already has %d devices; remove one first", s.cfg.MaxDevices))
	case errors.Is(err, store.ErrDuplicateKey):
		writeError(w, http.StatusConflict, errKeyTaken)
	case errors.Is(err, store.ErrPoolExhausted):
		writeError(w, http.StatusServiceUnavailable, "no tunnel addresses left; the operator must enlarge the pool")
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such device")
	default:
		s.fail(w, "saving device", err)
	}
}

func (s *Server) createDevice(w http.ResponseWriter, r *http.Request) {
	acc := accountFrom(r)
	var req apitypes.DeviceRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	key, err := device.ParsePublicKey(req.PublicKey)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name, err := device.CleanName(req.Name, "device")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkBlock(req.Block); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := s.cfg.Store.CreateDevice(r.Context(), store.NewDevice{
		AccountID: acc.ID, Name: name, PublicKey: key, MaxDevices: s.maxDevices(acc),
		MinIndex: s.cfg.Pools.MinIndex(), MaxIndex: s.cfg.Pools.MaxIndex(), Block: req.Block,
	})
	if errors.Is(err, store.ErrDeviceLimit) && s.maxDevices(acc) != s.cfg.MaxDevices {
		writeError(w, http.StatusConflict, fmt.Sprintf("the free plan allows %d devices; remove one first, or pay for more", s.maxDevices(acc)))
		return
	}
	if err != nil {
		s.deviceError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.deviceView(d))
}

// CreateDeviceAs serves POST /api/v1/devices for acc, whose session
// hashes to hash: for the account page's script, which package site
// admits by the session cookie instead of a bearer token.
func (s *Server) CreateDeviceAs(w http.ResponseWriter, r *http.Request, acc *store.Account, hash []byte) {
	ctx := context.WithValue(r.Context(), ctxAccount, acc)
	s.createDevice(w, r.WithContext(context.WithValue(ctx, ctxSession, hash)))
}

// RenameDevice names the account's device id; store.ErrNotFound when
// the account holds no such device.
func (s *Server) RenameDevice(ctx context.Context, accountID, id int64, name string) error {
	_, err := s.cfg.Store.RenameDevice(ctx, accountID, id, name)
	return err
}

// DeleteDevice removes the account's device id; store.ErrNotFound when
// the account holds no such device.
func (s *Server) DeleteDevice(ctx context.Context, accountID, id int64) error {
	return s.cfg.Store.DeleteDevice(ctx, accountID, id)
}

func deviceID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// deviceBody reads the device id from the path and the JSON body into v,
// answering the request itself when either is bad.
func deviceBody(w http.ResponseWriter, r *http.Request, v any) (int64, bool) {
	id, ok := deviceID(r)
	if !ok {
		writeError(w, http.StatusNotFound, "no such device")
		return 0, false
	}
	if err := decode(w, r, v); err != nil {
		writeDecodeError(w, err)
		return 0, false
	}
	return id, true
}

func (s *Server) rekeyDevice(w http.ResponseWriter, r *http.Request) {
	var req apitypes.DeviceRequest
	id, ok := deviceBody(w, r, &req)
	if !ok {
		return
	}
	key, err := device.ParsePublicKey(req.PublicKey)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := s.cfg.Store.RekeyDevice(r.Context(), accountFrom(r).ID, id, key)
	if err != nil {
		s.deviceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.deviceView(d))
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceID(r)
	if !ok {
		writeError(w, http.StatusNotFound, "no such device")
		return
	}
	if err := s.cfg.Store.DeleteDevice(r.Context(), accountFrom(r).ID, id); err != nil {
		s.deviceError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) patchDevice(w http.ResponseWriter, r *http.Request) {
	var p apitypes.DevicePatch
	id, ok := deviceBody(w, r, &p)
	if !ok {
		return
	}
	acc := accountFrom(r)
	var name string
	if p.Name != nil {
		n, err := device.CleanName(*p.Name, "")
		if err == nil && n == "" {
			err = errors.New("name: give the device a name")
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		name = n
	}
	if p.Block != nil {
		if err := checkBlock(*p.Block); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	var d *store.Device
	var err error
	if p.Name != nil {
		if d, err = s.cfg.Store.RenameDevice(r.Context(), acc.ID, id, name); err != nil {
			s.deviceError(w, err)
			return
		}
	}
	if p.Block != nil {
		if d, err = s.cfg.Store.SetDeviceBlock(r.Context(), acc.ID, id, *p.Block); err != nil {
			s.deviceError(w, err)
			return
		}
	}
	if d == nil {
		if d, err = s.accountDevice(r, acc.ID, id); err != nil {
			s.deviceError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.deviceView(d))
}

// accountDevice reads one of the account's devices, or ErrNotFound.
func (s *Server) accountDevice(r *http.Request, accountID, id int64) (*store.Device, error) {
	devs, err := s.cfg.Store.Devices(r.Context(), accountID)
	if err != nil {
		return nil, err
	}
	for i := range devs {
		if devs[i].ID == id {
			return &devs[i], nil
		}
	}
	return nil, store.ErrNotFound
}

// checkBlock accepts only the known DNS blocking categories.
func checkBlock(cats []string) error {
	if len(cats) > len(apitypes.BlockCategories) {
		return fmt.Errorf("block: at most %d categories", len(apitypes.BlockCategories))
	}
	for _, c := range cats {
		if !slices.Contains(apitypes.BlockCategories, c) {
			return fmt.Errorf("block: unknown category %q; choose from %s", truncate(c, 20), strings.Join(apitypes.BlockCategories, ", "))
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
