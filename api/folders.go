package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// Folders and their files (/v1/folders, and /v1/sources, their older name,
// which Letta keeps), attached to agents, whose files agents open.

// folderRoutes registers folders under both their names, and the agents'
// folders and files.
func (s *server) folderRoutes() {
	for _, r := range []struct{ base, id string }{{"/v1/folders", "folder_id"}, {"/v1/sources", "source_id"}} {
		one := r.base + "/{" + r.id + "}"
		s.handle("GET", r.base+"/count", s.countFolders)
		s.handle("GET", r.base+"/metadata", s.foldersMetadata)
		s.handle("GET", r.base, s.listFolders)
		s.handle("POST", r.base, s.createFolder)
		s.handle("GET", one, s.getFolder(r.id))
		s.handle("PATCH", one, s.updateFolder(r.id))
		s.handle("DELETE", one, s.deleteFolder(r.id))
		s.handle("POST", one+"/upload", s.uploadFile(r.id))
		s.handle("GET", one+"/agents", s.orByName(r.id, s.folderAgents(r.id)))
		s.handle("GET", one+"/files", s.orByName(r.id, s.listFiles(r.id)))
		s.handle("GET", one+"/passages", s.orByName(r.id, s.folderPassages(r.id)))
		s.handle("GET", one+"/files/{file_id}", s.getFile(r.id))
		s.handle("DELETE", one+"/{file_id}", s.deleteFile(r.id))
		// GET .../name/{name} shares its pattern with the delete's (Go's
		// mux cannot tell /name/{name} from /{id}/files): see orByName.
		s.handle("GET", one+"/{file_id}", s.orByName(r.id, methodNotAllowed("DELETE")))
	}
	s.handle("PATCH", "/v1/agents/{agent_id}/folders/attach/{folder_id}", s.folderLink("folder_id", true, false))
	s.handle("PATCH", "/v1/agents/{agent_id}/folders/detach/{folder_id}", s.folderLink("folder_id", false, false))
	s.handle("PATCH", "/v1/agents/{agent_id}/sources/attach/{source_id}", s.folderLink("source_id", true, true))
	s.handle("PATCH", "/v1/agents/{agent_id}/sources/detach/{source_id}", s.folderLink("source_id", false, true))
	s.handle("GET", "/v1/agents/{agent_id}/folders", s.agentFolders)
	s.handle("GET", "/v1/agents/{agent_id}/sources", s.agentFolders)
	s.handle("GET", "/v1/agents/{agent_id}/files", s.agentFiles)
	s.handle("PATCH", "/v1/agents/{agent_id}/files/close-all", s.closeAllFiles)
	s.handle("PATCH", "/v1/agents/{agent_id}/files/{file_id}/open", s.openFile)
	s.handle("PATCH", "/v1/agents/{agent_id}/files/{file_id}/close", s.closeFile)
}

// orByName serves GET .../name/{name} (Letta's deprecated lookup of a
// folder's id by its name, matched before the folder's own routes, as
// Letta matches it) on the routes of the same shape, and h on the others.
func (s *server) orByName(param string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		if r.PathValue(param) != "name" {
			return h(w, r)
		}
		name := r.PathValue("file_id")
		if name == "" {
			name = path.Base(r.URL.Path) // the route's own word: files, agents, passages
		}
		return s.svc.Folders.IDByName(r.Context(), name)
	}
}

// methodNotAllowed answers what a path another method serves gets.
func methodNotAllowed(allow string) handlerFunc {
	return func(http.ResponseWriter, *http.Request) (any, error) {
		return nil, errorf(http.StatusMethodNotAllowed, "Method Not Allowed").withHeader("Allow", allow)
	}
}

func (s *server) countFolders(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Folders.Count(r.Context())
}

func (s *server) foldersMetadata(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	detailed := q.boolean("include_detailed_per_source_metadata")
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Folders.Metadata(r.Context(), detailed)
}

func (s *server) listFolders(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	page := q.page(letta.Asc)
	name := q.str("name")
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Folders.List(r.Context(), name, page)
}

func (s *server) createFolder(w http.ResponseWriter, r *http.Request) (any, error) {
	var req letta.FolderCreate
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Name == nil {
		return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "name"}, msg: "Field required", noInput: true})
	}
	return s.svc.Folders.Create(r.Context(), req)
}

func (s *server) getFolder(param string) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		id, err := pathID(r, param)
		if err != nil {
			return nil, err
		}
		return s.svc.Folders.Get(r.Context(), id)
	}
}

func (s *server) updateFolder(param string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		id, err := pathID(r, param)
		if err != nil {
			return nil, err
		}
		var req letta.FolderUpdate
		if err := s.decodeBody(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.Folders.Update(r.Context(), id, req)
	}
}

func (s *server) deleteFolder(param string) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		id, err := pathID(r, param)
		if err != nil {
			return nil, err
		}
		return nil, s.svc.Folders.Delete(r.Context(), id)
	}
}

// uploadFile is POST .../upload: a multipart form with the file, and
// duplicate_handling and name in the query. A duplicate skipped answers
// the file there is, with X-Upload-Result: skipped.
func (s *server) uploadFile(param string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		id, err := pathID(r, param)
		if err != nil {
			return nil, err
		}
		q := newQuery(r)
		dup := agent.DuplicateSuffix
		if q.has("duplicate_handling") {
			dup = agent.Duplicate(q.str("duplicate_handling"))
			if dup != agent.DuplicateSuffix && dup != agent.DuplicateError && dup != agent.DuplicateSkip && dup != agent.DuplicateReplace {
				return nil, validationError(pyErr{typ: "enum", loc: pyTuple{"query", "duplicate_handling"},
					msg: "Input should be 'skip', 'error', 'suffix' or 'replace'", input: string(dup),
					ctx: pyDict{{"expected", "'skip', 'error', 'suffix' or 'replace'"}}})
			}
		}
		u, err := readUpload(w, r)
		if err != nil {
			return nil, err
		}
		u.Duplicate, u.Name = dup, q.str("name")
		res, err := s.svc.Folders.Upload(r.Context(), id, u)
		var unsupported *agent.UnsupportedFileError
		if errors.As(err, &unsupported) {
			return nil, errorf(http.StatusUnsupportedMediaType, "%s", unsupported.Error())
		}
		if err != nil {
			return nil, err
		}
		if res.Skipped {
			w.Header().Set("X-Upload-Result", "skipped")
		}
		return res.File, nil
	}
}

