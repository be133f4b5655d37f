package api

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"

	"github.com/kelpie/kelpie/agent"
)

// MemFS: an agent's memory repository over git's smart HTTP protocol
// (agent.Repos), and the repositories and secrets routes letta-code reads
// with it.

// repositoriesBody is the answer of GET /v1/agents/{id}/repositories.
type repositoriesBody struct {
	Repositories []agent.Repository `json:"repositories"`
}

func (s *server) listAgentRepositories(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	repos, err := s.svc.Repos.List(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return repositoriesBody{repos}, nil
}

// listAgentSecrets lists the agent's secrets as AgentState.secrets does
// (names, values left out). letta-code reads it at start and, with MemFS
// on, dies of an unhandled 404 while it clones the repository.
func (s *server) listAgentSecrets(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	st, err := s.svc.Agents.Get(r.Context(), id, false)
	if err != nil {
		return nil, err
	}
	return st.Secrets, nil
}

// gitHeaders sets the headers of a git answer of content type typ.
func gitHeaders(w http.ResponseWriter, typ string) {
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
}

func (s *server) gitInfoRefs(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	service := r.URL.Query().Get("service")
	return s.gitAnswer(w, "application/x-"+service+"-advertisement", func(out io.Writer) error {
		return s.svc.Repos.InfoRefs(r.Context(), id, service, out)
	})
}

func (s *server) gitUploadPack(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.gitService(w, r, agent.GitUploadPack, s.opts.MaxBodyBytes, s.svc.Repos.UploadPack)
}

func (s *server) gitReceivePack(w http.ResponseWriter, r *http.Request) (any, error) {
	// A push is bounded by agent.MaxPushBytes, which ReadPush enforces.
	return s.gitService(w, r, agent.GitReceivePack, agent.MaxPushBytes+1, s.svc.Repos.ReceivePack)
}

// gitService answers a POST of service with serve, reading the request
// body (gzip-compressed, if the client says so) up to limit bytes.
func (s *server) gitService(w http.ResponseWriter, r *http.Request, service string, limit int64,
	serve func(ctx context.Context, agentID string, body io.Reader, w io.Writer) error) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "gzip request body: %v", err)
		}
		defer gz.Close()
		body = io.LimitReader(gz, limit)
	}
	return s.gitAnswer(w, "application/x-"+service+"-result", func(out io.Writer) error {
		return serve(r.Context(), id, body, out)
	})
}

// gitAnswer writes what fn writes with git's headers; the service writes
// nothing before it has all of its answer, so an error is still an HTTP
// error.
func (s *server) gitAnswer(w http.ResponseWriter, typ string, fn func(io.Writer) error) (any, error) {
	out := &lazyWriter{w: w, typ: typ}
	if err := fn(out); err != nil {
		return nil, err
	}
	if !out.started {
		gitHeaders(w, typ)
		w.WriteHeader(http.StatusOK)
	}
	return written{}, nil
}

// lazyWriter sets git's headers at the first write.
type lazyWriter struct {
	w       http.ResponseWriter
	typ     string
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		gitHeaders(l.w, l.typ)
	}
	return l.w.Write(p)
}
