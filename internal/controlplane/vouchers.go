package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"veil/internal/apitypes"
	"veil/internal/billing"
)

// Vouchers (billing.Vouchers):
//
//	POST /api/v1/vouchers/redeem        {"code": "…"} with the account's token
//	POST /account/redeem                the account page's form (package site)
//	POST /api/v1/admin/vouchers         {"days": 30, "count": 100}: the codes, once
//
// Failed redemptions count against the visitor in the in-memory throttle.

// ErrVoucherThrottled is the answer to a visitor past its failed tries.
var ErrVoucherThrottled = errors.New("too many wrong voucher codes; try again later")

// RedeemVoucher spends a voucher for the account, asked by the visitor
// src, and returns the days it added. A wrong code is billing.ErrVoucher
// and counts against src; past its tries, ErrVoucherThrottled.
func (s *Server) RedeemVoucher(ctx context.Context, src netip.Addr, accountID int64, code string) (int, error) {
	if ok, _ := s.cfg.Business.Vouchers.Allowed(src); !ok {
		return 0, ErrVoucherThrottled
	}
	days, err := s.biz.recorder.Redeem(ctx, s.cfg.Hasher, accountID, code)
	if errors.Is(err, billing.ErrVoucher) {
		s.cfg.Business.Vouchers.Fail(src)
	}
	if errors.Is(err, billing.ErrReceipt) {
		s.log.Warn("voucher redeemed, receipt not queued", "err", err)
		err = nil
	}
	return days, err
}

func (s *Server) redeemVoucher(w http.ResponseWriter, r *http.Request) {
	var req apitypes.VoucherRedeemRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	acc := accountFrom(r)
	days, err := s.RedeemVoucher(r.Context(), s.cfg.Visitors.Key(r), acc.ID, req.Code)
	switch {
	case errors.Is(err, ErrVoucherThrottled):
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	case errors.Is(err, billing.ErrVoucher):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		s.fail(w, "redeeming voucher", err)
		return
	}
	acc, err = s.cfg.Store.AccountByID(r.Context(), acc.ID)
	if err != nil {
		s.fail(w, "reading account", err)
		return
	}
	writeJSON(w, http.StatusOK, apitypes.VoucherRedeemed{Days: days, PaidUntil: acc.PaidUntil.UTC()})
}

func (s *Server) adminCreateVouchers(w http.ResponseWriter, r *http.Request) {
	var req apitypes.VoucherCreateRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	codes, err := s.biz.recorder.CreateVouchers(r.Context(), s.cfg.Hasher, req.Days, req.Count)
	if err != nil && (req.Days < 1 || req.Days > 3660 || req.Count < 1 || req.Count > billing.MaxVoucherBatch) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		s.fail(w, "creating vouchers", err)
		return
	}
	writeJSON(w, http.StatusCreated, apitypes.VoucherBatch{Days: req.Days, Codes: codes})
}
