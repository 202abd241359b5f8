package cli

import (
	"path/filepath"
	"testing"
)

// A relative --state must name the same directory in the background
// process of `veil connect`, which runs from the root directory.
func TestStateDirIsAbsolute(t *testing.T) {
	got, err := stateDir("some/state")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(got) || filepath.Base(got) != "state" {
		t.Errorf("stateDir(relative) = %q", got)
	}
}
