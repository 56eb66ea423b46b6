package etcd

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Key layout, relative to Config.Root. See the package documentation for
// why owned records are keyed by their owner first.
const (
	prefixUsers       = "users/"       // user id
	prefixSessions    = "sessions/"    // user id \x00 session id
	prefixFamilies    = "families/"    // user id \x00 family id
	prefixWorkers     = "workers/"     // user id \x00 worker id
	prefixIdentities  = "identities/"  // user id \x00 provider \x00 subject
	prefixConnections = "connections/" // user id \x00 provider
	prefixOAuthStates = "oauth/"       // state id
	prefixDeviceCodes = "device/"      // device code
	prefixAudit       = "audit/"       // seq, 16 hex digits
	prefixBlobs       = "blobs/"       // blob key

	// Indexes from a record's id to its owner (value: user id).
	idxSessions   = "idx/session/"  // session id
	idxFamilies   = "idx/family/"   // family id
	idxWorkers    = "idx/worker/"   // worker id
	idxIdentities = "idx/identity/" // provider \x00 subject
	// idxUserCodes maps a user code to its device code.
	idxUserCodes = "idx/usercode/"
	// idxAuditUser holds a copy of each event that names a user, keyed
	// user id \x00 seq, so that a user's trail is one range read.
	idxAuditUser = "idx/audit/"

	// keyAuditSeq holds the last audit Seq, in decimal.
	keyAuditSeq = "meta/audit-seq"
	// prefixConsumed marks who consumed an OAuth state: state id → the
	// consumer's random value, under the state's lease (see ambiguous.go).
	prefixConsumed = "meta/oauth-consumed/"
)

// sep joins the parts of a composite key. Keys may not contain it, so the
// byte order of composite keys is the order of their parts, and an owner's
// prefix (user id \x00) never matches another user's keys.
const sep = "\x00"

func join(parts ...string) string { return strings.Join(parts, sep) }

func seqKey(seq uint64) string { return fmt.Sprintf("%016x", seq) }

func parseSeq(v []byte) (uint64, error) {
	if len(v) == 0 {
		return 0, nil
	}
	return strconv.ParseUint(string(v), 10, 64)
}

// ownerMemo remembers the owner of ids read before. An owner never changes
// while its record lives (only an identity may move, and the memo is
// checked against the store), so a hit saves the index read on the hot
// path: a session read is one round trip instead of two. A wrong guess
// (the id was deleted and reused by another user) only costs the index
// read it would have made anyway.
type ownerMemo struct {
	mu sync.Mutex
	m  map[string]string // index prefix + id -> user id
}

// memoCap bounds the memo; when it is full it starts again empty.
const memoCap = 1 << 16

func (o *ownerMemo) get(key string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.m[key]
	return u, ok
}

func (o *ownerMemo) put(key, owner string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || len(o.m) >= memoCap {
		o.m = make(map[string]string)
	}
	o.m[key] = owner
}

func (o *ownerMemo) forget(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, key)
}
