package schema_test

import (
	"bytes"
	"encoding/json"
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
