// Package controlplane is Veil's JSON API: sessions, the account and its
// devices, the public server list, the gateways' peer map and load
// reports, and the operator's admin calls. It is stateless over the store,
// so several processes can serve one PostgreSQL.
//
// There is no access log: a request's source address (the visitor, as
// package visitor finds it behind the trusted proxies) is used only, in
// memory, to throttle failed logins and recovery requests (promise P1).
package controlplane

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/config"
	"veil/internal/device"
	"veil/internal/store"
	"veil/internal/throttle"
	"veil/internal/visitor"
)

// Config wires a Server.
type Config struct {
	Store  store.Store
	Hasher *account.Hasher
	Pools  device.Pools
	// AdminToken authorizes /api/v1/admin/ calls.
	AdminToken string
	MaxDevices int
	TrialDays  int
	SessionTTL time.Duration
	// GatewayCapacity is the peer count shown as 100% load; 0: 1000.
	GatewayCapacity int
	// Throttle limits failed logins per source; nil: 10 per 10 minutes.
	Throttle *throttle.Throttle
	// Visitors tells who sent a request, for the throttles; nil: the TCP
	// peer (no trusted proxy).
	Visitors *visitor.Resolver
	// Logger; nil: discard.
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Privacy configures the privacy engine's routes (privacy.go).
	Privacy PrivacyConfig
	// BillingSecrets are the payment processors whose notifications are
	// taken, each with its signing secret (billing.go); none: billing off.
	BillingSecrets map[string]string
	// Stripe reads POST /api/v1/billing/stripe; nil: Stripe is off.
	Stripe *billing.Stripe
	// BTCPay reads POST /api/v1/billing/btcpay and creates invoices; nil:
	// BTCPay is off.
	BTCPay *billing.BTCPay
	// CheckoutURL is the payment page, {ref} standing for the account's
	// payment reference; empty: none.
	CheckoutURL string
	// FreePlan is what accounts without paid or trial time get; its zero
	// value is no free plan. The store must be told the same
	// (Store.SetFreePlan).
	FreePlan config.FreePlan
	// Business configures sign-up, plans, vouchers, reminders and the
	// affiliate program (signup.go).
	Business BusinessConfig
}

// Server serves the API.
type Server struct {
	cfg       Config
	biz       business
	log       *slog.Logger
	peers     *notifier
	endpoints *endpointResolver
}

// New returns a Server. Call Run to follow peer-map changes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Throttle == nil {
		cfg.Throttle = throttle.New(10, 10*time.Minute)
	}
	if cfg.GatewayCapacity == 0 {
		cfg.GatewayCapacity = 1000
	}
	srv := &Server{cfg: cfg, log: cfg.Logger, peers: newNotifier(), endpoints: newEndpointResolver(cfg.Now)}
	srv.initBusiness()
	return srv
}

// Run follows the store's peer-map changes, waking long-polling gateways,
// and brings the map in line with account expiry every interval, until ctx
// ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	ch := s.cfg.Store.Watch(ctx)
	if v, err := s.cfg.Store.PeerVersion(ctx); err == nil {
		s.peers.set(v)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case v, ok := <-ch:
			if !ok {
				return // the store is closing
			}
			s.peers.set(v)
		case <-tick.C:
			if _, err := s.cfg.Store.SyncPeerActivity(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
				s.log.Warn("syncing peer activity", "err", err)
			}
			if _, err := s.cfg.Store.DeleteExpiredSessions(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
				s.log.Warn("deleting expired sessions", "err", err)
			}
			if _, err := s.cfg.Store.DeleteExpiredRecoveryTokens(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
				s.log.Warn("deleting expired recovery links", "err", err)
			}
			s.remindIfDue(ctx)
		}
	}
}

