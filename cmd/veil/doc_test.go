package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryPackageHasDoc keeps the tree readable: each package says what
// it is for in a doc comment (STYLE.md, habit 2).
func TestEveryPackageHasDoc(t *testing.T) {
	root := filepath.Join("..", "..")
	dirs := map[string]bool{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	if len(dirs) < 10 {
		t.Fatalf("found only %d package directories under %s", len(dirs), root)
	}
	for dir := range dirs {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for name, pkg := range pkgs {
			documented := false
			for _, f := range pkg.Files {
				if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
					documented = true
				}
			}
			if !documented {
				t.Errorf("package %s in %s has no doc comment", name, dir)
			}
		}
	}
}

// treeFiles returns the files under the repository root whose names end
// in one of exts, leaving out hidden folders and test data.
func treeFiles(t *testing.T, exts ...string) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	var out []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		for _, e := range exts {
			if !d.IsDir() && strings.HasSuffix(path, e) {
				out = append(out, path)
			}
		}
		return nil
	})
	return out
}

// goComments returns the text of every comment in a Go file.
func goComments(t *testing.T, path string) []*ast.Comment {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []*ast.Comment
	for _, g := range f.Comments {
		out = append(out, g.List...)
	}
	return out
}

// TestPromisesCitedAreDefined: the code cites the promises by number
// ("promise P3"); each one cited is defined in docs/promises.md, which
// defines all twelve.
func TestPromisesCitedAreDefined(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "promises.md"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (P\d+): \S`).FindAllStringSubmatch(string(b), -1) {
		defined[m[1]] = true
	}
	for i := 1; i <= 12; i++ {
		if !defined[fmt.Sprintf("P%d", i)] {
			t.Errorf("docs/promises.md does not define P%d", i)
		}
	}
	cite := regexp.MustCompile(`\bP(\d+)(?:[–-]P?(\d+))?\b`)
	cited := 0
	for _, path := range treeFiles(t, ".go") {
		for _, c := range goComments(t, path) {
			for _, m := range cite.FindAllStringSubmatch(c.Text, -1) {
				cited++
				for _, n := range m[1:] {
					if n != "" && !defined["P"+n] {
						t.Errorf("%s cites P%s, which docs/promises.md does not define", path, n)
					}
				}
			}
		}
	}
	if cited < 15 {
		t.Errorf("found only %d citations of promises: is the pattern still right?", cited)
	}
}

// TestNoIssueNumbersInComments: comments say why in their own words, not
// by pointing at a tracker's issue.
func TestNoIssueNumbersInComments(t *testing.T) {
	issue := regexp.MustCompile(`(?i)\bissues? \d|\bissue's\b|\w#\d+|\(#\d+\)|^#\d+`)
	for _, path := range treeFiles(t, ".go") {
		for _, c := range goComments(t, path) {
			for _, line := range strings.Split(c.Text, "\n") {
				if issue.MatchString(strings.TrimLeft(line, "/* ")) {
					t.Errorf("%s: a comment names an issue: %q", path, line)
				}
			}
		}
	}
	other := regexp.MustCompile(`(?i)\bissues? \d|\(#\d+\)|\w#\d+`)
	for _, path := range treeFiles(t, ".sh", ".sql", ".js", "Makefile") {
		b, _ := os.ReadFile(path)
		for i, line := range strings.Split(string(b), "\n") {
			if other.MatchString(line) {
				t.Errorf("%s:%d names an issue: %q", path, i+1, line)
			}
		}
	}
}

// TestDocLinksStayInTree: the README and docs/ link only to files in the
// repository, and those files exist.
func TestDocLinksStayInTree(t *testing.T) {
	root := filepath.Join("..", "..")
	pages := []string{filepath.Join(root, "README.md")}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if len(docs) < 3 {
		t.Errorf("docs/ holds %d pages, want promises, architecture and privacy", len(docs))
	}
	pages = append(pages, docs...)
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			abs := filepath.Join(filepath.Dir(page), target)
			if rel, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s links to %s, outside the repository", page, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links to %s: %v", page, target, err)
			}
		}
	}
}
