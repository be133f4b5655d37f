package letta

import "time"

// Timestamp is an entity's time (created_at, updated_at, completed_at) as
// Letta renders it: RFC 3339 in UTC with a Z and microseconds.
type Timestamp struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format("2006-01-02T15:04:05.999999Z") + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error { return t.Time.UnmarshalJSON(b) }

// MessageDate is a message's date as Letta renders it: ISO 8601 to the
// second, with a numeric UTC offset.
type MessageDate struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (d MessageDate) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.UTC().Format("2006-01-02T15:04:05+00:00") + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *MessageDate) UnmarshalJSON(b []byte) error { return d.Time.UnmarshalJSON(b) }
