package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"veil/internal/store"
)

// SweepStore is what the sweeper needs of the store.
type SweepStore interface {
	DeleteUnusedAccounts(ctx context.Context, cutoff time.Time) (int, error)
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
	DeleteExpiredRecoveryTokens(ctx context.Context, now time.Time) (int, error)
	DeleteSupportBefore(ctx context.Context, cutoff time.Time) (tickets, messages int, err error)
	DeleteMailBefore(ctx context.Context, cutoff time.Time) (int, error)
	DeleteClientCountsBefore(ctx context.Context, day string) (int, error)
	DeleteBillingBefore(ctx context.Context, cutoff time.Time) (int, error)
	PrunePeerHistory(ctx context.Context, cutoff time.Time) (int, error)
}

var _ SweepStore = store.Store(nil)

// Sweeper enforces the inventory's retention rules.
type Sweeper struct {
	Store   SweepStore
	Periods Periods
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Logger; nil: discard. It logs counts only.
	Logger *slog.Logger
}

// Deleted is how many records of one kind a sweep removed.
type Deleted struct {
	Category string `json:"category"` // inventory category ID
	What     string `json:"what"`     // table or kind, e.g. "support_messages"
	Count    int    `json:"count"`
}

// Run applies every rule of the inventory once, at the sweeper's now, and
// reports what it deleted, by category. It stops at the first error,
// returning what was done so far.
func (s *Sweeper) Run(ctx context.Context) ([]Deleted, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	now = now.UTC()
	var out []Deleted
	done := make(map[Rule]bool)
	for _, c := range Inventory {
		if done[c.Retention] {
			continue
		}
		done[c.Retention] = true
		ds, err := s.apply(ctx, c, now)
		out = append(out, ds...)
		if err != nil {
			return out, fmt.Errorf("retention %s: %w", c.ID, err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Category < out[j].Category })
	if s.Logger != nil {
		for _, d := range out {
			if d.Count > 0 {
				s.Logger.Info("retention", "category", d.Category, "what", d.What, "deleted", d.Count)
			}
		}
	}
	return out, nil
}

// errNoRule is what apply answers for a rule it does not know: a test
// runs every rule of the inventory so that none is forgotten.
var errNoRule = errors.New("no sweeper for this retention rule")

// apply enforces c's rule. Rules shared by several categories run once.
func (s *Sweeper) apply(ctx context.Context, c Category, now time.Time) ([]Deleted, error) {
	one := func(what string, n int, err error) ([]Deleted, error) {
		return []Deleted{{Category: c.ID, What: what, Count: n}}, err
	}
	switch c.Retention {
	case RuleUnusedAccount:
		n, err := s.Store.DeleteUnusedAccounts(ctx, now.Add(-s.Periods.UnusedAccount))
		return one("accounts", n, err)
	case RuleWithAccount, RuleOperator, RuleForever:
		// Nothing expires by time: deleted with the account, by the
		// operator, or never.
		return nil, nil
	case RuleSessionExpiry:
		n, err := s.Store.DeleteExpiredSessions(ctx, now)
		return one("sessions", n, err)
	case RuleLinkExpiry:
		n, err := s.Store.DeleteExpiredRecoveryTokens(ctx, now)
		return one("recovery_tokens", n, err)
	case RuleSupport:
		t, m, err := s.Store.DeleteSupportBefore(ctx, now.AddDate(0, -SupportMonths, 0))
		return []Deleted{{c.ID, "support_tickets", t}, {c.ID, "support_messages", m}}, err
	case RuleOutbox:
		// Sent mail is deleted by the sender as it goes; what is left
		// this long could not be delivered.
		n, err := s.Store.DeleteMailBefore(ctx, now.Add(-OutboxRetention))
		return one("mail_outbox", n, err)
	case RuleTax:
		n, err := s.Store.DeleteBillingBefore(ctx, now.AddDate(-s.Periods.TaxYears, 0, 0))
		return one("billing_records", n, err)
	case RuleCounters:
		n, err := s.Store.DeleteClientCountsBefore(ctx, Day(now.Add(-CounterRetention)))
		return one("client_counters", n, err)
	case RulePeerHistory:
		n, err := s.Store.PrunePeerHistory(ctx, now.Add(-PeerHistory))
		return one("peer_tombstones", n, err)
	}
	return nil, errNoRule
}

// Day formats t's UTC day as the counters store it.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// RunEvery sweeps at once and then every interval until ctx ends, logging
// failures (counts and errors only).
func (s *Sweeper) RunEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Run(ctx); err != nil && ctx.Err() == nil && s.Logger != nil {
			s.Logger.Warn("retention sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sortStrings(s []string) []string { sort.Strings(s); return s }
