// Command vcsim serves govmomi's vCenter simulator over TLS for vmimage's tests:
// SOAP at /sdk, the content library REST API under /rest/com/vmware/, and Supervisor
// namespaces under /api/vcenter/namespaces/. With -requests FILE it appends each request's
// method and path to FILE, so a benchmark can count what each phase asked of vCenter without a
// proxy of its own in the way.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/namespace/simulator" // /api/vcenter/namespaces: Supervisor namespaces
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks a free one)")
	certFile := flag.String("cert", "", "PEM certificate to serve")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	requests := flag.String("requests", "", "append one line per request served (method and path) to this file")
	flag.Parse()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("vcsim: -cert/-key: %v", err)
	}
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: %v", err)
	}
	model.Service.RegisterEndpoints = true
	model.Service.Listen = &url.URL{Host: *listen}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	server := model.Service.NewServer()
	if *requests != "" {
		file, err := os.OpenFile(*requests, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			log.Fatalf("vcsim: -requests: %v", err)
		}
		defer file.Close()
		// Before the URL is printed: no client knows the port yet, so none is served unlogged.
		server.Config.Handler = logged(server.Config.Handler, file)
	}
	fmt.Println(server.URL.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Close()
	model.Remove() // deletes the datastore folders under TMPDIR
}

// logged writes "METHOD /path" for each request before serving it: one write per line, which
// O_APPEND keeps whole however many requests are served at once.
func logged(next http.Handler, file *os.File) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := fmt.Fprintf(file, "%s %s\n", r.Method, r.URL.Path); err != nil {
			log.Printf("vcsim: -requests: %v", err)
		}
		next.ServeHTTP(w, r)
	})
}
