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
}
