package visitor

import (
	"errors"
	"io"
	"net/http"
	"time"

	"veil/internal/i18n"
	"veil/internal/throttle"
)

// Slots share out a costly kind of work (speed-test transfers, web-proxy
// fetches): at most Total at once server-wide, and at most PerVisitor of
// those held by one visitor, so that one visitor cannot take them all.
// Whoever holds a slot must keep the answer moving (Pace): a reader that
// stalls loses its slot when its write deadline passes.
type Slots struct {
	who   *Resolver
	pace  Pace
	total chan struct{}
	each  *throttle.Concurrent
}

// Pace is the slowest a slot's holder may take its answer, and send its
// request body: every Step bytes within Within, and all of it within Max.
type Pace struct {
	// Step is how many bytes each deadline covers; default 256 KiB.
	Step int
	// Within is how long each Step may take; default 15s.
	Within time.Duration
	// Max bounds the whole request; default 2 minutes.
	Max time.Duration
}

// NewSlots returns total slots, perVisitor of them per visitor as who
// tells visitors apart, held at pace (its zero fields take the defaults).
func NewSlots(who *Resolver, total, perVisitor int, pace Pace) *Slots {
	if pace.Step <= 0 {
		pace.Step = 256 << 10
	}
	if pace.Within <= 0 {
		pace.Within = 15 * time.Second
	}
	if pace.Max <= 0 {
		pace.Max = 2 * time.Minute
	}
	return &Slots{who: who, pace: pace, total: make(chan struct{}, total), each: throttle.NewConcurrent(perVisitor)}
}

// Reasons Hold refuses a slot.
var (
	// ErrYourShare: the visitor holds its share already (answer 429).
	ErrYourShare error = i18n.NewError("tools.err.your_share")
	// ErrBusy: every slot is taken (answer 503).
	ErrBusy error = i18n.NewError("tools.err.busy")
)

// Status is the HTTP status that answers a refusal of Hold.
func Status(err error) int {
	if errors.Is(err, ErrYourShare) {
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// Hold takes a slot for r's visitor. On success the handler writes to
// the returned ResponseWriter (and reads r.Body, now paced as well), and
// calls release when done, which flushes the answer under its deadline
// and gives the slot back.
func (s *Slots) Hold(w http.ResponseWriter, r *http.Request) (_ http.ResponseWriter, release func(), err error) {
	mine, ok := s.each.Acquire(s.who.Key(r))
	if !ok {
		return nil, nil, ErrYourShare
	}
	select {
	case s.total <- struct{}{}:
	default:
		mine()
		return nil, nil, ErrBusy
	}
	rc := http.NewResponseController(w)
	end := time.Now().Add(s.pace.Max)
	pw := &pacedWriter{ResponseWriter: w, rc: rc, pace: s.pace, end: end}
	var pr *pacedReader
	if r.Body != nil && r.Body != http.NoBody {
		pr = &pacedReader{ReadCloser: r.Body, rc: rc, pace: s.pace, end: end}
		r.Body = pr
	}
	return pw, func() {
		// The rest of the answer leaves under the last deadline; then the
		// connection, which may carry other requests, has none.
		if rc.Flush() == nil {
			rc.SetWriteDeadline(time.Time{})
			if pr != nil {
				rc.SetReadDeadline(time.Time{})
			}
		}
		<-s.total
		mine()
	}, nil
}

// deadline is when the next step must be done: Within from now, and no
// later than the request's end.
func (p Pace) deadline(end time.Time) time.Time {
	d := time.Now().Add(p.Within)
	if d.After(end) {
		return end
	}
	return d
}

// pacedWriter writes in steps of pace.Step bytes, each with a deadline.
type pacedWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	pace Pace
	end  time.Time
	left int // bytes the current deadline still covers
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	done := 0
	for len(b) > 0 {
		if p.left <= 0 {
			// A writer that cannot take a deadline has nothing to
			// stall; it is written to as it is.
			p.rc.SetWriteDeadline(p.pace.deadline(p.end))
			p.left = p.pace.Step
		}
		n, err := p.ResponseWriter.Write(b[:min(len(b), p.left)])
		done += n
		p.left -= n
		b = b[n:]
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Unwrap lets http.ResponseController reach the connection.
func (p *pacedWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// pacedReader reads the request body in steps of pace.Step bytes, each
// with a deadline.
type pacedReader struct {
	io.ReadCloser
	rc   *http.ResponseController
	pace Pace
	end  time.Time
	left int
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		p.rc.SetReadDeadline(p.pace.deadline(p.end))
		p.left = p.pace.Step
	}
	n, err := p.ReadCloser.Read(b[:min(len(b), p.left)])
	p.left -= n
	return n, err
}
