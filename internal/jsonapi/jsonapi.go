// Package jsonapi calls the JSON HTTP APIs of third-party services that
// built-in features use (Exa's search, Mistral's OCR, batch callbacks): one POST of a JSON
// body, an answer read up to a bound, and errors that name the service and
// what it answered. It never retries: its callers decide what a failure
// means.
package jsonapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxErrorChars bounds how much of a refusal's body an error quotes.
const maxErrorChars = 300

// Post sends body as JSON to url with header, and decodes a 200's answer,
// at most maxBytes long, into out. service names the service in errors.
func Post(ctx context.Context, client *http.Client, service, url string, header http.Header, body any, maxBytes int64, out any) error {
	resp, err := Send(ctx, client, url, header, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	switch {
	case err != nil:
		return fmt.Errorf("reading the answer of %s: %w", service, err)
	case int64(len(answer)) > maxBytes:
		return fmt.Errorf("the answer of %s is over %d bytes", service, maxBytes)
	case resp.StatusCode != http.StatusOK:
		text := string(answer)
		if len(text) > maxErrorChars {
			text = text[:maxErrorChars] + "..."
		}
		return fmt.Errorf("%s answered %s: %s", service, resp.Status, text)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("the answer of %s is not its JSON: %w", service, err)
	}
	return nil
}

// Send posts body as JSON to url with header and returns the answer as it
// came; the caller closes its body.
func Send(ctx context.Context, client *http.Client, url string, header http.Header, body any) (*http.Response, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}
