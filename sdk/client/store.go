package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// TokenStore keeps one login. Load returns an error wrapping ErrNotLoggedIn
// when there is none; Delete of an absent login is not an error.
type TokenStore interface {
	Load() (*Token, error)
	Save(*Token) error
	Delete() error
}

// FileStore keeps the login in a JSON file of mode 0600.
type FileStore struct {
	// Path of the file; DefaultPath() when empty.
	Path string
}

// DefaultPath is $XDG_CONFIG_HOME/grape/auth.json, or
// ~/.config/grape/auth.json when XDG_CONFIG_HOME is unset or relative. It
// is "" when neither that variable nor the home directory is known.
func DefaultPath() string {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "grape", "auth.json")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "grape", "auth.json")
}

func (s FileStore) path() (string, error) {
	p := s.Path
	if p == "" {
		p = DefaultPath()
	}
	if p == "" {
		return "", errors.New("no place for the token file: set HOME or XDG_CONFIG_HOME, or give a path")
	}
	return p, nil
}

// Load reads the login. It refuses a file that group or others may read or
// write, saying which chmod to run.
func (s FileStore) Load() (*Token, error) {
	p, err := s.path()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", ErrNotLoggedIn, p)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token file %s is not a regular file", p)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token file %s has mode %04o, so other users may read or change it; refusing to use it: run `chmod 600 %s` (and log in again if it may have been read)",
			p, fi.Mode().Perm(), p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBody))
	if err != nil {
		return nil, err
	}
	var t Token
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("token file %s is damaged (%v): delete it and log in again", p, err)
	}
	if t.AccessToken == "" || t.RefreshToken == "" {
		return nil, fmt.Errorf("token file %s holds no token pair: delete it and log in again", p)
	}
	return &t, nil
}

// Save writes the login atomically: a temporary file of mode 0600 in the
// same directory (created with mode 0700 if missing), synced, then renamed
// over the file, so a crash leaves either the old or the new login.
func (s FileStore) Save(t *Token) error {
	if t == nil {
		return errors.New("no token to save")
	}
	p, err := s.path()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p)+".*.tmp")
	if err != nil {
		return fmt.Errorf("saving login: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("saving login: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("saving login: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("saving login: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving login: %w", err)
	}
	if err := os.Rename(tmpName, p); err != nil {
		return fmt.Errorf("saving login: %w", err)
	}
	ok = true
	syncDir(dir)
	return nil
}

// Delete removes the file; a missing file is not an error.
func (s FileStore) Delete() error {
	p, err := s.path()
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	syncDir(filepath.Dir(p))
	return nil
}

// syncDir makes a rename or removal durable (best effort: not every
// platform can fsync a directory).
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
