//go:build !wasip1

package plugin

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

type groupsProvider struct{ testProvider }

func (groupsProvider) Groups(_ context.Context, r *GroupsRequest) (*Groups, error) {
	if r.AccessToken == "dead" {
		return nil, ErrInvalidToken("the token was revoked")
	}
	return NewGroups(append([]string{"z"}, r.Wanted...), []string{r.Client.ID}), nil
}

// TestDispatchGroups: a provider with a Groups method reports the
// operation in its marker and answers it; one without answers unsupported.
func TestDispatchGroups(t *testing.T) {
	defer func(p any) { provider = p }(provider)
	provider = groupsProvider{}
	if got := Implemented(provider); got.String() != "authorize,exchange,groups" {
		t.Errorf("implemented %s", got)
	}
	res, payload := run(t, abi.OpGroups, &abi.GroupsRequest{Client: abi.Client{ID: "acme"}, AccessToken: "at", Wanted: []string{"b", "a"}})
	var g abi.Groups
	if res.Code != "" || abi.Unmarshal(payload, &g) != nil ||
		!reflect.DeepEqual(g, abi.Groups{Groups: []string{"a", "b", "z"}, Restricted: []string{"acme"}}) {
		t.Errorf("groups: %+v %+v", res, g)
	}
	if res, _ := run(t, abi.OpGroups, &abi.GroupsRequest{AccessToken: "dead"}); res.Code != abi.CodeInvalidToken {
		t.Errorf("dead token: %+v", res)
	}
	provider = testProvider{}
	if res, _ := run(t, abi.OpGroups, &abi.GroupsRequest{AccessToken: "at"}); res.Code != abi.CodeUnsupported {
		t.Errorf("groups on a provider without them: %+v", res)
	}
}

func TestGroupHelpers(t *testing.T) {
	names, err := AppendNames([]string{"x"}, []byte(`[{"id":1,"full_path":"grp/sub","nested":{"full_path":"no"}},{"id":2},{"full_path":""},{"full_path":"b"}]`), "full_path")
	if err != nil || !reflect.DeepEqual(names, []string{"x", "grp/sub", "b"}) {
		t.Errorf("AppendNames = %q, %v", names, err)
	}
	if _, err := AppendNames(nil, []byte(`{"values":[]}`), "slug"); err == nil {
		t.Error("AppendNames read an object as a list")
	}
	if got := NotListed([]string{"a", "", "b", "a", "c"}, []string{"b"}); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("NotListed = %q", got)
	}
	g := NewGroups([]string{"b", "a", "", "b"}, []string{"c", "a", "c"})
	if !reflect.DeepEqual(*g, Groups{Groups: []string{"a", "b"}, Restricted: []string{"c"}}) {
		t.Errorf("NewGroups = %+v", g)
	}
}

// TestEachPage: every page is read, in order, and a list longer than the
// bound is an error rather than a short answer.
func TestEachPage(t *testing.T) {
	const base = "https://api.example"
	log := fakeHost(t, func(r sent) *Response {
		switch r.URL {
		case base + "/user/orgs?per_page=2":
			return answer(200, `[{"login":"a"},{"login":"b"}]`, "Link", `<`+base+`/user/orgs?per_page=2&page=2>; rel="next"`)
		case base + "/user/orgs?per_page=2&page=2":
			return answer(200, `[{"login":"c"}]`)
		}
		return answer(404, `{}`)
	})
	c, _ := API{}.For(Endpoints{APIBase: base}, "tok")
	var names []string
	read := func(resp *Response) (err error) {
		names, err = AppendNames(names, resp.Body, "login")
		return err
	}
	if err := c.EachPage(context.Background(), PagingLink, "/user/orgs?per_page=2", 5, read); err != nil ||
		!reflect.DeepEqual(names, []string{"a", "b", "c"}) || len(*log) != 2 {
		t.Fatalf("EachPage: %q %v after %d requests", names, err, len(*log))
	}
	names = nil
	err := c.EachPage(context.Background(), PagingLink, "/user/orgs?per_page=2", 1, read)
	if codeOf(err) != abi.CodeProviderError || !strings.Contains(err.Error(), "more than 1 pages") {
		t.Errorf("a list past the bound: %v", err)
	}
	if err := c.EachPage(context.Background(), PagingLink, "/nothing", 5, read); codeOf(err) != abi.CodeProviderError {
		t.Errorf("a 404: %v", err)
	}
}
