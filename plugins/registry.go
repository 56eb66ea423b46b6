package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/vintner/arbor/sdk/abi/manifest"
)

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// Sources are searched in order. Each is either one plugin (plugin.json
	// at its root) or a directory whose subdirectories are plugins. A plugin
	// in a later source replaces one of the same name in an earlier source,
	// so put the embedded built-ins first and os.DirFS(plugins_dir) after.
	Sources []fs.FS
	// Config returns the operator's configuration of the named plugin. It is
	// called on every reload, so a changed configuration takes effect then.
	// Default: an empty configuration.
	Config func(name string) PluginConfig
}

// Registry is the set of loaded plugins, by name. Reload re-reads the
// sources and swaps changed plugins atomically. A Registry is safe for
// concurrent use.
type Registry struct {
	host *Host
	opts RegistryOptions

	reload  sync.Mutex // serialises Reload and Close
	mu      sync.RWMutex
	plugins map[string]*Plugin
}

// NewRegistry loads every plugin in opts.Sources. A plugin that fails to
// load is left out and reported in the returned error (errors.Join of one
// error per plugin); the registry is returned either way and serves the
// plugins that loaded.
func NewRegistry(ctx context.Context, h *Host, opts RegistryOptions) (*Registry, error) {
	r := &Registry{host: h, opts: opts, plugins: map[string]*Plugin{}}
	return r, r.Reload(ctx)
}

// Get returns the named plugin. The *Plugin stays valid across reloads.
func (r *Registry) Get(name string) (*Plugin, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.plugins[name]
	return p, ok
}

// List returns the loaded plugins sorted by name.
func (r *Registry) List() []*Plugin {
	r.mu.RLock()
	ps := make([]*Plugin, 0, len(r.plugins))
	for _, p := range r.plugins {
		ps = append(ps, p)
	}
	r.mu.RUnlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return ps
}

// Reload re-reads the sources (the gateway calls it on SIGHUP and for
// `arbor plugin reload`). For each plugin whose manifest, module or
// configuration changed it loads the new version completely (compile,
// checks, pre-warmed instances) before swapping it in; calls in flight
// finish on the old version, whose instances close when the last of them
// returns. A plugin that fails to load keeps its old version serving, and
// the error is returned (errors.Join, one per plugin, each naming it). A
// plugin whose directory disappeared is closed and removed.
func (r *Registry) Reload(ctx context.Context) error {
	r.reload.Lock()
	defer r.reload.Unlock()

	type candidate struct {
		m   *manifest.Manifest
		src source
		err error
	}
	found := map[string]*candidate{}
	unreadable := map[string]bool{} // directory names whose manifest failed
	var errs []error
	for i, fsys := range r.opts.Sources {
		dirs, err := pluginDirs(fsys)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins: listing source %d: %w", i, err))
			continue
		}
		for _, dir := range dirs {
			m, src, err := readSource(fsys, dir, fmt.Sprintf("source %d: %s", i, dir))
			if m == nil {
				unreadable[path.Base(dir)] = true
				errs = append(errs, err)
				continue
			}
			found[m.Name] = &candidate{m: m, src: src, err: err}
		}
	}

	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c := found[name]
		if c.err != nil {
			errs = append(errs, r.keepOld(name, c.err))
			continue
		}
		cfg := PluginConfig{}
		if r.opts.Config != nil {
			cfg = r.opts.Config(name)
		}
		fp := fingerprint(c.src, cfg)
		p, _ := r.Get(name)
		if p != nil {
			if old := p.fingerprint.Load(); old != nil && *old == fp && p.cur.Load() != nil {
				continue
			}
		}
		v, err := r.host.build(ctx, c.m, c.src, cfg)
		if err != nil {
			errs = append(errs, r.keepOld(name, err))
			continue
		}
		if p == nil {
			p = newPlugin(v)
			p.fingerprint.Store(&fp)
			r.mu.Lock()
			r.plugins[name] = p
			r.mu.Unlock()
			r.host.log.Info("plugin loaded", "plugin", name, "version", c.m.Version, "sha256", c.m.SHA256)
		} else {
			p.fingerprint.Store(&fp)
			p.swap(v)
			r.host.log.Info("plugin replaced", "plugin", name, "version", c.m.Version, "sha256", c.m.SHA256)
		}
	}

	r.mu.Lock()
	var removed []*Plugin
	for name, p := range r.plugins {
		if found[name] == nil && !unreadable[name] {
			delete(r.plugins, name)
			removed = append(removed, p)
		}
	}
	r.mu.Unlock()
	for _, p := range removed {
		p.Close()
		r.host.log.Info("plugin removed: its directory is gone", "plugin", p.name)
	}
	return errors.Join(errs...)
}

func (r *Registry) keepOld(name string, err error) error {
	if p, ok := r.Get(name); ok && p.cur.Load() != nil {
		r.host.log.Error("plugin reload failed; the previous version keeps serving", "plugin", name, "err", err)
		return fmt.Errorf("%w (the previous version keeps serving)", err)
	}
	r.host.log.Error("plugin failed to load", "plugin", name, "err", err)
	return err
}

// Close closes every plugin. Calls in flight finish first.
func (r *Registry) Close() error {
	r.reload.Lock()
	defer r.reload.Unlock()
	r.mu.Lock()
	ps := r.plugins
	r.plugins = map[string]*Plugin{}
	r.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
	return nil
}

// pluginDirs returns "." if fsys is one plugin, else its subdirectories
// that hold a manifest.
func pluginDirs(fsys fs.FS) ([]string, error) {
	if _, err := fs.Stat(fsys, manifest.File); err == nil {
		return []string{"."}, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := fs.Stat(fsys, path.Join(e.Name(), manifest.File)); err == nil {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs, nil
}

// fingerprint identifies a version's inputs. The configuration (secret
// included) is hashed, never stored or logged.
func fingerprint(src source, cfg PluginConfig) string {
	h := sha256.New()
	for _, b := range [][]byte{src.manifest, src.module} {
		s := sha256.Sum256(b)
		h.Write(s[:])
	}
	c, _ := json.Marshal(cfg)
	h.Write(c)
	return hex.EncodeToString(h.Sum(nil))
}
