package tool

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/kelpie/kelpie/internal/jsonapi"
)

// web_search searches with Exa's search API, as Letta's does: the key is
// the agent's EXA_API_KEY tool variable, else the server's (kelpie serve
// --exa-api-key). Its answer is Letta's: the query and, per result, the
// title, URL, publication date, author, and the page's text (when asked),
// highlights and summary, as indented JSON; a failed search is a result
// that says so, not an error, as in Letta.

// Limits of web_search, each with its unit.
const (
	DefaultSearchTimeout = 60 * time.Second // one search with its contents
	MaxSearchAnswerBytes = 8 << 20          // of Exa's answer; more is an error
	MaxSearchResults     = 100              // results asked for; Letta clamps num_results to 1..100
	DefaultSearchResults = 10
	// DefaultExaURL is Exa's API.
	DefaultExaURL = "https://api.exa.ai"
)

// SearchConfig configures web_search. Zero fields take the defaults.
type SearchConfig struct {
	// APIKey is the server's Exa key; "" leaves searches to agents that
	// have their own EXA_API_KEY.
	APIKey string
	// BaseURL is Exa's API (DefaultExaURL), or a compatible one.
	BaseURL string
	Timeout time.Duration
}

// Searcher runs web_search's searches.
type Searcher struct {
	cfg    SearchConfig
	client *http.Client
}

// NewSearcher returns a Searcher.
func NewSearcher(cfg SearchConfig) *Searcher {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultExaURL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSearchTimeout
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Searcher{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}}
}

// searchArgs are web_search's arguments.
type searchArgs struct {
	Query              string   `json:"query"`
	NumResults         *int     `json:"num_results"`
	Category           *string  `json:"category"`
	IncludeText        *bool    `json:"include_text"`
	IncludeDomains     []string `json:"include_domains"`
	ExcludeDomains     []string `json:"exclude_domains"`
	StartPublishedDate *string  `json:"start_published_date"`
	EndPublishedDate   *string  `json:"end_published_date"`
	UserLocation       *string  `json:"user_location"`
}

// exaRequest is the body of Exa's POST /search with contents, as Exa's
// Python client sends Letta's parameters.
type exaRequest struct {
	Query              string      `json:"query"`
	NumResults         int         `json:"numResults"`
	Type               string      `json:"type"`
	Category           string      `json:"category,omitempty"`
	IncludeDomains     []string    `json:"includeDomains,omitempty"`
	ExcludeDomains     []string    `json:"excludeDomains,omitempty"`
	StartPublishedDate string      `json:"startPublishedDate,omitempty"`
	EndPublishedDate   string      `json:"endPublishedDate,omitempty"`
	UserLocation       string      `json:"userLocation,omitempty"`
	Contents           exaContents `json:"contents"`
}

type exaContents struct {
	Text       bool `json:"text"`
	Highlights struct {
		NumSentences     int    `json:"numSentences"`
		HighlightsPerURL int    `json:"highlightsPerUrl"`
		Query            string `json:"query"`
	} `json:"highlights"`
	Summary struct {
		Query string `json:"query"`
	} `json:"summary"`
}

// exaResult is one result of Exa's answer, as far as web_search reads it.
type exaResult struct {
	Title         *string  `json:"title"`
	URL           string   `json:"url"`
	PublishedDate *string  `json:"publishedDate"`
	Author        *string  `json:"author"`
	Text          string   `json:"text"`
	Highlights    []string `json:"highlights"`
	Summary       string   `json:"summary"`
}

// searchResult is one result as web_search answers it (Letta's fields, in
// its order).
type searchResult struct {
	Title         *string  `json:"title"`
	URL           string   `json:"url"`
	PublishedDate *string  `json:"published_date"`
	Author        *string  `json:"author"`
	Text          string   `json:"text,omitempty"`
	Highlights    []string `json:"highlights,omitempty"`
	Summary       string   `json:"summary,omitempty"`
}

