package sitetest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// Patterns records the patterns a Register function adds, in order.
type Patterns []string

// HandleFunc records pattern.
func (p *Patterns) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*p = append(*p, pattern)
}

// RoutesOnlyIn fails t for every call of a HandleFunc or Handle method
// in the package in dir (its non-test files) outside the file routes, so
// that the package's routes stay listed in one place.
func RoutesOnlyIn(t testing.TB, dir, routes string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || filepath.Base(name) == routes {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "HandleFunc" || sel.Sel.Name == "Handle") {
				t.Errorf("%s registers a route outside %s", fset.Position(call.Pos()), routes)
			}
			return true
		})
	}
}
