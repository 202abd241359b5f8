package client

import (
	"context"
	"net/http"

	"veil/internal/apitypes"
)

// Report tells the control plane this client's OS and app version, which
// it keeps only as a count per day (promise P6). It is best effort: a
// failure changes nothing for the user.
func (a *API) Report(ctx context.Context, appVersion string) {
	r := apitypes.ClientReport{OSVersion: OSVersion(), AppVersion: appVersion}
	a.Do(ctx, http.MethodPost, "/api/v1/client-report", r, nil)
}
