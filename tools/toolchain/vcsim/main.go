// Command vcsim serves govmomi's vCenter simulator over TLS for vmimage's tests:
// SOAP at /sdk, the content library REST API under /rest/com/vmware/, and Supervisor
// namespaces under /api/vcenter/namespaces/.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
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
	fmt.Println(server.URL.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Close()
	model.Remove() // deletes the datastore folders under TMPDIR
}
