package dnsleak

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"veil/internal/web"
)

// Register mounts the page and the API on mux:
//
//	GET  /dnsleak               the page (its script runs the test)
//	POST /api/v1/dnsleak        starts a test: a Test
//	GET  /api/v1/dnsleak/{id}   what the test has seen: a Result
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /dnsleak", s.servePage)
	mux.HandleFunc("POST /api/v1/dnsleak", s.serveNew)
	mux.HandleFunc("GET /api/v1/dnsleak/{id}", s.serveResult)
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	var credits []web.Credit
	if s.cfg.Geo.Loaded() {
		credits = []web.Credit{{Text: s.cfg.Geo.Attribution.Text, URL: s.cfg.Geo.Attribution.URL}}
	}
	web.Render(w, r, "dnsleak.html", web.Page{
		Title:   "title.dnsleak",
		Data:    struct{ Zone string }{s.zone},
		Credits: credits,
		ImgSrc:  s.ImgSrc(),
	})
}

func (s *Server) serveNew(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.perVisitor.Take(s.cfg.Visitors.Key(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "You have started too many tests; try again in " + strconv.Itoa(int(wait.Minutes())+1) + " min."})
		return
	}
	t, err := s.NewTest()
	if errors.Is(err, ErrFull) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "Too many tests are running; try again in a minute."})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "The test could not be started."})
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) serveResult(w http.ResponseWriter, r *http.Request) {
	res, err := s.Result(r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "No such test; tests expire after 10 minutes."})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "The result could not be read."})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
