package https

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"
)

// fileStamp is what the watch compares: a change of either re-reads the
// files.
type fileStamp struct {
	mod  time.Time
	size int64
	err  bool // could not stat
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: true}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}

// load reads the files for New: an error stops start-up.
func (t *Terminator) load() error {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	t.seen = [2]fileStamp{stampOf(t.opts.CertFile), stampOf(t.opts.KeyFile)}
	cert, err := readPair(t.opts.CertFile, t.opts.KeyFile)
	if err != nil {
		return err
	}
	t.cert.Store(cert)
	t.logLoaded("certificate loaded", cert)
	return nil
}

// reload reads the files again; on failure the current certificate stays.
func (t *Terminator) reload(trigger string) error {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	t.seen = [2]fileStamp{stampOf(t.opts.CertFile), stampOf(t.opts.KeyFile)}
	cert, err := readPair(t.opts.CertFile, t.opts.KeyFile)
	if err != nil {
		t.log.Error("certificate reload failed: still serving the previous certificate", "trigger", trigger, "err", err.Error())
		return err
	}
	t.cert.Store(cert)
	t.logLoaded("certificate reloaded", cert, "trigger", trigger)
	return nil
}

func (t *Terminator) logLoaded(msg string, cert *tls.Certificate, args ...any) {
	leaf := cert.Leaf
	if leaf == nil {
		t.log.Info(msg, args...)
		return
	}
	args = append(args, "names", leaf.DNSNames, "issuer", leaf.Issuer.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	t.log.Info(msg, args...)
	if now := t.now(); now.After(leaf.NotAfter) {
		t.log.Warn("the certificate has expired: browsers refuse it; renew it (Arbor reloads the files when they change)", "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	} else if now.Before(leaf.NotBefore) {
		t.log.Warn("the certificate is not valid yet: browsers refuse it until not_before; check the clock", "not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
}

// watch re-reads the files whenever either changes, until Close.
func (t *Terminator) watch(interval time.Duration) {
	defer close(t.done)
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
		}
		now := [2]fileStamp{stampOf(t.opts.CertFile), stampOf(t.opts.KeyFile)}
		t.reloadMu.Lock()
		changed := now != t.seen
		t.reloadMu.Unlock()
		if changed {
			_ = t.reload("file change")
		}
	}
}

// readPair reads and checks a certificate and key file; its errors say
// what to change.
func readPair(certFile, keyFile string) (*tls.Certificate, error) {
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(keyFile)
		if err != nil {
			return nil, unreadable("tls.key_file", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("tls.key_file %q has mode %04o: its group or others can read the private key; make it readable by its owner only (chmod 600 %s; for a Kubernetes secret volume, defaultMode: 0400)", keyFile, perm, keyFile)
		}
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, unreadable("tls.cert_file", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, unreadable("tls.key_file", err)
	}
	if err := pemHas(certPEM, "tls.cert_file", certFile, isCert, "a certificate", "-----BEGIN CERTIFICATE----- blocks, the server's certificate first, then the intermediates"); err != nil {
		return nil, err
	}
	if err := pemHas(keyPEM, "tls.key_file", keyFile, isKey, "a private key", "one -----BEGIN PRIVATE KEY----- (or EC/RSA PRIVATE KEY) block"); err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("tls.key_file %q is not the private key of the certificate in tls.cert_file %q: use the key issued with this certificate (both files from the same renewal)", keyFile, certFile)
		}
		return nil, fmt.Errorf("tls.cert_file %q and tls.key_file %q: %v: check that both are PEM files from the same issuance", certFile, keyFile, err)
	}
	return &cert, nil
}

func unreadable(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %v: check the path", key, err)
	}
	return fmt.Errorf("%s: %v: make the file readable by the user Arbor runs as", key, err)
}

func isCert(typ string) bool { return typ == "CERTIFICATE" }
func isKey(typ string) bool  { return strings.HasSuffix(typ, "PRIVATE KEY") }

// pemHas checks that raw holds a PEM block that ok accepts, and otherwise
// says what the file holds instead.
func pemHas(raw []byte, key, path string, ok func(string) bool, want, how string) error {
	var found []string
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if ok(b.Type) {
			return nil
		}
		found = append(found, b.Type)
	}
	if len(found) == 0 {
		return fmt.Errorf("%s %q is not PEM (no -----BEGIN …----- block): want %s (convert a DER file with openssl)", key, path, how)
	}
	hint := ""
	if isKey(found[0]) || isCert(found[0]) {
		hint = "; are tls.cert_file and tls.key_file swapped?"
	}
	return fmt.Errorf("%s %q holds %s, not %s: want %s%s", key, path, strings.Join(found, ", "), want, how, hint)
}
