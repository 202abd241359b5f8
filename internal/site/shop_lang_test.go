package site_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"veil/internal/site/sitetest"
)

// TestShopPagesInPageLanguage: /ru/pricing and /tr/affiliate speak their
// language, with the plural the count calls for and links that keep the
// prefix; joining the affiliate program from /zh/affiliate leads back to
// the Chinese page, which shows the referral link in Chinese.
func TestShopPagesInPageLanguage(t *testing.T) {
	e := sitetest.New(t, shop)
	base := e.URL
	v := sitetest.NewBrowser(t, base)

	st, ru := v.Get("/ru/pricing")
	if st != 200 {
		t.Fatalf("/ru/pricing: %d", st)
	}
	for _, want := range []string{"30 дней", "5.00 EUR", "Бесплатный тариф", "2000 кбит/с в каждую сторону",
		"пробного периода в 7 дней", `href="/ru/signup"`, `<a href="/ru/affiliate">партнёрская программа</a>`} {
		if !strings.Contains(ru, want) {
			t.Errorf("/ru/pricing lacks %q", want)
		}
	}
	for _, en := range []string{">30 days<", "Free plan", "each way"} {
		if strings.Contains(ru, en) {
			t.Errorf("/ru/pricing holds the English %q", en)
		}
	}

	_, tr := v.Get("/tr/affiliate")
	for _, want := range []string{"size %20 pay", `href="/tr/account"`, `href="/tr/signup"`, "bir erişim kodu alın"} {
		if !strings.Contains(tr, want) {
			t.Errorf("/tr/affiliate lacks %q", want)
		}
	}

	code := e.NewAccount(t, 30)
	if resp := v.Submit("/account/login", url.Values{"access_code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	_, zh := v.Get("/zh/affiliate")
	if !strings.Contains(zh, `action="/zh/affiliate/join"`) || !strings.Contains(zh, "加入推广计划") {
		t.Fatalf("/zh/affiliate has no Chinese join form:\n%s", zh)
	}
	resp := v.Submit("/zh/affiliate/join", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/zh/affiliate" {
		t.Fatalf("joining led to %d %q, want the Chinese affiliate page", resp.StatusCode, loc)
	}
	_, zh = v.Get("/zh/affiliate")
	for _, want := range []string{"您的推荐链接", `id="referral-link"`, "20%", `href="/zh/support"`} {
		if !strings.Contains(zh, want) {
			t.Errorf("/zh/affiliate after joining lacks %q", want)
		}
	}
}
