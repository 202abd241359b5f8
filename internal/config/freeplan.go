package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FreePlan is what the operator offers without payment: an account with
// neither paid nor trial time keeps up to Devices devices in the peer map,
// at gateways of Locations only, each capped at BandwidthBps in each
// direction. The pricing page renders it; the control plane enforces it
// through the peer map.
type FreePlan struct {
	// Enabled offers the free plan; when false, devices of accounts
	// without paid or trial time leave the peer map.
	Enabled bool
	// Locations are the gateway locations ("se-sto") or whole countries
	// ("se") the free plan includes; empty: every location.
	Locations []string
	// Devices is how many devices a free account keeps in the map.
	Devices int
	// BandwidthBps is each free device's cap in bits per second, in each
	// direction.
	BandwidthBps int64
}

// Includes reports whether a gateway at location serves free devices.
func (f FreePlan) Includes(location string) bool {
	if len(f.Locations) == 0 {
		return true
	}
	cc, _, _ := strings.Cut(location, "-")
	for _, l := range f.Locations {
		if l == location || l == cc {
			return true
		}
	}
	return false
}

// Bandwidth limits of free_bandwidth: below 64 kbit/s a tunnel does not
// carry a handshake and a page; above 100 Gbit/s is no cap.
const (
	minBandwidth = 64_000
	maxBandwidth = 100_000_000_000
)

// FreePlan returns the free plan the free_* keys describe.
func (c *Config) FreePlan() (FreePlan, error) {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	f := FreePlan{Enabled: c.FreePlanOn, Devices: c.FreeDevices}
	for _, l := range c.FreeLocations {
		if !ValidLocation(l) && !validCountry(l) {
			return FreePlan{}, bad("free_locations", "want cc-city locations or two-letter countries, got %q", l)
		}
		f.Locations = append(f.Locations, l)
	}
	if c.FreeDevices < 1 || c.FreeDevices > c.MaxDevices {
		return FreePlan{}, bad("free_devices", "want 1 to max_devices (%d), got %d", c.MaxDevices, c.FreeDevices)
	}
	bps, err := ParseBandwidth(c.FreeBandwidth)
	if err != nil {
		return FreePlan{}, bad("free_bandwidth", "%v", err)
	}
	f.BandwidthBps = bps
	return f, nil
}

// ParseBandwidth reads a rate in bits per second such as "10Mbit",
// "512kbit", "1.5Gbit" or "64000bit" (k, M and G are powers of 1000, in
// either case, as in tc).
func ParseBandwidth(s string) (int64, error) {
	want := errors.New(`want a rate like "10Mbit", "512kbit" or "1Gbit"`)
	low := strings.ToLower(strings.TrimSpace(s))
	num, ok := strings.CutSuffix(low, "bit")
	if !ok {
		return 0, fmt.Errorf("%w, got %q", want, s)
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(num, "k"):
		mult, num = 1e3, strings.TrimSuffix(num, "k")
	case strings.HasSuffix(num, "m"):
		mult, num = 1e6, strings.TrimSuffix(num, "m")
	case strings.HasSuffix(num, "g"):
		mult, num = 1e9, strings.TrimSuffix(num, "g")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return 0, fmt.Errorf("%w, got %q", want, s)
	}
	bps := v * mult
	if bps < minBandwidth || bps > maxBandwidth {
		return 0, fmt.Errorf("want 64kbit to 100Gbit, got %q", s)
	}
	return int64(bps), nil
}

func validCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z'
}
