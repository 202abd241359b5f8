package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestFreePlanKeys(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs, Default())
	if err := fs.Parse([]string{"--free-locations=se-sto,de"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Sources{
		File:  writeFile(t, "free_plan = true\nfree_bandwidth = \"2.5Mbit\"\n"),
		Env:   envMap(map[string]string{"VEIL_FREE_DEVICES": "2"}),
		Flags: fs,
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.FreePlan()
	if err != nil {
		t.Fatal(err)
	}
	want := FreePlan{Enabled: true, Locations: []string{"se-sto", "de"}, Devices: 2, BandwidthBps: 2_500_000}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("FreePlan = %+v, want %+v", f, want)
	}
	for loc, in := range map[string]bool{"se-sto": true, "se-got": false, "de-ber": true, "nl-ams": false} {
		if f.Includes(loc) != in {
			t.Errorf("Includes(%s) = %t, want %t", loc, !in, in)
		}
	}
	if !(FreePlan{}).Includes("nl-ams") {
		t.Error("a free plan without locations must include every location")
	}
	d := Default()
	def, err := d.FreePlan()
	if err != nil || def.Enabled || def.BandwidthBps != 10_000_000 || def.Devices != 1 {
		t.Errorf("default free plan = %+v, %v; want off, 10Mbit, 1 device", def, err)
	}
}

func TestFreePlanErrors(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"free_bandwidth = \"fast\"\n", `config: free_bandwidth: want a rate like "10Mbit", "512kbit" or "1Gbit", got "fast"`},
		{"free_bandwidth = \"10MB\"\n", "config: free_bandwidth: want a rate"},
		{"free_bandwidth = \"-1Mbit\"\n", "config: free_bandwidth: want a rate"},
		{"free_bandwidth = \"1kbit\"\n", "config: free_bandwidth: want 64kbit to 100Gbit"},
		{"free_devices = 0\n", "config: free_devices: want 1 to max_devices (5), got 0"},
		{"free_devices = 6\n", "config: free_devices: want 1 to max_devices (5), got 6"},
		{"free_locations = [\"Sweden\"]\n", `config: free_locations: want cc-city locations or two-letter countries, got "Sweden"`},
	} {
		_, err := Load(Sources{File: writeFile(t, tt.file)})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: err = %v, want one line with %q", tt.file, err, tt.want)
		}
	}
}

func TestParseBandwidth(t *testing.T) {
	for in, want := range map[string]int64{"10Mbit": 10_000_000, "512kbit": 512_000, "1Gbit": 1_000_000_000, "64000bit": 64_000, "1.5mbit": 1_500_000, " 3MBIT ": 3_000_000} {
		if got, err := ParseBandwidth(in); err != nil || got != want {
			t.Errorf("ParseBandwidth(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "bit", "Mbit", "NaNbit", "Infbit", "10 Mbps", "1e12Mbit"} {
		if _, err := ParseBandwidth(in); err == nil {
			t.Errorf("ParseBandwidth(%q) succeeded", in)
		}
	}
}
