//go:build !wasip1

package plugin_test

import (
	"fmt"

	"github.com/vintner/arbor/sdk/plugin"
)

// GitLab names its members its own way, and its visibility is a word, not
// a boolean: the names go in the map, the word in Other.
func ExampleRepoFields() {
	gitlab := plugin.RepoFields{
		ID: "id", FullName: "path_with_namespace", HTMLURL: "web_url", UpdatedAt: "last_activity_at",
		Other: func(j *plugin.JSON, key []byte, r *plugin.Repo) {
			if string(key) == "visibility" {
				r.Private = j.String() != "public"
			}
		},
	}
	body := []byte(`[{"id":3,"path_with_namespace":"group/project","visibility":"internal",
		"web_url":"https://gitlab.example/group/project","last_activity_at":"2024-05-01T12:00:00Z"}]`)
	repos, err := gitlab.Append(nil, body)
	fmt.Printf("%+v %v\n", repos, err)
	// Output: [{ID:3 FullName:group/project Description: Private:true DefaultBranch: HTMLURL:https://gitlab.example/group/project CloneURL: UpdatedAt:1714564800}] <nil>
}

func ExampleUserFields() {
	fields := plugin.UserFields{ID: "id", Login: "login", Name: "full_name", Email: "email"}
	resp := &plugin.Response{StatusCode: 200, Body: []byte(`{"id":7,"login":"ada","full_name":"Ada L.","email":"ada@example.com"}`)}
	u, err := fields.Parse(resp)
	fmt.Println(u.ID, u.Login, u.Name, u.Email, err)
	_, err = fields.Parse(&plugin.Response{StatusCode: 200, Body: []byte(`{"login":"ghost"}`)})
	fmt.Println(err)
	// Output:
	// 7 ada Ada L. ada@example.com <nil>
	// provider_error: the user object has no "id" member
}

// Bitbucket's e-mail entries say is_primary and is_confirmed.
func ExamplePrimaryEmail() {
	bitbucket := plugin.EmailFields{Address: "email", Primary: "is_primary", Verified: "is_confirmed"}
	list, _ := bitbucket.Parse([]byte(`[{"email":"old@example.com","is_primary":false,"is_confirmed":true},
		{"email":"new@example.com","is_primary":true,"is_confirmed":false}]`))
	e, ok := plugin.PrimaryEmail(list)
	fmt.Println(e.Address, e.Verified, ok)
	// Output: new@example.com false true
}

func ExamplePerPage() {
	fmt.Println(plugin.PerPage(0, 100), plugin.PerPage(25, 100), plugin.PerPage(500, 100))
	// Output: 100 25 100
}

// A groups operation answers the provider's own names: the lists it read,
// and the wanted groups it found hidden from the app.
func ExampleNewGroups() {
	orgs, _ := plugin.AppendNames(nil, []byte(`[{"login":"vintner"},{"login":"acme"}]`), "login")
	teams := []string{"vintner/platform"}
	hidden := plugin.NotListed([]string{"vintner", "secretive"}, orgs)
	g := plugin.NewGroups(append(orgs, teams...), hidden)
	fmt.Println(g.Groups, g.Restricted)
	// Output: [acme vintner vintner/platform] [secretive]
}
