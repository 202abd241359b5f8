package site

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"veil/internal/config"
	"veil/internal/i18n"
)

// A Doc is one Markdown page of the site (terms, a guide, a blog post)
// in one language, rendered at start. Its first "# " line is its title.
type Doc struct {
	// Slug names the page: "terms", "kill-switch", "hello".
	Slug  string
	Lang  string
	Title string
	// Date is a blog post's, from its file name; zero for other pages.
	Date time.Time
	// Summary is the first paragraph as plain text, for lists and feeds.
	Summary string
	Body    template.HTML
}

// prose holds every Doc of the site by section ("" for single pages,
// "help", "blog"), slug and language.
type prose map[string]map[string]map[string]*Doc

// markdown renders CommonMark with tables; raw HTML in a file is not
// passed through (goldmark's default), so the operator's files cannot
// add scripts to the site.
var markdown = goldmark.New(goldmark.WithExtensions(extension.Table))

// loadProse reads the built-in pages of fsys and then, when dir is not
// empty, the operator's, which replace built-in pages of the same name
// and language. A file is SECTION/[DATE-]SLUG.LANG.md ("help/kill-switch.de.md",
// "blog/2026-12-02-hello.en.md") or SLUG.LANG.md at the top.
func loadProse(builtin fs.FS, dir string) (prose, error) {
	p := prose{}
	if err := p.add(builtin, func(name string) ([]byte, error) { return fs.ReadFile(builtin, name) }); err != nil {
		return nil, err
	}
	if dir != "" {
		// The operator's files are bounded as every file a key names is.
		read := func(name string) ([]byte, error) {
			return config.ReadFile(filepath.Join(dir, name), config.MaxTextFile)
		}
		if err := p.add(os.DirFS(dir), read); err != nil {
			return nil, fmt.Errorf("operator's pages in %s: %w", dir, err)
		}
	}
	return p, nil
}

func (p prose) add(fsys fs.FS, read func(name string) ([]byte, error)) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".md") {
			return err
		}
		section := path.Dir(name)
		if section == "." {
			section = ""
		}
		if section != "" && section != "help" && section != "blog" {
			return fmt.Errorf("%s: pages go at the top, in help/ or in blog/", name)
		}
		base := strings.TrimSuffix(path.Base(name), ".md")
		slug, lang, ok := strings.Cut(base, ".")
		if !ok || !known(lang) {
			return fmt.Errorf("%s: want NAME.LANG.md with LANG one of the site's languages", name)
		}
		b, err := read(name)
		if err != nil {
			return err
		}
		doc, err := render(slug, lang, b)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if section == "blog" {
			if len(slug) < 11 || slug[10] != '-' {
				return fmt.Errorf("%s: a post is named DATE-SLUG, as 2026-12-02-hello", name)
			}
			if doc.Date, err = time.Parse(time.DateOnly, slug[:10]); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			doc.Slug = slug[11:]
		}
		if p[section] == nil {
			p[section] = map[string]map[string]*Doc{}
		}
		if p[section][doc.Slug] == nil {
			p[section][doc.Slug] = map[string]*Doc{}
		}
		p[section][doc.Slug][lang] = doc
		return nil
	})
}

func known(lang string) bool {
	for _, l := range i18n.Langs {
		if l.Code == lang {
			return true
		}
	}
	return false
}

func render(slug, lang string, src []byte) (*Doc, error) {
	text := strings.ReplaceAll(string(src), "\r\n", "\n")
	first, rest, _ := strings.Cut(text, "\n")
	title, ok := strings.CutPrefix(first, "# ")
	if !ok || strings.TrimSpace(title) == "" {
		return nil, fmt.Errorf("the first line must be the title, as \"# Title\"")
	}
	var buf bytes.Buffer
	if err := markdown.Convert([]byte(rest), &buf); err != nil {
		return nil, err
	}
	return &Doc{Slug: slug, Lang: lang, Title: strings.TrimSpace(title), Summary: summary(rest), Body: template.HTML(buf.String())}, nil
}

// summary is the first paragraph of Markdown source, its marks dropped.
func summary(src string) string {
	for _, para := range strings.Split(strings.TrimSpace(src), "\n\n") {
		para = strings.TrimSpace(para)
		if para == "" || strings.HasPrefix(para, "#") || strings.HasPrefix(para, "|") || strings.HasPrefix(para, "```") {
			continue
		}
		r := strings.NewReplacer("**", "", "*", "", "`", "", "\n", " ")
		return r.Replace(para)
	}
	return ""
}

// doc returns a page in lang, or in English when it has no translation;
// fellBack says which.
func (p prose) doc(section, slug, lang string) (d *Doc, fellBack bool) {
	byLang := p[section][slug]
	if d := byLang[lang]; d != nil {
		return d, false
	}
	return byLang[i18n.Default], lang != i18n.Default
}

// list returns every page of a section in lang (each falling back to
// English), blog posts newest first, guides by title.
func (p prose) list(section, lang string) []*Doc {
	var out []*Doc
	for slug := range p[section] {
		if d, _ := p.doc(section, slug, lang); d != nil {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Date.Equal(out[j].Date) {
			return out[i].Date.After(out[j].Date)
		}
		return out[i].Title < out[j].Title
	})
	return out
}
