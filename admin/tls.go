package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// TLSCertificate is a certificate Arbor serves (GET /v1/tls).
type TLSCertificate struct {
	Names    []string  `json:"names"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
}

// TLSStatus is Arbor's https (GET /v1/tls, `arbor tls status`).
type TLSStatus struct {
	// Source is where the certificates come from: "files"
	// (tls.cert_file), "acme" (tls.acme.domains), or "" for plain http.
	Source string `json:"source"`
	// Domains are tls.acme.domains (ACME only).
	Domains []string `json:"domains,omitempty"`
	// CA is tls.acme.ca_url (ACME only).
	CA string `json:"ca,omitempty"`
	// Certificates are those served now.
	Certificates []TLSCertificate `json:"certificates"`
	// RenewalFailures counts failed attempts to obtain or renew a
	// certificate since start (ACME only).
	RenewalFailures uint64 `json:"renewal_failures"`
}

func tlsRoute(mux *http.ServeMux, status func() TLSStatus) {
	mux.HandleFunc("GET /v1/tls", func(w http.ResponseWriter, r *http.Request) {
		var st TLSStatus
		if status != nil {
			st = status()
		}
		if st.Certificates == nil {
			st.Certificates = []TLSCertificate{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
}

// TLSStatus asks the server which certificates it serves.
func (c *Client) TLSStatus(ctx context.Context) (TLSStatus, error) {
	var st TLSStatus
	resp, err := c.do(ctx, http.MethodGet, "/v1/tls")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return st, fmt.Errorf("admin: reading tls status: %w", err)
	}
	return st, nil
}
