package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/kelpie/kelpie/metrics"
)

// serveMetrics serves GET /metrics on addr, if set, until stop is called.
// This listener has no API key: it is meant for a scraper on a private
// network (Prometheus scrapes without credentials by default); /metrics on
// the API's address stays behind the key.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: headerReadTimeout, ReadTimeout: requestReadTimeout, IdleTimeout: idleConnTimeout}
	log.Info("serving metrics", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	return func() { srv.Shutdown(context.Background()) }, nil
}
