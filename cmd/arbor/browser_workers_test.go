package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/vintner/arbor/examples/demoupstream"
	"github.com/vintner/arbor/sdk/client"
)

// TestBrowserWorkers registers a Tendril worker on the Workers page in
// Chromium, through the same `arbor dev` and browser as the other browser
// tests (see useBrowserEnv): sign in from a link to /workers, register,
// read the one-time token view (warning, copy button into the real
// clipboard), call the demo upstream's worker route with the token from
// outside the browser, see the list without the token, then revoke it
// through the confirmation page and see the token refused. Screenshots:
// workers-token.png (the one-time token view) and workers-list.png.
func TestBrowserWorkers(t *testing.T) {
	env := useBrowserEnv(t)
	artifacts := artifactDir(t)
	start := time.Now()
	browserWorkersFlow(t, env.browserCtx, env.dev, artifacts)
	t.Logf("whole flow took %v", time.Since(start).Round(time.Millisecond))
}

// tokenView is what the test reads from the one-time token view.
type tokenView struct {
	Found    bool   `json:"found"`
	WorkerID string `json:"workerId"`
	Token    string `json:"token"`
	Warning  string `json:"warning"`
	Env      string `json:"env"`
	Copy     string `json:"copy"`
	Scripts  int    `json:"scripts"`
}

const tokenViewJS = `(() => {
	const q = (s) => document.querySelector(s);
	const text = (e) => e ? e.textContent.trim() : '';
	const main = q('main#worker-token-view');
	return {
		found: !!main,
		workerId: main ? main.getAttribute('data-id') : '',
		token: text(q('#worker-token')),
		warning: text(q('#token-warning')),
		env: text(q('#worker-env')),
		copy: text(q('#copy-token')),
		scripts: document.scripts.length,
	};
})()`

func browserWorkersFlow(t *testing.T, browserCtx context.Context, dev *devServer, artifacts string) {
	b, closeTab := newBrowserTab(t, browserCtx, dev, browserStepLimit)
	defer closeTab()
	ctx := b.ctx
	page := dev.base + "/workers"

	// 1. Sign in from a link to the Workers page and come back to it.
	b.do("open "+page, chromedp.Navigate(page))
	b.waitPage("the sign-in page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/sign-in" && u.Query().Get("return_to") == "/workers"
	})
	st := b.signInWith("github", "", "the Workers page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/workers"
	})
	if st.Scripts != 0 || !strings.Contains(st.HTML, `id="register-form"`) {
		t.Fatalf("Workers page: %d scripts, register form present=%v\n%s", st.Scripts, strings.Contains(st.HTML, `id="register-form"`), snippet(st.HTML))
	}

	// 2. Register: the POST answers with the token view itself.
	const name = "browser-runner"
	b.do("register "+name,
		chromedp.SendKeys(chromedp.CSS(`#worker-name`), name),
		chromedp.Click(chromedp.CSS(`#register`)))
	b.waitPage("the token view", func(st pageState, u *url.URL) bool {
		return u.Path == "/workers" && strings.Contains(st.HTML, `id="worker-token-view"`)
	})
	b.wantHop("POST", page, 200, "")
	tv, err := chromedp.Run(ctx, chromedp.Evaluate[tokenView](tokenViewJS))
	if err != nil {
		t.Fatalf("reading the token view: %v", err)
	}
	if !tv.Found || !client.ValidWorkerToken(tv.Token) || tv.WorkerID == "" || tv.Scripts != 1 ||
		!strings.Contains(tv.Warning, "will not be shown again") || tv.Copy != "Copy" ||
		!strings.Contains(tv.Env, "TENDRIL_WORKER_ID="+tv.WorkerID) || !strings.Contains(tv.Env, "TENDRIL_WORKER_TOKEN="+tv.Token) {
		t.Fatalf("token view: %+v", tv)
	}
	b.screenshot(filepath.Join(artifacts, "workers-token.png"))

	// 3. The copy button puts the token in the clipboard.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted,
			Origin: dev.base, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		}); err != nil {
			t.Fatalf("granting %s: %v", perm, err)
		}
	}
	b.do("click Copy", chromedp.Click(chromedp.CSS(`#copy-token`)))
	var copied string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if copied, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#copy-token`))); err == nil && copied != "Copy" {
			break
		}
	}
	clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if copied != "Copied" || err != nil || clip != tv.Token {
		t.Fatalf("copy button: reads %q, clipboard holds the token: %v (%v)", copied, clip == tv.Token, err)
	}

	// 4. The token works from outside the browser: the demo upstream's
	// worker route sees the worker, never the token.
	status, body := workerCall(t, dev, tv.WorkerID, tv.Token)
	if status != 200 || !strings.Contains(body, tv.WorkerID) || strings.Contains(body, tv.Token) {
		t.Fatalf("worker call with the new token: %d %s", status, body)
	}

	// 5. Back on the list: the worker is there, its token is not.
	b.do("click Done", chromedp.Click(chromedp.CSS(`#done`)))
	st = b.waitPage("the Workers list", func(st pageState, u *url.URL) bool {
		return u.Path == "/workers" && strings.Contains(st.HTML, `id="worker-`+tv.WorkerID+`"`)
	})
	if strings.Contains(st.HTML, tv.Token[len(client.WorkerTokenPrefix):]) {
		t.Fatal("the list shows the token again")
	}
	b.screenshot(filepath.Join(artifacts, "workers-list.png"))

	// 6. Revoke through the confirmation page; the token stops working.
	b.do("click Revoke", chromedp.Click(chromedp.CSS(`#worker-`+tv.WorkerID+` a.revoke`)))
	b.waitPage("the revoke confirmation", func(st pageState, u *url.URL) bool {
		return strings.HasSuffix(u.Path, "/revoke") && strings.Contains(st.HTML, `id="revoke-form"`)
	})
	b.do("confirm revoke", chromedp.Click(chromedp.CSS(`#confirm-revoke`)))
	st = b.waitPage("the Workers page after revoking", func(st pageState, u *url.URL) bool {
		return u.Path == "/workers" && u.Query().Get("revoked") != ""
	})
	if strings.Contains(st.HTML, tv.WorkerID) {
		t.Error("the revoked worker is still listed")
	}
	if status, body := workerCall(t, dev, tv.WorkerID, tv.Token); status != 401 || !strings.Contains(body, `"worker_unauthorized"`) {
		t.Fatalf("revoked worker: %d %s", status, body)
	}
}

// workerCall calls the demo upstream's worker route through Arbor as a
// worker.
func workerCall(t *testing.T, dev *devServer, id, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, dev.base+demoupstream.WorkerPath+"jobs/next", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(client.HeaderWorkerID, id)
	req.Header.Set(client.HeaderWorkerToken, token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var probe map[string]any
	if res.StatusCode == 200 && json.Unmarshal(b, &probe) != nil {
		t.Fatalf("worker route answered non-JSON: %s", b)
	}
	return res.StatusCode, string(b)
}
