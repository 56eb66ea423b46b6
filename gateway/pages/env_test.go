package pages_test

import (
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
)

// newEnv is the whole of Arbor as `arbor serve` builds it (app/apptest),
// with /api/tendril/ as its worker routes and without Arbor's own rate
// limits, which have tests of their own.
func newEnv(t *testing.T) *apptest.Harness {
	t.Helper()
	return apptest.New(t, apptest.Config(func(c *config.Config) {
		c.Workers.Paths = []string{"/api/tendril/"}
		c.Limits.Enabled = false
	}))
}
