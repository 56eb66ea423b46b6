// Package plugin is what an Arbor provider plugin imports. A plugin is a
// WebAssembly module that teaches Arbor one OAuth provider's quirks: how to
// build its authorization URL, exchange a code, refresh and revoke tokens,
// read the user and list repositories.
//
// Most providers are a declaration: register a Provider that says how
// the provider differs from the others, and build a reactor module:
//
//	package main
//
//	import "github.com/vintner/arbor/sdk/plugin"
//
//	func init() {
//		plugin.Register(&plugin.Provider{
//			Grants:     plugin.Grants{RefreshAuth: plugin.AuthNone, RefreshParams: plugin.ParamsInQuery},
//			API:        plugin.API{TokenParam: "access_token"},
//			UserPath:   "/user",
//			UserFields: plugin.UserFields{ID: "id", Login: "login", Name: "name", AvatarURL: "avatar_url"},
//			Emails: &plugin.EmailList{List: plugin.List{Path: "/emails", Paging: plugin.PagingNone},
//				Fields: plugin.EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed",
//					Primary: "scope", PrimaryWhen: "primary"}},
//			Repositories: &plugin.RepoList{Fields: plugin.GitHubRepoFields, List: plugin.List{Path: "/user/repos",
//				Paging: plugin.PagingTotalPages, TotalPagesHeaders: []string{"total_page"}}},
//		})
//	}
//
//	func main() {}
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gitee.wasm .
//
// examples/gitea is a whole plugin written so.
//
// # What providers share
//
// Most of a provider is what every provider does with different names:
// declare it, and write code only for the quirks.
//
//   - Grants and TokenStyle: the authorization code and refresh token
//     grants, with the client authentication (AuthInParams, AuthInHeader,
//     AuthNone) and the parameters' placement (ParamsInBody,
//     ParamsInQuery), the refresh grant's apart if it differs.
//   - API, bound to one operation with For into a Caller: calls with the
//     user's token (Bearer, another Scheme, or a TokenParam in the
//     query; Accept JSON; the provider's own fields) that never leave the
//     API base URL, answers judged by CheckResponse or the provider's
//     Check.
//   - List and Caller.List: a paged list and its style (PagingLink,
//     PagingNextPage, PagingTotalPages with its header names,
//     PagingBodyNext, PagingPages, PagingNone); API.ListRepos reads a
//     page of repositories. PerPage clamps a page size.
//   - Field maps: UserFields, RepoFields (GitHubRepoFields) and
//     EmailFields (GitHubEmailFields; PrimaryWhen and VerifiedWhen for
//     flags that are words or lists) name a provider's members and read
//     them with JSON; their Other hook reads nested or odd members.
//     EmailList reads a user's addresses and EmailChoice picks the one to
//     trust (PrimaryEmail).
//   - Provider: all of the above as one value, with AfterUser and the
//     …Func fields as the escape hatch. Its operations are the ones it
//     declares.
//
// A provider that is mostly quirks writes a type with a method per
// operation instead (the capability interfaces below, found by type
// assertion), using the same pieces; FullProvider is the interface guard
// of one with every operation. Below them, ExchangeCode, RefreshToken,
// TokenRequest, Do, Get, PostForm and JSON remain for what the
// declarations do not cover.
//
// The operations' messages (ExchangeRequest, Token, User, Repo, …) list
// their fields where they are declared here, and the error codes are
// this package's Code constants (CodeInvalidGrant, …): a plugin author
// needs no other package.
//
// The package hides the ABI (package sdk/abi): it exports the functions the
// host calls, decodes requests, finds the author's methods by type assertion
// on the small capability interfaces below (as Dex finds a
// RefreshConnector), and encodes results and errors. The manifest's
// operations must match the methods the type has (for a Provider, the
// operations it declares); the host compares them when it loads the
// plugin.
//
// # Network
//
// A plugin has no sockets. Do, Get and PostForm send requests through the
// host, which enforces the manifest's allow-list, refuses private
// addresses, caps the response and applies the call's deadline. Do not
// import net/http: it does not work in the sandbox and triples the module's
// size.
//
// # Errors
//
// Return an *Error (ErrInvalidGrant, ErrInvalidToken, …) to give the
// gateway a stable code to act on; any other error is reported as
// "internal". Never put tokens or the client secret in an error message.
// A provider's "slow down" is rate_limited with the wait it asked for
// (Error.RetryAfter): CheckResponse and ParseTokenResponse recognise every
// provider's signal through RateLimit; ErrRateLimitedAfter reports one a
// plugin recognised itself.
//
// # Outside WebAssembly
//
// The package also compiles for ordinary GOOS values so that go vet, go
// build ./... and unit tests of a plugin's parsing code work; there Do
// returns an error because only the Arbor host can perform requests.
package plugin

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"

	"github.com/vintner/arbor/sdk/abi"
)

// Authorizer customises the authorization URL's query parameters. A plugin
// without it gets DefaultAuthorizeParams.
type Authorizer interface {
	AuthorizeParams(ctx context.Context, r *AuthorizeRequest) (Values, error)
}

