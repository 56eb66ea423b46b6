package main

// Anonymous floods of the device flow endpoints against a real `arbor
// serve` (issue 15, item 4): /api/auth/cli/start, /oauth/device/code and
// /cli/login, and /oauth/token polls. With small caps set through the
// environment, the store grows by no more than the caps allow, on the
// bbolt file and on an embedded etcd cluster, and a request started before
// the flood is still approved and exchanged by a signed-in user.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/plugintest"
)

const (
	floodMaxPending = 40
	floodPerAddress = 4
	// floodRequests is how many requests each flood sends per endpoint.
	floodRequests = 1500
	floodWorkers  = 8
)

// deviceFloodTarget is one `arbor serve` behind the test balancer (whose
// address is the public URL, for the fake providers), trusting
// X-Forwarded-For from 127.0.0.1 so that the flood speaks from many
// addresses.
type deviceFloodTarget struct {
	public string
	r      *replica
	// size reports the store's size in bytes.
	size func() int64
}

func startDeviceFloodTarget(t *testing.T, backendEnv []string, size func(dataDir string) func() int64) *deviceFloodTarget {
	t.Helper()
	lb := newBalancer(t)
	set, err := fakes.Start(lb.url, fakes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	sessionKey, _ := config.GenerateToken()
	cliKey, _ := config.GenerateToken()
	sealKey, _ := config.GenerateKeyringEntry(time.Now())
	env := append(append([]string{
		"PATH=" + os.Getenv("PATH"),
		"ARBOR_LOG_LEVEL=warn",
		"ARBOR_PUBLIC_URL=" + lb.url,
		"ARBOR_UPSTREAM_URL=http://127.0.0.1:9",
		"ARBOR_SERVER_TRUSTED_PROXIES=127.0.0.1",
		"ARBOR_CLI_MAX_PENDING_DEVICES=" + strconv.Itoa(floodMaxPending),
		"ARBOR_CLI_MAX_PENDING_PER_ADDRESS=" + strconv.Itoa(floodPerAddress),
		// The RFC 8628 clients the flood names are registered ones: an
		// unregistered client_id is refused before anything is counted.
		"ARBOR_CLI_DEVICE_CLIENTS=[{id: poller, name: Poller, scopes: [proxy]}, {id: flood, name: Flood, scopes: [proxy]}]",
		// This test measures the caps on pending requests; the per-address
		// rate limits (hostile_ratelimit_test.go) would answer most of the
		// flood 429 before it reached them.
		"ARBOR_LIMITS_ENABLED=false",
		config.EnvSessionKey + "=" + sessionKey,
		config.EnvCLIJWTSecret + "=" + cliKey,
		config.EnvEncryptionKeys + "=" + sealKey,
		"ARBOR_PLUGINS_CACHE_DIR=" + plugintest.DefaultCacheDir(),
	}, backendEnv...), set.Environ()...)
	r := startReplica(t, "a", env)
	lb.add(r)
	dataDir := ""
	for _, kv := range r.cmd.Env {
		if v, ok := strings.CutPrefix(kv, "ARBOR_DATA_DIR="); ok {
			dataDir = v
		}
	}
	return &deviceFloodTarget{public: lb.url, r: r, size: size(dataDir)}
}

// flood sends n requests made by mk from floodWorkers goroutines, each
// from its own X-Forwarded-For address (unless sameAddress), and returns
// the count of each status.
func flood(t *testing.T, client *http.Client, n int, sameAddress bool, mk func(i int) *http.Request) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range floodWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				req := mk(i)
				if !sameAddress {
					req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
				}
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				var body struct {
					Error string `json:"error"`
				}
				if res.StatusCode == http.StatusServiceUnavailable {
					json.NewDecoder(res.Body).Decode(&body)
					if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); body.Error != "busy" || ra < 1 {
						t.Errorf("%s %s: 503 %q, Retry-After %q; want busy with Retry-After", req.Method, req.URL.Path, body.Error, res.Header.Get("Retry-After"))
					}
				}
				res.Body.Close()
				mu.Lock()
				counts[res.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return counts
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// bigStart is the largest /api/auth/cli/start body Arbor keeps: 8 client
// info entries of 32+128 characters, a 128-character device code.
func bigStart() string {
	info := map[string]string{}
	for k := range 8 {
		info[fmt.Sprintf("%-32d", k)] = strings.Repeat("v", 128)
	}
	code := randomUUID()
	code += strings.Repeat("x", 128-len(code))
	b, _ := json.Marshal(map[string]any{"device_code": code, "code_challenge": base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"client_name": strings.Repeat("n", 40), "client_info": info})
	return string(b)
}

func deviceFlood(t *testing.T, target *deviceFloodTarget) {
	base := target.r.base
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: floodWorkers},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// A user signs in; a CLI starts a login before the flood.
	user := newAgent(t, 30*time.Second)
	if _, err := user.signIn(target.public); err != nil {
		t.Fatal(err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	verifier := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(verifier))
	dc := randomUUID()
	cli := newAgent(t, 30*time.Second)
	if _, err := expect(cli.postJSON(base+"/api/auth/cli/start", map[string]any{
		"device_code": dc, "code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "client_name": "grape",
	}, http.Header{"X-Forwarded-For": {"192.0.2.10"}}))(http.StatusCreated, "cli start before the flood"); err != nil {
		t.Fatal(err)
	}
	// A few RFC 8628 device codes to poll during the flood: as many as
	// one address may hold.
	var rfcCodes []string
	for i := range floodPerAddress {
		r, err := expect(cli.do(http.MethodPost, base+"/oauth/device/code", strings.NewReader("client_id=poller"),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-For": {"192.0.2.20"}}))(http.StatusOK, "RFC 8628 start to poll")
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			DeviceCode string `json:"device_code"`
		}
		if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.DeviceCode == "" {
			t.Fatalf("RFC 8628 start %d: %s", i, tail(r.body, 200))
		}
		rfcCodes = append(rfcCodes, out.DeviceCode)
	}
	before := target.size()

	// The three start endpoints at once, as fast as the workers go.
	sessionCookie := ""
	u, _ := url.Parse(target.public)
	for _, ck := range user.http.Jar.Cookies(u) {
		sessionCookie += ck.Name + "=" + ck.Value + "; "
	}
	var starts, rfc, anonLink, signedLink map[int]int
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		starts = flood(t, client, floodRequests, false, func(int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, base+"/api/auth/cli/start", strings.NewReader(bigStart()))
			req.Header.Set("Content-Type", "application/json")
			return req
		})
	}()
	go func() {
		defer wg.Done()
		rfc = flood(t, client, floodRequests, false, func(int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, base+"/oauth/device/code", strings.NewReader(url.Values{"client_id": {"flood"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		})
	}()
	go func() {
		defer wg.Done()
		anonLink = flood(t, client, floodRequests/3, false, func(int) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, base+"/cli/login?device_code="+randomUUID(), nil)
			return req
		})
	}()
	go func() {
		defer wg.Done()
		signedLink = flood(t, client, floodRequests/3, true, func(int) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, base+"/cli/login?device_code="+randomUUID(), nil)
			req.Header.Set("Cookie", sessionCookie)
			req.Header.Set("Accept", "application/json")
			req.Header.Set("X-Forwarded-For", "192.0.2.30")
			return req
		})
	}()
	wg.Wait()
	polls := flood(t, client, floodRequests, false, func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {rfcCodes[i%len(rfcCodes)]}, "client_id": {"poller"},
		}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	})
	after := target.size()
	t.Logf("cli start: %v; device/code: %v; /cli/login anonymous: %v, signed in: %v; %d codes polled: %v", starts, rfc, anonLink, signedLink, len(rfcCodes), polls)
	t.Logf("store size %d → %d bytes (+%d) with caps %d pending, %d per address", before, after, after-before, floodMaxPending, floodPerAddress)

	accepted := starts[http.StatusCreated] + rfc[http.StatusOK] + signedLink[http.StatusOK]
	if room := floodMaxPending - 1 - len(rfcCodes); accepted > room || accepted == 0 {
		t.Errorf("%d device requests accepted during the flood, want 1 to %d (the cap less those pending before)", accepted, room)
	}
	if starts[http.StatusServiceUnavailable] == 0 || rfc[http.StatusServiceUnavailable] == 0 || signedLink[http.StatusServiceUnavailable] == 0 {
		t.Errorf("a start endpoint never answered busy")
	}
	if signedLink[http.StatusOK] > floodPerAddress {
		t.Errorf("one signed-in address started %d requests through /cli/login, want at most %d", signedLink[http.StatusOK], floodPerAddress)
	}
	if anonLink[http.StatusFound] != floodRequests/3 {
		t.Errorf("anonymous /cli/login: %v, want only redirects to sign in", anonLink)
	}
	if polls[http.StatusBadRequest] != floodRequests {
		t.Errorf("polls: %v, want only 400 (authorization_pending or slow_down)", polls)
	}
	// Each kept request takes at most about 2 KB (the largest start body,
	// its key and its expiry index entry); allow the store's pages and
	// growth steps five times over. Without the caps, the floods' ~3000
	// starts would take megabytes.
	if limit := int64(floodMaxPending) * 10 << 10; after-before > limit {
		t.Errorf("the store grew by %d bytes, want at most %d for %d pending requests", after-before, limit, floodMaxPending)
	}

	// The request started before the flood is approved and exchanged.
	page, err := expect(user.get(target.public+"/cli/login?device_code="+dc, nil))(http.StatusOK, "cli login page after the flood")
	if err != nil {
		t.Fatal(err)
	}
	m := csrfFieldRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("cli login page without a CSRF field")
	}
	done, err := expect(user.postForm(target.public+"/cli/login/approve", url.Values{"csrf": {m[1]}, "device_code": {dc}}))(http.StatusOK, "cli approve after the flood")
	if err != nil {
		t.Fatal(err)
	}
	code := verifyRE.FindStringSubmatch(done.body)
	if code == nil {
		t.Fatal("approval page without a verification code")
	}
	if _, err := expect(cli.postJSON(base+"/api/auth/cli/exchange", map[string]string{
		"device_code": dc, "verification_code": code[1], "code_verifier": verifier,
	}, nil))(http.StatusOK, "cli exchange after the flood"); err != nil {
		t.Fatal(err)
	}
}

func TestHostileDeviceFloodBolt(t *testing.T) {
	target := startDeviceFloodTarget(t, nil, func(dataDir string) func() int64 {
		return func() int64 {
			fi, err := os.Stat(filepath.Join(dataDir, "arbor.db"))
			if err != nil {
				t.Fatal(err)
			}
			return fi.Size()
		}
	})
	deviceFlood(t, target)
}

func TestHostileDeviceFloodEtcd(t *testing.T) {
	cluster := etcdtest.Start(t)
	cl := cluster.Client(t)
	target := startDeviceFloodTarget(t, []string{
		"ARBOR_STORE_BACKEND=etcd",
		"ARBOR_STORE_ENDPOINTS=" + strings.Join(cluster.Endpoints(), ","),
		"ARBOR_STORE_ROOT=/arbor-flood/",
	}, func(string) func() int64 {
		return func() int64 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := cl.Status(ctx, cluster.Endpoints()[0])
			if err != nil {
				t.Fatal(err)
			}
			return st.DbSizeInUse
		}
	})
	deviceFlood(t, target)
}
