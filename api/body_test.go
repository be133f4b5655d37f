package api

import (
	"strings"
	"testing"
)

// Spec: a body that is not valid UTF-8, or that nests JSON too deeply, is
// refused with a clear 400, and nothing is created.
func TestBodyEncodingAndDepth(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	if d := c.expect(400, "POST", "/v1/agents", "{\"name\":\"a\xff\"}"); !strings.Contains(d, "UTF-8") {
		t.Errorf("invalid UTF-8: %q", d)
	}
	deep := `{"name":"a","metadata":{"x":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}}`
	if d := c.expect(400, "POST", "/v1/agents", deep); !strings.Contains(d, "levels deep") {
		t.Errorf("deep nesting: %q", d)
	}
	if n := c.count("/v1/agents/count"); n != 0 {
		t.Errorf("%d agents after refused creates", n)
	}
	// A string may hold brackets and quotes without counting as nesting.
	c.createAgent(`{"name":"b","metadata":{"s":"` + strings.Repeat(`[{\"`, 100) + `"}}`)
}

// Spec: a number no float64 holds is refused with a 422 naming it, in a
// free-form field as in a typed one; a string that looks like one is kept.
func TestBodyNumbersOutOfRange(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	for _, body := range []string{
		`{"name":"a","metadata":{"0":[1e1000]}}`,
		`{"name":"a","metadata":{"x":-2e308}}`,
		`{"name":"a","context_window_limit":1e400}`,
	} {
		if d := c.expect(422, "POST", "/v1/agents", body); !strings.Contains(d, "finite number") {
			t.Errorf("%s: %q", body, d)
		}
	}
	if n := c.count("/v1/agents/count"); n != 0 {
		t.Errorf("%d agents after refused creates", n)
	}
	a := c.createAgent(`{"name":"b","metadata":{"s":"1e1000","tiny":1e-400,"max":1.7976931348623157e308}}`)
	r := c.do("GET", "/v1/agents/"+a.ID, "")
	if !strings.Contains(string(r.body), `"s":"1e1000"`) {
		t.Errorf("read back: %s", r.body)
	}
}

// Spec: integers in metadata keep every digit, through storage and back.
func TestMetadataKeepsLargeIntegers(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name":"a","metadata":{"big":9007199254740993,"neg":-12345678901234567}}`)
	r := c.do("GET", "/v1/agents/"+a.ID, "")
	for _, want := range []string{`"big":9007199254740993`, `"neg":-12345678901234567`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("read back: want %s in %s", want, r.body)
		}
	}
}