// Search runs one search with key and returns web_search's answer; err is
// why the search failed.
func (s *Searcher) Search(ctx context.Context, key string, a searchArgs) (string, error) {
	req := exaRequest{
		Query: a.Query, NumResults: min(max(or(a.NumResults, DefaultSearchResults), 1), MaxSearchResults), Type: "auto",
		Category: or(a.Category, ""), IncludeDomains: a.IncludeDomains, ExcludeDomains: a.ExcludeDomains,
		StartPublishedDate: or(a.StartPublishedDate, ""), EndPublishedDate: or(a.EndPublishedDate, ""), UserLocation: or(a.UserLocation, ""),
	}
	includeText := or(a.IncludeText, false)
	req.Contents.Text = includeText
	req.Contents.Highlights.NumSentences, req.Contents.Highlights.HighlightsPerURL, req.Contents.Highlights.Query = 2, 3, a.Query
	req.Contents.Summary.Query = "Summarize the key information from this content related to: " + a.Query
	var got struct {
		Results []exaResult `json:"results"`
	}
	if err := jsonapi.Post(ctx, s.client, "exa", s.cfg.BaseURL+"/search", http.Header{"X-Api-Key": {key}}, req, MaxSearchAnswerBytes, &got); err != nil {
		return "", err
	}
	out := struct {
		Query   string         `json:"query"`
		Results []searchResult `json:"results"`
	}{Query: a.Query, Results: []searchResult{}}
	for _, r := range got.Results {
		sr := searchResult{Title: r.Title, URL: r.URL, PublishedDate: r.PublishedDate, Author: r.Author, Highlights: r.Highlights, Summary: r.Summary}
		if includeText {
			sr.Text = r.Text
		}
		out.Results = append(out.Results, sr)
	}
	return pyDumps(out, true), nil
}

// pyDumps encodes v as Python's json.dumps(v, ensure_ascii=False) does
// (", " and ": " between items), or with indent=2 when indent is set. v is
// made of strings, numbers and slices of them, which always encode.
func pyDumps(v any, indent bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		panic("tool: a search answer does not encode: " + err.Error())
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if indent {
		return string(out)
	}
	var spaced strings.Builder
	inString, escaped := false, false
	for _, c := range out {
		spaced.WriteByte(c)
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ',' || c == ':'):
			spaced.WriteByte(' ')
		}
	}
	return spaced.String()
}

var webSearch = defineOutside("web_search", "letta_builtin",
	"Search the web using Exa's AI-powered search engine and retrieve relevant content: for each result its title, URL, publication date, author, highlights and summary (and its full text with include_text).",
	`{"type":"object","properties":{"query":{"type":"string","description":"The search query to find relevant web content."},"num_results":{"type":"integer","description":"Number of results to return (1-100). Defaults to 10."},"category":{"type":"string","enum":["company","research paper","news","pdf","github","tweet","personal site","linkedin profile","financial report"],"description":"Focus search on specific content types."},"include_text":{"type":"boolean","description":"Whether to retrieve full page content."},"include_domains":{"type":"array","items":{"type":"string"},"description":"Domains to include in search results."},"exclude_domains":{"type":"array","items":{"type":"string"},"description":"Domains to exclude from search results."},"start_published_date":{"type":"string","description":"Only return content published after this date (ISO format)."},"end_published_date":{"type":"string","description":"Only return content published before this date (ISO format)."},"user_location":{"type":"string","description":"Two-letter country code for localized results."}},"required":["query"]}`,
	func(ctx context.Context, x *Outside, c Call, a searchArgs) Outcome {
		if strings.TrimSpace(a.Query) == "" {
			return Outcome{Result: pyDumps(struct {
				Error string `json:"error"`
				Query string `json:"query"`
			}{"Query cannot be empty", a.Query}, false), OK: true}
		}
		key := c.Env["EXA_API_KEY"]
		if key == "" && x.Search != nil {
			key = x.Search.cfg.APIKey
		}
		if key == "" || x.Search == nil {
			return Failed("EXA_API_KEY is not set in environment or on agent_state tool execution environment variables.")
		}
		text, err := x.Search.Search(ctx, key, a)
		if err != nil {
			text = pyDumps(struct {
				Query string `json:"query"`
				Error string `json:"error"`
			}{a.Query, "Search failed: " + err.Error()}, false)
		}
		return Outcome{Result: text, OK: true}
	})
