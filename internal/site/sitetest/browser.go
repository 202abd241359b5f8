package sitetest

import (
	"bytes"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser is a visitor's browser on the site: it keeps cookies and posts forms as
// the site's pages do, with the site's Origin and the page's form token.
type Browser struct {
	t    testing.TB
	base string
	hc   *http.Client
	// CSRF is the form token of the last page fetched.
	CSRF string
	// Origin is sent with every post; the site's own by default.
	Origin string
}

// NewBrowser is a browser with no cookies yet, visiting base.
func NewBrowser(t testing.TB, base string) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, base: base, Origin: base, hc: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// Get fetches a page, following redirects, and keeps its form token.
func (v *Browser) Get(path string) (int, string) {
	v.t.Helper()
	for range 5 {
		resp, err := v.hc.Get(v.base + path)
		if err != nil {
			v.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && loc != "" {
			path = loc
			continue
		}
		if m := csrfRE.FindSubmatch(b); m != nil {
			v.CSRF = html.UnescapeString(string(m[1]))
		}
		return resp.StatusCode, string(b)
	}
	v.t.Fatalf("GET %s: too many redirects", path)
	return 0, ""
}

// Submit posts a form without following the answer's redirect; the form
// token is fetched first if the visitor has none.
func (v *Browser) Submit(path string, form url.Values) *http.Response {
	v.t.Helper()
	if v.CSRF == "" {
		v.Get("/support")
	}
	f := url.Values{CSRFField: {v.CSRF}}
	for k, vs := range form {
		f[k] = vs
	}
	req, err := http.NewRequest("POST", v.base+path, strings.NewReader(f.Encode()))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if v.Origin != "" {
		req.Header.Set("Origin", v.Origin)
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// Post sends a form and returns the status and body of the page it leads
// to.
func (v *Browser) Post(path string, form url.Values) (int, string) {
	v.t.Helper()
	resp := v.Submit(path, form)
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && loc != "" {
		return v.Get(loc)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// CSRFField is the form field of the site's token.
const CSRFField = "csrf"

// GetPage fetches a page with hc and returns its body; the status must
// be 200.
func GetPage(t testing.TB, hc *http.Client, u string) string {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}
