package store

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the PostgreSQL channel that carries new peer-map
// versions between processes.
const notifyChannel = "veil_peers"

// hub fans new peer-map versions out to Watch channels. Each channel holds
// at most one value, replaced by newer ones, so a slow receiver never
// blocks the others and always ends up with the latest version.
type hub struct {
	mu     sync.Mutex
	latest int64
	subs   map[chan int64]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: make(map[chan int64]struct{})} }

// publish delivers v unless a version at least as new was already
// delivered: commits can finish out of order, and reports from the
// listener and the local commit overlap.
func (h *hub) publish(v int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v <= h.latest {
		return
	}
	h.latest = v
	for ch := range h.subs {
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- v:
		default:
		}
	}
}

// seen records v as delivered without waking anyone (the starting point).
func (h *hub) seen(v int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latest = max(h.latest, v)
}

func (h *hub) subscribe(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch
	}
	h.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() { h.unsubscribe(ch) })
	return ch
}

func (h *hub) unsubscribe(ch chan int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// Watch returns a channel that receives each new peer-map version; it is
// closed when ctx ends or the store closes.
func (s *sqlStore) Watch(ctx context.Context) <-chan int64 {
	return s.hub.subscribe(ctx)
}

// start records the current version and starts the goroutines that bring
// other processes' changes: a poll of the version row on SQLite; on
// PostgreSQL a LISTEN connection, and beside it a slower poll that catches
// what a lost connection dropped (a notice is not queued for a listener
// that is away, and a connection cut without a reset looks alive). On
// PostgreSQL the first LISTEN is made before start returns, so no change
// committed after Open waits for the poll.
func (s *sqlStore) start(ctx context.Context) error {
	v, err := s.PeerVersion(ctx)
	if err != nil {
		return err
	}
	s.hub.seen(v)
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	if !s.d.pg {
		b := &batcher{jobs: make(chan *writeJob), quit: bg.Done()}
		s.wg.Go(func() { s.runBatches(bg, b) })
		s.batch = b
		s.wg.Go(func() { s.poll(bg, s.o.pollEvery) })
		return nil
	}
	c, err := connectListener(ctx, s.listenConfig)
	if err != nil {
		stop()
		return err
	}
	mb := &mapBatcher{jobs: make(chan *mapJob), quit: bg.Done()}
	s.wg.Go(func() { s.runMapBatches(bg, mb) })
	s.mapBatch = mb
	s.wg.Go(func() { s.listen(bg, c) })
	s.wg.Go(func() { s.poll(bg, s.o.listenPollEvery) })
	return nil
}

// poll publishes the version row every interval: on SQLite the only way to
// see what another process (or another Store in this one) committed to
// the same file; on PostgreSQL the fallback for LISTEN.
func (s *sqlStore) poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.publishCurrent(ctx)
	}
}

// publishCurrent reads the version row and wakes watchers if it moved.
func (s *sqlStore) publishCurrent(ctx context.Context) {
	if v, err := s.PeerVersion(ctx); err == nil {
		s.hub.publish(v)
	}
}

// Reconnection backoff of the LISTEN connection.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// listen fans out notices from the LISTEN connection c, reconnecting with
// backoff when it drops. After a reconnect it publishes the current
// version, since notices sent while it was away are lost; meanwhile the
// poll stands in.
func (s *sqlStore) listen(ctx context.Context, c *pgx.Conn) {
	backoff := listenBackoffMin
	for {
		for c != nil {
			n, err := c.WaitForNotification(ctx)
			if err != nil {
				c.Close(context.Background())
				c = nil
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("peer-map notice connection lost", "err", err)
				break
			}
			if v, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
				s.hub.publish(v)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		var err error
		if c, err = connectListener(ctx, s.listenConfig); err != nil {
			backoff = min(2*backoff, listenBackoffMax)
			continue
		}
		backoff = listenBackoffMin
		s.publishCurrent(ctx)
	}
}
