package dnsleak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Check runs a DNS leak test from a client, as `veil status --check`
// does: it starts a test at the control plane controlURL
// ("https://veil.example"), resolves every test name with resolve (which
// should use the system's resolver, the one under test), and returns
// what the server saw. Errors from resolve are ignored: what matters is
// which resolvers asked, not what they answered. client may be nil for
// http.DefaultClient.
func Check(ctx context.Context, client *http.Client, controlURL string, resolve func(ctx context.Context, name string) error) (*Result, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base := strings.TrimSuffix(controlURL, "/")
	var t Test
	if err := call(ctx, client, http.MethodPost, base+"/api/v1/dnsleak", http.StatusCreated, &t); err != nil {
		return nil, fmt.Errorf("starting dns leak test: %w", err)
	}
	for _, name := range t.Names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_ = resolve(ctx, name)
	}
	var res Result
	if err := call(ctx, client, http.MethodGet, base+"/api/v1/dnsleak/"+t.ID, http.StatusOK, &res); err != nil {
		return nil, fmt.Errorf("reading dns leak result: %w", err)
	}
	return &res, nil
}

func call(ctx context.Context, client *http.Client, method, url string, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var e struct{ Error string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
