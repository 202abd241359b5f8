package controlplane

import "net/http"

// Mux is where routes are registered: an *http.ServeMux, or a test's
// recorder of the patterns.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

var _ Mux = (*http.ServeMux)(nil)

// Register adds the API's routes to mux. This is the list of them: each
// is under /api/v1/ but the health check and the captive-portal probe. The web pages are package
// site's, which calls the Server's exported methods.
func (s *Server) Register(mux Mux) {
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

	mux.HandleFunc("GET /api/v1/accounts/challenge", s.signupChallenge)
	mux.HandleFunc("POST /api/v1/accounts", s.signup)
	mux.HandleFunc("GET /api/v1/plans", s.plans)
	mux.HandleFunc("GET /api/v1/account", s.withAccount(s.getAccount))
	mux.HandleFunc("PATCH /api/v1/account", s.withAccount(s.patchAccount))
	mux.HandleFunc("DELETE /api/v1/account", s.withAccount(s.deleteAccount))
	mux.HandleFunc("GET /api/v1/account/export", s.withAccount(s.exportAccount))
	mux.HandleFunc("POST /api/v1/account/recover", s.recoverCode)
	mux.HandleFunc("GET /api/v1/devices", s.withAccount(s.listDevices))
	mux.HandleFunc("POST /api/v1/devices", s.withAccount(s.createDevice))
	mux.HandleFunc("PUT /api/v1/devices/{id}", s.withAccount(s.rekeyDevice))
	mux.HandleFunc("PATCH /api/v1/devices/{id}", s.withAccount(s.patchDevice))
	mux.HandleFunc("DELETE /api/v1/devices/{id}", s.withAccount(s.deleteDevice))
	mux.HandleFunc("POST /api/v1/extension", s.withAccount(s.createExtension))
	mux.HandleFunc("POST /api/v1/vouchers/redeem", s.withAccount(s.redeemVoucher))
	mux.HandleFunc("GET /api/v1/affiliate", s.withAccount(s.getAffiliate))
	mux.HandleFunc("POST /api/v1/affiliate", s.withAccount(s.joinAffiliate))

	mux.HandleFunc("POST /api/v1/support/tickets", s.createTicket)
	mux.HandleFunc("GET /api/v1/support/tickets/{token}", s.getTicket)
	mux.HandleFunc("POST /api/v1/support/tickets/{token}/messages", s.userReply)
	mux.HandleFunc("GET /api/v1/privacy/versions", s.listPolicyVersions)
	mux.HandleFunc("POST /api/v1/client-report", s.clientReport)

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
	mux.HandleFunc("POST /api/v1/admin/vouchers", s.withAdmin(s.adminCreateVouchers))
	mux.HandleFunc("GET /api/v1/admin/affiliates", s.withAdmin(s.adminAffiliates))
	mux.HandleFunc("POST /api/v1/admin/affiliates/{code}/payouts", s.withAdmin(s.adminPayout))
	mux.HandleFunc("GET /api/v1/admin/support", s.withAdmin(s.adminTickets))
	mux.HandleFunc("GET /api/v1/admin/support/{id}", s.withAdmin(s.adminTicket))
	mux.HandleFunc("POST /api/v1/admin/support/{id}/reply", s.withAdmin(s.adminReply))
	mux.HandleFunc("POST /api/v1/admin/policy", s.withAdmin(s.adminPublishPolicy))
	mux.HandleFunc("POST /api/v1/admin/retention", s.withAdmin(s.adminRetention))
	mux.HandleFunc("POST /api/v1/admin/legal-hold", s.withAdmin(s.adminLegalHold))
	mux.HandleFunc("GET /api/v1/admin/stats", s.withAdmin(s.adminStats))
}
