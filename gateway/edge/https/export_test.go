package https

// NotLogged is how many handshake failures the sampler has counted and not
// logged since its last line: the tests wait for the server's side of a
// failed handshake, which may come after the client has given up.
func NotLogged(t *Terminator) int {
	t.failures.mu.Lock()
	defer t.failures.mu.Unlock()
	return t.failures.suppressed
}
