// Package membership keeps, per user, what the policy decides on: whether
// an operator disabled them, their verified e-mail addresses and their
// groups at the login providers; keeps it true while they stay signed in;
// and admits or refuses a sign-in before any account or session exists.
//
// # Why a cache in front of the store
//
// Every request of a session, a CLI token or a worker asks Member for its
// user, so the answer comes from an in-process cache, not from the store (a
// bbolt transaction or an etcd round trip). A hit is a lock-free map read
// (sync.Map) that allocates nothing: the Member, its Verdict and the groups
// header are computed when the entry is built, not per request. The cache
// is kept correct the way the worker cache is (package service/workers):
// the Service subscribes to data.Users.WatchUsers, so a write to the user
// by this process, by another replica or by a cascade (a deleted user)
// drops the entry at once, and a read that began before such a write
// cannot put its stale result back (a generation counter checked under
// the writers' lock). The Service also drops the entry itself after its
// own writes, because a replicated store's watch reports them a moment
// later. Entries age out after cacheTTL, and sooner when the grace period
// of failing providers ends, so that Unavailable turns true without any
// write. Unknown users are not cached: a deleted user's id cannot fill the
// cache, and Member answers ErrUnknownUser for them.
//
// # Why a background re-check
//
// A provider tells Arbor nothing when someone leaves a GitHub team or a
// GitLab group. oauth2-proxy reads memberships only at sign-in, so a
// person removed from the organisation keeps access until the cookie
// expires. Arbor reads them again every policy.recheck_interval with the
// sign-in's own grant, which it keeps sealed on the Identity
// (data.Identity.Grant, bound to the row by data.IdentityAAD) and
// refreshes like a Git connection. Run does this: about every interval,
// spread over the interval rather than all at once (each tick takes at
// most a bounded batch, oldest check first), for each user whose
// Memberships.CheckedAt would be older than the interval by the next tick
// (so the next check comes within one interval) and who has a grant at
// a group provider. The work for one user runs under the store lock
// "membership/"+userID, which every replica shares, and re-reads the user
// once it holds it, so that one replica does it and the others find it
// done.
//
// A refresh of the grant is rotation-safe: the new pair is sealed and
// written (compare-and-swap on the sealed bytes, so a newer grant a fresh
// sign-in stored meanwhile is not overwritten) before its access token is
// used; a refresh token the provider refuses is a failure like an
// unreachable provider.
//
// When a user who passed no longer does, Run ends their access at once
// (EndAccess): their sessions are deleted (WatchSessions invalidates the
// session caches of every replica), their CLI logins are revoked (the
// refresh families get RevokedAt and RevokeReason; a CLI bearer token is
// checked against its family on every request), and their workers are
// refused through Member by the authentication chain (the worker records
// stay, so that access comes back with the user's standing). Both the end
// of access ("policy.access_ended") and every change of memberships
// ("policy.memberships_changed", with the groups added and removed) are
// audited.
//
// # Why a grace period
//
// A provider that cannot answer (down, rate limiting, a revoked grant)
// says nothing about whether the user is still a member. Refusing at once
// would sign everyone out during a provider's outage; admitting forever
// would let a removed user stay as long as the provider is unreachable.
// The last known groups therefore stand for policy.grace_period after the
// first failure (Memberships.FailingSince), and then the member is
// Unavailable and refused with memberships_unavailable until a fetch
// succeeds. At sign-in there is no last known answer worth trusting for
// the provider the person is signing in with: a failed fetch refuses the
// sign-in with memberships_unavailable rather than admitting without
// knowledge.
//
// # Who decides
//
// The Service decides two things itself, before asking the policy: a
// disabled user is refused with account_disabled, and an Unavailable one
// with memberships_unavailable. Everything else is the Judge's (the
// policy's allow rules, package gateway/authz/policy); without a Judge
// every other user is admitted.
package membership
