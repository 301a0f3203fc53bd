// Command controller runs cert-manager's own controllers, at the version tests/cluster/cert-manager.sh
// pins, against the test control plane: the CA and self-signed issuers, the Certificate life cycle and
// the Ingress shim, which are what mlgit's TLS path needs.
//
// Why a main of our own: cert-manager's `main` lives in a module of its own (cmd/controller, declared as
// github.com/cert-manager/cert-manager/controller-binary, with `replace ... => ../../`), which the Go
// module proxy cannot serve. Every controller, though, is in the root module the proxy does serve, and
// each registers itself with pkg/controller when its package is imported. This program imports the
// ones it runs and starts them the way cert-manager's controller does (one ContextFactory, each
// registered constructor, then the shared informers), without its configuration file, metrics, leader
// election and ACME/Vault/Venafi support, which the tests do not use.
//
// It serves GET /readyz on --ready-address: 200 once every controller is started and the informer
// caches have synced, so tests/cluster/cert-manager.sh can tell when Certificates will be acted upon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager"
	"github.com/cert-manager/cert-manager/pkg/controller"
	ingressshim "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	crapprover "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// The issuer types the issuers controllers can set up (they register with pkg/issuer).
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// controllers are the ones this program runs. Importing a controller's package registers its
// constructor with pkg/controller (controller.Known); naming it here is what turns it on, as
// cert-manager's --controllers does: its defaults minus ACME, Vault, Venafi and the metrics exporter.
var controllers = []string{
	issuers.ControllerName, clusterissuers.ControllerName, ingressshim.ControllerName,
	crapprover.ControllerName, crca.CRControllerName, crselfsigned.CRControllerName,
	trigger.ControllerName, issuing.ControllerName, keymanager.ControllerName, requestmanager.ControllerName,
	readiness.ControllerName, revisionmanager.ControllerName,
}

type options struct {
	kubeconfig               string
	clusterResourceNamespace string
	readyAddress             string
	workers                  int
}

func main() {
	var o options
	klog.InitFlags(flag.CommandLine) // -v: 2 logs what each controller does, 4 and up debugs it
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	flag.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager",
		"namespace of the Secrets ClusterIssuers refer to (a CA ClusterIssuer's key pair)")
	flag.StringVar(&o.readyAddress, "ready-address", "127.0.0.1:16480", "host:port serving GET /readyz")
	flag.IntVar(&o.workers, "workers", 5, "workers per controller (cert-manager's default)")
	flag.Parse()
	if o.kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "--kubeconfig is required")
		os.Exit(2)
	}

	logf.InitLogs()
	defer logf.FlushLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "controller")
	if err := run(ctx, o); err != nil {
		logf.Log.Error(err, "cert-manager controller stopped")
		logf.FlushLogs()
		os.Exit(1)
	}
}

func run(parent context.Context, o options) error {
	log := logf.FromContext(parent)
	// The readiness endpoint is bound first: a taken port fails at once, not after the caches sync.
	listener, err := (&net.ListenConfig{}).Listen(parent, "tcp", o.readyAddress)
	if err != nil {
		return fmt.Errorf("listening on %s for /readyz: %w", o.readyAddress, err)
	}
	var ready atomic.Bool
	server := &http.Server{Handler: readyz(&ready), ReadHeaderTimeout: 10 * time.Second}

	g, ctx := errgroup.WithContext(parent)
	g.Go(func() error {
		if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return server.Shutdown(shutdown) //nolint:contextcheck // ctx is already done here
	})

	factory, err := controller.NewContextFactory(ctx, contextOptions(o))
	if err != nil {
		return err
	}
	base, err := factory.Build()
	if err != nil {
		return err
	}

	known := controller.Known()
	// Constructors register their informers with the shared factories, so all of them run before the
	// factories start (as in cert-manager's own controller).
	for _, name := range controllers {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %s is not registered: its package no longer registers it", name)
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing controller %s: %w", name, err)
		}
		g.Go(func() error { return c.Run(o.workers, ctx) })
	}
	log.Info("starting controllers", "controllers", strings.Join(controllers, ","))
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	g.Go(func() error {
		var unsynced []string
		for kind, ok := range base.SharedInformerFactory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				unsynced = append(unsynced, kind.String())
			}
		}
		for kind, ok := range base.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				unsynced = append(unsynced, kind)
			}
		}
		if ctx.Err() != nil {
			return nil // stopping: the caches stopped syncing because of that
		}
		if len(unsynced) > 0 {
			return fmt.Errorf("informer caches did not sync: %s", strings.Join(unsynced, ", "))
		}
		ready.Store(true)
		log.Info("ready: every informer cache has synced")
		return nil
	})

	err = g.Wait()
	base.SharedInformerFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("controllers stopped")
	return nil
}

// contextOptions are cert-manager's defaults (internal/apis/config/controller/v1alpha1), spelled out
// because that package is internal to cert-manager's module.
func contextOptions(o options) controller.ContextOptions {
	return controller.ContextOptions{
		Kubeconfig:         o.kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions: controller.IssuerOptions{
			ClusterResourceNamespace:        o.clusterResourceNamespace,
			ClusterIssuerAmbientCredentials: true,
		},
		IngressShimOptions: controller.IngressShimOptions{
			DefaultIssuerKind:                 "Issuer",
			DefaultIssuerGroup:                cmapi.GroupName,
			DefaultAutoCertificateAnnotations: []string{"kubernetes.io/tls-acme"},
		},
		CertificateOptions: controller.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: 60},
	}
}

func readyz(ready *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "informer caches not synced yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
