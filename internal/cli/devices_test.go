package cli

import (
	"strings"
	"testing"

	"veil/internal/apitypes"
)

func TestFindDevice(t *testing.T) {
	devs := []apitypes.Device{{ID: 1, Name: "laptop"}, {ID: 2, Name: "phone"}, {ID: 3, Name: "phone"}, {ID: 4, Name: "2"}}
	if d, err := findDevice(devs, "laptop"); err != nil || d.ID != 1 {
		t.Fatalf("by name: %v %v", d, err)
	}
	if d, err := findDevice(devs, "2"); err != nil || d.ID != 2 {
		t.Fatalf("an id wins over a name: %v %v", d, err)
	}
	if _, err := findDevice(devs, "phone"); err == nil || !strings.Contains(err.Error(), "give the id") {
		t.Fatalf("shared name: %v", err)
	}
	if _, err := findDevice(devs, "tablet"); err == nil {
		t.Fatal("unknown device found")
	}
}
