package web

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

// Mail texts are templates too (mail/NAME.txt): the first line is the
// subject, the rest after a blank line the body, so that all text a
// person reads lives in templates.

//go:embed mail/*.txt
var mailFS embed.FS

var mailTemplates = template.Must(template.New("mail").ParseFS(mailFS, "mail/*.txt"))

// MailText renders the mail template name ("receipt.txt") with data and
// returns its subject and body.
func MailText(name string, data any) (subject, body string, err error) {
	var buf bytes.Buffer
	if err := mailTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		return "", "", fmt.Errorf("rendering mail %s: %w", name, err)
	}
	subject, body, ok := strings.Cut(buf.String(), "\n\n")
	if !ok || subject == "" || strings.Contains(subject, "\n") {
		return "", "", fmt.Errorf("rendering mail %s: want a subject line, a blank line, the body", name)
	}
	return subject, strings.TrimSpace(body) + "\n", nil
}
