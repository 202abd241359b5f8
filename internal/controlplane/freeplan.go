package controlplane

import (
	"veil/internal/apitypes"
	"veil/internal/store"
)

// planLimits are the limits the peer map's header gives gateways: the
// free plan's cap, when there is a free plan.
func (s *Server) planLimits() map[string]apitypes.PlanLimits {
	if !s.cfg.FreePlan.Enabled {
		return nil
	}
	return map[string]apitypes.PlanLimits{store.PlanFree: {BandwidthBps: s.cfg.FreePlan.BandwidthBps}}
}

// maxDevices is the device limit of acc now: the free plan's for an
// account without paid or trial time when there is a free plan.
func (s *Server) maxDevices(acc *store.Account) int {
	if s.cfg.FreePlan.Enabled && !acc.Active(s.cfg.Now()) {
		return s.cfg.FreePlan.Devices
	}
	return s.cfg.MaxDevices
}

// mapFilter leaves free devices out of the peer map of a gateway whose
// location the free plan does not include. In a delta, a free device left
// out is named among the removals, so that a device that was paid and
// ran out leaves the gateway.
type mapFilter struct {
	dropFree bool
	removed  []string
}

func (s *Server) mapFilter(gw *store.Gateway) *mapFilter {
	return &mapFilter{dropFree: s.cfg.FreePlan.Enabled && !s.cfg.FreePlan.Includes(gw.Location)}
}

// keep reports whether p goes to the gateway.
func (f *mapFilter) keep(full bool, p store.Peer) bool {
	if !f.dropFree || p.Plan != store.PlanFree {
		return true
	}
	if !full {
		f.removed = append(f.removed, p.PublicKey)
	}
	return false
}
