package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"veil/internal/account"
	"veil/internal/wg"
)

// Login exchanges an access code for a session at control, registers this
// machine's device key (made here, kept in dir) and saves the state. Logging
// in again with the same code and control plane keeps the device.
func Login(ctx context.Context, dir, control, code string) (*State, error) {
	code, err := account.NormalizeCode(code)
	if err != nil {
		return nil, err
	}
	api := &API{Base: control}
	sess, err := api.Login(ctx, code)
	if err != nil {
		return nil, err
	}
	st, err := LoadState(dir)
	if err != nil || st.AccessCode != code {
		st = &State{AccessCode: code}
	}
	// The control plane may have moved (a new URL for the same service):
	// the device is kept when the account still lists it with our key.
	st.Control = control
	st.Token, st.Expires = sess.Token, sess.ExpiresAt
	api.Token = sess.Token
	if known, err := deviceKnown(ctx, api, st); err != nil {
		return nil, err
	} else if known {
		return st, st.Save(dir)
	}
	key, err := wg.GenerateKey()
	if err != nil {
		return nil, err
	}
	name, _ := os.Hostname()
	d, err := api.AddDevice(ctx, key.Public().Base64(), name)
	if err != nil {
		return nil, fmt.Errorf("registering this device: %w", err)
	}
	st.PrivateKey, st.DeviceID, st.IPv4, st.IPv6 = key.Base64(), d.ID, d.IPv4, d.IPv6
	st.KeyCreated = time.Now().UTC()
	return st, st.Save(dir)
}

// deviceKnown reports whether the account lists st's device with st's key.
func deviceKnown(ctx context.Context, api *API, st *State) (bool, error) {
	if st.PrivateKey == "" || st.DeviceID == 0 {
		return false, nil
	}
	priv, err := wg.ParseKey(st.PrivateKey)
	if err != nil {
		return false, nil
	}
	devs, err := api.Devices(ctx)
	if err != nil {
		return false, err
	}
	for _, d := range devs {
		if d.ID == st.DeviceID && d.PublicKey == priv.Public().Base64() {
			return true, nil
		}
	}
	return false, nil
}

// API returns an API client authorized for the saved account, renewing
// the session with the saved access code when it has expired (and saving
// the new one in dir).
func (s *State) API(ctx context.Context, dir string) (*API, error) {
	api := &API{Base: s.Control, Token: s.Token, HTTP: s.HTTP}
	if s.Token != "" && time.Until(s.Expires) > time.Minute {
		return api, nil
	}
	sess, err := (&API{Base: s.Control, HTTP: s.HTTP}).Login(ctx, s.AccessCode)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == 401 {
			return nil, errors.New("the saved access code is no longer valid; run `veil login` again")
		}
		return nil, err
	}
	s.Token, s.Expires = sess.Token, sess.ExpiresAt
	api.Token = sess.Token
	return api, s.Save(dir)
}
