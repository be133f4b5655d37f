package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// decodeBody reads a required JSON object body into v. Unknown fields are
// ignored, as Letta does; everything else that is not one JSON object of the
// right shape is a 422 (or 413 when over the size limit).
func (s *server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(limit)
		}
		return errorf(http.StatusBadRequest, "Could not read the request body: %v", err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return validationError(pyErr{typ: "missing", loc: pyTuple{"body"}, msg: "Field required", input: nil})
	}
	if wantList := reflect.TypeOf(v).Elem().Kind() == reflect.Slice; wantList && trimmed[0] != '[' {
		return validationError(pyErr{typ: "list_type", loc: pyTuple{"body"}, msg: "Input should be a valid list", input: string(clipBytes(trimmed))})
	} else if !wantList && trimmed[0] != '{' {
		return validationError(pyErr{
			typ: "model_attributes_type", loc: pyTuple{"body"},
			msg:   "Input should be a valid dictionary or object to extract fields from",
			input: string(clipBytes(trimmed)),
		})
	}
	if !utf8.Valid(data) {
		return errorf(http.StatusBadRequest, "Request body is not valid UTF-8")
	}
	if err := checkJSON("Request body", data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers in free-form fields (metadata) stay exact
	if err := dec.Decode(v); err != nil {
		return decodeError(err, dec.InputOffset(), int64(len(data)))
	}
	if _, err := dec.Token(); err != io.EOF {
		return validationError(pyErr{
			typ: "json_invalid", loc: pyTuple{"body", int(dec.InputOffset())}, msg: "JSON decode error",
			input: pyDict{}, ctx: pyDict{{"error", "Extra data after the JSON value"}},
		})
	}
	return nil
}

// MaxJSONDepth bounds how deeply a request body may nest objects and
// arrays.
const MaxJSONDepth = 64

// jsonScan is what one pass over a JSON text finds outside its strings.
type jsonScan struct {
	depth int // how deeply it nests objects and arrays, stopping past MaxJSONDepth
	// huge is the first number literal no float64 holds (1e1000), at
	// offset hugeAt: free-form fields keep numbers as written, and
	// clients could not read such a number back.
	huge   string
	hugeAt int
}

// scanJSON scans data, which the caller decodes afterwards (so it may
// assume data is well-formed and leaves errors to the decoder).
func scanJSON(data []byte) jsonScan {
	var sc jsonScan
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > sc.depth {
				if sc.depth = depth; sc.depth > MaxJSONDepth {
					return sc
				}
			}
		case c == '}' || c == ']':
			depth--
		case c == '-' || '0' <= c && c <= '9':
			j := i + 1
			for j < len(data) && strings.IndexByte("0123456789.eE+-", data[j]) >= 0 {
				j++
			}
			if _, err := strconv.ParseFloat(string(data[i:j]), 64); errors.Is(err, strconv.ErrRange) && sc.huge == "" {
				sc.huge, sc.hugeAt = string(data[i:j]), i
			}
			i = j - 1
		}
	}
	return sc
}

// checkJSON refuses a body that nests past MaxJSONDepth or holds a number
// no float64 holds; what names the body in the message.
func checkJSON(what string, data []byte) error {
	sc := scanJSON(data)
	if sc.depth > MaxJSONDepth {
		return errorf(http.StatusBadRequest, "%s nests JSON %d levels deep, over the limit of %d", what, sc.depth, MaxJSONDepth)
	}
	if sc.huge != "" {
		return validationError(pyErr{typ: "finite_number", loc: pyTuple{"body", sc.hugeAt},
			msg: "Input should be a finite number", input: letta.Clip(sc.huge)})
	}
	return nil
}

func tooLarge(limit int64) error {
	return errorf(http.StatusRequestEntityTooLarge, "Request body too large: limit is %d bytes", limit)
}

func clipBytes(b []byte) []byte {
	if len(b) > maxReprInput {
		return b[:maxReprInput]
	}
	return b
}

// decodeError turns a JSON decoding error into pydantic's shape of it.
// offset is where decoding stopped and size the body's length.
func decodeError(err error, offset, size int64) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		loc := pyTuple{"body"}
		if te.Field != "" {
			for _, f := range strings.Split(te.Field, ".") {
				loc = append(loc, f)
			}
		}
		typ, msg := pydanticType(te.Type)
		return validationError(pyErr{typ: typ, loc: loc, msg: msg + ", got " + te.Value, noInput: true})
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		offset = se.Offset
	case errors.Is(err, io.ErrUnexpectedEOF):
		offset = size
	}
	return validationError(pyErr{
		typ: "json_invalid", loc: pyTuple{"body", int(offset)}, msg: "JSON decode error",
		input: pyDict{}, ctx: pyDict{{"error", err.Error()}},
	})
}

// pydanticType names the error pydantic gives for a value of the wrong type.
func pydanticType(t reflect.Type) (typ, msg string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string_type", "Input should be a valid string"
	case reflect.Bool:
		return "bool_type", "Input should be a valid boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int_type", "Input should be a valid integer"
	case reflect.Float32, reflect.Float64:
		return "float_type", "Input should be a valid number"
	case reflect.Slice, reflect.Array:
		return "list_type", "Input should be a valid list"
	case reflect.Map, reflect.Struct:
		return "dict_type", "Input should be a valid dictionary"
	}
	return "value_error", "Input has the wrong type"
}

