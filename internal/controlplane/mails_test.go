package controlplane_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/controlplane"
	"veil/internal/mail"
	"veil/internal/mail/mailtest"
	"veil/internal/site/sitetest"
)

// TestMailsInAccountLanguage: mail sent with no page asking for it (a
// receipt from a processor's webhook, an expiry reminder from the clock,
// a policy notice) is in the account's language: Chinese for the account
// signed up on the Chinese page, Russian for the one used on the Russian
// account page, English for one that never used a page. The receipt and
// the reminder go over real SMTP and are read as a mail client reads
// them.
func TestMailsInAccountLanguage(t *testing.T) {
	e := newEnv(t, nil, business(10), func(c *controlplane.Config) { c.Privacy.PublicURL = "https://vpn.example" })
	base := e.url
	ctx := t.Context()

	// The sign-up page's script sends its <html lang>.
	st, zh := e.signupWith(t, apitypes.SignupRequest{Lang: "zh-Hans"})
	if st != 201 {
		t.Fatalf("sign-up: %d", st)
	}
	ru := e.newAccount(t, 0)
	v := sitetest.NewBrowser(t, base)
	v.Get("/ru/account")
	if loc := v.Submit("/ru/account/login", url.Values{"access_code": {ru}}).Header.Get("Location"); loc != "/ru/account" {
		t.Fatalf("login on the Russian page led to %q", loc)
	}
	// The plan's name comes from the catalogue too.
	if _, page := v.Get("/ru/account"); !strings.Contains(page, "<dd>Бесплатный ") {
		t.Error("the Russian account page does not name the free plan in Russian")
	}

	type reader struct {
		lang, email, code string
		paidUntil         time.Time
	}
	readers := []*reader{
		{lang: "ru", email: "ru@example.org", code: ru},
		{lang: "zh", email: "zh@example.org", code: zh.AccessCode},
		{lang: "", email: "en@example.org", code: e.newAccount(t, 0)},
	}
	for i, r := range readers {
		tok := e.login(t, r.code)
		var acc apitypes.Account
		if st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: &r.email}, &acc); st != 200 {
			t.Fatalf("%s: setting the email: %d", r.email, st)
		}
		if acc.Lang != r.lang {
			t.Errorf("%s: account language %q, want %q", r.email, acc.Lang, r.lang)
		}
		ev := billing.GenericEvent{Type: billing.GenericPaid, Reference: fmt.Sprintf("pi_%d", i), Account: acc.PaymentReference,
			Product: "premium-30", Days: 30, AmountCents: 123456, Currency: "EUR"}
		if st, out := e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, ev)); st != 200 {
			t.Fatalf("%s: payment: %d %v", r.email, st, out)
		}
		acc = apitypes.Account{}
		e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
		if acc.PaidUntil == nil {
			t.Fatalf("%s: not paid", r.email)
		}
		r.paidUntil = *acc.PaidUntil
	}
	// Two days before the paid time ends (the reminder comes three days
	// before).
	if n, err := e.api.SendReminders(ctx, readers[0].paidUntil.Add(-2*24*time.Hour)); err != nil || n != len(readers) {
		t.Fatalf("reminders: %d, %v", n, err)
	}

	srv := mailtest.Start(t)
	sender := &mail.Sender{Store: e.store, SMTP: mail.SMTP{Host: "127.0.0.1", Port: srv.Port, TLS: "none"},
		From: "veil@example.org", BaseURL: "https://vpn.example", Now: func() time.Time { return e.now.Now().Add(24 * time.Hour) }}
	if n, err := sender.SendDue(ctx); err != nil || n != 2*len(readers) {
		t.Fatalf("sent %d, %v; want a receipt and a reminder each", n, err)
	}

	ruMonths := []string{"января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября", "декабря"}
	type want struct{ receipt, reminder string }
	for _, r := range readers {
		d := r.paidUntil.UTC()
		var subjects want
		var bodies, english []string
		switch r.lang {
		case "ru":
			date := fmt.Sprintf("%d %s %d г.", d.Day(), ruMonths[d.Month()-1], d.Year())
			subjects = want{"Чек об оплате Veil", "Оплаченное время Veil заканчивается " + date}
			bodies = []string{"Спасибо: ваш платёж получен.", "30 дней", "1\u00a0234,56 EUR", "заканчивается " + date + " (UTC)",
				"через 2 дня", "https://vpn.example/ru/account\n"}
			english = []string{"Thank you", "days", "paid time", "Amount"}
		case "zh":
			date := fmt.Sprintf("%d年%d月%d日", d.Year(), d.Month(), d.Day())
			subjects = want{"您的 Veil 收据", "您的 Veil 付费时间将于" + date + "结束"}
			bodies = []string{"谢谢：我们已收到您的付款。", "30 天", "1,234.56 EUR", "到" + date + "（UTC）结束", "还剩 2 天",
				"https://vpn.example/zh/account\n"}
			english = []string{"Thank you", "days", "paid time", "Amount"}
		default:
			date := fmt.Sprintf("%d %s %d", d.Day(), d.Month(), d.Year())
			subjects = want{"Your Veil receipt", "Your Veil paid time ends on " + date}
			bodies = []string{"Thank you: your payment was received.", "30 days", "1,234.56 EUR", "in 2 days", "https://vpn.example/account\n"}
		}
		var got want
		var text string
		for _, m := range srv.Messages() {
			if len(m.To) != 1 || m.To[0] != r.email {
				continue
			}
			if strings.Contains(m.Text(), "EUR") {
				got.receipt = m.Subject()
			} else {
				got.reminder = m.Subject()
			}
			text += m.Text()
		}
		if got != subjects {
			t.Errorf("%s: subjects %+v, want %+v", r.email, got, subjects)
		}
		for _, s := range bodies {
			if !strings.Contains(text, s) {
				t.Errorf("%s: mail lacks %q:\n%s", r.email, s, text)
			}
		}
		for _, s := range english {
			if strings.Contains(text, s) {
				t.Errorf("%s: mail holds the English %q:\n%s", r.email, s, text)
			}
		}
	}

	// The policy notice, sent to every account at once, is in each one's
	// language and links to the page in it.
	if _, err := e.api.PublishPolicy(ctx, "# Us", "https://vpn.example"); err != nil {
		t.Fatal(err)
	}
	ms, err := e.store.DueMail(ctx, e.now.Now().Add(time.Hour), 10)
	if err != nil || len(ms) != len(readers) {
		t.Fatalf("policy notices %+v, %v", ms, err)
	}
	notices := map[string]string{}
	for _, m := range ms {
		notices[m.To] = m.Subject + "\n" + m.Body
	}
	for email, w := range map[string]string{
		"ru@example.org": "Политика конфиденциальности Veil изменилась\n",
		"zh@example.org": "https://vpn.example/zh/privacy/versions?to=",
		"en@example.org": "Veil's privacy policy has changed\n",
	} {
		if !strings.Contains(notices[email], w) {
			t.Errorf("the policy notice to %s lacks %q:\n%s", email, w, notices[email])
		}
	}
}

