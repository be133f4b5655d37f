package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/letta"
)

// gitEnv runs Debian's git against a test server, isolated from the
// machine's and the user's git configuration.
type gitEnv struct {
	t      testing.TB
	git    string
	home   string
	remote string // the agent's repository URL
	auth   string // the Authorization header git sends ("" none)
}

func newGitEnv(t testing.TB, c *client, agentID, key string) *gitEnv {
	git := kelpietest.NeedTool(t, "git")
	g := &gitEnv{t: t, git: git, home: t.TempDir(), remote: c.base + "/v1/git/" + agentID + "/state.git"}
	if key != "" {
		// As letta-code sends it: the key as a basic-auth password.
		g.auth = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("letta:"+key))
	}
	return g
}

// run runs git in dir and returns its combined output and error.
func (g *gitEnv) run(dir string, args ...string) (string, error) {
	g.t.Helper()
	pre := []string{"-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-c", "init.defaultBranch=main"}
	if g.auth != "" {
		pre = append(pre, "-c", "http.extraHeader="+g.auth)
	}
	cmd := exec.Command(g.git, append(pre, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + g.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs git and fails the test if it fails.
func (g *gitEnv) must(dir string, args ...string) string {
	g.t.Helper()
	out, err := g.run(dir, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// clone clones the agent's repository into a new directory.
func (g *gitEnv) clone() string {
	g.t.Helper()
	dir := filepath.Join(g.t.TempDir(), "memory")
	g.must(g.t.TempDir(), "clone", g.remote, dir)
	return dir
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// agentBlockValues returns the agent's blocks, label -> value.
func agentBlockValues(c *client, agentID string) map[string]string {
	c.t.Helper()
	var bs []letta.Block
	c.ok("GET", "/v1/agents/"+agentID+"/core-memory/blocks", "", &bs)
	out := map[string]string{}
	for _, b := range bs {
		out[b.Label] = b.Value
	}
	return out
}

const memfsAgent = `{"name":"memo","tags":["git-memory-enabled"],"memory_blocks":[
	{"label":"persona","value":"I am Memo."},
	{"label":"human","value":"The user is Ada.","description":"About the user"}]}`

// Spec: with Debian's git, an agent's memory is a repository: a clone has
// one Markdown file per block (YAML front matter, then the value); a
// commit pushed changes, creates and detaches blocks; an edit through the
// API is a commit by the agent that a pull brings.
func TestGitCloneCommitPush(t *testing.T) {
	c, _ := newTestServer(t, Options{APIKey: "sk-test"})
	c.header.Set("Authorization", "Bearer sk-test")
	a := c.createAgent(memfsAgent)
	var repos repositoriesBody
	c.ok("GET", "/v1/agents/"+a.ID+"/repositories", "", &repos)
	if len(repos.Repositories) != 1 || repos.Repositories[0].Name != "memory" || !repos.Repositories[0].IsPrimary {
		t.Errorf("repositories = %+v, want the primary memory repository", repos.Repositories)
	}
	g := newGitEnv(t, c, a.ID, "sk-test")
	dir := g.clone()
	if got, want := readFile(t, filepath.Join(dir, "human.md")), "---\ndescription: About the user\n---\nThe user is Ada."; got != want {
		t.Errorf("human.md = %q, want %q", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "persona.md")); !strings.HasSuffix(got, "\n---\nI am Memo.") {
		t.Errorf("persona.md = %q", got)
	}

	writeFile(t, filepath.Join(dir, "human.md"), "---\ndescription: About the user\n---\nThe user is Ada. She likes tea.")
	writeFile(t, filepath.Join(dir, "notes", "todo.md"), "---\ndescription: Things to do\n---\nWater the plants.")
	writeFile(t, filepath.Join(dir, "skills", "cooking", "SKILL.md"), "Boil water first.")
	writeFile(t, filepath.Join(dir, "skills", "cooking", "recipes.md"), "not a block")
	g.must(dir, "rm", "-q", "persona.md")
	g.must(dir, "add", "-A")
	g.must(dir, "commit", "-q", "-m", "Edit memory")
	g.must(dir, "push", "-q", "origin", "main")

	want := map[string]string{"human": "The user is Ada. She likes tea.", "notes/todo": "Water the plants.", "skills/cooking": "Boil water first."}
	if got := agentBlockValues(c, a.ID); !equalMaps(got, want) {
		t.Errorf("blocks after the push = %v, want %v", got, want)
	}
	var todo letta.Block
	c.ok("GET", "/v1/agents/"+a.ID+"/core-memory/blocks/notes%2Ftodo", "", &todo)
	if todo.Description == nil || *todo.Description != "Things to do" {
		t.Errorf("notes/todo description = %v, want the front matter's", todo.Description)
	}

	c.ok("PATCH", "/v1/agents/"+a.ID+"/core-memory/blocks/human", `{"value":"The user is Ada Lovelace."}`, nil)
	g.must(dir, "pull", "-q", "--ff-only")
	if got := readFile(t, filepath.Join(dir, "human.md")); !strings.HasSuffix(got, "\n---\nThe user is Ada Lovelace.") {
		t.Errorf("human.md after the API edit and a pull = %q", got)
	}
	if author := g.must(dir, "log", "-1", "--format=%an <%ae>"); author != "memo <"+a.ID+"@kelpie>\n" {
		t.Errorf("author of the API edit's commit = %q, want the agent", author)
	}
	if got := readFile(t, filepath.Join(dir, "skills", "cooking", "recipes.md")); got != "not a block" {
		t.Errorf("a file that is no block was not kept: %q", got)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Spec: a push that is not a fast-forward is rejected as git rejects it,
// and changes nothing; so is one whose block would break its limit; and
// git without the key gets nothing.
func TestGitPushRejected(t *testing.T) {
	c, _ := newTestServer(t, Options{APIKey: "sk-test"})
	c.header.Set("Authorization", "Bearer sk-test")
	a := c.createAgent(memfsAgent)
	g := newGitEnv(t, c, a.ID, "sk-test")
	first, second := g.clone(), g.clone()

	writeFile(t, filepath.Join(first, "human.md"), "The user is Ada.\nShe is a mathematician.")
	g.must(first, "commit", "-qam", "first")
	g.must(first, "push", "-q", "origin", "main")

	writeFile(t, filepath.Join(second, "human.md"), "The user is Bob.")
	g.must(second, "commit", "-qam", "second")
	out, err := g.run(second, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "rejected") {
		t.Errorf("a non-fast-forward push: err %v, output:\n%s", err, out)
	}
	// Forced, the server refuses it itself.
	out, err = g.run(second, "push", "--force", "origin", "main")
	if err == nil || !strings.Contains(out, "non-fast-forward") {
		t.Errorf("a forced non-fast-forward push: err %v, output:\n%s", err, out)
	}
	if got := agentBlockValues(c, a.ID)["human"]; got != "The user is Ada.\nShe is a mathematician." {
		t.Errorf("human after rejected pushes = %q, want the first push's", got)
	}

	g.must(first, "pull", "-q", "--ff-only")
	writeFile(t, filepath.Join(first, "human.md"), "---\nlimit: 5\n---\nFar more than five characters.")
	g.must(first, "commit", "-qam", "too long")
	out, err = g.run(first, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "limit") {
		t.Errorf("a push over a block's limit: err %v, output:\n%s", err, out)
	}
	if got := agentBlockValues(c, a.ID)["human"]; got != "The user is Ada.\nShe is a mathematician." {
		t.Errorf("human after a rejected push = %q", got)
	}
	head := strings.TrimSpace(g.must(first, "ls-remote", "origin", "refs/heads/main"))
	if local := strings.TrimSpace(g.must(first, "rev-parse", "HEAD~1")); !strings.HasPrefix(head, local) {
		t.Errorf("remote main = %q, want the last accepted commit %s", head, local)
	}

	g.must(first, "reset", "-q", "--hard", "HEAD~1")
	g.must(first, "rm", "-q", "persona.md")
	if err := os.Symlink("human.md", filepath.Join(first, "persona.md")); err != nil {
		t.Fatal(err)
	}
	g.must(first, "add", "-A")
	g.must(first, "commit", "-qm", "a symlink")
	out, err = g.run(first, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "not a regular file") {
		t.Errorf("a push making a block file a symlink: err %v, output:\n%s", err, out)
	}

	g.auth = ""
	if out, err := g.run(t.TempDir(), "clone", g.remote, "x"); err == nil {
		t.Errorf("a clone without the key succeeded:\n%s", out)
	}
}

// Spec: an agent without git-backed memory has no repository (404), and
// the repositories route lists none.
func TestGitRepositoryNeedsTag(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name":"plain"}`)
	var repos repositoriesBody
	c.ok("GET", "/v1/agents/"+a.ID+"/repositories", "", &repos)
	if len(repos.Repositories) != 0 {
		t.Errorf("repositories = %+v, want none", repos.Repositories)
	}
	r, err := http.Get(c.base + "/v1/git/" + a.ID + "/state.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("info/refs of an agent without memfs: %d, want 404", r.StatusCode)
	}
}

// BenchmarkGitPush measures `git push` of one commit changing one block of
// an agent with 50 blocks, with Debian's git over loopback HTTP (the git
// process, the request, the push's agent invocation; in-memory store).
func BenchmarkGitPush(b *testing.B) {
	c, _ := newTestServer(b, Options{})
	var blocks []string
	for i := range 50 {
		blocks = append(blocks, fmt.Sprintf(`{"label":"notes/topic-%02d","value":%q}`, i, strings.Repeat(fmt.Sprintf("fact %d. ", i), 60)))
	}
	a := c.createAgent(`{"name":"memo","tags":["git-memory-enabled"],"memory_blocks":[` + strings.Join(blocks, ",") + `]}`)
	g := newGitEnv(b, c, a.ID, "")
	dir := g.clone()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		writeFile(b, filepath.Join(dir, "notes", "topic-07.md"), fmt.Sprintf("edit %d", i))
		g.must(dir, "commit", "-qam", "edit")
		b.StartTimer()
		g.must(dir, "push", "-q", "origin", "main")
	}
}
