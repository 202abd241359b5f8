package myip

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Fetch asks a Veil site (baseURL, such as "https://veil.example") what
// it sees of the caller: the exit check of `veil status --check`.
// Report.Protected says whether traffic leaves through a Veil gateway.
// client may be nil for http.DefaultClient.
func Fetch(ctx context.Context, client *http.Client, baseURL string) (*Report, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/api/v1/ip", nil)
	if err != nil {
		return nil, fmt.Errorf("asking for the exit address: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking for the exit address: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("asking for the exit address: %s", resp.Status)
	}
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("reading the exit address: %w", err)
	}
	return &rep, nil
}
