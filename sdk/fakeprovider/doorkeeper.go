package fakeprovider

// pairedAccessExpired reports whether tok is an access token that has
// expired, or a refresh token issued together with an access token that
// has: Doorkeeper keeps both in one record, and before 5.8.1 it judged a
// revocation by the access token's expiry (Config.RevokeIgnoresExpired).
func (p *Provider) pairedAccessExpired(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	if t := p.access[tok]; t != nil {
		return !live(t.expires, now)
	}
	for _, is := range p.issues {
		if is.refresh == tok && is.refresh != "" {
			t := p.access[is.access]
			return t != nil && !live(t.expires, now)
		}
	}
	return false
}
