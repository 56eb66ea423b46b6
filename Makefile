# Arbor — the two commands a newcomer needs are `make run` and `make test`.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
PKGS     := ./...

.PHONY: all build run test test-unit fuzz bench bench-go loadbench loadbench-etcd loadbench-flood loadbench-tls loadbench-git loadbench-ab lint fmt clean

all: lint test build

## build: compile bin/arbor (and the load-test helper)
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/arbor ./cmd/arbor

## run: start Arbor in dev mode with its embedded defaults on http://127.0.0.1:8080
run: build
	./$(BIN)/arbor dev

## test: every test with the race detector, then a short run of each fuzz target (what CI runs)
test: test-unit fuzz

test-unit:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

# Fuzz targets that guard untrusted input: the session cookie's token, return
# paths, the route classifier, the worker token check and the request-target
# reading (one path for routing, policy and the upstream). Each runs FUZZTIME
# on top of its seed corpus (testdata/fuzz or f.Add); a longer local run:
# make fuzz FUZZTIME=10m.
# The default is a count of executions (about 7-20 s each here), not a
# duration: with a duration, Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" failure at the deadline on a busy machine
# (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 500000x
FUZZ_TARGETS := ./gateway/authn/sessiontoken:FuzzVerify ./gateway/signin/returnto:FuzzValidate ./gateway/authz/access:FuzzClassify ./sdk/client:FuzzValidWorkerToken ./gateway/edge/target:FuzzNormalize
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## bench: Go benchmarks, then the wrk proxy comparisons (needs wrk and caddy: apt-get install wrk caddy), ending with every verdict line in one block
# Each loadbench run appends its verdict lines (cmd/loadbench/verdict.go) to
# the file $(VERDICTS), and a "broken" line if it failed; bench runs them all
# (-k: one broken run does not hide the others' verdicts), prints the block
# and fails if any run did. A verdict is a report: a missed target does not
# fail make bench, a broken run does.
VERDICTS ?=
LOADBENCH_VERDICTS = $(if $(VERDICTS),-verdicts '$(VERDICTS)')
bench:
	@v=$$(mktemp) && rc=0; \
	$(MAKE) --no-print-directory -k bench-go loadbench loadbench-etcd loadbench-flood loadbench-tls VERDICTS=$$v || rc=$$?; \
	echo; echo "== make bench: verdicts (medians of per-round paired ratios; see docs/benchmarks.md, \"Reading the verdicts\") =="; \
	cat $$v; rm -f $$v; exit $$rc

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

# loadbench runs the real `arbor serve` (fresh secrets, a throw-away data dir,
# info-level access log) against the bare Fiber proxy and the upstream itself,
# without and with a session cookie (it signs in through fake providers) and
# with a registered worker's headers, and a second Arbor whose policy route
# rule covers the proxied path (arbor-rule, paired with arbor-auth: issue
# 19). 20 rounds of 2 s: the ratios are medians of per-round pairs, and
# short rounds give many pairs on a machine whose speed drifts (about 5
# minutes in all).
loadbench: build
	$(GO) build -o $(BIN)/loadbench ./cmd/loadbench
	@d=$$(mktemp -d) && set -a && eval "$$(./$(BIN)/arbor keys generate)" && set +a && \
	  ARBOR_DATA_DIR=$$d ./$(BIN)/loadbench -arbor-cmd "./$(BIN)/arbor serve" -rounds 20 -duration 2s $(LOADBENCH_VERDICTS); rc=$$?; rm -rf $$d; exit $$rc

# loadbench-etcd: the same on an embedded etcd (fsync on) that loadbench
# starts, with a second replica on it: authenticated throughput of 2
# replicas vs 1, as a ratio.
loadbench-etcd: build
	$(GO) build -o $(BIN)/loadbench ./cmd/loadbench
	@d=$$(mktemp -d) && set -a && eval "$$(./$(BIN)/arbor keys generate)" && set +a && \
	  ARBOR_DATA_DIR=$$d ./$(BIN)/loadbench -arbor-cmd "./$(BIN)/arbor serve" -store etcd -replicas 2 -rounds 12 -duration 2s $(LOADBENCH_VERDICTS); rc=$$?; rm -rf $$d; exit $$rc

# loadbench-flood: signed-in proxied requests (wrk with a session cookie),
# quiet and while a second client (127.0.0.2) floods /auth/start and
# /oauth/device/code as fast as it can, in 10 paired rounds of 3 s; prints
# the throughput and p99 ratios and the store file's growth (about 2 minutes).
loadbench-flood: build
	$(GO) build -o $(BIN)/loadbench ./cmd/loadbench
	@d=$$(mktemp -d) && set -a && eval "$$(./$(BIN)/arbor keys generate)" && set +a && \
	  ARBOR_DATA_DIR=$$d ./$(BIN)/loadbench -arbor-cmd "./$(BIN)/arbor serve" -flood -rounds 10 -duration 3s $(LOADBENCH_VERDICTS); rc=$$?; rm -rf $$d; exit $$rc

