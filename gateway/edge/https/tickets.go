package https

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vintner/arbor/data"
)

// Session ticket keys shared across replicas
//
// A client that resumes a TLS session sends back a ticket that the server
// encrypted with a session ticket key. Go's own keys are per process
// (crypto/tls, Config.SetSessionTicketKeys: "If multiple servers are
// terminating connections for the same host they should all have the same
// session ticket keys"; https://pkg.go.dev/crypto/tls#Config.SetSessionTicketKeys),
// so behind a layer-4 balancer a client that lands on another replica
// makes a full handshake. With Options.TicketKeys every replica reads one
// set of keys from the shared store (bbolt or etcd): the newest encrypts
// new tickets, the older ones still decrypt. The set is rotated every
// TicketRotation (default 12 h) and keeps TicketKeysKept keys, so a ticket
// resumes for up to 24 h after the key that made it stopped being the
// newest. A rotation takes the store lock TicketKeysBlob and changes the
// value with UpdateBlob, which checks again whether the rotation is due,
// so two replicas never both rotate. Every replica reads the set again
// every TicketReload (default a minute) and hands it to its tls.Config
// with SetSessionTicketKeys, which also turns Go's own rotation off. The
// value is sealed with Options.TicketSealer (Arbor's keyring, bound to the
// key as data.SealBlob does): the store never holds the keys in clear.
// Keys never appear in logs or errors. If the store cannot be read, the
// keys last read stay (at start: Go's own per-process keys).

// TicketKeysBlob is the store key (and lock name) of the session ticket
// keys.
const TicketKeysBlob = "tls/session-ticket-keys"

// Defaults of the session ticket keys.
const (
	DefaultTicketRotation = 12 * time.Hour
	DefaultTicketReload   = time.Minute
	// TicketKeysKept is how many keys the set holds: the newest, which
	// encrypts, and the older ones, which still decrypt.
	TicketKeysKept = 3
)

// TicketKeyStore is where the session ticket keys are shared: the
// store's blobs and named locks (data.Blobs, data.Locks; Arbor's bbolt and
// etcd stores are both).
type TicketKeyStore interface {
	GetBlob(ctx context.Context, key string) (data.Blob, error)
	PutBlob(ctx context.Context, key string, value []byte) error
	UpdateBlob(ctx context.Context, key string, fn func(data.Blob) ([]byte, error)) (data.Blob, error)
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Sealer seals a value stored under key (acme.SealWith gives Arbor's
// keyring in the store's sealed-blob format).
type Sealer interface {
	Seal(key string, plaintext []byte) ([]byte, error)
	Open(key string, sealed []byte) ([]byte, error)
}

// ticketSet is the plaintext of the blob: a version byte, the time the
// newest key was made (Unix nanoseconds, big endian), then the keys,
// newest first, 32 bytes each.
type ticketSet struct {
	made time.Time
	keys [][32]byte
}

const ticketSetVersion = 1

func (s ticketSet) encode() []byte {
	b := make([]byte, 9, 9+32*len(s.keys))
	b[0] = ticketSetVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(s.made.UnixNano()))
	for _, k := range s.keys {
		b = append(b, k[:]...)
	}
	return b
}

func decodeTicketSet(b []byte) (ticketSet, error) {
	if len(b) < 9+32 || b[0] != ticketSetVersion || (len(b)-9)%32 != 0 {
		return ticketSet{}, errors.New("session ticket keys in the store have an unknown format")
	}
	s := ticketSet{made: time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9])))}
	for rest := b[9:]; len(rest) > 0; rest = rest[32:] {
		s.keys = append(s.keys, [32]byte(rest[:32]))
	}
	return s, nil
}

// rotated is s with a new key first, at most TicketKeysKept keys.
func (s ticketSet) rotated(now time.Time) (ticketSet, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return ticketSet{}, err
	}
	keys := append([][32]byte{k}, s.keys...)
	if len(keys) > TicketKeysKept {
		keys = keys[:TicketKeysKept]
	}
	return ticketSet{made: now, keys: keys}, nil
}

