package site_test

import (
	"time"

	"veil/internal/billing"
	"veil/internal/config"
	"veil/internal/controlplane"
	"veil/internal/pow"
)

// shop configures a server with a product on sale, a free plan and the
// affiliate program, and cheap proofs of work.
func shop(c *controlplane.Config) {
	products := billing.Products{"premium-30": {ID: "premium-30", Name: "Premium, 30 days", Days: 30, Plan: "premium",
		Prices: []billing.Price{{AmountCents: 500, Currency: "EUR"}}}}
	c.Business = controlplane.BusinessConfig{Pow: pow.New(8, 10*time.Minute), Products: products, AffiliatePercent: 20}
	c.FreePlan = config.FreePlan{Enabled: true, Locations: []string{"de-fra"}, Devices: 1, BandwidthBps: 2_000_000}
}
