package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPortalCommand(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"window too long", []string{"portal", "--for", "31m"}, "from 0 to 30m0s"},
		{"negative window", []string{"portal", "--for", "-1s"}, "from 0 to 30m0s"},
		{"nothing to open", []string{"portal", "--for", "1m"}, "nothing stands between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(append(tt.args, "--state", t.TempDir()))
			err := root.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("veil %s: %v, want an error saying %q", strings.Join(tt.args, " "), err, tt.want)
			}
		})
	}
}

func TestBeforePortal(t *testing.T) {
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://login.portal.example/", http.StatusFound)
	}))
	defer portal.Close()
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer open.Close()
	ctx := context.Background()
	if err := beforePortal(ctx, portal.URL, ""); err == nil || !strings.Contains(err.Error(), "login.portal.example") {
		t.Errorf("behind a portal: %v, want it named", err)
	}
	if err := beforePortal(ctx, portal.URL, "off"); err != nil {
		t.Errorf("check off: %v", err)
	}
	if err := beforePortal(ctx, open.URL, ""); err != nil {
		t.Errorf("an open network: %v", err)
	}
	if err := beforePortal(ctx, "http://127.0.0.1:1", ""); err != nil {
		t.Errorf("no answer is no portal: %v", err)
	}
}