// uploadOverheadBytes is what a multipart form adds to the file it carries.
const uploadOverheadBytes = 1 << 20

// readUpload reads the file part of an upload's form, refusing (413) one
// over agent.MaxUploadBytes before reading it whole.
func readUpload(w http.ResponseWriter, r *http.Request) (agent.Upload, error) {
	limit := int64(agent.MaxUploadBytes + uploadOverheadBytes)
	if r.ContentLength > limit {
		return agent.Upload{}, tooLarge(agent.MaxUploadBytes)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(limit); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return agent.Upload{}, tooLarge(agent.MaxUploadBytes)
		}
		return agent.Upload{}, validationError(missingFile())
	}
	defer r.MultipartForm.RemoveAll()
	part, hdr, err := r.FormFile("file")
	if err != nil {
		return agent.Upload{}, validationError(missingFile())
	}
	defer part.Close()
	data, err := io.ReadAll(io.LimitReader(part, agent.MaxUploadBytes+1))
	if err != nil {
		return agent.Upload{}, errorf(http.StatusBadRequest, "Could not read the uploaded file: %v", err)
	}
	if len(data) > agent.MaxUploadBytes {
		return agent.Upload{}, tooLarge(agent.MaxUploadBytes)
	}
	return agent.Upload{FileName: hdr.Filename, ContentType: hdr.Header.Get("Content-Type"), Data: data}, nil
}

// folderList serves a listing of a folder's: its id, a page (newest first
// by default) and include_content, all read (and refused together) before
// list runs.
func folderList[T any](param string, list func(ctx context.Context, id string, page letta.Page, content bool) (T, error)) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		id, err := pathID(r, param)
		if err != nil {
			return nil, err
		}
		q := newQuery(r)
		page := q.page(letta.Desc)
		content := q.boolean("include_content")
		if err := q.err(); err != nil {
			return nil, err
		}
		return list(r.Context(), id, page, content)
	}
}

func (s *server) folderAgents(param string) handlerFunc {
	return folderList(param, func(ctx context.Context, id string, page letta.Page, _ bool) ([]string, error) {
		return s.svc.Folders.AgentIDs(ctx, id, page)
	})
}

func (s *server) folderPassages(param string) handlerFunc {
	return folderList(param, func(ctx context.Context, id string, page letta.Page, _ bool) ([]letta.Passage, error) {
		return s.svc.Folders.Passages(ctx, id, page)
	})
}

func (s *server) listFiles(param string) handlerFunc {
	return folderList(param, func(ctx context.Context, id string, page letta.Page, content bool) ([]*letta.FileMetadata, error) {
		return s.svc.Folders.ListFiles(ctx, id, page, content)
	})
}

func (s *server) getFile(param string) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		ids, err := pathIDs(r, param, "file_id")
		if err != nil {
			return nil, err
		}
		q := newQuery(r)
		content := q.boolean("include_content")
		if err := q.err(); err != nil {
			return nil, err
		}
		return s.svc.Folders.GetFile(r.Context(), ids[param], ids["file_id"], content)
	}
}

func (s *server) deleteFile(param string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		ids, err := pathIDs(r, param, "file_id")
		if err != nil {
			return nil, err
		}
		if err := s.svc.Folders.DeleteFile(r.Context(), ids[param], ids["file_id"]); err != nil {
			return nil, err
		}
		return noContent(w)
	}
}

// folderLink attaches (or detaches) a folder to an agent. The folders
// routes answer null, as Letta does for its 1.x SDKs; the older sources
// routes answer the agent.
func (s *server) folderLink(param string, attach, answerAgent bool) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		ids, err := pathIDs(r, "agent_id", param)
		if err != nil {
			return nil, err
		}
		link := s.svc.Agents.DetachFolder
		if attach {
			link = s.svc.Agents.AttachFolder
		}
		if err := link(r.Context(), ids["agent_id"], ids[param]); err != nil {
			return nil, err
		}
		if !answerAgent {
			return nil, nil
		}
		return s.svc.Agents.Get(r.Context(), ids["agent_id"], true)
	}
}

func (s *server) agentFolders(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Agents.Folders(r.Context(), id, page)
}

func (s *server) agentFiles(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	f := agent.FileFilter{Cursor: q.str("cursor")}
	if q.has("is_open") {
		f.IsOpen = new(q.boolean("is_open"))
	}
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Agents.Files(r.Context(), id, f, page)
}

func (s *server) closeAllFiles(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.CloseAllFiles(r.Context(), id)
}

func (s *server) openFile(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "file_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.OpenFile(r.Context(), ids["agent_id"], ids["file_id"])
}

// fileClosed is the answer of closing a file.
type fileClosed struct {
	Message string `json:"message"`
}

func (s *server) closeFile(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "file_id")
	if err != nil {
		return nil, err
	}
	if err := s.svc.Agents.CloseFile(r.Context(), ids["agent_id"], ids["file_id"]); err != nil {
		return nil, err
	}
	return fileClosed{Message: "File id=" + ids["file_id"] + " successfully closed"}, nil
}
