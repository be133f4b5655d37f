package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// Agent files (Letta's .af): export an agent, import a file.

// exportRequest is the optional body of POST /v1/agents/{id}/export.
type exportRequest struct {
	Skills         []json.RawMessage `json:"skills"`
	ConversationID *string           `json:"conversation_id"`
	ScrubMessages  bool              `json:"scrub_messages"`
}

func (s *server) exportAgent(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	opt := agent.ExportOptions{ConversationID: q.str("conversation_id"), ScrubMessages: q.boolean("scrub_messages")}
	legacy := q.boolean("use_legacy_format")
	q.positiveInt("max_steps") // deprecated by Letta; validated, unused
	if err := q.err(); err != nil {
		return nil, err
	}
	if legacy {
		return nil, errorf(http.StatusBadRequest, "Legacy format is not supported")
	}
	return s.svc.Agents.Export(r.Context(), id, opt)
}

func (s *server) exportAgentWithSkills(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req exportRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	opt := agent.ExportOptions{ScrubMessages: req.ScrubMessages}
	if req.ConversationID != nil {
		opt.ConversationID = *req.ConversationID
	}
	f, err := s.svc.Agents.Export(r.Context(), id, opt)
	if err != nil {
		return nil, err
	}
	if req.Skills != nil {
		f.Skills = req.Skills
	}
	return f, nil
}

// importAgent is POST /v1/agents/import: a multipart form with the file
// and Letta's options (the deprecated names too).
func (s *server) importAgent(w http.ResponseWriter, r *http.Request) (any, error) {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(limit); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, validationError(missingFile())
	}
	defer r.MultipartForm.RemoveAll()
	part, _, err := r.FormFile("file")
	if err != nil {
		return nil, validationError(missingFile())
	}
	data, err := io.ReadAll(part)
	part.Close()
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Could not read the uploaded file: %v", err)
	}
	f, err := parseAgentFile(data)
	if err != nil {
		return nil, err
	}
	opt, err := importOptions(r)
	if err != nil {
		return nil, err
	}
	if p := r.Header.Get("X-Project-Id"); p != "" {
		opt.ProjectID = &p
	}
	ids, err := s.svc.Agents.Import(r.Context(), f, opt)
	if err != nil {
		return nil, err
	}
	return letta.ImportedAgents{AgentIDs: ids}, nil
}

func missingFile() pyErr {
	return pyErr{typ: "missing", loc: pyTuple{"body", "file"}, msg: "Field required", input: nil}
}

// parseAgentFile reads an uploaded agent file (JSON, possibly encoded
// twice, as Letta accepts).
func parseAgentFile(data []byte) (*letta.AgentFile, error) {
	corrupted := errorf(http.StatusBadRequest, "Corrupted agent file format.")
	var raw json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		return nil, corrupted
	}
	var inner string
	if json.Unmarshal(raw, &inner) == nil {
		if json.Unmarshal([]byte(inner), &raw) != nil {
			return nil, corrupted
		}
	}
	if err := checkJSON("The agent file", raw); err != nil {
		return nil, err
	}
	var shape struct {
		Agents json.RawMessage `json:"agents"`
	}
	if json.Unmarshal(raw, &shape) != nil || len(shape.Agents) == 0 || shape.Agents[0] != '[' {
		return nil, errorf(http.StatusBadRequest, "Legacy AgentSchema format is deprecated. Please use the new AgentFileSchema format with 'agents' field.")
	}
	var f letta.AgentFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return nil, errorf(http.StatusBadRequest, "Import failed: the agent file does not match Letta's AgentFileSchema: %v", err)
	}
	return &f, nil
}

// importOptions reads the import form's options.
func importOptions(r *http.Request) (agent.ImportOptions, error) {
	var bad error
	boolean := func(name string, def bool) bool {
		v := r.FormValue(name)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil && bad == nil {
			bad = validationError(pyErr{typ: "bool_parsing", loc: pyTuple{"body", name},
				msg: "Input should be a valid boolean, unable to interpret input", input: v})
		}
		return b
	}
	str := func(names ...string) *string {
		for _, n := range names {
			if v := r.FormValue(n); v != "" {
				return &v
			}
		}
		return nil
	}
	opt := agent.ImportOptions{
		OverrideExistingTools: boolean("override_existing_tools", true),
		StripMessages:         boolean("strip_messages", false),
		AppendCopySuffix:      boolean("append_copy_suffix", true),
		Name:                  str("name", "override_name"),
		Model:                 str("model", "override_model_handle"),
		Embedding:             str("embedding", "override_embedding_handle"),
		ProjectID:             str("project_id"),
	}
	if opt.Embedding == nil {
		if v := r.Header.Get("X-Override-Embedding-Model"); v != "" {
			opt.Embedding = &v
		}
	}
	if secrets := str("secrets", "env_vars_json"); secrets != nil {
		if json.Unmarshal([]byte(*secrets), &opt.Secrets) != nil || opt.Secrets == nil {
			return opt, errorf(http.StatusBadRequest, "secrets must be a valid JSON string")
		}
	}
	return opt, bad
}
