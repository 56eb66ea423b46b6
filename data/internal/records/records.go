// Package records holds the one definition of what a valid record is and
// how a record is normalised before it is stored, shared by every backend
// of data.Store.
//
// These are the data.Store contract's rules (see data/store.go): keys are
// non-empty and contain no NUL byte, else data.ErrInvalid; records with a
// lifetime carry ExpiresAt; all times are stored and returned in UTC; a
// device code's update keeps its user code and ConsumedAt. They must be
// the same in every backend, or records valid in one would be refused by
// another (and a Copy between them fail), so the backends do not restate
// them: each resource definition names the functions here.
package records

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
)

// MaxKeyLen bounds one key part. Both backends allow far more (bbolt 32
// KiB per key, etcd's request limit larger still); this keeps keys and
// transactions of many keys small.
const MaxKeyLen = 1024

// CheckKey returns data.ErrInvalid for an empty or unusable key part: one
// that is empty, contains a NUL byte (the backends' separator of composite
// keys) or is longer than MaxKeyLen. what and field name the record kind
// and field in the message.
func CheckKey(what, field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: %s is empty: %w", what, field, data.ErrInvalid)
	case strings.Contains(v, "\x00"):
		return fmt.Errorf("%s: %s contains a NUL byte: %w", what, field, data.ErrInvalid)
	case len(v) > MaxKeyLen:
		return fmt.Errorf("%s: %s is %d bytes, longer than %d: %w", what, field, len(v), MaxKeyLen, data.ErrInvalid)
	}
	return nil
}

// Show names a record in errors: its kind and key, the parts of a
// composite key joined by "/", or the kind alone when the key is secret
// (session ids, OAuth states, device codes), which must stay out of errors
// and logs.
func Show(kind string, secret bool, key string) string {
	if secret {
		return kind
	}
	return fmt.Sprintf("%s %q", kind, strings.ReplaceAll(key, "\x00", "/"))
}

// NotFound is the data.ErrNotFound error for the record Show names.
func NotFound(kind string, secret bool, key string) error {
	return fmt.Errorf("%s: %w", Show(kind, secret, key), data.ErrNotFound)
}

// Live reports whether v is live at now; expires returns its ExpiresAt,
// and is nil for kinds without a lifetime.
func Live[T any](expires func(*T) time.Time, v *T, now time.Time) bool {
	return expires == nil || now.Before(expires(v))
}

// CheckExpiry returns data.ErrInvalid if t, a record's ExpiresAt, is not
// set.
func CheckExpiry(what string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%s: expires_at is not set (a record with a lifetime needs one): %w", what, data.ErrInvalid)
	}
	return nil
}

// DefaultAuditLimit is the number of events ListAudit returns when the
// query sets no limit.
const DefaultAuditLimit = 1000

// CheckAuditEvent checks an event before AppendAudit stores it: it needs an
// action, and a user id it names must be a valid key.
func CheckAuditEvent(e *data.AuditEvent) error {
	if e.Action == "" {
		return fmt.Errorf("audit event: action is empty: %w", data.ErrInvalid)
	}
	if e.UserID != "" {
		return CheckKey("audit event", "user_id", e.UserID)
	}
	return nil
}

// AuditLimit checks an audit query and returns how many events it may
// return: its Limit, or DefaultAuditLimit when that is 0.
func AuditLimit(q data.AuditQuery) (int, error) {
	switch {
	case q.Limit < 0:
		return 0, fmt.Errorf("audit query: limit %d is negative: %w", q.Limit, data.ErrInvalid)
	case q.UserID != "":
		if err := CheckKey("audit query", "user_id", q.UserID); err != nil {
			return 0, err
		}
	}
	if q.Limit == 0 {
		return DefaultAuditLimit, nil
	}
	return q.Limit, nil
}

// AuditMatch reports whether e meets q's UserID, Action and Since (not its
// Seq bounds, which a backend applies to the range it reads).
func AuditMatch(q *data.AuditQuery, e *data.AuditEvent) bool {
	switch {
	case q.UserID != "" && e.UserID != q.UserID:
		return false
	case !q.Since.IsZero() && e.Time.Before(q.Since):
		return false
	case q.Action == "":
		return true
	case strings.HasSuffix(q.Action, "."):
		return strings.HasPrefix(e.Action, q.Action)
	default:
		return e.Action == q.Action
	}
}

// AuditFiltered reports whether q has conditions checked on each event read
// (Action, Since) rather than by the range a backend reads.
func AuditFiltered(q *data.AuditQuery) bool { return q.Action != "" || !q.Since.IsZero() }

