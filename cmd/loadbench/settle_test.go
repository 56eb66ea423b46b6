package main

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// settledUpstreamCount waits out a tail: the counter the upstream reports
// still rises for its first reads (requests of the previous target still
// in flight), and the settled count is the one after the tail, not the
// first read.
func TestSettledUpstreamCount(t *testing.T) {
	for _, tail := range []int64{0, 1, 5} {
		var reads atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != countPath {
				http.NotFound(w, r)
				return
			}
			// 100 identified requests so far, and one more arriving
			// after each of the first tail reads.
			n := reads.Add(1)
			w.Write([]byte(strconv.FormatInt(100+min(n-1, tail), 10)))
		}))
		got, err := settledUpstreamCount(strings.TrimPrefix(srv.URL, "http://"))
		srv.Close()
		if err != nil || got != 100+tail {
			t.Errorf("tail of %d: settledUpstreamCount = %d, %v; want %d", tail, got, err, 100+tail)
		}
		if reads.Load() < tail+2 {
			t.Errorf("tail of %d: only %d reads", tail, reads.Load())
		}
	}
}
