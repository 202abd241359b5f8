package privacy

import (
	"context"
	"fmt"
	"strings"
	"time"
	"veil/internal/i18n"
)

// ExportStore is what the export needs of the store.
type ExportStore interface {
	AccountRows(ctx context.Context, accountID int64) (map[string][]map[string]any, error)
}

// Exporter answers the right of access.
type Exporter struct {
	Store ExportStore
	// Addresses gives a device's tunnel addresses from its index; nil:
	// only the index is exported.
	Addresses func(index int64) (ipv4, ipv6 string)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Lang is the language of the categories' names and notes; empty:
	// English.
	Lang string
}

// Export is everything held for one account, by inventory category.
type Export struct {
	GeneratedAt time.Time                 `json:"generated_at"`
	Categories  map[string]ExportCategory `json:"categories"`
}

// ExportCategory is one inventory category in an export. Records maps each
// of the category's tables to the account's rows, each row mapping column
// to value.
type ExportCategory struct {
	Name    string                      `json:"name"`
	Note    string                      `json:"note,omitempty"`
	Records map[string][]map[string]any `json:"records"`
}

// Export collects every category of the inventory for the account: the
// account's rows in full, and for the categories not linked to any
// account a note saying so. It fails, rather than give an incomplete
// answer, when the store returns a table no category declares.
func (e *Exporter) Export(ctx context.Context, accountID int64) (*Export, error) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	rows, err := e.Store.AccountRows(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("exporting account: %w", err)
	}
	out := &Export{GeneratedAt: now().UTC(), Categories: make(map[string]ExportCategory)}
	owner := tableCategories()
	for table := range rows {
		if _, ok := owner[table]; !ok {
			return nil, fmt.Errorf("exporting account: table %s is not in the data inventory", table)
		}
	}
	for _, c := range Inventory {
		l := i18n.For(e.Lang)
		ec := ExportCategory{Name: l.T(c.Name), Records: map[string][]map[string]any{}}
		if c.Note != "" {
			ec.Note = l.T(c.Note)
		}
		if !c.PerAccount {
			ec.Note = strings.TrimSpace(l.T("privacy.export.not_linked") + " " + ec.Note)
		}
		for table, cat := range owner {
			if cat == c.ID && c.PerAccount {
				recs := rows[table]
				if recs == nil {
					recs = []map[string]any{}
				}
				ec.Records[table] = recs
			}
		}
		out.Categories[c.ID] = ec
	}
	if e.Addresses != nil {
		for _, d := range out.Categories["devices"].Records["devices"] {
			if idx, ok := d["addr_index"].(int64); ok {
				d["ipv4"], d["ipv6"] = e.Addresses(idx)
			}
		}
	}
	return out, nil
}

// tableCategories maps each declared table to its category ID.
func tableCategories() map[string]string {
	out := make(map[string]string)
	for _, c := range Inventory {
		for _, f := range c.Fields {
			t, _, _ := strings.Cut(f.Column, ".")
			out[t] = c.ID
		}
	}
	return out
}
