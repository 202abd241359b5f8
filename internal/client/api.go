package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"veil/internal/apitypes"
)

// APIError is a non-2xx answer from the control plane.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// ErrUnauthorized is wrapped by APIError for 401 answers.
var ErrUnauthorized = errors.New("unauthorized")

// Is makes errors.Is(err, ErrUnauthorized) true for 401 answers.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == http.StatusUnauthorized
}

// API calls the control plane's JSON API.
type API struct {
	// Base is the control plane URL, e.g. "http://127.0.0.1:8080".
	Base string
	// Token is the bearer token for account calls; empty for public ones.
	Token string
	// HTTP is the client used; nil: one with a 30 s timeout.
	HTTP *http.Client
}

// Do sends a JSON request and decodes a JSON answer into out (if not nil).
func (a *API) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.Base, "/")+path, body)
	if err != nil {
		return fmt.Errorf("bad control URL %q: %w", a.Base, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach the control plane at %s: %w", a.Base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading answer from %s: %w", a.Base, err)
	}
	if resp.StatusCode/100 != 2 {
		var e apitypes.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("unexpected answer from %s: %w", a.Base, err)
		}
	}
	return nil
}

// Login exchanges an access code for a session.
func (a *API) Login(ctx context.Context, code string) (*apitypes.Session, error) {
	var s apitypes.Session
	err := a.Do(ctx, http.MethodPost, "/api/v1/sessions", apitypes.SessionRequest{AccessCode: code}, &s)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// Servers lists the gateways.
func (a *API) Servers(ctx context.Context) ([]apitypes.Server, error) {
	var s []apitypes.Server
	return s, a.Do(ctx, http.MethodGet, "/api/v1/servers", nil, &s)
}

// Account returns the logged-in account.
func (a *API) Account(ctx context.Context) (*apitypes.Account, error) {
	var acc apitypes.Account
	return &acc, a.Do(ctx, http.MethodGet, "/api/v1/account", nil, &acc)
}

// AddDevice registers a public key.
func (a *API) AddDevice(ctx context.Context, publicKey, name string) (*apitypes.Device, error) {
	var d apitypes.Device
	err := a.Do(ctx, http.MethodPost, "/api/v1/devices", apitypes.DeviceRequest{PublicKey: publicKey, Name: name}, &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Devices lists the account's devices.
func (a *API) Devices(ctx context.Context) ([]apitypes.Device, error) {
	var d []apitypes.Device
	return d, a.Do(ctx, http.MethodGet, "/api/v1/devices", nil, &d)
}

// DeleteDevice removes a device.
func (a *API) DeleteDevice(ctx context.Context, id int64) error {
	return a.Do(ctx, http.MethodDelete, "/api/v1/devices/"+strconv.FormatInt(id, 10), nil, nil)
}

// RenameDevice gives a device a new name.
func (a *API) RenameDevice(ctx context.Context, id int64, name string) (*apitypes.Device, error) {
	var d apitypes.Device
	err := a.Do(ctx, http.MethodPatch, "/api/v1/devices/"+strconv.FormatInt(id, 10), apitypes.DevicePatch{Name: &name}, &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// RekeyDevice replaces a device's public key; its addresses stay.
func (a *API) RekeyDevice(ctx context.Context, id int64, publicKey string) (*apitypes.Device, error) {
	var d apitypes.Device
	err := a.Do(ctx, http.MethodPut, "/api/v1/devices/"+strconv.FormatInt(id, 10), apitypes.DeviceRequest{PublicKey: publicKey}, &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// SetDeviceBlock replaces a device's DNS blocking categories.
func (a *API) SetDeviceBlock(ctx context.Context, id int64, block []string) (*apitypes.Device, error) {
	if block == nil {
		block = []string{}
	}
	var d apitypes.Device
	err := a.Do(ctx, http.MethodPatch, "/api/v1/devices/"+strconv.FormatInt(id, 10), apitypes.DevicePatch{Block: &block}, &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}