// AuditRange returns the Seqs an audit query may return, [from, to]
// inclusive, or ok false when there are none (AfterSeq at the maximum, or
// BeforeSeq at or below AfterSeq+1).
func AuditRange(q *data.AuditQuery) (from, to uint64, ok bool) {
	if q.AfterSeq == math.MaxUint64 {
		return 0, 0, false
	}
	from, to = q.AfterSeq+1, uint64(math.MaxUint64)
	if q.BeforeSeq != 0 {
		to = q.BeforeSeq - 1
	}
	return from, to, from <= to
}

// UTC returns t in UTC without a monotonic reading; the zero time stays
// zero.
func UTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// CheckIdentityKey checks the key of an identity.
func CheckIdentityKey(provider, subject string) error {
	return firstErr(CheckKey("identity", "provider", provider), CheckKey("identity", "subject", subject))
}

// CheckConnectionKey checks the key of a connection.
func CheckConnectionKey(userID, provider string) error {
	return firstErr(CheckKey("connection", "user_id", userID), CheckKey("connection", "provider", provider))
}

// checkOwned checks the id and the owner of a record that belongs to a
// user (sessions, refresh families, workers).
func checkOwned(kind, id, userID string) error {
	return firstErr(CheckKey(kind, "id", id), CheckKey(kind, "user_id", userID))
}

// Users

func ValidateUser(u *data.User) error { return CheckKey("user", "id", u.ID) }

func NormalizeUser(u *data.User) {
	u.CreatedAt, u.UpdatedAt = UTC(u.CreatedAt), UTC(u.UpdatedAt)
}

// Identities

func ValidateIdentity(i *data.Identity) error {
	return firstErr(CheckIdentityKey(i.Provider, i.Subject), CheckKey("identity", "user_id", i.UserID))
}

func NormalizeIdentity(i *data.Identity) {
	i.CreatedAt, i.LastLoginAt = UTC(i.CreatedAt), UTC(i.LastLoginAt)
}

// Sessions

func ValidateSession(s *data.Session) error {
	return firstErr(checkOwned("session", s.ID, s.UserID), CheckExpiry("session", s.ExpiresAt))
}

func NormalizeSession(s *data.Session) {
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = UTC(s.CreatedAt), UTC(s.LastSeenAt), UTC(s.ExpiresAt)
}

// OAuth states

func ValidateOAuthState(s *data.OAuthState) error {
	return firstErr(
		CheckKey("oauth state", "id", s.ID),
		CheckExpiry("oauth state", s.ExpiresAt))
}

func NormalizeOAuthState(s *data.OAuthState) {
	s.CreatedAt, s.ExpiresAt = UTC(s.CreatedAt), UTC(s.ExpiresAt)
}

// Device codes

// ValidateDeviceCode checks a device code; its user code is optional.
func ValidateDeviceCode(d *data.DeviceCode) error {
	var userCode error
	if d.UserCode != "" {
		userCode = CheckKey("device code", "user_code", d.UserCode)
	}
	return firstErr(
		CheckKey("device code", "code", d.Code),
		userCode,
		CheckExpiry("device code", d.ExpiresAt))
}

func NormalizeDeviceCode(d *data.DeviceCode) {
	d.LastPolledAt, d.ApprovedAt, d.ConsumedAt = UTC(d.LastPolledAt), UTC(d.ApprovedAt), UTC(d.ConsumedAt)
	d.CreatedAt, d.ExpiresAt = UTC(d.CreatedAt), UTC(d.ExpiresAt)
}

// CheckUnconsumed returns data.ErrConsumed if d has been consumed: it may
// be neither updated nor consumed again.
func CheckUnconsumed(d *data.DeviceCode) error {
	if !d.ConsumedAt.IsZero() {
		return fmt.Errorf("device code: %w", data.ErrConsumed)
	}
	return nil
}

// KeepDeviceCodeFields applies UpdateDeviceCode's rules to nv, the
// update of old: the user code may not change (data.ErrInvalid), and the
// store keeps ConsumedAt (ConsumeDeviceCode sets it).
func KeepDeviceCodeFields(old, nv *data.DeviceCode) error {
	if nv.UserCode != old.UserCode {
		return fmt.Errorf("device code: an update may not change the user code: %w", data.ErrInvalid)
	}
	nv.ConsumedAt = old.ConsumedAt
	return nil
}

// Refresh families

func ValidateRefreshFamily(f *data.RefreshFamily) error {
	return firstErr(checkOwned("refresh family", f.ID, f.UserID), CheckExpiry("refresh family", f.ExpiresAt))
}

