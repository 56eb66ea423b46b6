// Command hostile is a test plugin that misbehaves on request: the
// authorization code passed to Exchange selects the misbehaviour.
package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

type provider struct{}

var hoard [][]byte // keeps allocations alive

func (provider) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	cmd, arg, _ := strings.Cut(r.Code, ":")
	switch cmd {
	case "ok":
		return &plugin.Token{AccessToken: "ok", TokenType: "bearer"}, nil
	case "loop":
		n := 0
		for {
			n++
		}
	case "oom":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "grow":
		mib, _ := strconv.Atoi(arg)
		for range mib {
			b := make([]byte, 1<<20)
			b[0] = 1
			hoard = append(hoard, b)
		}
		return &plugin.Token{AccessToken: "grown"}, nil
	case "panic":
		panic("deliberate panic")
	case "gopanic":
		done := make(chan struct{})
		go func() {
			defer close(done)
			panic("deliberate panic in a goroutine")
		}()
		<-done
		return nil, nil
	case "deadlock":
		var mu sync.Mutex
		mu.Lock()
		mu.Lock()
		return nil, nil
	case "fetch":
		resp, err := plugin.Get(ctx, arg, nil)
		if err != nil {
			return nil, err
		}
		return &plugin.Token{AccessToken: strconv.Itoa(resp.StatusCode) + ":" + strconv.Itoa(len(resp.Body)), TokenType: resp.Header.Get("X-Fake")}, nil
	case "logsecret":
		plugin.Log(plugin.LevelInfo, "the client secret is "+r.Client.Secret+" and the code is "+r.Code)
		return &plugin.Token{AccessToken: "logged"}, nil
	case "ratelimit":
		// rate_limited with RetryAfter = arg seconds as given (0 encodes
		// exactly what a plugin built before the field existed does).
		n, _ := strconv.Atoi(arg)
		return nil, plugin.ErrRateLimitedAfter("slow down", n)
	case "errsecret":
		return nil, plugin.ErrProvider(400, "rejected secret "+r.Client.Secret)
	case "nil":
		return nil, nil
	case "badptr":
		// Hands http_do a request outside linear memory.
		rawHTTPDo(0xfffffff0, 64, 0, 0)
		return &plugin.Token{AccessToken: "unreachable"}, nil
	case "codecjson", "codecabi":
		// Round-trips a refresh-sized request n times, to compare the cost
		// of JSON and of the ABI's encoding inside the sandbox.
		n, _ := strconv.Atoi(arg)
		return roundTrips(cmd == "codecjson", n, r)
	}
	return nil, plugin.ErrInvalidRequest("unknown command " + cmd)
}

func (provider) User(context.Context, *plugin.UserRequest) (*plugin.User, error) {
	return &plugin.User{ID: "1", Login: "hostile"}, nil
}

func init() { plugin.Register(provider{}) }

func main() {}

// refreshJSON mirrors abi.RefreshRequest with JSON tags.
type refreshJSON struct {
	Client struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	} `json:"client"`
	Endpoints struct {
		AuthorizeURL string `json:"authorize_url"`
		TokenURL     string `json:"token_url"`
		APIBase      string `json:"api_base"`
		RevokeURL    string `json:"revoke_url"`
	} `json:"endpoints"`
	RefreshToken string   `json:"refresh_token"`
	Scopes       []string `json:"scopes"`
}

func roundTrips(useJSON bool, n int, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	req := abi.RefreshRequest{
		Client: r.Client, Endpoints: abi.Endpoints{
			AuthorizeURL: "https://bitbucket.org/site/oauth2/authorize", TokenURL: "https://bitbucket.org/site/oauth2/access_token",
			APIBase: "https://api.bitbucket.org/2.0", RevokeURL: "",
		},
		RefreshToken: "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0", Scopes: []string{"account", "repository", "email"},
	}
	var j refreshJSON
	j.Client.ID, j.Client.Secret = req.Client.ID, req.Client.Secret
	j.Endpoints.AuthorizeURL, j.Endpoints.TokenURL, j.Endpoints.APIBase = req.Endpoints.AuthorizeURL, req.Endpoints.TokenURL, req.Endpoints.APIBase
	j.RefreshToken, j.Scopes = req.RefreshToken, req.Scopes
	size := 0
	for range n {
		if useJSON {
			b, _ := json.Marshal(&j)
			var back refreshJSON
			if err := json.Unmarshal(b, &back); err != nil {
				return nil, err
			}
			size = len(b)
		} else {
			b := abi.Marshal(&req)
			var back abi.RefreshRequest
			if err := abi.Unmarshal(b, &back); err != nil {
				return nil, err
			}
			size = len(b)
		}
	}
	return &plugin.Token{AccessToken: strconv.Itoa(size)}, nil
}

// rawHTTPDo bypasses the SDK to break the ABI's memory rules.
//
//go:wasmimport arbor_v1 http_do
func rawHTTPDo(reqPtr, reqLen, bufPtr, bufCap uint32) uint32
