// Package telemetry exposes a worker to operators: Prometheus metrics on
// /metrics, liveness on /healthz and readiness on /readyz, and a count of
// AWS API calls by service and operation taken at the SDK.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves /metrics, /healthz and /readyz. Create with Listen; Run
// until ctx ends.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	mux   *http.ServeMux
	ready func() error
}

// Listen binds addr (e.g. 127.0.0.1:9464). ready reports why the process
// should not get traffic or work (nil when ready); /readyz answers 503 with
// that reason. /healthz answers 200 while the process serves at all.
func Listen(addr string, reg *prometheus.Registry, ready func() error) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	s := &Server{ln: ln, ready: ready}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	s.mux = mux
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// ServePprof adds Go's profiler under /debug/pprof/ (CPU and heap
// profiles, goroutine dumps). Call it before Run, and only on an address
// that only operators reach: a profile shows the process's internals.
func (s *Server) ServePprof() {
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down within 2 s.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewRegistry returns a registry with the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// CountAWSCalls adds an SDK middleware to cfg that counts every API call
// by service, operation and outcome (ok or error) in
// leasehold_aws_calls_total, registered on reg.
func CountAWSCalls(cfg *aws.Config, reg prometheus.Registerer) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leasehold_aws_calls_total",
		Help: "AWS API calls by service, operation and outcome, counted at the SDK (one per attempt).",
	}, []string{"service", "operation", "outcome"})
	reg.MustRegister(calls)
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("leaseholdCountCalls",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				outcome := "ok"
				if err != nil {
					outcome = "error"
				}
				calls.WithLabelValues(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), outcome).Inc()
				return out, md, err
			}), middleware.After)
	})
}
