package schema_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/schema"
)

// Spec: Decode gives what a new json.Decoder with UseNumber gives, value
// after value, whatever came before: valid records, records followed by
// more data, malformed ones, large ones.
func TestDecodeReused(t *testing.T) {
	inputs := []string{
		`{"a":1,"b":[1,2,{"c":"d"}]}`,
		`{"n":123456789012345678901234567890}`,
		`{"a":2} {"a":3}`,
		`{"a":4}` + "\n",
		`{"a":`,
		`{"a":5}`,
		`nope`,
		`{"s":"` + strings.Repeat("x", 200<<10) + `"}`,
		`{"a":6,"m":{"k":1.5}}`,
		`[1,2,3]`,
		`{"a":7}`,
	}
	for range 3 {
		for _, in := range inputs {
			var got, want any
			gotErr := schema.Decode([]byte(in), &got)
			dec := json.NewDecoder(bytes.NewReader([]byte(in)))
			dec.UseNumber()
			wantErr := dec.Decode(&want)
			if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode(%.40q) = %v, %v; want %v, %v", in, got, gotErr, want, wantErr)
			}
		}
	}
}

// Spec: Encode gives what a new json.Encoder without HTML escaping gives
// (less its newline), value after value, whatever came before: failures,
// large values; and each result is the caller's own.
func TestEncodeReused(t *testing.T) {
	values := []any{
		map[string]any{"a": "<b> & c", "n": json.Number("12345678901234567890")},
		math.Inf(1),
		strings.Repeat("y", 200<<10),
		[]int{1, 2, 3},
		make(chan int),
		struct{ X string }{"z"},
	}
	var kept [][]byte
	for range 3 {
		for _, v := range values {
			got, gotErr := schema.Encode(v)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			wantErr := enc.Encode(v)
			want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if (gotErr == nil) != (wantErr == nil) || gotErr == nil && !bytes.Equal(got, want) {
				t.Fatalf("Encode(%.40v) = %.60s, %v; want %.60s, %v", v, got, gotErr, want, wantErr)
			}
			if gotErr == nil {
				kept = append(kept, got)
			}
		}
	}
	first, _ := schema.Encode(values[0])
	if !bytes.Equal(kept[0], first) || !bytes.Equal(kept[len(kept)-1], []byte(`{"X":"z"}`)) {
		t.Fatalf("an earlier result changed: %s, %s", kept[0], kept[len(kept)-1])
	}
}
