package schema

import (
	"reflect"
	"testing"
)

// Spec: SameIndex(IndexView(a), b) holds only if IndexedOf(a) equals
// IndexedOf(b): changing any one field of an agent that moves its index
// entries makes it false, so an IndexView copies every field IndexedOf
// reads. A field IndexedOf comes to read without IndexView copying it
// fails here.
func TestIndexViewHasWhatIndexedOfReads(t *testing.T) {
	base := fullAgent()
	base.Hidden = new(false) // listed: an agent with terms
	if !SameIndex(IndexView(base), base) {
		t.Fatal("an agent's view differs from the agent")
	}
	at := reflect.TypeFor[Agent]()
	for i := range at.NumField() {
		changed := fullAgent()
		changed.Hidden = new(false)
		f := reflect.ValueOf(changed).Elem().Field(i)
		other := reflect.New(f.Type()).Elem()
		fill(other)
		if reflect.DeepEqual(other.Interface(), f.Interface()) {
			other = reflect.Zero(f.Type())
		}
		f.Set(other)
		if !reflect.DeepEqual(IndexedOf(base), IndexedOf(changed)) && SameIndex(IndexView(base), changed) {
			t.Errorf("changing Agent.%s moves the agent's index entries, but SameIndex says they are the same", at.Field(i).Name)
		}
	}
	view := IndexView(base)
	base.Tags[0], *base.ProjectID, *base.Hidden = "changed in place", "changed in place", true
	if SameIndex(view, base) {
		t.Error("a view shares the tags, project or hidden flag of its agent")
	}
	if !SameIndex(IndexView(nil), nil) || SameIndex(IndexView(nil), base) || SameIndex(view, nil) {
		t.Error("SameIndex of an agent that does not exist")
	}
}
