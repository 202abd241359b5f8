package visitor

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"veil/internal/visitor/visitortest"
)

func request(remote string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	return r
}

func TestSlotsShare(t *testing.T) {
	s := NewSlots(nil, 3, 2, Pace{})
	hold := func(remote string) (func(), error) {
		_, release, err := s.Hold(httptest.NewRecorder(), request(remote))
		return release, err
	}
	a1, err1 := hold("192.0.2.1:1")
	_, err2 := hold("192.0.2.1:2")
	if err1 != nil || err2 != nil {
		t.Fatalf("a visitor is refused below its share: %v, %v", err1, err2)
	}
	if _, err := hold("192.0.2.1:3"); !errors.Is(err, ErrYourShare) || Status(err) != http.StatusTooManyRequests {
		t.Fatalf("a visitor over its share: %v, want ErrYourShare", err)
	}
	if _, err := hold("192.0.2.2:1"); err != nil {
		t.Fatalf("a second visitor is refused while the first holds its share: %v", err)
	}
	if _, err := hold("192.0.2.3:1"); !errors.Is(err, ErrBusy) || Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("all slots taken: %v, want ErrBusy", err)
	}
	a1()
	if _, err := hold("192.0.2.3:1"); err != nil {
		t.Fatalf("a released slot was not given back: %v", err)
	}
}

// TestSlowReaderLosesSlot asks for an endless answer and never reads it:
// the slot must come back once the write deadline passes.
func TestSlowReaderLosesSlot(t *testing.T) {
	s := NewSlots(nil, 1, 1, Pace{Step: 64 << 10, Within: 100 * time.Millisecond})
	returned := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w, release, err := s.Hold(w, r)
		if err != nil {
			http.Error(w, err.Error(), Status(err))
			return
		}
		defer release()
		b := make([]byte, 1<<20)
		for range 1 << 12 { // 4 GiB: far more than any socket buffers
			if _, err = w.Write(b); err != nil {
				break
			}
		}
		returned <- err
	}))
	t.Cleanup(srv.Close)

	visitortest.Stall(t, srv.Listener.Addr().String(), "/")
	select {
	case err := <-returned:
		if err == nil {
			t.Fatal("4 GiB went to a reader that reads nothing")
		}
	case <-time.After(time.Minute):
		t.Fatal("the slow reader still holds the slot")
	}
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the next request of the same visitor: %d, want 200", resp.StatusCode)
	}
}
