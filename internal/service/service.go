// Package service assembles the whole of `veil serve`: the store, the
// control plane API, the website and tools, and the built-in gateway. The
// command line and the in-process end-to-end tests start it the same way.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"veil/internal/account"
	"veil/internal/billing"
	"veil/internal/config"
	"veil/internal/controlplane"
	"veil/internal/device"
	"veil/internal/gateway"
	"veil/internal/pow"
	"veil/internal/store"
	"veil/internal/throttle"
	"veil/internal/visitor"
	"veil/internal/web"
)

// File names in the data directory.
const (
	SecretFile     = "secret"      // HMAC key for access codes and tokens
	AdminTokenFile = "admin-token" // bearer token for `veil admin`
	SQLiteFile     = "veil.db"
	GatewayKeyFile = "gateway.key" // the built-in gateway's WireGuard private key
)

// Service is a running `veil serve`.
type Service struct {
	Config     config.Config
	Store      store.Store
	API        *controlplane.Server
	AdminToken string
	// Gateway is the built-in gateway; nil when turned off.
	Gateway *gateway.Gateway
	builtin atomic.Pointer[gateway.Gateway] // Gateway, for handlers running before it is set
	// DNSLeakAddr is the bound address of the DNS leak test server; nil
	// when the test is off.
	DNSLeakAddr net.Addr
	// PublicDNS holds the public DNS over TLS and HTTPS listeners' bound
	// addresses; nil when public_dns is off.
	PublicDNS *PublicDNS

	// pools are the tunnel address pools, which the outbound web tools
	// never reach, as the gateways' peers never reach one another.
	pools device.Pools
	// visitors tells who sent a request, behind the trusted proxies, to
	// every throttle, quota and tool.
	visitors  *visitor.Resolver
	log       *slog.Logger
	closers   []func() error
	httpSrv   *http.Server
	httpAddr  net.Addr
	adminSrv  *http.Server
	adminAddr net.Addr
	wg        sync.WaitGroup
	errOnce   sync.Once
	err       error
	cancel    context.CancelFunc
	done      chan struct{}
}

