package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
)

// Spec: kelpie serve --storage postgres keeps every acknowledged write
// through a SIGKILL mid-load (TestKillDashNine on Postgres); while the
// database server is down, requests fail with a retryable 503 and the
// process stays up; once it is back the same process serves again, with
// every acknowledged write there; kelpie check verifies the database while
// the server runs. (One test: one build of the binary, one server.)
func TestPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary, with a Postgres server")
	}
	db := pgtest.NewServer(t)
	url, err := db.CreateDatabase("kelpie")
	if err != nil {
		t.Fatal(err)
	}
	bin := kelpietest.Build(t)
	killDashNine(t, bin, []string{"KELPIE_POSTGRES_URL=" + url}, "--storage", "postgres")

	srv := kelpietest.Start(t, bin, []string{"KELPIE_POSTGRES_URL=" + url}, "--storage", "postgres", "--default-model", "openai/gpt-4o-mini")
	if !strings.Contains(srv.Logs(), "storage=postgres") {
		t.Errorf("the start-up log does not name the storage:\n%s", srv.Logs())
	}
	var ids []string
	create := func(name string) (int, error) {
		var a agentJSON
		st, err := call(http.DefaultClient, "POST", srv.URL+"/v1/agents", map[string]any{"name": name}, &a)
		if st == 200 {
			ids = append(ids, a.ID)
		}
		return st, err
	}
	for i := range 3 {
		if st, err := create(fmt.Sprintf("before-%d", i)); st != 200 {
			t.Fatalf("create: %d %v", st, err)
		}
	}

	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/v1/agents", `{"name":"during"}`},
		{"GET", "/v1/agents/" + ids[0], ""},
		{"GET", "/v1/agents", ""},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, strings.NewReader(req.body))
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("%s %s with the database down: %v", req.method, req.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("X-Should-Retry") != "true" || !strings.Contains(string(body), "Storage is unavailable") {
			t.Errorf("%s %s with the database down: %d %v %s; want a retryable 503", req.method, req.path, resp.StatusCode, resp.Header, body)
		}
	}

	if err := db.Restart(); err != nil {
		t.Fatal(err)
	}
	if st, err := create("after"); st != 200 {
		t.Fatalf("create once the database is back: %d %v", st, err)
	}
	for _, id := range ids {
		if st, err := call(http.DefaultClient, "GET", srv.URL+"/v1/agents/"+id, nil, nil); st != 200 {
			t.Errorf("agent %s acknowledged before the outage: %d %v", id, st, err)
		}
	}
	var during []agentJSON
	if st, err := call(http.DefaultClient, "GET", srv.URL+"/v1/agents?name=during", nil, &during); st != 200 || len(during) != 0 {
		t.Errorf("the create refused with 503 (the database down): %d %v, %d agents named so", st, err, len(during))
	}

	out, err := exec.Command(bin, "check", "--storage", "postgres", "--postgres-url", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: nothing damaged") {
		t.Fatalf("kelpie check on the database: %v\n%s", err, out)
	}
}

// Spec: --storage postgres without a URL is refused, saying what is
// missing; a password never reaches the logs.
func TestPostgresFlags(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"serve", "--storage", "postgres", "--addr", "127.0.0.1:0"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--postgres-url") {
		t.Errorf("serve --storage postgres without a URL: exit %d, %s", code, errOut.String())
	}
	for in, want := range map[string]string{
		"postgres://kelpie:s3cret@db:5432/k?sslmode=disable": "postgres://kelpie:xxxxx@db:5432/k?sslmode=disable",
		"postgres://db/k?password=s3cret&sslmode=disable":    "postgres://db/k?password=xxxxx&sslmode=disable",
		"host=db password=s3cret dbname=k":                   "host=db password=xxxxx dbname=k",
		"host=db password='s3 cret' dbname=k":                "host=db password=xxxxx dbname=k",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q; want %q", in, got, want)
		}
	}
}
