package pages_test

// The account page through the full stack (moved from gateway/webauth's
// flow_test.go).

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vintner/arbor/app/apptest"
)

func TestAccountPageEndsAnotherSession(t *testing.T) {
	e := newEnv(t)
	laptop, phone := e.Browser(), e.Browser()
	laptop.Header.Set("User-Agent", "Laptop/1.0")
	phone.Header.Set("User-Agent", "Phone/2.0")
	laptop.MustSignIn("github")
	phone.MustSignIn("github")
	page := laptop.Get("/auth/account")
	if !strings.Contains(page.Body, "Laptop/1.0") || !strings.Contains(page.Body, "Phone/2.0") || strings.Count(page.Body, `class="session"`) != 2 {
		t.Fatalf("account page does not list both sessions:\n%s", page.Body)
	}
	phoneSID := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page.Body)
	if phoneSID == nil {
		t.Fatal("no end-session form")
	}
	csrf := apptest.CSRFRE.FindStringSubmatch(page.Body)[1]
	res := laptop.Do(http.MethodPost, "/auth/sessions/end", url.Values{"csrf": {csrf}, "id": {phoneSID[1]}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("end session: %d %s", res.StatusCode, res.Body)
	}
	if res := phone.Get("/x"); res.StatusCode != http.StatusFound {
		t.Fatalf("ended session still works: %d", res.StatusCode)
	}
	if res := laptop.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("the laptop's own session ended: %d", res.StatusCode)
	}
	// Someone else's session id cannot be ended.
	stranger := e.Browser()
	stranger.MustSignIn("gitlab")
	sessions, _ := e.App.Sessions().List(t.Context(), e.MustUserID(laptop))
	res = stranger.Do(http.MethodPost, "/auth/sessions/end", url.Values{"csrf": {apptest.AccountCSRF(t, stranger)}, "id": {sessions[0].ID}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("stranger's end: %d", res.StatusCode)
	}
	if res := laptop.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("a stranger ended the laptop's session: %d", res.StatusCode)
	}
}
