package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/etcd"
)

// OpenedStore is the configured backend, with what only some backends can
// do.
type OpenedStore struct {
	data.Store
	// Backup writes a consistent copy (bbolt); nil where the backend has
	// its own tools (etcd: etcdctl snapshot save).
	Backup func(w io.Writer) (int64, error)
	// Where names the store for log lines: a file or the endpoints.
	Where string
}

// OpenStore opens store.backend. onError, if set, hears of bbolt's
// failures (the metrics count them). A configuration error is a
// *ConfigError.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger, onError func(op string, err error)) (*OpenedStore, error) {
	return openStore(ctx, cfg, log, onError, nil)
}

// openStore is OpenStore with a clock for bbolt (nil: time.Now).
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, onError func(op string, err error), now func() time.Time) (*OpenedStore, error) {
	switch cfg.Store.Backend {
	case "etcd":
		password, err := config.OptionalSecret(os.Environ(), "ARBOR_ETCD_PASSWORD")
		if err != nil {
			return nil, usageErr(err)
		}
		if (password == "") != (cfg.Store.Username == "") {
			return nil, usageErr(errors.New("store.username and ARBOR_ETCD_PASSWORD (or ARBOR_ETCD_PASSWORD_FILE) go together: set both or neither"))
		}
		s, err := etcd.Open(ctx, etcdConfig(cfg, password), etcd.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		return &OpenedStore{Store: s, Where: fmt.Sprint(cfg.Store.Endpoints)}, nil
	default:
		s, err := boltdb.Open(cfg.Store.Path, boltdb.Options{BatchDelay: cfg.Store.BatchDelay, Logger: log, OnError: onError, Now: now})
		if err != nil {
			return nil, err
		}
		return &OpenedStore{Store: s, Backup: s.Backup, Where: cfg.Store.Path}, nil
	}
}

// etcdConfig is the etcd backend's view of store.*.
func etcdConfig(cfg config.Config, password string) etcd.Config {
	return etcd.Config{
		Endpoints:      cfg.Store.Endpoints,
		Root:           cfg.Store.Root,
		DialTimeout:    cfg.Store.DialTimeout,
		RequestTimeout: cfg.Store.RequestTimeout,
		Username:       cfg.Store.Username,
		Password:       password,
		TLS: etcd.TLSConfig{
			CAFile: cfg.Store.CAFile, CertFile: cfg.Store.CertFile, KeyFile: cfg.Store.KeyFile,
			ServerName: cfg.Store.ServerName,
		},
	}
}
