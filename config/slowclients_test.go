package config

import (
	"strings"
	"testing"
	"time"
)

func TestSlowClientKeys(t *testing.T) {
	p := writeFile(t, `
server:
  upload_min_rate: 0
  min_rate_grace: 10s
  websocket_idle_timeout: 1m
  park_idle_after: 2s
`)
	cfg, err := Load(Source{File: p, Environ: []string{
		"ARBOR_SERVER_MAX_CONNS_PER_ADDRESS=32",
		"ARBOR_SERVER_UPSTREAM_MAX_PER_CLIENT=0",
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server
	if s.UploadMinRate != 0 || s.DownloadMinRate != 1024 || s.MinRateGrace != 10*time.Second ||
		s.MaxConnsPerAddress != 32 || s.UpstreamMaxPerClient != 0 || s.WebSocketIdleTimeout != time.Minute || s.ParkIdleAfter != 2*time.Second {
		t.Fatalf("server = %+v", s)
	}

	for _, tc := range []struct{ env, key string }{
		{"ARBOR_SERVER_DOWNLOAD_MIN_RATE=-1", "server.download_min_rate"},
		{"ARBOR_SERVER_MIN_RATE_GRACE=0s", "server.min_rate_grace"},
		{"ARBOR_SERVER_MAX_CONNS_PER_ADDRESS=-5", "server.max_conns_per_address"},
		{"ARBOR_SERVER_WEBSOCKET_IDLE_TIMEOUT=10ms", "server.websocket_idle_timeout"},
		{"ARBOR_SERVER_PARK_IDLE_AFTER=-1s", "server.park_idle_after"},
	} {
		_, err := Load(Source{Environ: []string{tc.env}})
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: err = %v, want one naming %s", tc.env, err, tc.key)
		}
	}
}
