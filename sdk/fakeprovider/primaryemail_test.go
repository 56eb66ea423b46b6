package fakeprovider_test

import (
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// TestPrimaryEmail: the address marked primary, else the first, else none;
// the result points into the user's list.
func TestPrimaryEmail(t *testing.T) {
	a := fakeprovider.Email{Address: "a@example.com"}
	b := fakeprovider.Email{Address: "b@example.com", Primary: true}
	for _, tc := range []struct {
		name   string
		emails []fakeprovider.Email
		want   string
	}{
		{"none", nil, ""},
		{"first when none is primary", []fakeprovider.Email{a, {Address: "c@example.com"}}, "a@example.com"},
		{"the primary one", []fakeprovider.Email{a, b}, "b@example.com"},
	} {
		u := fakeprovider.User{Login: "u", Emails: tc.emails}
		pe := u.PrimaryEmail()
		switch {
		case tc.want == "" && pe != nil:
			t.Errorf("%s: %+v, want nil", tc.name, *pe)
		case tc.want != "" && (pe == nil || pe.Address != tc.want):
			t.Errorf("%s: %+v, want %s", tc.name, pe, tc.want)
		case pe != nil && pe != &u.Emails[0] && pe != &u.Emails[1]:
			t.Errorf("%s: not an element of the user's list", tc.name)
		}
	}
}