// Start opens the store, creates the data directory's secrets on first
// start, and starts serving. It returns once the listeners are bound; the
// service runs until ctx ends or Stop is called.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	secret, err := account.LoadOrCreateSecret(filepath.Join(cfg.DataDir, SecretFile))
	if err != nil {
		return nil, err
	}
	hasher, err := account.NewHasher(secret)
	if err != nil {
		return nil, err
	}
	adminToken, err := loadOrCreateToken(filepath.Join(cfg.DataDir, AdminTokenFile))
	if err != nil {
		return nil, err
	}
	pools, err := device.ParsePools(cfg.TunnelIPv4Pool, cfg.TunnelIPv6Pool)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dsn := cfg.DB
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, SQLiteFile)
	}
	free, err := cfg.FreePlan()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, dsn, log.With("component", "store"))
	if err != nil {
		return nil, err
	}
	st.SetFreePlan(store.FreePlan{Enabled: free.Enabled, Devices: free.Devices})
	ctx, cancel := context.WithCancel(ctx)
	s := &Service{
		Config: cfg, Store: st, AdminToken: adminToken, pools: pools, log: log,
		visitors: visitor.New(cfg.TrustedProxyPrefixes()),
		cancel:   cancel, done: make(chan struct{}),
	}
	secrets, _ := cfg.BillingSecretMap() // Validate has checked them
	products, _ := billing.ParseProducts(cfg.Products)
	links, _ := billing.ParseStripeLinks(cfg.StripeLinks, products)
	var stripe *billing.Stripe
	if cfg.StripeWebhookSecret != "" {
		stripe = &billing.Stripe{Secret: cfg.StripeWebhookSecret, Products: products, Links: links}
	}
	var btcpay *billing.BTCPay
	if cfg.BTCPayURL != "" {
		btcpay = &billing.BTCPay{URL: cfg.BTCPayURL, APIKey: cfg.BTCPayAPIKey, StoreID: cfg.BTCPayStoreID,
			Secret: cfg.BTCPayWebhookSecret, Products: products, Client: &http.Client{Timeout: 20 * time.Second}}
	}
	s.API = controlplane.New(controlplane.Config{
		Store: st, Hasher: hasher, Pools: pools, AdminToken: adminToken,
		MaxDevices: cfg.MaxDevices, TrialDays: cfg.TrialDays,
		SessionTTL:     time.Duration(cfg.SessionTTL),
		BillingSecrets: secrets, Stripe: stripe, BTCPay: btcpay,
		CheckoutURL: cfg.CheckoutURL, FreePlan: free,
		Business: controlplane.BusinessConfig{
			Pow:              pow.NewWithKey(cfg.SignupPowBits, 10*time.Minute, hasher.Token("signup-proof-of-work")),
			Signups:          throttle.New(cfg.SignupPerHour, time.Hour),
			Products:         products,
			StripeLinks:      links,
			ReminderDays:     cfg.ExpiryReminderDays,
			AffiliatePercent: cfg.AffiliateSharePercent,
		},
		Visitors: s.visitors,
		Logger:   log.With("component", "api"),
	})
	if err := s.startPrivacy(ctx); err != nil {
		cancel()
		st.Close()
		return nil, err
	}
	if err := s.startHTTP(ctx); err != nil {
		cancel()
		st.Close()
		return nil, err
	}
	go s.shutdownOn(ctx)
	if err := s.startAdminHTTP(); err != nil {
		s.Stop()
		return nil, err
	}
	s.goRun(func() error { s.API.Run(ctx, 5*time.Second); return nil })
	if cfg.PublicDNS {
		if err := s.startPublicDNS(ctx); err != nil {
			s.Stop()
			return nil, err
		}
	}
	if cfg.BuiltinGateway {
		if err := s.startBuiltinGateway(ctx); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// startHTTP binds the public listener and serves the API and website.
func (s *Service) startHTTP(ctx context.Context) error {
	mux := http.NewServeMux()
	s.API.Register(mux)
	if err := s.mountWeb(ctx, mux); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Config.HTTP)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.Config.HTTP, err)
	}
	s.httpAddr = ln.Addr()
	s.httpSrv = &http.Server{
		Handler:           recoverer(web.Localize(web.WithNotFound(mux)), s.log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// The standard library logs TLS and protocol errors with the
		// client's address; those lines go nowhere (promise P1).
		ErrorLog: discardLog,
	}
	s.goRun(func() error {
		if err := s.httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving http: %w", err)
		}
		return nil
	})
	return nil
}

// discardLog swallows net/http's own error lines, which name client
// addresses (promise P1).
var discardLog = stdlog.New(io.Discard, "", 0)

// URL is the base URL of the public listener.
func (s *Service) URL() string { return "http://" + s.httpAddr.String() }

// Addr is the bound public listener address.
func (s *Service) Addr() net.Addr { return s.httpAddr }

// goRun runs fn in the background; its error, if any, stops the service.
func (s *Service) goRun(fn func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(); err != nil {
			s.errOnce.Do(func() { s.err = err })
			s.cancel()
		}
	}()
}

func (s *Service) shutdownOn(ctx context.Context) {
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.httpSrv.Shutdown(sctx)
	if s.adminSrv != nil {
		s.adminSrv.Shutdown(sctx)
	}
	s.wg.Wait()
	if err := s.Store.Close(); err != nil {
		s.log.Error("closing store", "err", err)
	}
	for _, c := range s.closers {
		c()
	}
	close(s.done)
}

// Stop shuts the service down and waits until it has.
func (s *Service) Stop() error {
	s.cancel()
	return s.Wait()
}

// Wait blocks until the service has shut down, returning the error that
// stopped it, if any.
func (s *Service) Wait() error {
	<-s.done
	return s.err
}

// loadOrCreateToken reads a token file, creating it with mode 0600 on
// first use.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("%s is empty; delete it to make a new admin token", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading admin token: %w", err)
	}
	tok, err := account.NewToken()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadOrCreateToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("creating admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	return tok, nil
}

// recoverer turns a handler panic into a 500 without logging anything
// about the request.
func recoverer(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panic", "panic", fmt.Sprint(v))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}
