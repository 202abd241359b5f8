package privacy

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Op is the kind of a diff line.
type Op string

// Diff line kinds.
const (
	Same    Op = "same"
	Added   Op = "added"
	Removed Op = "removed"
)

// Line is one line of a diff between two policy versions.
type Line struct {
	Op   Op
	Text string
}

// Diff compares two policy texts line by line (go-difflib's sequence
// matcher, as Python's difflib), giving every line of both with whether it
// was kept, added or removed.
func Diff(from, to string) []Line {
	a, b := lines(from), lines(to)
	m := difflib.NewMatcher(a, b)
	var out []Line
	trim := func(s string) string { return s }
	for _, op := range m.GetOpCodes() {
		switch op.Tag {
		case 'e':
			for _, l := range a[op.I1:op.I2] {
				out = append(out, Line{Same, trim(l)})
			}
		case 'd', 'r', 'i':
			for _, l := range a[op.I1:op.I2] {
				out = append(out, Line{Removed, trim(l)})
			}
			for _, l := range b[op.J1:op.J2] {
				out = append(out, Line{Added, trim(l)})
			}
		}
	}
	return out
}

// lines splits s at newlines; a final newline ends the last line rather
// than starting an empty one.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
