package boltdb_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T, now func() time.Time) data.Store {
		s, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{
			Now:    now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	})
}