// Exchanger exchanges an authorization code for tokens.
type Exchanger interface {
	Exchange(ctx context.Context, r *ExchangeRequest) (*Token, error)
}

// Refresher uses a refresh token. Return ErrInvalidGrant when the provider
// rejects it: the gateway then asks the user to reconnect.
type Refresher interface {
	Refresh(ctx context.Context, r *RefreshRequest) (*Token, error)
}

// Revoker revokes a user's grant at the provider.
type Revoker interface {
	Revoke(ctx context.Context, r *RevokeRequest) error
}

// UserInfoer returns the account an access token belongs to.
type UserInfoer interface {
	User(ctx context.Context, r *UserRequest) (*User, error)
}

// RepoLister lists repositories, one page per call.
type RepoLister interface {
	Repos(ctx context.Context, r *ReposRequest) (*RepoPage, error)
}

// GroupLister returns the groups the user belongs to (the groups
// operation, added within ABI v1), by the provider's own names. It is
// optional and not part of FullProvider: a plugin without it keeps
// compiling and loading, and the host answers unsupported for it. See
// docs/plugin-abi.md, "groups".
type GroupLister interface {
	Groups(ctx context.Context, r *GroupsRequest) (*Groups, error)
}

// GitHoster says where the provider's Git host is and which HTTP Basic
// user name goes with an OAuth token there (the git_host operation, added
// within ABI v1). It is optional and not part of FullProvider. A
// plugin.Provider answers it from its Git declaration (GitHosting).
type GitHoster interface {
	GitHost(ctx context.Context, r *GitHostRequest) (*GitHost, error)
}

// FullProvider is a provider with every operation but the optional
// Authorizer and GroupLister. A plugin that means to have them all says so at compile
// time, where a mistyped method would otherwise surface only when the host
// compares the module with its manifest:
//
//	var _ plugin.FullProvider = (*gitlab)(nil)
type FullProvider interface {
	Exchanger
	Refresher
	Revoker
	UserInfoer
	RepoLister
}

var (
	provider any            // Register's
	named    map[string]any // RegisterAs's, by plugin name
	chosen   any            // the provider of this instance, once chosen
)

// Register installs the plugin's provider. Call it once, from an init
// function of package main; it panics (failing the plugin's load with that
// message) if called twice or if p implements no operation.
func Register(p any) {
	if provider != nil || named != nil {
		panic("plugin.Register called twice, or with RegisterAs")
	}
	checkProvider("plugin.Register", p)
	provider = p
}

// RegisterAs installs p as the provider of the plugin called name (its
// manifest's "name"), in a module that carries several: each instance acts
// as the one the host names in the abi.EnvPlugin environment variable.
// Arbor's built-in plugins are built this way, as one module, so that the
// Go runtime and libraries they share are compiled once. A package that
// calls RegisterAs from its init function can be imported by several
// main packages: alone it is an ordinary plugin (one registration is
// served whatever the variable says). It panics like Register, and if name
// is registered twice.
func RegisterAs(name string, p any) {
	if provider != nil {
		panic("plugin.RegisterAs called with Register")
	}
	if _, dup := named[name]; dup || name == "" {
		panic("plugin.RegisterAs: the name " + strconv.Quote(name) + " is empty or registered twice")
	}
	checkProvider("plugin.RegisterAs", p)
	if named == nil {
		named = map[string]any{}
	}
	named[name] = p
}

func checkProvider(fn string, p any) {
	if p == nil || Implemented(p) == abi.OpSet(0).With(abi.OpAuthorize) {
		panic(fn + ": the provider implements none of Exchanger, Refresher, Revoker, UserInfoer, RepoLister, GroupLister, GitHoster (register a Provider by pointer: &plugin.Provider{…})")
	}
	if d, ok := p.(declaration); ok {
		if msg := d.check(); msg != "" {
			panic(msg)
		}
	}
}

// current is the provider this instance serves: Register's, the only one
// registered with RegisterAs, or the one abi.EnvPlugin names. It is nil
// when there is none; the marker then reports no operation, and the host
// refuses the module with the manifest's operations missing.
func current() any {
	if provider != nil {
		return provider
	}
	if chosen == nil {
		if len(named) == 1 {
			for _, p := range named {
				chosen = p
			}
		} else {
			chosen = named[os.Getenv(abi.EnvPlugin)]
		}
	}
	return chosen
}

// declaration is a *Provider, or a type that embeds one: its operations
// are the declared ones, not every method it has.
type declaration interface {
	operations() abi.OpSet
	check() string
}

