package main

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	arborconfig "github.com/vintner/arbor/config"
)

// arbor-rule runs only where loadbench measures the proxy with sign-in,
// one replica, and not the flood or TLS comparisons.
func TestRuleOn(t *testing.T) {
	base := config{rule: true, arborCmd: "bin/arbor serve", auth: true, replicas: 1, store: "bbolt"}
	for _, tc := range []struct {
		name string
		edit func(c *config)
		want bool
	}{
		{"make loadbench", func(*config) {}, true},
		{"etcd, one replica", func(c *config) { c.store = "etcd" }, true},
		{"-rule=false", func(c *config) { c.rule = false }, false},
		{"no -arbor-cmd", func(c *config) { c.arborCmd = "" }, false},
		{"-auth=false", func(c *config) { c.auth = false }, false},
		{"-flood", func(c *config) { c.flood = true }, false},
		{"-tls", func(c *config) { c.tls = true }, false},
		{"-ab", func(c *config) { c.ab = true }, false},
		{"-replicas 2", func(c *config) { c.replicas, c.store = 2, "etcd" }, false},
	} {
		c := base
		tc.edit(&c)
		if got := ruleOn(c); got != tc.want {
			t.Errorf("%s: ruleOn = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The second Arbor's environment is a configuration Arbor accepts, with
// policy.allow, a route rule governing "/" (every path wrk requests) for
// the group octocat is in and monalisa is not, and no re-check during the
// run; and the fakes accept its callback as well as the first Arbor's.
func TestRuleEnv(t *testing.T) {
	const first, second = "http://127.0.0.1:18080", "127.0.0.1:18081"
	set, env, err := startFakes(first, second)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	firstData := t.TempDir()
	t.Setenv("ARBOR_DATA_DIR", firstData)
	t.Setenv(envPluginCache, "")
	for _, store := range []string{"bbolt", "etcd"} {
		cfg := config{store: store, tokenTTL: time.Hour}
		environ := append(slices.Clone(env), "ARBOR_UPSTREAM_URL=http://127.0.0.1:18082", "ARBOR_DATA_DIR="+t.TempDir())
		if store == "etcd" {
			environ = append(environ, "ARBOR_STORE_BACKEND=etcd", "ARBOR_STORE_ENDPOINTS=http://127.0.0.1:2379", "ARBOR_STORE_ROOT=/arbor/")
		}
		environ = append(environ, ruleEnv(cfg, second, t.TempDir())...)
		c, err := arborconfig.Load(arborconfig.Source{Environ: environ})
		if err != nil {
			t.Fatalf("%s: %v", store, err)
		}
		p := c.Policy
		if !slices.Equal(p.Allow.Groups, []string{"github:vintner"}) || len(p.Routes) != 2 ||
			p.Routes[0].Prefix != "/" || !slices.Equal(p.Routes[0].Groups, []string{"github:vintner/platform"}) {
			t.Errorf("%s: policy %+v", store, p)
		}
		if p.RecheckInterval < cfg.tokenTTL {
			t.Errorf("%s: recheck_interval %v, want at least the token lifetime %v", store, p.RecheckInterval, cfg.tokenTTL)
		}
		if c.PublicURL != "http://"+second {
			t.Errorf("%s: public URL %q", store, c.PublicURL)
		}
		// The first Arbor's compiled plugins, not a cache of its own.
		if want := filepath.Join(firstData, "plugin-cache"); c.Plugins.CacheDir != want {
			t.Errorf("%s: plugins.cache_dir %q, want the first Arbor's %q", store, c.Plugins.CacheDir, want)
		}
		if store == "etcd" && c.Store.Root != "/arbor-rule/" {
			t.Errorf("etcd: root %q, want its own key prefix", c.Store.Root)
		}
	}
	uris := set.Fakes["github"].Config().RedirectURIs
	for _, want := range []string{first + "/auth/callback/github", "http://" + second + "/auth/callback/github"} {
		if !slices.Contains(uris, want) {
			t.Errorf("the fake GitHub accepts %v, not %s", uris, want)
		}
	}
}
