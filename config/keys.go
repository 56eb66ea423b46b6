package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// secretKeys are names operators are tempted to write into the YAML file.
// Each maps to where the secret belongs instead.
var secretKeys = map[string]string{
	"session_key":     "ARBOR_SESSION_KEY (or secrets.session_key_file)",
	"cli_jwt_secret":  "CLI_JWT_SECRET (or secrets.cli_jwt_secret_file)",
	"encryption_keys": "ARBOR_ENCRYPTION_KEYS (or secrets.encryption_keys_file)",
	"encryption_key":  "ARBOR_ENCRYPTION_KEYS (or secrets.encryption_keys_file)",
	"client_secret":   "the environment variable named in the docs, or a *_file key",
}

var durationType = reflect.TypeOf(time.Duration(0))

func reflectTypeOf(v any) reflect.Type { return reflect.TypeOf(v).Elem() }

// fieldsOf returns yaml name -> field index of a struct type.
func fieldsOf(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name, ok := keyPath("", t.Field(i)); ok {
			m[name] = i
		}
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkKeys walks the YAML tree against the struct type and reports the
// first unknown key with its line and the keys allowed at that place.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return checkKeys(file, n.Content[0], t, path)
	}
	if t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct {
		return checkMapKeys(file, n, t, path)
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return nil
		}
		where := "the top level"
		if path != "" {
			where = path
		}
		return fmt.Errorf("config %s:%d: %s must be a mapping of keys", file, n.Line, where)
	}
	fields := fieldsOf(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		full := k.Value
		if path != "" {
			full = path + "." + k.Value
		}
		if seen[k.Value] {
			return fmt.Errorf("config %s:%d: key %q appears twice", file, k.Line, full)
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			if k.Value == "client_secret" && strings.HasPrefix(path, "providers.") {
				name := strings.TrimPrefix(path, "providers.")
				return fmt.Errorf("config %s:%d: %q is a secret and may not be written in the config file; set %s or providers.%s.client_secret_file (a file with mode 0600)", file, k.Line, full, ProviderSecretEnv(name), name)
			}
			if where, secret := secretKeys[k.Value]; secret {
				return fmt.Errorf("config %s:%d: %q is a secret and may not be written in the config file; set %s", file, k.Line, full, where)
			}
			return fmt.Errorf("config %s:%d: unknown key %q; allowed here: %s", file, k.Line, full, strings.Join(sortedKeys(fields), ", "))
		}
		if err := checkKeys(file, v, t.Field(idx).Type, full); err != nil {
			return err
		}
	}
	return nil
}

// checkMapKeys checks a mapping of names to structs (providers): each name
// must be a plugin name and each value is checked against the struct.
func checkMapKeys(file string, n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("config %s:%d: %s must be a mapping of names to settings", file, n.Line, path)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		full := path + "." + k.Value
		if seen[k.Value] {
			return fmt.Errorf("config %s:%d: key %q appears twice", file, k.Line, full)
		}
		seen[k.Value] = true
		if !validProviderName(k.Value) {
			return fmt.Errorf("config %s:%d: %q: %q is not a plugin name (1-32 lower case letters, digits, '-' or '_', starting with a letter)", file, k.Line, full, k.Value)
		}
		if err := checkKeys(file, v, t.Elem(), full); err != nil {
			return err
		}
	}
	return nil
}

// EnvName is the environment variable that overrides the config key at path
// (dotted), e.g. "upstream.url" -> "ARBOR_UPSTREAM_URL".
func EnvName(path string) string {
	return "ARBOR_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Keys lists every config key path (dotted) in declaration order.
func Keys() []string {
	var out []string
	walkKeys(reflect.ValueOf(Config{}), "", true, func(path string, _ reflect.Value) {
		out = append(out, path)
	})
	return out
}

// walkKeys calls leaf with the dotted path and the value of every key in
// the section v (a struct) at prefix, in declaration order. A map (the
// providers) is skipped unless withMaps; with it, a map of sections is
// walked as one zero section named providerNamePlaceholder, and any other
// map is a key.
func walkKeys(v reflect.Value, prefix string, withMaps bool, leaf func(path string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		path, ok := keyPath(prefix, f)
		switch {
		case !ok:
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			walkKeys(v.Field(i), path, withMaps, leaf)
		case f.Type.Kind() == reflect.Map && !withMaps:
			// providers: see applyProviderEnv
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
			walkKeys(reflect.New(f.Type.Elem()).Elem(), path+"."+providerNamePlaceholder, withMaps, leaf)
		default:
			leaf(path, v.Field(i))
		}
	}
}

// keyPath is the dotted key path of field f in the section at prefix ("" at
// the top), and false for a field without a YAML key.
func keyPath(prefix string, f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch {
	case name == "" || name == "-":
		return "", false
	case prefix == "":
		return name, true
	}
	return prefix + "." + name, true
}

// applyEnv overrides fields from ARBOR_… variables.
func applyEnv(cfg *Config, env map[string]string) error {
	var err error
	walkKeys(reflect.ValueOf(cfg).Elem(), "", false, func(path string, v reflect.Value) {
		if err != nil {
			return
		}
		name := EnvName(path)
		s, ok := env[name]
		if !ok {
			return
		}
		if e := setFromString(v, s); e != nil {
			err = fmt.Errorf("config: environment %s: %v", name, e)
		}
	})
	return err
}

func setFromString(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 30s or 5m", s)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		// A list of records (cli.device_clients): YAML flow style or JSON,
		// e.g. [{id: cli, name: CLI, scopes: [proxy]}], strict like the file.
		dec := yaml.NewDecoder(strings.NewReader(s))
		dec.KnownFields(true)
		out := reflect.New(v.Type())
		if err := dec.Decode(out.Interface()); err != nil {
			return fmt.Errorf("not a list of %s in YAML flow style or JSON: %v", v.Type().Elem().Name(), strings.TrimPrefix(err.Error(), "yaml: "))
		}
		v.Set(out.Elem())
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}