// TestAccountLanguageAPI: the API sets the mail's language to one of the
// site's, or clears it, and refuses any other.
func TestAccountLanguageAPI(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, e.newAccount(t, 1))
	for _, tt := range []struct {
		lang, want string
		status     int
	}{
		{"de", "de", 200},
		{"pt-BR", "de", 400},
		{"zh-Hans", "zh", 200},
		{"", "", 200},
	} {
		st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Lang: &tt.lang}, nil)
		var acc apitypes.Account
		e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
		if st != tt.status || acc.Lang != tt.want {
			t.Errorf("lang %q: %d, account language %q; want %d, %q", tt.lang, st, acc.Lang, tt.status, tt.want)
		}
	}
}

// TestReplyNoticeInTicketLanguage: the notice of the operator's reply to
// a ticket written on the Turkish support page, with no account, is in
// Turkish.
func TestReplyNoticeInTicketLanguage(t *testing.T) {
	e := newEnv(t, nil)
	base := e.url
	v := sitetest.NewBrowser(t, base)
	v.Get("/tr/support")
	v.Submit("/tr/support", url.Values{"subject": {"Yardım"}, "message": {"Tünel açılmıyor"}, "email": {"musteri@example.org"}})
	var list []apitypes.TicketView
	if st := e.call(t, "GET", "/api/v1/admin/support", e.admin, nil, &list); st != 200 || len(list) != 1 {
		t.Fatalf("admin list: %d %+v", st, list)
	}
	if st := e.call(t, "POST", fmt.Sprintf("/api/v1/admin/support/%d/reply", list[0].ID), e.admin, apitypes.TicketMessage{Message: "Deneyin"}, nil); st != 200 {
		t.Fatalf("reply: %d", st)
	}
	ms, err := e.store.DueMail(t.Context(), time.Now().Add(time.Hour), 10)
	if err != nil || len(ms) != 2 {
		t.Fatalf("outbox = %+v, %v; want the ticket's receipt and the reply's notice", ms, err)
	}
	reply := ms[1]
	if want := fmt.Sprintf("İşletmeci #%d numaralı destek talebinizi yanıtladı", list[0].ID); !strings.Contains(reply.Body, want) ||
		!strings.Contains(reply.Body, "Deneyin") || strings.Contains(reply.Body, "The operator replied") {
		t.Errorf("reply notice is not Turkish: %q\n%s", reply.Subject, reply.Body)
	}
}
