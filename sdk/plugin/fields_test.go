//go:build !wasip1

package plugin

import (
	"fmt"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// TestUserFields: the named members fill the User, Other reads the rest,
// and an object without the id member is a provider_error.
func TestUserFields(t *testing.T) {
	f := UserFields{ID: "uuid", Login: "username", Name: "display_name", Email: "mail",
		Other: func(j *JSON, key []byte, u *User) {
			if string(key) == "links" {
				j.Object(func(key []byte) {
					if string(key) == "html" {
						u.ProfileURL = j.String()
					}
				})
			}
		}}
	u, err := f.Parse(answer(200, `{"uuid":"{1-2}","username":"atlas","display_name":"Atlas","mail":"a@example.com",
		"avatar_url":"ignored","links":{"html":"https://bb.example/atlas","x":[1]},"n":null}`))
	want := User{ID: "{1-2}", Login: "atlas", Name: "Atlas", Email: "a@example.com", ProfileURL: "https://bb.example/atlas"}
	if err != nil || *u != want {
		t.Errorf("%+v, %v; want %+v", u, err, want)
	}
	u, err = UserFields{ID: "id", AvatarURL: "avatar_url"}.Parse(answer(200, `{"id":4242,"avatar_url":"https://a.example/x.png"}`))
	if err != nil || u.ID != "4242" || u.AvatarURL != "https://a.example/x.png" {
		t.Errorf("numeric id: %+v, %v", u, err)
	}
	for _, body := range []string{`{"login":"x"}`, `{"id":null}`, `{"id":`} {
		if _, err := f.Parse(answer(200, body)); codeOf(err) != abi.CodeProviderError {
			t.Errorf("%s: %v, want provider_error", body, err)
		}
	}
}

// TestRepoFields: GitHubRepoFields reads GitHub's repository objects
// (Gitea's and the generic fake's too), Other reads the rest.
func TestRepoFields(t *testing.T) {
	body := `[{"id":1296269,"full_name":"octocat/Hello-World","description":"first","private":false,"default_branch":"main",
		"html_url":"https://github.com/octocat/Hello-World","clone_url":"https://github.com/octocat/Hello-World.git",
		"updated_at":"2011-01-26T19:14:43Z","owner":{"login":"octocat"}},{"id":"7","private":true}]`
	repos, err := GitHubRepoFields.Append(make([]Repo, 0, 2), []byte(body))
	want := []Repo{
		{ID: "1296269", FullName: "octocat/Hello-World", Description: "first", DefaultBranch: "main",
			HTMLURL: "https://github.com/octocat/Hello-World", CloneURL: "https://github.com/octocat/Hello-World.git", UpdatedAt: 1296069283},
		{ID: "7", Private: true},
	}
	if err != nil || fmt.Sprint(repos) != fmt.Sprint(want) {
		t.Errorf("%+v, %v\nwant %+v", repos, err, want)
	}
	gl := RepoFields{ID: "id", FullName: "path_with_namespace", Other: func(j *JSON, key []byte, r *Repo) {
		if string(key) == "visibility" {
			r.Private = j.String() != "public"
		}
	}}
	repos, err = gl.Append(nil, []byte(`[{"id":3,"path_with_namespace":"g/p","visibility":"internal"},{"id":4,"visibility":"public"}]`))
	if err != nil || len(repos) != 2 || !repos[0].Private || repos[1].Private || repos[0].FullName != "g/p" {
		t.Errorf("Other: %+v, %v", repos, err)
	}
	if _, err := GitHubRepoFields.Append(nil, []byte(`{"message":"not a list"}`)); codeOf(err) != abi.CodeProviderError {
		t.Errorf("an object for a list: %v", err)
	}
}

// TestPrimaryEmail: the first primary address with its own verified flag;
// none when no entry is primary (or the primary one has no address).
func TestPrimaryEmail(t *testing.T) {
	list, err := GitHubEmailFields.Parse([]byte(`[{"email":"old@example.com","primary":false,"verified":true},
		{"email":"","primary":true,"verified":true},
		{"email":"me@example.com","primary":true,"verified":false,"visibility":"private"},
		{"email":"late@example.com","primary":true,"verified":true}]`))
	if err != nil || len(list) != 4 {
		t.Fatalf("%+v, %v", list, err)
	}
	if e, ok := PrimaryEmail(list); !ok || e != (Email{Address: "me@example.com", Primary: true}) {
		t.Errorf("%+v, %v", e, ok)
	}
	if e, ok := PrimaryEmail(list[:2]); ok {
		t.Errorf("without a usable primary entry: %+v", e)
	}
	bb := EmailFields{Address: "email", Primary: "is_primary", Verified: "is_confirmed"}
	j := NewJSON([]byte(`{"email":"a@example.com","is_primary":true,"is_confirmed":true,"type":"email"}`))
	if e := bb.Read(j); e != (Email{"a@example.com", true, true}) || j.Err() != nil {
		t.Errorf("Bitbucket's names: %+v, %v", e, j.Err())
	}
}

// TestUnixTime: RFC 3339 times as GitHub and Gitea write them, and as
// Bitbucket does (microseconds and an offset); anything else is 0.
func TestUnixTime(t *testing.T) {
	if got := unixTime("2011-01-26T19:14:43Z"); got != 1296069283 {
		t.Errorf("got %d", got)
	}
	if got := unixTime("2024-05-01T12:00:00.123456+00:00"); got != 1714564800 {
		t.Errorf("got %d", got)
	}
	if unixTime("") != 0 || unixTime("yesterday") != 0 {
		t.Error("malformed times must read as 0")
	}
}
