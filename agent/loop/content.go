package loop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// MaxImagesPerMessage bounds the image parts of one message.
const MaxImagesPerMessage = 20

// imageMediaTypes are the inline image types every provider accepts.
var imageMediaTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// contentPart is one of Letta's message content parts: text, or an image
// from a URL or inline base64 data.
type contentPart struct {
	Type   string  `json:"type"`
	Text   *string `json:"text"`
	Source *struct {
		Type      string `json:"type"`
		URL       string `json:"url"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
	} `json:"source"`
}

// parseContent reads message content, a string or a list of parts, into
// its text (text parts joined by newlines) and its images; image parts are
// refused unless images is set. field names the content in errors.
func parseContent(field string, raw json.RawMessage, images bool) (string, []llm.Image, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", nil, letta.Invalidf("%s must be a string or a list of content parts", field)
	}
	var texts []string
	var ims []llm.Image
	for i, p := range parts {
		switch {
		case p.Type == "text" && p.Text != nil:
			texts = append(texts, *p.Text)
		case p.Type == "image" && images:
			im, err := parseImage(field, i, p)
			if err != nil {
				return "", nil, err
			}
			if ims = append(ims, im); len(ims) > MaxImagesPerMessage {
				return "", nil, letta.Invalidf("%s: at most %d images per message", field, MaxImagesPerMessage)
			}
		case p.Type == "image":
			return "", nil, letta.Invalidf("%s[%d]: images are supported in user messages and tool results only", field, i)
		default:
			return "", nil, letta.Invalidf("%s[%d]: content parts are text or image, got type %q", field, i, letta.Clip(p.Type))
		}
	}
	return strings.Join(texts, "\n"), ims, nil
}

// parseImage reads an image part's source: {type: url, url} or {type:
// base64, media_type, data}.
func parseImage(field string, i int, p contentPart) (llm.Image, error) {
	src := p.Source
	if src == nil {
		return llm.Image{}, letta.Invalidf("%s[%d].source: Field required", field, i)
	}
	switch src.Type {
	case "url":
		u, err := url.Parse(src.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return llm.Image{}, letta.Invalidf("%s[%d].source.url must be an http or https URL", field, i)
		}
		return llm.Image{URL: src.URL}, nil
	case "base64":
		if !imageMediaTypes[src.MediaType] {
			return llm.Image{}, letta.Invalidf("%s[%d].source.media_type %q: want image/png, image/jpeg, image/gif or image/webp", field, i, letta.Clip(src.MediaType))
		}
		if _, err := base64.StdEncoding.DecodeString(src.Data); err != nil || src.Data == "" {
			return llm.Image{}, letta.Invalidf("%s[%d].source.data must be base64-encoded image data", field, i)
		}
		return llm.Image{MediaType: src.MediaType, Data: src.Data}, nil
	}
	return llm.Image{}, letta.Invalidf("%s[%d].source.type %q: want url or base64", field, i, letta.Clip(src.Type))
}

// storedImages returns the images of a stored message's content (a user
// message's, or a tool result's), which was checked when it was sent.
func storedImages(raw json.RawMessage) []llm.Image {
	// Content sent as a string, the usual case, has none: a step reads
	// its whole history, and parsing each message again cost more than
	// the rest of building the request.
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] == '"' {
		return nil
	}
	_, ims, _ := parseContent("content", raw, true)
	return ims
}
