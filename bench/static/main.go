// Command static is the ceiling in `make bench`: a minimal HTTP server that
// answers every request with the bytes of one file (a copy of the probe's
// own /metrics payload), gzip-compressed in advance for clients that accept
// it, so that it does no work per request beyond net/http's own.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:19848", "address to listen on")
	file := flag.String("file", "", "payload to serve")
	ctype := flag.String("content-type", "text/plain; version=0.0.4; charset=utf-8", "Content-Type of the payload")
	flag.Parse()
	plain, err := os.ReadFile(*file)
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(plain)
	zw.Close()
	zipped := buf.Bytes()
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := plain
		h := w.Header()
		h.Set("Content-Type", *ctype)
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			body = zipped
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})))
}
