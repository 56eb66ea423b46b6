package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestDeviceClientsLoad(t *testing.T) {
	p := writeFile(t, `
cli:
  issuer: https://trellis.example
  audience: trellis-cli
  device_clients:
    - id: trellis-desktop
      name: Trellis desktop
      scopes: [providers, proxy]
    - id: ci.runner_2
      name: CI runner
      scopes: [workers]
`)
	cfg, err := Load(Source{File: p})
	if err != nil {
		t.Fatal(err)
	}
	want := []DeviceClient{
		{ID: "trellis-desktop", Name: "Trellis desktop", Scopes: []string{"providers", "proxy"}},
		{ID: "ci.runner_2", Name: "CI runner", Scopes: []string{"workers"}},
	}
	if !reflect.DeepEqual(cfg.CLI.DeviceClients, want) || cfg.CLI.Issuer != "https://trellis.example" || cfg.CLI.Audience != "trellis-cli" {
		t.Fatalf("cli: %+v", cfg.CLI)
	}
	def, err := Load(Source{})
	if err != nil {
		t.Fatal(err)
	}
	if def.CLI.DeviceClients != nil || def.CLI.Issuer != "" || def.CLI.Audience != "arbor-cli" {
		t.Fatalf("defaults: device_clients %v, issuer %q, audience %q", def.CLI.DeviceClients, def.CLI.Issuer, def.CLI.Audience)
	}
	env, err := Load(Source{Environ: []string{"ARBOR_CLI_AUDIENCE=from-env", "ARBOR_CLI_ISSUER=https://iss.example",
		`ARBOR_CLI_DEVICE_CLIENTS=[{id: poller, name: Poller, scopes: [proxy]}, {"id": "j", "name": "J", "scopes": ["workers"]}]`}})
	wantEnv := []DeviceClient{{ID: "poller", Name: "Poller", Scopes: []string{"proxy"}}, {ID: "j", Name: "J", Scopes: []string{"workers"}}}
	if err != nil || env.CLI.Audience != "from-env" || env.CLI.Issuer != "https://iss.example" || !reflect.DeepEqual(env.CLI.DeviceClients, wantEnv) {
		t.Fatalf("env overrides: %v %+v", err, env.CLI)
	}
	for _, bad := range []string{"poller", "[{id: a, name: A, scopes: [proxy], secret: x}]", "[{id: a, name: A, scopes: [root]}]"} {
		if _, err := Load(Source{Environ: []string{"ARBOR_CLI_DEVICE_CLIENTS=" + bad}}); err == nil || !strings.Contains(err.Error(), "ARBOR_CLI_DEVICE_CLIENTS") {
			t.Errorf("ARBOR_CLI_DEVICE_CLIENTS=%s: %v", bad, err)
		}
	}
}

func TestDeviceClientsInvalid(t *testing.T) {
	client := func(id, name, scopes string) string {
		return "    - id: " + id + "\n      name: " + name + "\n      scopes: " + scopes + "\n"
	}
	for _, c := range []struct {
		name, clients string
		want          []string
	}{
		{"duplicate id", client("a", "A", "[proxy]") + client("a", "B", "[proxy]"), []string{"entry 1: id", "twice"}},
		{"empty id", client(`""`, "A", "[proxy]"), []string{"entry 0: id"}},
		{"id with spaces", client(`"Trellis Web (official)"`, "A", "[proxy]"), []string{"entry 0: id"}},
		{"grape reserved", client("Grape", "A", "[proxy]"), []string{"reserved"}},
		{"empty name", client("a", `""`, "[proxy]"), []string{"entry 0: name"}},
		{"long name", client("a", strings.Repeat("n", 41), "[proxy]"), []string{"entry 0: name"}},
		{"control in name", client("a", `"a\u0007b"`, "[proxy]"), []string{"entry 0: name"}},
		{"no scopes", client("a", "A", "[]"), []string{"entry 0: scopes", "providers, workers, proxy"}},
		{"unknown scope", client("a", "A", "[proxy, admin]"), []string{"entry 0: scopes", `unknown scope "admin"`}},
		{"unknown key", "    - id: a\n      name: A\n      scopes: [proxy]\n      secret: x\n", []string{"secret"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(Source{File: writeFile(t, "cli:\n  device_clients:\n"+c.clients)})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := Load(Source{File: writeFile(t, "cli:\n  audience: \"\"\n")}); err == nil || !strings.Contains(err.Error(), "cli.audience") {
		t.Fatalf("empty audience: %v", err)
	}
}
