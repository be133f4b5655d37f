package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/sandbox"
)

// newSandbox returns a sandbox under bubblewrap (which the test needs).
func newSandbox(t testing.TB, cfg sandbox.Config) *sandbox.Sandbox {
	t.Helper()
	kelpietest.NeedTool(t, "bwrap")
	s, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Isolated() {
		t.Fatal("bwrap is installed but the sandbox does not use it")
	}
	return s
}

// deriveCases are Letta-style tool sources and the schema Letta 0.16.8's
// generator gives each (worked out from letta/functions/functions.py,
// schema_generator.py and docstring_parser's Google parser), or the error
// it raises.
var deriveCases = []struct {
	name, source string
	want         string // the JSON schema, or
	err          string // a part of the error
}{
	{"no arguments, Returns section (Letta's SDK test tool)", `
def friendly_func():
    """
    Returns a friendly message.

    Returns:
        str: A friendly message.
    """
    return "HI HI HI HI HI!"
`, `{"name":"friendly_func","description":"Returns a friendly message.","parameters":{"type":"object","properties":{},"required":[]}}`, ""},

	{"typed Args entry", `
def check_order_status(order_number: int):
    """
    Check the status for an order number (integeter value).

    Args:
        order_number (int): The order number to check on.

    Returns:
        str: The status of the order (e.g. cancelled, refunded, processed, processing, shipping).
    """
    return f"Order {order_number} is currently processing."
`, `{"name":"check_order_status","description":"Check the status for an order number (integeter value).","parameters":{"type":"object","properties":{"order_number":{"type":"integer","description":"The order number to check on."}},"required":["order_number"]}}`, ""},

	{"a syntax error (an argument without default after one with)", `
from typing import Optional

def search(query: str, limit: int = 10, tag: Optional[str] = None, exact: bool = False, ratio: Optional[float]) -> str:
    """Search the catalogue.

    Args:
        query: Words to look for.
        limit: Most results to return.
        tag (Optional[str]): Only items with this tag.
        exact: Match whole words only.
        ratio: Minimum score.
    """
    return query
`, "", "Failed to parse source code"},

	{"defaults and Optional are not required (valid order)", `
from typing import Optional

def search(query: str, ratio: Optional[float], limit: int = 10, tag: Optional[str] = None, exact: bool = False) -> str:
    """Search the catalogue.

    Args:
        query: Words to look for.
        ratio: Minimum score.
        limit: Most results to return.
        tag (Optional[str]): Only items with this tag.
        exact: Match whole words only.
    """
    return query
`, `{"name":"search","description":"Search the catalogue.","parameters":{"type":"object","properties":{
	"query":{"type":"string","description":"Words to look for."},
	"ratio":{"type":"number","description":"Minimum score."},
	"limit":{"type":"integer","description":"Most results to return."},
	"tag":{"type":"string","description":"Only items with this tag."},
	"exact":{"type":"boolean","description":"Match whole words only."}},"required":["query"]}}`, ""},

	{"lists, typing and built-in, nested and bare", `
from typing import List

def tag_items(items: List[str], scores: list[float], grid: list[list[int]], extra: list, maybe: List[Optional[int]] = None):
    """Tag items.

    Args:
        items: The items.
        scores: A score per item.
        grid: A grid of counts.
        extra: Anything else.
        maybe: Optional numbers.
    """
`, `{"name":"tag_items","description":"Tag items.","parameters":{"type":"object","properties":{
	"items":{"type":"array","items":{"type":"string"},"description":"The items."},
	"scores":{"type":"array","items":{"type":"number"},"description":"A score per item."},
	"grid":{"type":"array","items":{"type":"array","items":{"type":"integer"}},"description":"A grid of counts."},
	"extra":{"type":"array","items":{"type":"string"},"description":"Anything else."},
	"maybe":{"type":"array","items":{"type":"integer"},"description":"Optional numbers."}},"required":["items","scores","grid","extra"]}}`, ""},

	{"Literal enums", `
from typing import Literal, Optional

def set_mode(mode: Literal["fast", "slow"], unit: Optional[Literal["s"]] = None):
    """Set the mode.

    Args:
        mode: How fast to go.
        unit: The unit.
    """
`, `{"name":"set_mode","description":"Set the mode.","parameters":{"type":"object","properties":{
	"mode":{"type":"string","enum":["fast","slow"],"description":"How fast to go."},
	"unit":{"type":"string","enum":["s"],"description":"The unit."}},"required":["mode"]}}`, ""},

	{"long description, optional marker, Examples appended", `
def roll_dice(num_dice: int, sides: int = 6) -> str:
    """Roll some dice.

    Rolls num_dice dice with the given number of sides
    and sums them.

    Args:
        num_dice (int): How many dice to roll.
        sides (int, optional): Sides per die. Defaults to 6.

    Examples:
        roll_dice(2) -> "7"

    Returns:
        str: The total.
    """
`, `{"name":"roll_dice","description":"Roll some dice.\n\nRolls num_dice dice with the given number of sides\nand sums them.\n\nExamples:\n        roll_dice(2) -> \"7\"\n\n    Returns:\n        str: The total.","parameters":{"type":"object","properties":{
	"num_dice":{"type":"integer","description":"How many dice to roll."},
	"sides":{"type":"integer","description":"Sides per die. Defaults to 6."}},"required":["num_dice"]}}`, ""},

	{"reserved agent_state, multi-line argument description", `
def note(agent_state: "AgentState", text: str, dict_arg: dict) -> None:
    """Write a note.

    Args:
        text: What to write,
            over two lines.
        dict_arg: Extra fields.
    """
`, `{"name":"note","description":"Write a note.","parameters":{"type":"object","properties":{
	"text":{"type":"string","description":"What to write,\nover two lines."},
	"dict_arg":{"type":"object","description":"Extra fields."}},"required":["text","dict_arg"]}}`, ""},

	{"the last function is the tool; no sections", `
def helper(x):
    return x

def shout():
    """Shout a word.
    Loudly."""
    return helper("hey").upper()
`, `{"name":"shout","description":"Shout a word.\n\nLoudly.","parameters":{"type":"object","properties":{},"required":[]}}`, ""},

	{"an argument the docstring does not describe", `
def shout(word: str, times: int):
    """Shout a word.

    Args:
        word: The word.
    """
`, "", "Parameter 'times' in function 'shout' lacks a description in the docstring"},

	{"a default that cannot be evaluated counts as none", `
LIMIT = 5

def top(n: int = LIMIT):
    """Top items.

    Args:
        n: How many.
    """
`, `{"name":"top","description":"Top items.","parameters":{"type":"object","properties":{"n":{"type":"integer","description":"How many."}},"required":["n"]}}`, ""},

	{"missing annotation", `
def f(x):
    """F.

    Args:
        x: X.
    """
`, "", "Parameter 'x' in function 'f' lacks a type annotation"},

	{"missing docstring", "def f(x: int):\n    return x\n", "", "Function f missing docstring"},
	{"no function", "x = 1\n", "", "No functions found in source code"},
	{"unsupported type", `
def f(x: set):
    """F.

    Args:
        x: X.
    """
`, "", "Python type set has no corresponding JSON schema type"},
	{"dict with type arguments", `
from typing import Dict

def f(x: Dict[str, int]):
    """F.

    Args:
        x: X.
    """
`, "", "nested type arguments are not supported"},
}

// Spec: the schema of a tool's source is derived as Letta derives it
// (function name, Google-style docstring, type hints, defaults), and
// source Letta refuses is refused with Letta's reason.
func TestDeriveLikeLetta(t *testing.T) {
	s := newSandbox(t, sandbox.Config{})
	for _, c := range deriveCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Derive(context.Background(), strings.TrimPrefix(c.source, "\n"))
			if c.err != "" {
				var de *tool.DeriveError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(c.want), &want); err != nil {
				t.Fatalf("bad expectation: %v", err)
			}
			if !reflect.DeepEqual(roundTrip(t, got), want) {
				g, _ := json.Marshal(got)
				t.Errorf("got  %s\nwant %s", g, c.want)
			}
		})
	}
}

// roundTrip makes v comparable with a decoded expectation.
func roundTrip(t *testing.T, v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
