package tool

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// The built-in tools, one row each. The descriptions are Kelpie's own.
var (
	sendMessage = define(message.SendMessageTool, "letta_core",
		"Send a message to the user. This is the only way the user sees what you say; it ends your turn.",
		`{"type":"object","properties":{"message":{"type":"string","description":"The message for the user, in plain text or Markdown."}},"required":["message"]}`,
		func(_ *Env, a struct {
			Message string `json:"message"`
		}) (string, error) {
			return "Sent message successfully.", nil
		})

	coreMemoryAppend = define("core_memory_append", "letta_memory_core",
		"Add text to the end of one of your memory blocks, on a new line.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"content":{"type":"string","description":"Text to add."}},"required":["label","content"]}`,
		func(env *Env, a struct {
			Label   string `json:"label"`
			Content string `json:"content"`
		}) (string, error) {
			return editBlock(env, a.Label, func(v string) (string, error) {
				if v == "" {
					return a.Content, nil
				}
				return v + "\n" + a.Content, nil
			})
		})

	coreMemoryReplace = define("core_memory_replace", "letta_memory_core",
		"Replace every occurrence of some text in one of your memory blocks. Replacing with an empty string deletes the text.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"old_content":{"type":"string","description":"Text to replace; it must appear in the block exactly as given."},"new_content":{"type":"string","description":"Replacement text."}},"required":["label","old_content","new_content"]}`,
		func(env *Env, a struct {
			Label      string  `json:"label"`
			OldContent string  `json:"old_content"`
			NewContent *string `json:"new_content"`
		}) (string, error) {
			return editBlock(env, a.Label, func(v string) (string, error) {
				if a.OldContent == "" || !strings.Contains(v, a.OldContent) {
					return "", Errorf("the text to replace does not occur in memory block %q", a.Label)
				}
				return strings.ReplaceAll(v, a.OldContent, or(a.NewContent, "")), nil
			})
		})

	memoryInsert = define("memory_insert", "letta_sleeptime_core",
		"Insert text into one of your memory blocks at a line position.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"new_str":{"type":"string","description":"Text to insert; it may span several lines."},"insert_line":{"type":"integer","description":"Line number after which to insert: 0 inserts at the top, -1 (the default) at the end."}},"required":["label","new_str"]}`,
		func(env *Env, a struct {
			Label      string `json:"label"`
			NewStr     string `json:"new_str"`
			InsertLine *int   `json:"insert_line"`
		}) (string, error) {
			return editBlock(env, a.Label, func(v string) (string, error) {
				var lines []string
				if v != "" {
					lines = strings.Split(v, "\n")
				}
				at := or(a.InsertLine, -1)
				if at == -1 {
					at = len(lines)
				}
				if at < 0 || at > len(lines) {
					return "", Errorf("insert_line %d is out of range: memory block %q has %d lines (use 0 to %d, or -1 for the end)", at, a.Label, len(lines), len(lines))
				}
				lines = slices.Insert(lines, at, strings.Split(a.NewStr, "\n")...)
				return strings.Join(lines, "\n"), nil
			})
		})

	memoryReplace = define("memory_replace", "letta_sleeptime_core",
		"Replace one exact passage of one of your memory blocks with new text. The passage must occur exactly once; include enough surrounding text to make it unique. Do not include line number prefixes.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"old_str":{"type":"string","description":"The exact text to replace."},"new_str":{"type":"string","description":"The text to put in its place; empty to delete it."}},"required":["label","old_str","new_str"]}`,
		func(env *Env, a struct {
			Label  string  `json:"label"`
			OldStr string  `json:"old_str"`
			NewStr *string `json:"new_str"`
		}) (string, error) {
			return editBlock(env, a.Label, func(v string) (string, error) {
				switch n := strings.Count(v, a.OldStr); {
				case a.OldStr == "" || n == 0:
					return "", Errorf("old_str does not occur in memory block %q; copy it exactly as it appears", a.Label)
				case n > 1:
					return "", Errorf("old_str occurs %d times in memory block %q; include more surrounding text so that it occurs once", n, a.Label)
				}
				return strings.Replace(v, a.OldStr, or(a.NewStr, ""), 1), nil
			})
		})

	conversationSearch = define("conversation_search", "letta_core",
		"Search your past messages (recall memory), including those no longer in your context, by words they contain. Newest and best matches come first.",
		`{"type":"object","properties":{"query":{"type":"string","description":"Words to look for."},"roles":{"type":"array","items":{"type":"string","enum":["user","assistant","tool"]},"description":"Only messages from these roles."},"limit":{"type":"integer","description":"Most results to return (default 10)."},"start_date":{"type":"string","description":"Only messages from this date on (YYYY-MM-DD or RFC 3339)."},"end_date":{"type":"string","description":"Only messages up to this date (YYYY-MM-DD or RFC 3339)."}},"required":["query"]}`,
		func(env *Env, a struct {
			Query     string   `json:"query"`
			Roles     []string `json:"roles"`
			Limit     *int     `json:"limit"`
			StartDate *string  `json:"start_date"`
			EndDate   *string  `json:"end_date"`
		}) (string, error) {
			q := memory.RecallQuery{Query: a.Query, Roles: a.Roles, Limit: or(a.Limit, memory.DefaultRecallLimit), Timezone: env.Agent.Timezone}
			if q.Limit < 1 || q.Limit > memory.MaxRecallLimit {
				return "", Errorf("limit must be from 1 to %d", memory.MaxRecallLimit)
			}
			var err error
			if q.Start, err = parseDate("start_date", a.StartDate, false); err != nil {
				return "", err
			}
			if q.End, err = parseDate("end_date", a.EndDate, true); err != nil {
				return "", err
			}
			hits, err := memory.SearchRecall(env.Txn, env.Agent.ID, q)
			if err != nil {
				return "", err
			}
			data, err := schema.Encode(map[string]any{"results": hits, "count": len(hits)})
			return string(data), err
		})

	archivalMemoryInsert = define("archival_memory_insert", "letta_core",
		"Save a passage to your archival memory: long-term storage outside your context that you can search later. Write it so it makes sense on its own.",
		`{"type":"object","properties":{"content":{"type":"string","description":"The passage to save."},"tags":{"type":"array","items":{"type":"string"},"description":"Optional tags to find it by."}},"required":["content"]}`,
		func(env *Env, a struct {
			Content string   `json:"content"`
			Tags    []string `json:"tags"`
		}) (string, error) {
			if strings.TrimSpace(a.Content) == "" {
				return "", Errorf("content must not be empty")
			}
			if utf8.RuneCountInString(a.Content) > memory.MaxPassageChars {
				return "", Errorf("content is over the limit of %d characters", memory.MaxPassageChars)
			}
			if err := letta.CheckTags("tags", a.Tags); err != nil {
				return "", Errorf("%v", err)
			}
			emb := env.Embedded[a.Content]
			if _, err := memory.InsertPassage(env.Txn, env.Agent.ID, env.NewID("passage"), a.Content, a.Tags, emb, env.Now); err != nil {
				return "", err
			}
			return "Saved to archival memory.", nil
		})

	archivalMemorySearch = define("archival_memory_search", "letta_core",
		"Search your archival memory: passages similar in meaning to the query, and passages containing its words, best first.",
		`{"type":"object","properties":{"query":{"type":"string","description":"Words to look for."},"tags":{"type":"array","items":{"type":"string"},"description":"Only passages with these tags."},"tag_match_mode":{"type":"string","enum":["any","all"],"description":"Whether passages need any (default) or all of the tags."},"top_k":{"type":"integer","description":"Most results to return (default 10)."},"start_datetime":{"type":"string","description":"Only passages from this time on (YYYY-MM-DD or RFC 3339)."},"end_datetime":{"type":"string","description":"Only passages up to this time (YYYY-MM-DD or RFC 3339)."}},"required":["query"]}`,
		func(env *Env, a struct {
			Query         string   `json:"query"`
			Tags          []string `json:"tags"`
			TagMatchMode  *string  `json:"tag_match_mode"`
			TopK          *int     `json:"top_k"`
			StartDatetime *string  `json:"start_datetime"`
			EndDatetime   *string  `json:"end_datetime"`
		}) (string, error) {
			q := memory.ArchivalQuery{Query: a.Query, Tags: a.Tags, TagMatchAll: or(a.TagMatchMode, "") == "all",
				TopK: or(a.TopK, memory.DefaultArchivalTopK), Timezone: env.Agent.Timezone}
			if q.TopK < 1 || q.TopK > memory.MaxArchivalSearchTopK {
				return "", Errorf("top_k must be from 1 to %d", memory.MaxArchivalSearchTopK)
			}
			var err error
			if q.Start, err = parseDate("start_datetime", a.StartDatetime, false); err != nil {
				return "", err
			}
			if q.End, err = parseDate("end_datetime", a.EndDatetime, true); err != nil {
				return "", err
			}
			q.Embedded = env.Embedded[a.Query]
			q.NoVector = env.noVector()
			res, err := memory.SearchArchival(env.Txn, env.Agent.ID, q)
			if err != nil {
				return "", err
			}
			data, err := schema.Encode(res)
			return string(data), err
		})
)

