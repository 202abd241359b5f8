// Package outbound is what the tools that reach out to the internet on a
// visitor's behalf (ping, whois) share: a per-visitor quota, so that the
// site cannot be turned into someone else's flood, and the pair of a
// page with a form and a JSON API around one question. Visitors are
// counted by throttle's keyed hashes in memory (promise P1): no address
// is held, and neither questions nor answers are kept.
package outbound

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"veil/internal/i18n"
	"veil/internal/throttle"
	"veil/internal/visitor"
	"veil/internal/web"
)

// Quota counts uses per visitor within a window, and bounds how many
// uses run at once server-wide, so that many visitors each within their
// quota still cannot hold every socket and goroutine of the server.
type Quota struct {
	who     *visitor.Resolver
	t       *throttle.Throttle
	running chan struct{}
}

// MaxRunning is how many uses of one tool run at once, server-wide.
const MaxRunning = 32

// ErrBusy refuses a use when MaxRunning of them are running.
var ErrBusy error = i18n.NewError("tools.err.busy")

// NewQuota allows limit uses per visitor per window, as who tells
// visitors apart (nil: by TCP peer), and MaxRunning at once.
func NewQuota(limit int, window time.Duration, who *visitor.Resolver) *Quota {
	return &Quota{who: who, t: throttle.New(limit, window), running: make(chan struct{}, MaxRunning)}
}

// Begin counts one use by r's visitor and takes one of the running
// slots. It returns the HTTP status and error of a refusal (429 over the
// visitor's quota, 503 when the server is busy), or done, which the
// caller calls when the use has finished.
func (q *Quota) Begin(r *http.Request) (done func(), status int, err error) {
	if err := q.Use(r); err != nil {
		return nil, http.StatusTooManyRequests, err
	}
	select {
	case q.running <- struct{}{}:
		return func() { <-q.running }, 0, nil
	default:
		return nil, http.StatusServiceUnavailable, ErrBusy
	}
}

// Take counts one use by r's visitor. When the visitor is over the limit
// it returns false and how long until it may try again.
func (q *Quota) Take(r *http.Request) (bool, time.Duration) {
	return q.t.Take(q.who.Key(r))
}

// Use counts one use by r's visitor and, over the limit, returns the
// error to show: when to try again.
func (q *Quota) Use(r *http.Request) error {
	if ok, wait := q.Take(r); !ok {
		return i18n.NewError("tools.err.quota", "Seconds", strconv.Itoa(int(wait.Seconds())+1))
	}
	return nil
}

// Tool is one outbound tool as the site offers it.
type Tool[R any] struct {
	// Page and API are the paths ("/whois", "/api/v1/whois"); Param is
	// the query parameter holding the question ("q").
	Page, API, Param string
	// Template and Title render the page; its data is a PageData[R].
	Template, Title string
	// Check refuses a malformed request (the question, other parameters)
	// before it costs quota.
	Check func(r *http.Request, question string) error
	// Run answers a question; the status is the HTTP status of an error
	// (a 4xx for the visitor's mistakes, 5xx for the far end's).
	Run func(r *http.Request, question string) (R, int, error)
	// Quota is charged once per checked question.
	Quota *Quota
}

// PageData is what a tool's page template sees.
type PageData[R any] struct {
	Question string
	Result   *R
	// Error is what went wrong, shown in the visitor's language where
	// it is an i18n.Error.
	Error error
}

// Register mounts the page and the API on mux.
func (t *Tool[R]) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+t.Page, t.servePage)
	mux.HandleFunc("GET "+t.API, t.serveAPI)
}

func (t *Tool[R]) servePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get(t.Param)
	d := PageData[R]{Question: q}
	code := http.StatusOK
	if q != "" {
		res, status, err := t.answer(r, q)
		if err != nil {
			d.Error, code = err, status
		} else {
			d.Result = &res
		}
	}
	web.Render(w, r, t.Template, web.Page{Title: t.Title, Data: d, Status: code})
}

func (t *Tool[R]) serveAPI(w http.ResponseWriter, r *http.Request) {
	res, status, err := t.answer(r, r.URL.Query().Get(t.Param))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(res)
}

// answer checks the question and the visitor's quota, then runs.
func (t *Tool[R]) answer(r *http.Request, q string) (R, int, error) {
	var zero R
	if err := t.Check(r, q); err != nil {
		return zero, http.StatusBadRequest, err
	}
	done, status, err := t.Quota.Begin(r)
	if err != nil {
		return zero, status, err
	}
	defer done()
	return t.Run(r, q)
}
