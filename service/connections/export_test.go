package connections

// answer is api.Answer, the web layer's mapping of the broker's
// errors to HTTP answers, set by answer_test.go (package
// connections_test): this package must not import the web layer, but its
// tests assert the statuses, codes and Retry-After a client gets.
var answer func(error) error

// SetAnswer sets answer; only answer_test.go calls it.
func SetAnswer(f func(error) error) { answer = f }
