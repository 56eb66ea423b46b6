package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway/edge/proxy"
)

// TestUpstreamIsDeclaredOnce: the upstream: section is proxy.Upstream
// itself, so every setting declared there is a config key under upstream.,
// with its ARBOR_UPSTREAM_… override, and nothing else is.
func TestUpstreamIsDeclaredOnce(t *testing.T) {
	if reflect.TypeOf(Config{}.Upstream) != reflect.TypeOf(proxy.Upstream{}) {
		t.Fatalf("config's upstream section is %T, want proxy.Upstream", Config{}.Upstream)
	}
	var want, got []string
	env := []string{}
	ut := reflect.TypeOf(proxy.Upstream{})
	for i := range ut.NumField() {
		name, _, _ := strings.Cut(ut.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		want = append(want, "upstream."+name)
	}
	for _, k := range Keys() {
		if strings.HasPrefix(k, "upstream.") {
			got = append(got, k)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("upstream keys %q, want those of proxy.Upstream %q", got, want)
	}
	// Each one is overridden by its environment variable.
	values := map[string]string{
		"upstream.url":                     "https://app.internal:8443/base",
		"upstream.dial_timeout":            "7s",
		"upstream.response_header_timeout": "61s",
		"upstream.idle_timeout":            "3s",
		"upstream.rewrite_headers":         "X-Custom-Path",
		"upstream.max_conns":               "99",
	}
	for _, k := range want {
		v, ok := values[k]
		if !ok {
			t.Fatalf("%s: add a value to this test", k)
		}
		env = append(env, EnvName(k)+"="+v)
	}
	cfg, err := Load(Source{Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	wantUp := proxy.Upstream{URL: "https://app.internal:8443/base", DialTimeout: 7 * time.Second, ResponseHeaderTimeout: 61 * time.Second,
		IdleTimeout: 3 * time.Second, RewriteHeaders: []string{"X-Custom-Path"}, MaxConns: 99}
	if !reflect.DeepEqual(cfg.Upstream, wantUp) {
		t.Errorf("from the environment: %+v, want %+v", cfg.Upstream, wantUp)
	}
}
