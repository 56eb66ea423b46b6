//go:build race

package app_test

// raceEnabled says the tests run under the race detector (go test -race),
// which makes every request about ten times dearer: load tests scale down.
const raceEnabled = true