# loadbench-tls: Arbor terminating TLS (anonymous, session cookie, worker
# headers) against a bare Fiber proxy behind the same TLS listener
# (gateway/edge/https) and against Caddy (HTTP/1.1, same test certificate,
# same upstream): keep-alive req/s, CPU per request and full handshakes/s,
# a warm-up round then 8 rounds of 2 s each (about 2 minutes).
loadbench-tls: build
	$(GO) build -o $(BIN)/loadbench ./cmd/loadbench
	@d=$$(mktemp -d) && set -a && eval "$$(./$(BIN)/arbor keys generate)" && set +a && \
	  ARBOR_DATA_DIR=$$d ./$(BIN)/loadbench -arbor-cmd "./$(BIN)/arbor serve" -tls -rounds 8 -duration 2s $(LOADBENCH_VERDICTS); rc=$$?; rm -rf $$d; exit $$rc

# loadbench-git: issue 22, a 50 MiB repository of random bytes cloned with
# the real git through Arbor's Git proxy and straight from the fake Git host
# (git http-backend), 6 paired rounds after a warm-up, with Arbor's resident
# memory sampled during each clone (about a minute).
loadbench-git: build
	$(GO) build -o $(BIN)/loadbench ./cmd/loadbench
	@d=$$(mktemp -d) && set -a && eval "$$(./$(BIN)/arbor keys generate)" && set +a && \
	  ARBOR_DATA_DIR=$$d ./$(BIN)/loadbench -arbor-cmd "./$(BIN)/arbor serve" -git -rounds 6 $(LOADBENCH_VERDICTS); rc=$$?; rm -rf $$d; exit $$rc

# loadbench-ab: compares two builds of Arbor to judge a small change (1-5 %
# of CPU per request), which the ratios against the bare proxy cannot see on
# a shared machine. A is bin/arbor-base, built from the git revision BASE
# (default HEAD, so that a plain `make loadbench-ab` weighs the uncommitted
# change), with the same flags as bin/arbor; B is bin/arbor, the working
# tree's. BASE's tree is exported with git archive into a temporary
# directory, removed after the build (no worktree, nothing left behind).
# Both run as `arbor serve` beside the bare proxy, with fresh secrets and a
# throw-away data dir as in loadbench; ROUNDS paired rounds of DURATION,
# A and B alternating in order, each process's CPU per request read from
# /proc. It ends with the medians of the per-round ratios, one line:
#   ab: B/A cpu/req 0.951 (0.930–0.970), req/s 1.036 (…), over 20 rounds; …
# B/A below 1 in CPU per request: the change is cheaper. No verdicts, and
# not part of make bench (about 4 minutes with the defaults).
BASE     ?= HEAD
ROUNDS   ?= 20
DURATION ?= 2s
loadbench-ab: build
	$(GO) build -o $(BIN)/loadbench ./cmd/loadbench
	@set -e; rev=$$(git rev-parse --verify --quiet '$(BASE)^{commit}') || { echo "loadbench-ab: BASE=$(BASE) is not a git revision" >&2; exit 1; }; \
	  short=$$(git rev-parse --short "$$rev"); src=$$(mktemp -d); trap 'rm -rf "$$src"' EXIT; \
	  echo "loadbench-ab: A = $(BIN)/arbor-base from $(BASE) ($$short), B = $(BIN)/arbor from the working tree ($(VERSION))"; \
	  git archive "$$rev" | tar -x -C "$$src"; \
	  cd "$$src" && $(GO) build -trimpath -ldflags "-s -w -X main.version=$$short" -o '$(CURDIR)/$(BIN)/arbor-base' ./cmd/arbor
	@d=$$(mktemp -d) && set -a && eval "$$(./$(BIN)/arbor keys generate)" && set +a && \
	  ARBOR_DATA_DIR=$$d ./$(BIN)/loadbench -ab -arbor-cmd "./$(BIN)/arbor-base serve" -arbor-cmd-b "./$(BIN)/arbor serve" -rounds $(ROUNDS) -duration $(DURATION); rc=$$?; rm -rf $$d; exit $$rc

## lint: gofmt check and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

## plugins: rebuild the built-in provider plugins into plugins/builtin (reproducible; commit the result)
.PHONY: plugins
plugins:
	$(GO) run ./plugins/builtin/internal/mkbuiltin
