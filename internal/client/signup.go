package client

import (
	"context"
	"errors"
	"net/http"

	"veil/internal/apitypes"
	"veil/internal/pow"
)

// maxPowTries bounds the client's search: 2^32 tries cover any difficulty
// a server would ask of a person (the config allows 32 bits).
const maxPowTries = 1 << 34

// Signup creates an account: it asks for a challenge, does the proof of
// work and sends it, with an affiliate's referral code if one is given.
// The answer holds the access code, shown only this once.
func (api *API) Signup(ctx context.Context, referral string) (*apitypes.AccountCreated, error) {
	var c apitypes.SignupChallenge
	if err := api.Do(ctx, http.MethodGet, "/api/v1/accounts/challenge", nil, &c); err != nil {
		return nil, err
	}
	nonce, ok := pow.Solve(c.Challenge, c.Bits, maxPowTries)
	if !ok {
		return nil, errors.New("the server's proof of work is too hard to solve")
	}
	var out apitypes.AccountCreated
	req := apitypes.SignupRequest{Challenge: c.Challenge, Nonce: nonce, Referral: referral}
	if err := api.Do(ctx, http.MethodPost, "/api/v1/accounts", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Redeem spends a voucher for the logged-in account.
func (a *API) Redeem(ctx context.Context, code string) (*apitypes.VoucherRedeemed, error) {
	var out apitypes.VoucherRedeemed
	if err := a.Do(ctx, http.MethodPost, "/api/v1/vouchers/redeem", apitypes.VoucherRedeemRequest{Code: code}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
