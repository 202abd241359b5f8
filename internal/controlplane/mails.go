package controlplane

import (
	"context"
	"strings"

	"veil/internal/i18n"
	"veil/internal/store"
)

// An account's mail is in the language of the page its holder acted on
// when a page asked for the mail (recovery, a support request), and
// otherwise in the account's language (store.Account.Lang): the one it
// was signed up in or last used the account page in. An account that
// never used a page gets English.

// mailLang is the language of a's mail when no page asks for it.
func mailLang(a *store.Account) string {
	if a == nil || i18n.Known(a.Lang) == "" {
		return i18n.Default
	}
	return a.Lang
}

// KeepLang records lang, the language of a page the account holder
// used, as the account's language when it changed. Failing to keep it
// fails nothing: the mail is then in the language kept before.
func (s *Server) KeepLang(ctx context.Context, a *store.Account, lang string) {
	lang = i18n.Known(lang)
	if a == nil || lang == "" || a.Lang == lang {
		return
	}
	if err := s.cfg.Store.UpdateAccount(ctx, a.ID, store.AccountUpdate{Lang: &lang}); err != nil {
		s.log.Warn("keeping the account's language", "err", err)
		return
	}
	a.Lang = lang
}

// langCodes lists the site's language codes, for an error's text.
func langCodes() string {
	codes := make([]string, len(i18n.Langs))
	for i, l := range i18n.Langs {
		codes[i] = l.Code
	}
	return strings.Join(codes, ", ")
}

// siteURL is the public address of path in lang: under its prefix
// ("/de/account"), English unprefixed.
func (s *Server) siteURL(lang, path string) string {
	return strings.TrimSuffix(s.cfg.Privacy.PublicURL, "/") + i18n.Prefix(i18n.For(lang).Lang.Code) + path
}
