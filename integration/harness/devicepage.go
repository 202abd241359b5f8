package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Chromium starts a headless Chromium (VEIL_TEST_CHROMIUM, as the
// browser tests use it) for a test that may run up to bound, or skips
// the test. Host names resolve to nothing. opts come after the defaults,
// so a Flag of the same name replaces the default one.
func Chromium(tb testing.TB, bound time.Duration, opts ...chromedp.ExecAllocatorOption) context.Context {
	tb.Helper()
	path := os.Getenv("VEIL_TEST_CHROMIUM")
	if path == "" {
		tb.Skip("VEIL_TEST_CHROMIUM is not set: browser tests skipped (apt-get install chromium; scripts/test.sh sets it)")
	}
	all := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(tb.TempDir()), chromedp.WindowSize(1200, 1600),
	}, opts...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), all...)
	tb.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	tb.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("starting chromium: %v", err)
	}
	// A generous bound so that a stuck browser fails the test instead of
	// hanging it; not an assertion on speed. The first Do above must run
	// without it, or the bound would end the browser.
	ctx, cancel3 := context.WithTimeout(ctx, bound)
	tb.Cleanup(cancel3)
	return ctx
}

// Request is one request a page made, as the browser sent it.
type Request struct {
	Method, URL string
	Headers     []string // "Name: value"
	Body        string
}

// Recorder holds every request of a browser tab since Record.
type Recorder struct {
	mu   sync.Mutex
	reqs []Request
	ids  map[network.RequestID]int
}

// Record starts recording the requests of the tab in ctx, with their
// headers (also those the network stack adds, such as cookies) and
// bodies.
func Record(tb testing.TB, ctx context.Context) *Recorder {
	tb.Helper()
	rec := &Recorder{ids: map[network.RequestID]int{}}
	err := chromedp.Listen(ctx, func(ev any) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			r := Request{Method: e.Request.Method, URL: e.Request.URL + e.Request.URLFragment, Headers: headerLines(e.Request.Headers)}
			for _, p := range e.Request.PostDataEntries {
				r.Body += string(p.Bytes)
			}
			if e.Request.HasPostData && len(e.Request.PostDataEntries) == 0 {
				r.Body = "\x00unread"
				go rec.readBody(ctx, e.RequestID)
			}
			rec.ids[e.RequestID] = len(rec.reqs)
			rec.reqs = append(rec.reqs, r)
		case *network.EventRequestWillBeSentExtraInfo:
			rec.reqs = append(rec.reqs, Request{Method: "(headers)", Headers: headerLines(e.Headers)})
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		tb.Fatal(err)
	}
	return rec
}

func (rec *Recorder) readBody(ctx context.Context, id network.RequestID) {
	res, err := chromedp.Call(ctx, network.GetRequestPostData, network.GetRequestPostDataParams{RequestID: id})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err == nil {
		rec.reqs[rec.ids[id]].Body = string(res.PostData)
	}
}

// Requests returns what was recorded so far.
func (rec *Recorder) Requests() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Request(nil), rec.reqs...)
}

func headerLines(h network.Headers) []string {
	var out []string
	for k, v := range h {
		out = append(out, fmt.Sprintf("%s: %v", k, v))
	}
	return out
}

// PageDevice is what the account page gave for a device added on it.
type PageDevice struct {
	// Download is the wg-quick file the page offers to download.
	Download string
	// QR is the QR code the page drew, read from a screenshot.
	QR string
	// FileName is the name the browser saved the file under.
	FileName string
	// Screenshot is that screenshot (PNG).
	Screenshot []byte
}

// AddDeviceOnPage logs in on base's /account with code (unless a session
// is open), adds a device named name there and reads back its file and
// its QR code, as its owner would take them.
func AddDeviceOnPage(tb testing.TB, ctx context.Context, base, code, name string) PageDevice {
	tb.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account"), chromedp.WaitReady("body")); err != nil {
		tb.Fatalf("opening /account: %v", err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#access_code").length`)); n == 1 {
		if err := chromedp.Do(ctx, chromedp.SendKeys("#access_code", code), chromedp.Click("#login"), chromedp.WaitVisible("#device_name")); err != nil {
			tb.Fatalf("logging in on /account: %v", err)
		}
	}
	err := chromedp.Do(ctx,
		chromedp.WaitVisible("#device_name"),
		chromedp.SendKeys("#device_name", name),
		chromedp.Click("#add"),
	)
	if err != nil {
		tb.Fatalf("adding a device on the page: %v", err)
	}
	// Done when the file is offered, or failed when the status says why.
	const outcome = `(() => { const s = document.getElementById("add-status");
		if (!document.getElementById("new-device").hidden) return "ok";
		return s.hidden || s.textContent === s.dataset.working ? "" : s.textContent; })()`
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](outcome))
		if err != nil {
			tb.Fatalf("adding a device on the page: %v", err)
		}
		if v == "ok" {
			break
		}
		if v != "" {
			tb.Fatalf("adding a device on the page: %s", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var pd PageDevice
	if pd.Screenshot, err = chromedp.Run(ctx, chromedp.Screenshot("#conf-qr")); err != nil {
		tb.Fatalf("screenshot of the QR code: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(pd.Screenshot))
	if err != nil {
		tb.Fatal(err)
	}
	if pd.QR, err = DecodeQR(img); err != nil {
		if f := os.Getenv("VEIL_TEST_SCREENSHOTS"); f != "" {
			os.WriteFile(f, pd.Screenshot, 0o644)
		}
		tb.Fatal(err)
	}
	// The download, as the browser saves it.
	dir := tb.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		tb.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#conf-download")); err != nil {
		tb.Fatalf("clicking the download link: %v", err)
	}
	for range 200 {
		if files, _ := filepath.Glob(filepath.Join(dir, "*.conf")); len(files) == 1 {
			b, err := os.ReadFile(files[0])
			if err == nil && len(b) > 0 {
				pd.Download, pd.FileName = string(b), filepath.Base(files[0])
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pd.Download == "" {
		tb.Fatal("the download link saved no .conf file")
	}
	return pd
}

// String shows a request for a failure message.
func (r Request) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}