// EmbeddingText is the text a call embeds before its step's transaction
// (the passage of archival_memory_insert, the query of
// archival_memory_search), or "" for a call that embeds nothing.
func EmbeddingText(call schema.ToolCall) string {
	var a struct {
		Content string `json:"content"`
		Query   string `json:"query"`
	}
	if json.Unmarshal([]byte(call.Arguments), &a) != nil {
		return ""
	}
	switch call.Name {
	case archivalMemoryInsert.Name:
		return a.Content
	case archivalMemorySearch.Name, semanticSearchFiles.Name:
		return a.Query
	}
	return ""
}

// builtins lists the built-in tools, in the order the API lists them.
var builtins = []*Tool{
	sendMessage, coreMemoryAppend, coreMemoryReplace, memoryInsert, memoryReplace,
	conversationSearch, archivalMemoryInsert, archivalMemorySearch,
	webSearch, fetchWebpage, runCode, runCodeWithTools,
	sendMessageToAgentAndWait, sendMessageToAgentAsync, sendMessageToAgentsMatchingTags,
}

// editBlock changes the value of the agent's block with label.
func editBlock(env *Env, label string, edit func(string) (string, error)) (string, error) {
	blocks, err := memory.AgentBlocks(env.Txn, env.Agent.ID)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(blocks, func(b *schema.Block) bool { return b.Label == label })
	if i < 0 {
		labels := make([]string, len(blocks))
		for i, b := range blocks {
			labels[i] = b.Label
		}
		return "", Errorf("there is no memory block labelled %q (you have: %s)", label, strings.Join(labels, ", "))
	}
	b := blocks[i]
	if b.ReadOnly {
		return "", Errorf("memory block %q is read-only", label)
	}
	v, err := edit(b.Value)
	if err != nil {
		return "", err
	}
	if err := memory.Update(env.Txn, b, letta.BlockUpdate{Value: &v}, env.Now); err != nil {
		if letta.KindOf(err) != 0 {
			return "", Errorf("%v", err)
		}
		return "", err
	}
	return fmt.Sprintf("Memory block %q updated; it now holds %d of its %d characters.", label, utf8.RuneCountInString(v), b.Limit), nil
}