// Implemented returns the operations p supports. Authorize is always
// supported (DefaultAuthorizeParams stands in for a missing Authorizer).
// For a Provider (or a type embedding one) they are the operations it
// declares.
func Implemented(p any) abi.OpSet {
	if d, ok := p.(declaration); ok {
		return d.operations()
	}
	s := abi.OpSet(0).With(abi.OpAuthorize)
	if _, ok := p.(Exchanger); ok {
		s = s.With(abi.OpExchange)
	}
	if _, ok := p.(Refresher); ok {
		s = s.With(abi.OpRefresh)
	}
	if _, ok := p.(Revoker); ok {
		s = s.With(abi.OpRevoke)
	}
	if _, ok := p.(UserInfoer); ok {
		s = s.With(abi.OpUser)
	}
	if _, ok := p.(RepoLister); ok {
		s = s.With(abi.OpRepos)
	}
	if _, ok := p.(GroupLister); ok {
		s = s.With(abi.OpGroups)
	}
	if _, ok := p.(GitHoster); ok {
		s = s.With(abi.OpGitHost)
	}
	return s
}

// dispatch runs one operation on the registered provider and appends the
// encoded Result to out.
func dispatch(op abi.Op, in, out []byte) (res []byte) {
	defer func() {
		if v := recover(); v != nil {
			msg := "plugin panicked"
			switch v := v.(type) {
			case string:
				msg += ": " + v
			case error:
				msg += ": " + v.Error()
			}
			res = (&abi.Result{Code: abi.CodeInternal, Message: msg}).AppendABI(out[:0])
		}
	}()
	ctx := context.Background()
	p := current()
	if p == nil {
		msg := "no provider registered: call plugin.Register in an init function"
		if len(named) > 0 {
			msg = "this module carries several providers and " + abi.EnvPlugin + " names none of them"
		}
		return errorResult(out, &Error{Code: abi.CodeInternal, Message: msg})
	}
	var (
		msg abi.Message
		err error
	)
	switch op {
	case abi.OpAuthorize:
		var r AuthorizeRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		var v Values
		if a, ok := p.(Authorizer); ok {
			v, err = a.AuthorizeParams(ctx, &r)
		} else {
			v = DefaultAuthorizeParams(&r)
		}
		if err == nil {
			msg = paramsOf(v)
		}
	case abi.OpExchange:
		var r ExchangeRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		if x, ok := p.(Exchanger); ok {
			msg, err = nonNil(x.Exchange(ctx, &r))
		} else {
			err = unsupported(op)
		}
	case abi.OpRefresh:
		var r RefreshRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		if x, ok := p.(Refresher); ok {
			msg, err = nonNil(x.Refresh(ctx, &r))
		} else {
			err = unsupported(op)
		}
	case abi.OpRevoke:
		var r RevokeRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		if x, ok := p.(Revoker); ok {
			err = x.Revoke(ctx, &r)
			msg = &abi.Empty{}
		} else {
			err = unsupported(op)
		}
	case abi.OpUser:
		var r UserRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		if x, ok := p.(UserInfoer); ok {
			msg, err = nonNil(x.User(ctx, &r))
		} else {
			err = unsupported(op)
		}
	case abi.OpRepos:
		var r ReposRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		if x, ok := p.(RepoLister); ok {
			msg, err = nonNil(x.Repos(ctx, &r))
		} else {
			err = unsupported(op)
		}
	case abi.OpGroups:
		var r GroupsRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		if x, ok := p.(GroupLister); ok {
			msg, err = nonNil(x.Groups(ctx, &r))
		} else {
			err = unsupported(op)
		}
	case abi.OpGitHost:
		var r GitHostRequest
		if err = r.UnmarshalABI(in); err != nil {
			err = &Error{Code: abi.CodeInvalidRequest, Message: err.Error()}
			break
		}
		if x, ok := p.(GitHoster); ok {
			msg, err = nonNil(x.GitHost(ctx, &r))
		} else {
			err = unsupported(op)
		}
	default:
		err = unsupported(op)
	}
	if err != nil {
		return errorResult(out, err)
	}
	return abi.AppendResult(out[:0], msg)
}

// nonNil turns a (nil, nil) answer into an error instead of an empty
// success the host would misread.
func nonNil[T any, P interface {
	*T
	abi.Message
}](v P, err error) (abi.Message, error) {
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, &Error{Code: abi.CodeInternal, Message: "the plugin returned neither a result nor an error"}
	}
	return v, nil
}

func unsupported(op abi.Op) error {
	return &Error{Code: abi.CodeUnsupported, Message: "this plugin does not implement " + op.String()}
}

func errorResult(out []byte, err error) []byte {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: abi.CodeInternal, Message: err.Error()}
	}
	r := abi.Result{Code: e.Code, Message: e.Message, Retryable: e.Retryable, Status: e.Status, RetryAfter: e.RetryAfter}
	if r.Code == "" {
		r.Code = abi.CodeInternal
	}
	return r.AppendABI(out[:0])
}

// paramsOf orders v by name so that the URL is the same on every call.
func paramsOf(v Values) *abi.AuthorizeResult {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	r := &abi.AuthorizeResult{Params: make([]abi.Param, 0, len(v))}
	for _, k := range names {
		for _, val := range v[k] {
			r.Params = append(r.Params, abi.Param{Name: k, Value: val})
		}
	}
	return r
}
