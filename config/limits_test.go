package config

import (
	"strings"
	"testing"
)

func TestLimitsAndMetricsListenFromYAMLAndEnv(t *testing.T) {
	p := writeFile(t, `
server:
  metrics_listen: public
limits:
  capacity: 100
  signin:
    per_minute: 5
    burst: 2
  failed_auth:
    per_minute: 0
    burst: 0
`)
	cfg, err := Load(Source{File: p, Environ: []string{
		"ARBOR_LIMITS_DEVICE_POLL_PER_MINUTE=12",
		"ARBOR_LIMITS_DEVICE_POLL_BURST=3",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MetricsListen != MetricsPublic {
		t.Errorf("metrics_listen = %q", cfg.Server.MetricsListen)
	}
	l := cfg.Limits
	if !l.Enabled || l.Capacity != 100 || l.SignIn != (Rate{5, 2}) || l.FailedAuth != (Rate{}) ||
		l.DevicePoll != (Rate{12, 3}) || l.DeviceStart != (Rate{10, 5}) || l.Refresh != (Rate{30, 10}) {
		t.Errorf("limits = %+v", l)
	}

	cfg, err = Load(Source{Environ: []string{"ARBOR_SERVER_METRICS_LISTEN=", "ARBOR_LIMITS_ENABLED=false"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MetricsListen != "" || cfg.Limits.Enabled {
		t.Errorf("empty metrics_listen / limits.enabled=false not applied: %q %v", cfg.Server.MetricsListen, cfg.Limits.Enabled)
	}
	if d := Default(); d.Server.MetricsListen != "127.0.0.1:9180" {
		t.Errorf("default metrics_listen = %q, want loopback 127.0.0.1:9180", d.Server.MetricsListen)
	}
}

func TestBadLimitsAndMetricsListen(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"server:\n  metrics_listen: nine-oh-nine-oh\n", "server.metrics_listen"},
		{"limits:\n  capacity: 0\n", "limits.capacity"},
		{"limits:\n  signin:\n    per_minute: -1\n", "limits.signin.per_minute"},
		{"limits:\n  refresh:\n    per_minute: 10\n    burst: 0\n", "limits.refresh.burst"},
		{"limits:\n  device_poll:\n    rate: 10\n", `unknown key`},
	} {
		_, err := Load(Source{File: writeFile(t, c.yaml)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one naming %s", c.yaml, err, c.want)
		}
	}
}
