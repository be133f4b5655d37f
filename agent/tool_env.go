package agent

import (
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of an agent's tool environment.
const (
	MaxToolEnvVars       = 100    // variables per agent
	MaxToolEnvValueChars = 10_000 // characters of one value
)

// envNamePattern is what an environment variable's name may be.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkToolEnv validates the tool environment of a create or update.
func checkToolEnv(envs ...map[string]string) error {
	n := 0
	for _, env := range envs {
		n += len(env)
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if len(k) > 256 || !envNamePattern.MatchString(k) {
				return letta.Invalidf("tool environment variable name %q is not a valid name (letters, digits and underscores)", letta.Clip(k))
			}
			if err := letta.CheckChars(fmt.Sprintf("secrets[%q]", k), env[k], MaxToolEnvValueChars); err != nil {
				return err
			}
		}
	}
	if n > MaxToolEnvVars {
		return letta.Invalidf("an agent may have at most %d tool environment variables, got %d", MaxToolEnvVars, n)
	}
	return nil
}

// toolEnv merges tool_exec_environment_variables and secrets (which win);
// nil when both are empty.
func toolEnv(vars, secrets map[string]string) map[string]string {
	if len(vars)+len(secrets) == 0 {
		return nil
	}
	out := maps.Clone(vars)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, secrets)
	return out
}

// toolEnvJSON renders an agent's tool environment as Letta's
// AgentEnvironmentVariable list, with every value withheld: a secret is
// written, never read back.
func toolEnvJSON(a *schema.Agent) []any {
	out := []any{}
	for _, k := range slices.Sorted(maps.Keys(a.ToolEnv)) {
		out = append(out, map[string]any{
			"id": letta.DerivedID("agent-env", a.ID, k), "key": k, "value": "", "description": nil, "agent_id": a.ID,
		})
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
