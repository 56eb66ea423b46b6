package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleToken() *Token {
	return &Token{
		AccessToken: "at_1", RefreshToken: "rt_1",
		Expiry:        time.Now().Add(time.Hour).Round(time.Second),
		RefreshExpiry: time.Now().Add(90 * 24 * time.Hour).Round(time.Second),
		User:          User{ID: "usr_1", Email: "ada@example.com", Login: "ada"},
		Server:        "https://arbor.example",
	}
}

func TestFileStoreModesAndRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "grape")
	s := FileStore{Path: filepath.Join(dir, "auth.json")}
	if _, err := s.Load(); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Load of a missing file: %v, want ErrNotLoggedIn", err)
	}
	want := sampleToken()
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %04o, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o, want 0700", di.Mode().Perm())
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken || !got.Expiry.Equal(want.Expiry) ||
		!got.RefreshExpiry.Equal(want.RefreshExpiry) || got.User != want.User || got.Server != want.Server {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	// Overwrite keeps the mode, leaves no temporary file.
	want.AccessToken = "at_2"
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries after two saves, want 1", len(entries))
	}
	if err := s.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s.Load(); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("Load after Delete: %v", err)
	}
}

func TestFileStoreRefusesReadableFile(t *testing.T) {
	s := FileStore{Path: filepath.Join(t.TempDir(), "auth.json")}
	if err := s.Save(sampleToken()); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o620, 0o604} {
		if err := os.Chmod(s.Path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load()
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+s.Path) || errors.Is(err, ErrNotLoggedIn) {
			t.Errorf("mode %04o: Load = %v, want a refusal telling to chmod 600", mode, err)
		}
	}
	os.Chmod(s.Path, 0o600)
	if _, err := s.Load(); err != nil {
		t.Errorf("after chmod 600: %v", err)
	}
}

func TestFileStoreSaveIsAtomic(t *testing.T) {
	// The target is a directory with content: the rename fails, and neither
	// the directory nor its content changes, nor is a temporary file left.
	dir := t.TempDir()
	target := filepath.Join(dir, "auth.json")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(target, "keep")
	os.WriteFile(inside, []byte("original"), 0o600)
	s := FileStore{Path: target}
	if err := s.Save(sampleToken()); err == nil {
		t.Fatal("Save over a directory succeeded")
	}
	if b, err := os.ReadFile(inside); err != nil || string(b) != "original" {
		t.Errorf("original content: %q, %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want only auth.json (no temporary file left)", names)
	}

	// A failed save does not touch an existing good file either.
	good := FileStore{Path: filepath.Join(dir, "good.json")}
	if err := good.Save(sampleToken()); err != nil {
		t.Fatal(err)
	}
	if err := good.Save(nil); err == nil {
		t.Error("Save(nil) succeeded")
	}
	if tok, err := good.Load(); err != nil || tok.AccessToken != "at_1" {
		t.Errorf("good file after failed save: %+v, %v", tok, err)
	}
}

func TestFileStoreRefusesDamagedFile(t *testing.T) {
	s := FileStore{Path: filepath.Join(t.TempDir(), "auth.json")}
	os.WriteFile(s.Path, []byte(`{"access_token": "at`), 0o600)
	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Load of a truncated file: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	if got := DefaultPath(); got != filepath.Join("/xdg", "grape", "auth.json") {
		t.Errorf("with XDG_CONFIG_HOME: %q", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative")
	t.Setenv("HOME", "/home/ada")
	if got := DefaultPath(); got != filepath.Join("/home/ada", ".config", "grape", "auth.json") {
		t.Errorf("with a relative XDG_CONFIG_HOME: %q", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	if got := DefaultPath(); got != filepath.Join("/home/ada", ".config", "grape", "auth.json") {
		t.Errorf("without XDG_CONFIG_HOME: %q", got)
	}
}
