package letta

// Order is a listing order.
type Order string

const (
	Asc  Order = "asc"
	Desc Order = "desc"
)

// Page selects one page of a listing: exclusive cursors by id, relative to
// the listing order, and a limit (0: the route's default). An unknown or
// malformed cursor is ignored, as Letta does.
type Page struct {
	Before, After string
	Limit         int
	Order         Order
	// MaxBytes, when above 0, ends a page early once its items hold this
	// many bytes of content: the page is shorter than Limit, and the
	// client pages on from its last item. It bounds what one listing
	// holds in memory.
	MaxBytes int
}

// Full reports whether a page with items items holding size bytes is
// complete.
func (p Page) Full(items, size int) bool {
	return items >= p.Limit || p.MaxBytes > 0 && size >= p.MaxBytes
}
