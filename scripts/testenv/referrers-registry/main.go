// A registry with the OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>), for the
// signing tests: go-containerregistry's in-memory registry with referrers support. Plain
// HTTP on the address given as the only argument (loopback in the test world). Its content
// lives in memory and is gone when it stops.
package main

import (
	"log"
	"net/http"
	"os"
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
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
	}
	log.Printf("referrers registry on http://%s", os.Args[1])
	log.Fatal(srv.ListenAndServe())
}