// Register adds the API routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	// Clients fetch it over plain HTTP to tell a captive portal (which
	// answers in its place) from a network that lets them through.
	mux.HandleFunc("GET /generate_204", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/v1/sessions", s.createSession)
	mux.HandleFunc("DELETE /api/v1/sessions", s.withAccount(s.deleteSession))
	mux.HandleFunc("GET /api/v1/servers", s.listServers)

	mux.HandleFunc("GET /api/v1/account", s.withAccount(s.getAccount))
	mux.HandleFunc("PATCH /api/v1/account", s.withAccount(s.patchAccount))
	mux.HandleFunc("DELETE /api/v1/account", s.withAccount(s.deleteAccount))
	mux.HandleFunc("GET /api/v1/account/export", s.withAccount(s.exportAccount))
	mux.HandleFunc("GET /api/v1/devices", s.withAccount(s.listDevices))
	mux.HandleFunc("POST /api/v1/devices", s.withAccount(s.createDevice))
	mux.HandleFunc("PUT /api/v1/devices/{id}", s.withAccount(s.rekeyDevice))
	mux.HandleFunc("PATCH /api/v1/devices/{id}", s.withAccount(s.patchDevice))
	mux.HandleFunc("DELETE /api/v1/devices/{id}", s.withAccount(s.deleteDevice))
	mux.HandleFunc("POST /api/v1/extension", s.withAccount(s.createExtension))

	mux.HandleFunc("POST /api/v1/gateway/report", s.withGateway(s.gatewayReport))
	mux.HandleFunc("GET /api/v1/gateway/peers", s.withGateway(s.gatewayPeers))

	mux.HandleFunc("POST /api/v1/billing/{processor}", s.billingWebhook)
	mux.HandleFunc("POST /api/v1/billing/btcpay/invoice", s.withAccount(s.btcpayInvoice))
	mux.HandleFunc("GET /api/v1/admin/billing", s.withAdmin(s.adminBilling))
	mux.HandleFunc("POST /api/v1/admin/billing/{id}/attach", s.withAdmin(s.adminAttachBilling))
	mux.HandleFunc("POST /api/v1/admin/accounts", s.withAdmin(s.adminCreateAccount))
	mux.HandleFunc("GET /api/v1/admin/gateways", s.withAdmin(s.adminListGateways))
	mux.HandleFunc("POST /api/v1/admin/gateways", s.withAdmin(s.adminCreateGateway))
	mux.HandleFunc("DELETE /api/v1/admin/gateways/{name}", s.withAdmin(s.adminDeleteGateway))
	s.registerPrivacy(mux)
	s.registerBusiness(mux)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.cfg.Store.PeerVersion(r.Context()); err != nil {
		s.log.Error("health check", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// maxBody bounds every JSON request body.
const maxBody = 64 << 10

// errBadRequest marks decoding errors whose text is written for the user.
var errBadRequest = errors.New("bad request")

// errMediaType is decode's answer to a body that is not declared JSON.
var errMediaType = errors.New("send Content-Type: application/json")

// decode reads a JSON body into v: declared as JSON, bounded in size,
// unknown fields and trailing data refused. Its errors never echo the
// body's values.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if !isJSON(r.Header.Get("Content-Type")) {
		return errMediaType
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", errBadRequest, describeJSONError(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: unexpected data after the JSON object", errBadRequest)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: unexpected data after the JSON object", errBadRequest)
	}
	return nil
}

// isJSON reports whether a Content-Type is JSON's: application/json,
// with at most a charset parameter, utf-8 (RFC 8259 allows no other). A
// body without one is refused too: a cross-site page can send such a
// body, or text/plain, without the browser asking first (CORS).
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// writeDecodeError answers decode's error: 415 for a body not declared
// JSON, 400 for the others.
func writeDecodeError(w http.ResponseWriter, err error) {
	if errors.Is(err, errMediaType) {
		writeError(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

func describeJSONError(err error) string {
	var maxErr *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return fmt.Sprintf("request body larger than %d bytes", maxErr.Limit)
	case errors.Is(err, io.EOF):
		return "empty body, want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type, want %s", truncate(typ.Field, 40), typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return "unknown field " + truncate(name, 40)
	}
	return "malformed JSON"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apitypes.Error{Error: msg})
}

// fail answers an internal error without details and logs it without
// anything about the request.
func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error(what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; try again later")
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

type ctxKey int

const (
	ctxAccount ctxKey = iota
	ctxGateway
	ctxSession
)

// withAccount admits requests bearing a live session token.
func (s *Server) withAccount(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" || len(tok) > 128 {
			writeError(w, http.StatusUnauthorized, "log in first: send Authorization: Bearer TOKEN from POST /api/v1/sessions")
			return
		}
		hash := s.cfg.Hasher.Token(tok)
		sess, err := s.cfg.Store.SessionByTokenHash(r.Context(), hash, s.cfg.Now())
		if errors.Is(err, store.ErrInvalidSession) || errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusUnauthorized, "session expired or unknown; log in again")
			return
		}
		if err != nil {
			s.fail(w, "looking up session", err)
			return
		}
		acc, err := s.cfg.Store.AccountByID(r.Context(), sess.AccountID)
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusUnauthorized, "account no longer exists")
			return
		}
		if err != nil {
			s.fail(w, "looking up account", err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxAccount, acc)
		ctx = context.WithValue(ctx, ctxSession, hash)
		h(w, r.WithContext(ctx))
	}
}

func accountFrom(r *http.Request) *store.Account {
	return r.Context().Value(ctxAccount).(*store.Account)
}

// withGateway admits requests bearing a gateway token.
func (s *Server) withGateway(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" || len(tok) > 128 {
			writeError(w, http.StatusUnauthorized, "gateway token required")
			return
		}
		gw, err := s.cfg.Store.GatewayByTokenHash(r.Context(), s.cfg.Hasher.Token(tok))
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusUnauthorized, "unknown gateway token")
			return
		}
		if err != nil {
			s.fail(w, "looking up gateway", err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxGateway, gw)))
	}
}

// withAdmin admits requests bearing the admin token.
func (s *Server) withAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if s.cfg.AdminToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) != 1 {
			writeError(w, http.StatusUnauthorized, "admin token required")
			return
		}
		h(w, r)
	}
}

// notifier tells long-polling gateways that the peer-map version moved.
type notifier struct {
	mu      sync.Mutex
	version int64
	changed chan struct{}
}

func newNotifier() *notifier { return &notifier{changed: make(chan struct{})} }

func (n *notifier) set(v int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v == n.version {
		return
	}
	n.version = v
	close(n.changed)
	n.changed = make(chan struct{})
}

// wait returns a channel closed at the next change.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}
