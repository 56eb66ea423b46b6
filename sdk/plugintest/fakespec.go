package plugintest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// LoadFakeSpec reads the description of a fake provider (a
// fakeprovider.Spec) from a file, for Suite.FakeSpec and `arbor plugin
// test --fake-config`: JSON when the name ends in .json, YAML otherwise
// (the format of Arbor's own configuration). Decoding is strict: an
// unknown key is an error with its line. The description is validated;
// an error names the wrong field (a *fakeprovider.SpecError).
func LoadFakeSpec(path string) (*fakeprovider.Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plugintest: the fake's description: %w", err)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		s, err := fakeprovider.ParseSpec(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &s, nil
	}
	var s fakeprovider.Spec
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: the fake's description: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}
