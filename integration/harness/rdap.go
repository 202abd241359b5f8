package harness

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// StartRDAP serves RDAP (RFC 9083) on ip: objects maps a path such as
// "/domain/example.test" to its JSON; any other path is 404. It returns
// the base URL.
func StartRDAP(tb testing.TB, ip netip.Addr, objects map[string]string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := objects[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/rdap+json")
		w.Write([]byte(body))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv.URL + "/"
}
