package agent

import (
	"context"
	"strings"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Tags is the surface of the tags agents carry.
type Tags struct{ c *core }

// DefaultTagListLimit is Letta's page size for tags.
const DefaultTagListLimit = 50

// List lists the distinct tags of listed agents in the order of their
// bytes (Letta's alphabetical order), from the index of tag names; the
// page's cursors are tags. name, when set, keeps the tags that contain it,
// ignoring case.
func (s *Tags) List(ctx context.Context, name string, p letta.Page) ([]string, error) {
	p, err := checkPage(p, DefaultTagListLimit)
	if err != nil {
		return nil, err
	}
	desc := p.Order == letta.Desc
	out := []string{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		r := tagWindow(p, desc)
		for len(out) < p.Limit {
			kvs, err := txn.Scan(r, 1, desc)
			if err != nil || len(kvs) == 0 {
				return err
			}
			tag, err := schema.TagOf(kvs[0].Key)
			if err != nil {
				return err
			}
			if name == "" || strings.Contains(strings.ToLower(tag), strings.ToLower(name)) {
				out = append(out, tag)
			}
			// On to the next tag, past every agent of this one.
			if desc {
				r.End = schema.TagNamesOf(tag)
			} else {
				r.Start = afterPrefix(schema.TagNamesOf(tag))
			}
		}
		return nil
	})
	return out, err
}

// tagWindow is the range of the tag-name index strictly between the page's
// cursors.
func tagWindow(p letta.Page, desc bool) kv.Range {
	r := kv.PrefixRange([]byte(schema.TagNames.Prefix))
	lower, upper := p.After, p.Before
	if desc {
		lower, upper = p.Before, p.After
	}
	if lower != "" {
		r.Start = afterPrefix(schema.TagNamesOf(lower))
	}
	if upper != "" {
		r.End = schema.TagNamesOf(upper)
	}
	return r
}

// afterPrefix is the first key after every key that starts with prefix.
func afterPrefix(prefix []byte) []byte { return kv.PrefixRange(prefix).End }
