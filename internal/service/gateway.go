package service

import "context"

// runGateway starts the built-in gateway's data plane with its token.
// The netstack gateway is wired here once internal/gateway lands.
func (s *Service) runGateway(ctx context.Context, token string) error {
	_ = token
	s.log.Warn("built-in gateway data plane not available in this build")
	return nil
}