func (t *Terminator) ticketRotation() time.Duration {
	if t.opts.TicketRotation > 0 {
		return t.opts.TicketRotation
	}
	return DefaultTicketRotation
}

// due reports whether s needs a new key at now.
func (t *Terminator) due(s ticketSet, now time.Time) bool {
	return !now.Before(s.made.Add(t.ticketRotation()))
}

// SyncTicketKeys reads the shared session ticket keys, rotates them first
// if a rotation is due (or there are none yet), and hands them to the TLS
// configuration. It runs at New and every TicketReload; without
// Options.TicketKeys it does nothing. Its error says what failed, never a
// key.
func (t *Terminator) SyncTicketKeys(ctx context.Context) error {
	st, sealer := t.opts.TicketKeys, t.opts.TicketSealer
	if st == nil {
		return nil
	}
	set, err := t.readTickets(ctx)
	if err != nil && !errors.Is(err, data.ErrNotFound) {
		return err
	}
	now := t.now()
	if err != nil || t.due(set, now) {
		unlock, err := st.Lock(ctx, TicketKeysBlob)
		if err != nil {
			return fmt.Errorf("session ticket keys: taking the store lock: %w", err)
		}
		defer unlock()
		set, err = t.readTickets(ctx)
		switch {
		case errors.Is(err, data.ErrNotFound):
			if set, err = (ticketSet{}).rotated(now); err != nil {
				return fmt.Errorf("session ticket keys: %w", err)
			}
			sealed, err := sealer.Seal(TicketKeysBlob, set.encode())
			if err != nil {
				return fmt.Errorf("session ticket keys: sealing: %w", err)
			}
			if err := st.PutBlob(ctx, TicketKeysBlob, sealed); err != nil {
				return fmt.Errorf("session ticket keys: storing: %w", err)
			}
			t.log.Info("session ticket keys created in the store", "key", TicketKeysBlob)
		case err != nil:
			return err
		case t.due(set, now):
			// Under the lock, and UpdateBlob checks once more on the
			// value it replaces: one rotation however many replicas.
			var next ticketSet
			_, err := st.UpdateBlob(ctx, TicketKeysBlob, func(b data.Blob) ([]byte, error) {
				cur, err := t.openTickets(b.Value)
				if err != nil {
					return nil, err
				}
				if next = cur; !t.due(cur, now) {
					return b.Value, nil
				}
				if next, err = cur.rotated(now); err != nil {
					return nil, err
				}
				return sealer.Seal(TicketKeysBlob, next.encode())
			})
			if err != nil {
				return fmt.Errorf("session ticket keys: rotating: %w", err)
			}
			set = next
			t.log.Info("session ticket keys rotated", "key", TicketKeysBlob, "kept", len(set.keys))
		}
	}
	keys := make([][32]byte, len(set.keys))
	copy(keys, set.keys)
	t.config.SetSessionTicketKeys(keys)
	return nil
}

func (t *Terminator) readTickets(ctx context.Context) (ticketSet, error) {
	b, err := t.opts.TicketKeys.GetBlob(ctx, TicketKeysBlob)
	if err != nil {
		if errors.Is(err, data.ErrNotFound) {
			return ticketSet{}, err
		}
		return ticketSet{}, fmt.Errorf("session ticket keys: reading %s from the store: %w", TicketKeysBlob, err)
	}
	return t.openTickets(b.Value)
}

func (t *Terminator) openTickets(sealed []byte) (ticketSet, error) {
	pt, err := t.opts.TicketSealer.Open(TicketKeysBlob, sealed)
	if err != nil {
		return ticketSet{}, fmt.Errorf("session ticket keys: opening %s (sealed with a key the keyring no longer has?): %w", TicketKeysBlob, err)
	}
	return decodeTicketSet(pt)
}

// syncTickets runs SyncTicketKeys every interval until Close, logging
// failures (the keys last read stay).
func (t *Terminator) syncTickets(interval time.Duration) {
	defer close(t.ticketsDone)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.syncTicketsOnce()
		}
	}
}

func (t *Terminator) syncTicketsOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := t.SyncTicketKeys(ctx); err != nil {
		t.log.Error("session ticket keys not updated; the keys last read stay", "err", err)
	}
}