// pathPrefixes are the id prefixes of the id path parameters.
var pathPrefixes = map[string]string{
	"agent_id": "agent", "block_id": "block", "run_id": "run", "conversation_id": "conv", "memory_id": "passage",
	"message_id":  "message",
	"identity_id": "identity",
	"tool_id":     "tool",
	"step_id":     "step",
	"group_id":    "group",
	"archive_id":  "archive",
	"passage_id":  "passage",
	"folder_id":   "source",
	"source_id":   "source",
	"file_id":     "file",
}

// pathIDs returns the named id path parameters, or Letta's 422 listing
// every malformed one.
func pathIDs(r *http.Request, params ...string) (map[string]string, error) {
	out := map[string]string{}
	var errs []pyErr
	for _, p := range params {
		v := r.PathValue(p)
		out[p] = v
		if prefix := pathPrefixes[p]; !letta.ValidID(prefix, v) {
			errs = append(errs, badPathID(p, prefix, v))
		}
	}
	if len(errs) > 0 {
		return nil, validationError(errs...)
	}
	return out, nil
}

// pathID returns one id path parameter, or Letta's 422.
func pathID(r *http.Request, param string) (string, error) {
	ids, err := pathIDs(r, param)
	return ids[param], err
}

// pathAgentID returns the agent_id path parameter, or Letta's 422.
func pathAgentID(r *http.Request) (string, error) { return pathID(r, "agent_id") }

// query reads query parameters, collecting every error so that one 422
// lists them all, as pydantic does.
type query struct {
	v    map[string][]string
	errs []pyErr
}

func newQuery(r *http.Request) *query { return &query{v: r.URL.Query()} }

// str returns the last value of a parameter (Starlette's choice), or "".
func (q *query) str(name string) string {
	vs := q.v[name]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func (q *query) list(name string) []string { return q.v[name] }

func (q *query) has(name string) bool { return len(q.v[name]) > 0 }

// limit parses a page size: an integer from 0 to agent.MaxListLimit; 0 or
// absent means the route's default.
func (q *query) limit() int {
	if !q.has("limit") {
		return 0
	}
	s := q.str("limit")
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		q.errs = append(q.errs, pyErr{typ: "int_parsing", loc: pyTuple{"query", "limit"},
			msg: "Input should be a valid integer, unable to parse string as an integer", input: s})
	case n < 0:
		q.errs = append(q.errs, pyErr{typ: "greater_than_equal", loc: pyTuple{"query", "limit"},
			msg: "Input should be greater than or equal to 0", input: s, ctx: pyDict{{"ge", 0}}})
	case n > agent.MaxListLimit:
		q.errs = append(q.errs, pyErr{typ: "less_than_equal", loc: pyTuple{"query", "limit"},
			msg:   "Input should be less than or equal to " + strconv.Itoa(agent.MaxListLimit),
			input: s, ctx: pyDict{{"le", agent.MaxListLimit}}})
	default:
		return n
	}
	return 0
}

func (q *query) order(def letta.Order) letta.Order {
	if !q.has("order") {
		return def
	}
	s := q.str("order")
	switch o := letta.Order(s); o {
	case letta.Asc, letta.Desc:
		return o
	}
	q.errs = append(q.errs, pyErr{typ: "literal_error", loc: pyTuple{"query", "order"},
		msg: "Input should be 'asc' or 'desc'", input: s, ctx: pyDict{{"expected", "'asc' or 'desc'"}}})
	return def
}

// page reads before, after, limit and order.
func (q *query) page(defOrder letta.Order) letta.Page {
	return letta.Page{Before: q.str("before"), After: q.str("after"), Limit: q.limit(), Order: q.order(defOrder)}
}

// boolean parses a flag the way pydantic does.
func (q *query) boolean(name string) bool {
	if !q.has(name) {
		return false
	}
	s := q.str(name)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "on", "t", "true", "y", "yes":
		return true
	case "0", "off", "f", "false", "n", "no":
		return false
	}
	q.errs = append(q.errs, pyErr{typ: "bool_parsing", loc: pyTuple{"query", name},
		msg: "Input should be a valid boolean, unable to interpret input", input: s})
	return false
}

// agentRelationships are the values Letta accepts for include.
var agentRelationships = []string{
	"agent.blocks", "agent.identities", "agent.managed_group", "agent.pending_approval",
	"agent.secrets", "agent.sources", "agent.tags", "agent.tools",
}

// include validates the include list and reports whether it asks for
// blocks, and for tools.
func (q *query) include() (blocks, tools bool) {
	for i, v := range q.list("include") {
		if !slices.Contains(agentRelationships, v) {
			expected := "'" + strings.Join(agentRelationships[:len(agentRelationships)-1], "', '") +
				"' or '" + agentRelationships[len(agentRelationships)-1] + "'"
			q.errs = append(q.errs, pyErr{typ: "literal_error", loc: pyTuple{"query", "include", i},
				msg: "Input should be " + expected, input: v, ctx: pyDict{{"expected", expected}}})
		}
		blocks = blocks || v == "agent.blocks"
		tools = tools || v == "agent.tools"
	}
	return blocks, tools
}

// err is the 422 for everything wrong so far, or nil.
func (q *query) err() error {
	if len(q.errs) == 0 {
		return nil
	}
	return validationError(q.errs...)
}
