package agent

import (
	"bytes"
	"crypto/rand"
	"errors"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// toolsMarker holds an agent's place for its tools in encodeAgent: a string
// no client can write, as it holds random bits drawn at start and never
// shown.
var toolsMarker = []any{"kelpie-tools-" + rand.Text()}

// toolsMarkerJSON is toolsMarker as schema.Encode writes it.
var toolsMarkerJSON = func() []byte {
	data, err := schema.Encode(toolsMarker)
	if err != nil {
		panic(err)
	}
	return data
}()

// encodeAgent encodes st (its Tools ignored) with tools as its tools, as
// schema.Encode would. An agent's tools are most of its JSON, and encoding
// them was most of the encoding of a new agent (encoding/json reflects on
// their schemas, and validates every byte of each): a built-in tool's JSON
// is encoded once (tool.LettaJSON) and spliced in.
func encodeAgent(st *letta.AgentState, tools []*tool.Tool) ([]byte, error) {
	encoded := make([][]byte, len(tools))
	size := 2 + len(tools)
	for i, t := range tools {
		var err error
		if encoded[i], err = t.LettaJSON(); err != nil {
			return nil, err
		}
		size += len(encoded[i])
	}
	marked := *st
	marked.Tools = toolsMarker
	var out []byte
	err := schema.EncodeTo(&marked, func(data []byte) error {
		i := bytes.Index(data, toolsMarkerJSON)
		if i < 0 || bytes.Contains(data[i+1:], toolsMarkerJSON) {
			return errors.New("agent: encoding an agent: its tools' place is not marked once")
		}
		out = make([]byte, 0, len(data)-len(toolsMarkerJSON)+size)
		out = append(out, data[:i]...)
		out = append(out, '[')
		for j, js := range encoded {
			if j > 0 {
				out = append(out, ',')
			}
			out = append(out, js...)
		}
		out = append(out, ']')
		out = append(out, data[i+len(toolsMarkerJSON):]...)
		return nil
	})
	return out, err
}
