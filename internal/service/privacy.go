package service

import (
	"context"
	"fmt"
	"time"

	"veil/internal/config"
	"veil/internal/controlplane"
	"veil/internal/mail"
	"veil/internal/privacy"
)

// startPrivacy configures the API's privacy engine and starts the
// retention sweeper and, when a relay is configured, the mail sender.
// Call it before the HTTP listener starts.
func (s *Service) startPrivacy(ctx context.Context) error {
	cfg := s.Config
	var prose string
	if cfg.PolicyFile != "" {
		b, err := config.ReadFile(cfg.PolicyFile, config.MaxTextFile)
		if err != nil {
			return fmt.Errorf("reading policy_file: %w", err)
		}
		prose = string(b)
	}
	wake := make(chan struct{}, 1)
	base := cfg.PublicBase()
	s.API.SetPrivacy(controlplane.PrivacyConfig{
		Periods: privacy.Periods{UnusedAccount: time.Duration(cfg.UnusedAccountDays) * 24 * time.Hour, TaxYears: cfg.TaxYears,
			BackupDays: cfg.BackupDays},
		Prose:     prose,
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
