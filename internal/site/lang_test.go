package site_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
	"veil/internal/apitypes"
	"veil/internal/controlplane"
	"veil/internal/privacy"
	"veil/internal/site/sitetest"
)

// TestRecoveryMailInPageLanguage: a recovery link asked for on a /fr/
// page is mailed in French and leads to the French page; asked for
// through the API, it is in English.
func TestRecoveryMailInPageLanguage(t *testing.T) {
	e := sitetest.New(t)
	base := e.URL
	tok := e.Login(t, e.NewAccount(t, 30))
	email := "francais@example.org"
	if st := e.Call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: &email}, nil); st != 200 {
		t.Fatal(st)
	}
	v := sitetest.NewBrowser(t, base)
	v.Get("/fr/support")
	if loc := v.Submit("/fr/account/recover", url.Values{"email": {email}}).Header.Get("Location"); loc != "/fr/account?m=recover" {
		t.Errorf("the recovery form led to %q, want the French account page", loc)
	}
	ms, err := e.Store.DueMail(context.Background(), time.Now().Add(time.Hour), 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("outbox = %+v, %v", ms, err)
	}
	m := ms[0]
	if m.Subject != "Votre lien de récupération du code d’accès Veil" {
		t.Errorf("subject %q, want the French one", m.Subject)
	}
	for _, want := range []string{"ouvrez ce lien dans un délai de 60 minutes", "[[link /fr/account/recover/", "rien ne change"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("French recovery mail lacks %q:\n%s", want, m.Body)
		}
	}
	if strings.Contains(m.Body, "open this link") {
		t.Errorf("French recovery mail holds English:\n%s", m.Body)
	}
}

// TestPrivacyPageLanguages: /de/privacy is the policy in German with the
// operator as controller; the operator's prose shows in the visitor's
// language when the operator gave it, else in English, saying so; the
// versions page says published versions are kept in English.
func TestPrivacyPageLanguages(t *testing.T) {
	e := sitetest.New(t)
	base := e.URL
	e.API.SetPrivacy(controlplane.PrivacyConfig{
		Prose:      "# About us\n\nWe are a small team.",
		ProseIn:    map[string]string{"fr": "# À propos\n\nNous sommes une petite équipe."},
		Controller: privacy.Controller{Name: "Beispiel GmbH", Address: "Hauptstraße 1\n10115 Berlin", Email: "privacy@example.org"},
	})
	v := sitetest.NewBrowser(t, base)
	st, de := v.Get("/de/privacy")
	if st != 200 {
		t.Fatalf("/de/privacy: %d", st)
	}
	for _, want := range []string{
		`<html lang="de">`, "Verantwortlicher", "Beispiel GmbH", "Hauptstraße 1<br>10115 Berlin", "mailto:privacy@example.org",
		"<h3>Konto</h3>", "<h3>Rechnungsdaten</h3>", "Rechtsgrundlage", "noch nicht ins Deutsche übersetzt", "We are a small team.",
		`href="/de/privacy/versions"`, `href="/de/account"`,
	} {
		if !strings.Contains(de, want) {
			t.Errorf("/de/privacy lacks %q", want)
		}
	}
	for _, en := range []string{"<h3>Account</h3>", "Legal basis", "What we store"} {
		if strings.Contains(de, en) {
			t.Errorf("/de/privacy holds the English %q", en)
		}
	}
	_, fr := v.Get("/fr/privacy")
	if !strings.Contains(fr, "Nous sommes une petite équipe.") || strings.Contains(fr, "We are a small team.") || strings.Contains(fr, "pas encore traduite") {
		t.Errorf("/fr/privacy does not show the operator's French prose alone")
	}
	_, en := v.Get("/privacy")
	if !strings.Contains(en, "<h3>Account</h3>") || !strings.Contains(en, "We are a small team.") || strings.Contains(en, `class="notice"`) {
		t.Errorf("/privacy is not the English policy")
	}
	_, vs := v.Get("/de/privacy/versions")
	if !strings.Contains(vs, "auf Englisch") {
		t.Errorf("/de/privacy/versions does not say versions are kept in English")
	}
}

// TestSupportInPageLanguage: the support form sent from /de/support
// leads to the German ticket page, and its receipt is mailed in German.
func TestSupportInPageLanguage(t *testing.T) {
	e := sitetest.New(t)
	base := e.URL
	v := sitetest.NewBrowser(t, base)
	v.Get("/de/support")
	resp := v.Submit("/de/support", url.Values{"subject": {"Hilfe"}, "message": {"Mein Tunnel"}, "email": {"kunde@example.org"}})
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/de/support/ticket/") {
		t.Fatalf("support form led to %q, want the German ticket page", loc)
	}
	_, page := v.Get(loc)
	for _, want := range []string{"Bewahren Sie die Adresse dieser Seite auf", "(offen)", ">Senden<", "Sie, "} {
		if !strings.Contains(page, want) {
			t.Errorf("German ticket page lacks %q", want)
		}
	}
	ms, err := e.Store.DueMail(context.Background(), time.Now().Add(time.Hour), 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("outbox = %+v, %v", ms, err)
	}
	if !strings.HasPrefix(ms[0].Subject, "Support-Anfrage #") || !strings.Contains(ms[0].Body, base+"/de/support/ticket/") ||
		!strings.Contains(ms[0].Body, "6 Monate") {
		t.Errorf("receipt is not German: %q\n%s", ms[0].Subject, ms[0].Body)
	}
}

// TestAccountPageInPageLanguage: a failed login on a /de/ page comes
// back to the German account page, with its note and form in German.
func TestAccountPageInPageLanguage(t *testing.T) {
	e := sitetest.New(t)
	base := e.URL
	v := sitetest.NewBrowser(t, base)
	v.Get("/de/account")
	loc := v.Submit("/de/account/login", url.Values{"access_code": {"0000 0000 0000 0000"}}).Header.Get("Location")
	if loc != "/de/account?m=bad" {
		t.Fatalf("a failed login led to %q, want the German account page", loc)
	}
	_, page := v.Get(loc)
	for _, want := range []string{"Zugangscode nicht erkannt.", "Zugangscode verloren?", `action="/de/account/recover"`} {
		if !strings.Contains(page, want) {
			t.Errorf("German account page lacks %q", want)
		}
	}
	if strings.Contains(page, "Access code not recognised") {
		t.Error("German account page holds the English note")
	}
}