func NormalizeRefreshFamily(f *data.RefreshFamily) {
	f.RotatedAt, f.RevokedAt, f.LastUsedAt = UTC(f.RotatedAt), UTC(f.RevokedAt), UTC(f.LastUsedAt)
	f.CreatedAt, f.ExpiresAt = UTC(f.CreatedAt), UTC(f.ExpiresAt)
}

// Workers

func ValidateWorker(w *data.Worker) error { return checkOwned("worker", w.ID, w.UserID) }

func NormalizeWorker(w *data.Worker) {
	w.CreatedAt, w.RotatedAt, w.LastUsedAt = UTC(w.CreatedAt), UTC(w.RotatedAt), UTC(w.LastUsedAt)
}

// Connections

func ValidateConnection(c *data.Connection) error { return CheckConnectionKey(c.UserID, c.Provider) }

func NormalizeConnection(c *data.Connection) {
	c.TokenExpiresAt, c.LastRefreshAt = UTC(c.TokenExpiresAt), UTC(c.LastRefreshAt)
	c.CreatedAt, c.UpdatedAt = UTC(c.CreatedAt), UTC(c.UpdatedAt)
}

// Blobs

// CheckBlobKey returns data.ErrInvalid unless key is a valid blob key: 1
// to data.MaxBlobKeyLen bytes of printable ASCII (0x20 to 0x7E), without
// "..".
func CheckBlobKey(key string) error {
	if key == "" {
		return fmt.Errorf("blob: key is empty: %w", data.ErrInvalid)
	}
	return checkBlobPath("key", key)
}

// CheckBlobPrefix returns data.ErrInvalid unless prefix is "" or follows
// the rules of a blob key.
func CheckBlobPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkBlobPath("prefix", prefix)
}

func checkBlobPath(field, v string) error {
	if len(v) > data.MaxBlobKeyLen {
		return fmt.Errorf("blob: %s is %d bytes, longer than %d: %w", field, len(v), data.MaxBlobKeyLen, data.ErrInvalid)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("blob: %s %q has byte 0x%02x at %d, which is not printable ASCII: %w", field, v, c, i, data.ErrInvalid)
		}
	}
	if strings.Contains(v, "..") {
		return fmt.Errorf("blob: %s %q contains \"..\": %w", field, v, data.ErrInvalid)
	}
	return nil
}

// CheckBlobSize returns data.ErrInvalid if a value of n bytes is larger
// than data.MaxBlobSize.
func CheckBlobSize(key string, n int) error {
	if n > data.MaxBlobSize {
		return fmt.Errorf("blob %q: value is %d bytes, more than %d: %w", key, n, data.MaxBlobSize, data.ErrInvalid)
	}
	return nil
}

// NewBlob is the blob PutBlob stores: key and value checked (data.ErrInvalid
// otherwise), stamped with the store's now, normalized.
func NewBlob(key string, value []byte, now time.Time) (data.Blob, error) {
	if err := firstErr(CheckBlobKey(key), CheckBlobSize(key, len(value))); err != nil {
		return data.Blob{}, err
	}
	b := data.Blob{Key: key, Value: value, Modified: now}
	NormalizeBlob(&b)
	return b, nil
}

// BlobUpdate turns UpdateBlob's fn into a record update: the new value,
// stamped with the store's now (the size is checked when it is stored).
func BlobUpdate(fn func(data.Blob) ([]byte, error), now func() time.Time) func(data.Blob) (data.Blob, error) {
	return func(b data.Blob) (data.Blob, error) {
		v, err := fn(b)
		if err != nil {
			return b, err
		}
		b.Value, b.Modified = v, now()
		return b, nil
	}
}

// ValidateBlob checks a blob before it is stored: its key, its size, and
// its Modified, which the store sets (or Import keeps) and must not be zero.
func ValidateBlob(b *data.Blob) error {
	var modified error
	if b.Modified.IsZero() {
		modified = fmt.Errorf("blob %q: modified is not set: %w", b.Key, data.ErrInvalid)
	}
	return firstErr(CheckBlobKey(b.Key), CheckBlobSize(b.Key, len(b.Value)), modified)
}

// NormalizeBlob puts Modified in UTC and stores a nil value as an empty one.
func NormalizeBlob(b *data.Blob) {
	b.Modified = UTC(b.Modified)
	if b.Value == nil {
		b.Value = []byte{}
	}
}

// BlobInfo describes b.
func BlobInfo(b *data.Blob) data.BlobInfo {
	return data.BlobInfo{Key: b.Key, Size: len(b.Value), Modified: b.Modified}
}
