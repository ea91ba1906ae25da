// A registry with the OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>), for the
// signing tests: go-containerregistry's in-memory registry with referrers support. Plain
// HTTP on the address given as the only argument (loopback in the test world). Its content
// lives in memory and is gone when it stops.
package main

import (
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatalf("usage: %s HOST:PORT", os.Args[0])
	}
	handler := registry.New(registry.WithReferrersSupport(true))
	srv := &http.Server{
		Addr:              os.Args[1],
		Handler:           withUploadLocation(handler),
		ReadHeaderTimeout: 30 * time.Second,
	}
	log.Printf("referrers registry on http://%s", os.Args[1])
	log.Fatal(srv.ListenAndServe())
}

// withUploadLocation adds the Location header the distribution spec gives the 201 that ends
// a blob upload (POST .../blobs/uploads/?digest=... or PUT .../blobs/uploads/<id>?digest=...):
// pkg/registry leaves it out, and clients that follow the spec (the provider's) read it.
func withUploadLocation(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		digest := r.URL.Query().Get("digest")
		i := strings.Index(r.URL.Path, "/blobs/uploads")
		if (r.Method != http.MethodPost && r.Method != http.MethodPut) || digest == "" || i < 0 {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&locating{ResponseWriter: w, at: r.URL.Path[:i] + "/blobs/" + digest}, r)
	})
}

type locating struct {
	http.ResponseWriter
	at string
}

func (l *locating) WriteHeader(status int) {
	if status == http.StatusCreated && l.Header().Get("Location") == "" {
		l.Header().Set("Location", l.at)
	}
	l.ResponseWriter.WriteHeader(status)
}
