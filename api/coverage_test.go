package api

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The coverage table: every resource method of @letta-ai/letta-client
// 1.12.1 (read from its sources), with its HTTP method, path, and what
// Kelpie does with it. TestLettaClientCoverage walks it against a running
// server so that the table cannot drift from the routes.

// coverageTable is the table's data: tab-separated SDK method, HTTP method,
// path (the SDK's, with its parameter names) and status.
const coverageTable = "testdata/letta-client-1.12.1.tsv"

// coverageDoc is the table as documentation, regenerated with -update.
const coverageDoc = "../docs/letta-coverage.md"

var updateCoverage = flag.Bool("update", false, "rewrite "+coverageDoc+" from "+coverageTable)

// The statuses of a method.
const (
	covWorks      = "works"       // served
	covSelfHosted = "self-hosted" // a Letta Cloud feature: 501 not to be retried, or an empty listing
	covMissing    = "missing"     // not served yet: 404 Not Found or 405
)

type coverageRow struct{ sdk, method, path, status string }

func readCoverage(t *testing.T) []coverageRow {
	t.Helper()
	f, err := os.Open(coverageTable)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []coverageRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 4 || (p[3] != covWorks && p[3] != covSelfHosted && p[3] != covMissing) {
			t.Fatalf("%s: bad row %q", coverageTable, line)
		}
		rows = append(rows, coverageRow{p[0], p[1], p[2], p[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// sdkParamRE matches a path parameter as the SDK names it.
var sdkParamRE = regexp.MustCompile(`\{(\w+)\}`)

// paramValues are well-formed values of the SDK's path parameters, by the
// id prefix their name implies; they name nothing that exists, so a route
// that is served answers its own 404 ("Agent not found", ...) and one that
// is not answers the router's 404 Not Found.
func paramValue(name string) string {
	const uuid = "123e4567-e89b-42d3-8456-426614174000"
	n := strings.ToLower(strings.ReplaceAll(name, "_", ""))
	for _, p := range []struct{ param, prefix string }{
		{"agentid", "agent"}, {"blockid", "block"}, {"conversationid", "conv"}, {"runid", "run"},
		{"toolid", "tool"}, {"folderid", "source"}, {"fileid", "file"}, {"archiveid", "archive"},
		{"identityid", "identity"}, {"mcpserverid", "mcp_server"}, {"stepid", "step"},
		{"messageid", "message"}, {"memoryid", "passage"}, {"passageid", "passage"},
	} {
		if n == p.param {
			return p.prefix + "-" + uuid
		}
	}
	if n == "blocklabel" {
		return "human"
	}
	return "x-" + uuid
}

// probeOutcome sends a request for a row and says what the server did;
// agentID names an agent that exists, for the Letta Cloud routes of an
// agent (whose empty listings need one); the others get ids of nothing.
func probeOutcome(c *client, row coverageRow, agentID string) (string, response) {
	path := sdkParamRE.ReplaceAllStringFunc(row.path, func(m string) string {
		if v := paramValue(m[1 : len(m)-1]); row.status != covSelfHosted || !strings.HasPrefix(v, "agent-") {
			return v
		}
		return agentID
	})
	body := ""
	if row.method == "POST" || row.method == "PATCH" || row.method == "PUT" {
		body = "{}"
	}
	r := c.do(row.method, path, body)
	var d struct {
		Detail any `json:"detail"`
	}
	_ = json.Unmarshal(r.body, &d)
	switch {
	case r.status == http.StatusMethodNotAllowed, r.status == http.StatusNotFound && d.Detail == "Not Found":
		return covMissing, r
	case r.status == http.StatusNotImplemented && r.header.Get("X-Should-Retry") == "false":
		return covSelfHosted, r
	}
	return covWorks, r
}

// TestLettaClientCoverage: every method of the table does what its status
// says: a "works" route is served (not 404 Not Found, 405 or 501), a
// "self-hosted" one answers 501 not to be retried or an empty listing
// (200), a "missing" one still answers 404 Not Found or 405; and the
// document shows the table.
func TestLettaClientCoverage(t *testing.T) {
	rows := readCoverage(t)
	if len(rows) != 129 {
		t.Errorf("%d rows; the SDK has 128 resource methods and health", len(rows))
	}
	c, _ := newTestServer(t, Options{})
	c.header.Set("X-Stainless-Package-Version", "1.12.1")
	a := c.createAgent(`{"name":"covered"}`)
	counts := map[string]int{}
	for _, row := range rows {
		counts[row.status]++
		got, r := probeOutcome(c, row, a.ID)
		ok := got == row.status
		if row.status == covSelfHosted && got == covWorks {
			ok = r.status == http.StatusOK // a Letta Cloud listing, empty here
		}
		if !ok {
			t.Errorf("%s %s (%s) is %q in the table but answered %d %s", row.method, row.path, row.sdk, row.status, r.status, clip(r.body))
		}
	}
	t.Logf("coverage of @letta-ai/letta-client 1.12.1: %v", counts)
	doc := renderCoverage(rows, counts)
	if *updateCoverage {
		if err := os.WriteFile(coverageDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if old, err := os.ReadFile(coverageDoc); err != nil || string(old) != doc {
		t.Errorf("%s is not the table of %s (run go test ./api -run TestLettaClientCoverage -update): %v", coverageDoc, coverageTable, err)
	}
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// renderCoverage is the coverage document.
func renderCoverage(rows []coverageRow, counts map[string]int) string {
	var b strings.Builder
	b.WriteString("# Coverage of `@letta-ai/letta-client` 1.12.1\n\n")
	b.WriteString("Every resource method of Letta's TypeScript SDK 1.12.1 (read from its sources), with the request it sends and\n")
	b.WriteString("what Kelpie does with it: **works** (served), **self-hosted** (a Letta Cloud feature: Kelpie answers `501` with\n")
	b.WriteString("`X-Should-Retry: false`, or an empty listing in the shape the SDK reads) or **missing** (not served yet: `404 Not Found`).\n")
	fmt.Fprintf(&b, "The data is `api/%s`; `go test ./api -run TestLettaClientCoverage` checks every row against a running server,\n", coverageTable)
	b.WriteString("so a route that stops working, or starts, fails the test until the table says so (`-update` rewrites this page).\n\n")
	fmt.Fprintf(&b, "Totals: %d works, %d self-hosted, %d missing.\n\n", counts[covWorks], counts[covSelfHosted], counts[covMissing])
	b.WriteString("| SDK method | HTTP | Path | Status |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", r.sdk, r.method, r.path, r.status)
	}
	return b.String()
}
