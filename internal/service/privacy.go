package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"veil/internal/config"
	"veil/internal/controlplane"
	"veil/internal/i18n"
	"veil/internal/mail"
	"veil/internal/privacy"
)

// startPrivacy configures the API's privacy engine and starts the
// retention sweeper and, when a relay is configured, the mail sender.
// Call it before the HTTP listener starts.
func (s *Service) startPrivacy(ctx context.Context) error {
	cfg := s.Config
	prose, proseIn, err := readPolicyFiles(cfg.PolicyFile)
	if err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	base := cfg.PublicBase()
	s.API.SetPrivacy(controlplane.PrivacyConfig{
		Periods: privacy.Periods{UnusedAccount: time.Duration(cfg.UnusedAccountDays) * 24 * time.Hour, TaxYears: cfg.TaxYears,
			BackupDays: cfg.BackupDays},
		Prose:   prose,
		ProseIn: proseIn,
		Controller: privacy.Controller{Name: cfg.OperatorName, Address: strings.ReplaceAll(cfg.OperatorAddress, `\n`, "\n"),
			Email: cfg.OperatorEmail},
		PublicURL: base,
		WakeMail: func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		},
	})
	sweeper := s.API.Sweeper()
	sweeper.Logger = s.log.With("component", "retention")
	s.goRun(func() error { sweeper.RunEvery(ctx, time.Duration(cfg.RetentionEvery)); return nil })
	if cfg.SMTPHost == "" {
		s.log.Info("no smtp_host: mail stays in the outbox until its retention ends")
		return nil
	}
	sender := &mail.Sender{
		Store: s.Store,
		SMTP: mail.SMTP{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUser,
			Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS},
		From: cfg.MailFrom, BaseURL: base, Sign: s.API.Sign,
		Logger: s.log.With("component", "mail"),
	}
	s.goRun(func() error { sender.Run(ctx, time.Minute, wake); return nil })
	return nil
}

// readPolicyFiles reads policy_file: the English text and, when the path
// holds {lang}, the translations that exist.
func readPolicyFiles(path string) (string, map[string]string, error) {
	if path == "" {
		return "", nil, nil
	}
	read := func(p string) (string, error) {
		b, err := config.ReadFile(p, config.MaxTextFile)
		if err != nil {
			return "", fmt.Errorf("reading policy_file: %w", err)
		}
		return string(b), nil
	}
	if !strings.Contains(path, "{lang}") {
		s, err := read(path)
		return s, nil, err
	}
	en, err := read(strings.ReplaceAll(path, "{lang}", i18n.Default))
	if err != nil {
		return "", nil, err
	}
	in := map[string]string{}
	for _, l := range i18n.Langs[1:] {
		p := strings.ReplaceAll(path, "{lang}", l.Code)
		s, err := read(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		in[l.Code] = s
	}
	return en, in, nil
}
