package site

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"veil/internal/web"
)

// downloads serves /download, the page that says which way of
// connecting suits which device, and /download/FILE, the release files
// `make dist` writes, from Dir (the operator copies dist/ there). The
// page lists the files SHA256SUMS names, with their sums; without Dir or
// the file, it points to building from source.
type downloads struct {
	// Dir holds the release files and SHA256SUMS; empty: none served.
	Dir string
}

// downloadFile is one release file on the page.
type downloadFile struct {
	Name   string
	SHA256 string
}

// downloadData is what download.html sees.
type downloadData struct {
	Files map[string]downloadFile // by name
	Sums  bool
	// Origin is this site as the visitor reached it, for the commands
	// that log in.
	Origin string
}

// releaseName is the shape of every file `make dist` writes.
var releaseName = regexp.MustCompile(`^(veil-[a-z0-9]+-[a-z0-9]+(\.exe)?|veil-extension-[a-z]+\.zip|SHA256SUMS)$`)

func (d downloads) page(w http.ResponseWriter, r *http.Request) {
	origin := "http://" + r.Host
	if r.TLS != nil {
		origin = "https://" + r.Host
	}
	data := downloadData{Files: map[string]downloadFile{}, Origin: origin}
	if d.Dir != "" {
		if f, err := os.Open(filepath.Join(d.Dir, "SHA256SUMS")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				sum, name, ok := strings.Cut(sc.Text(), "  ")
				if ok && releaseName.MatchString(name) {
					data.Files[name] = downloadFile{Name: name, SHA256: sum}
				}
			}
			f.Close()
			data.Sums = len(data.Files) > 0
		}
	}
	web.Render(w, r, "download.html", web.Page{Title: "title.download", Data: data})
}

func (d downloads) file(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if d.Dir == "" || !releaseName.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	p := filepath.Join(d.Dir, name)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeFile(w, r, p)
}
