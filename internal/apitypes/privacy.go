package apitypes

import "time"

// ClientCount is one row of GET /api/v1/admin/stats.
type ClientCount struct {
	Day        string `json:"day"`
	OSVersion  string `json:"os_version"`
	AppVersion string `json:"app_version"`
	Count      int64  `json:"count"`
}

// LegalHoldRequest is the body of POST /api/v1/admin/legal-hold: the
// accounts named by an access code or an email.
type LegalHoldRequest struct {
	AccessCode string `json:"access_code,omitempty"`
	Email      string `json:"email,omitempty"`
	Hold       bool   `json:"hold"`
}

// PublishRequest is the body of POST /api/v1/admin/policy.
type PublishRequest struct {
	Prose string `json:"prose"`
}

// Published answers a policy publication.
type Published struct {
	Version int64 `json:"version"`
	Notices int   `json:"notices"` // transactional notices queued
}

// RecoverRequest is the body of POST /api/v1/account/recover.
type RecoverRequest struct {
	Email string `json:"email"`
}

// TicketMessage is a reply: POST /api/v1/support/tickets/{token}/messages
// and POST /api/v1/admin/support/{id}/reply.
type TicketMessage struct {
	Message string `json:"message"`
	// Close, from the operator, closes the ticket.
	Close bool `json:"close,omitempty"`
}

// TicketView is a ticket as the API shows it.
type TicketView struct {
	ID        int64         `json:"id"`
	Subject   string        `json:"subject"`
	Status    string        `json:"status"`
	Account   bool          `json:"account"` // sent with an account
	Email     string        `json:"email,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	Messages  []MessageView `json:"messages,omitempty"`
}

// TicketRequest is the body of POST /api/v1/support/tickets. With a
// session token the ticket belongs to the account; without, it stands
// alone and is read with the token in the answer.
type TicketRequest struct {
	Subject string `json:"subject"`
	Message string `json:"message"`
	// Email, optional, gets a notice when the operator replies.
	Email string `json:"email,omitempty"`
}

// TicketCreated answers a new ticket. Token reads the ticket and is shown
// only here.
type TicketCreated struct {
	ID    int64  `json:"id"`
	Token string `json:"token"`
}

// MessageView is one message of a ticket.
type MessageView struct {
	FromOperator bool      `json:"from_operator"`
	Body         string    `json:"body"`
	CreatedAt    time.Time `json:"created_at"`
}
