package client

import (
	"regexp"
	"testing"
)

func TestOSVersionIsCoarse(t *testing.T) {
	// The server accepts only this shape, so nothing finer than a kernel
	// major.minor can identify a machine.
	re := regexp.MustCompile(`^[a-z]{2,12}( [0-9][0-9a-z.]{0,15})?$`)
	if v := OSVersion(); !re.MatchString(v) {
		t.Errorf("OSVersion() = %q, not of the accepted shape", v)
	}
}
