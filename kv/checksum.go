package kv

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

const checksumBytes = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// seal prefixes value with a CRC-32C of key and value. Covering the key
// catches a value that was written, or read back, under the wrong key.
func seal(key, value []byte) []byte {
	out := make([]byte, checksumBytes+len(value))
	copy(out[checksumBytes:], value)
	binary.BigEndian.PutUint32(out, checksum(key, value))
	return out
}

// Unseal verifies the stored bytes of key (as an Engine holds them: a
// checksum, then the value) and returns the value inside, or ErrCorrupt. DB
// does this on every read; tools that read an Engine directly (the
// simulator's storage checker) use it to see values as DB would.
func Unseal(key, stored []byte) ([]byte, error) {
	if len(stored) < checksumBytes {
		return nil, fmt.Errorf("%w: key %q: %d bytes is shorter than its checksum", ErrCorrupt, key, len(stored))
	}
	value := stored[checksumBytes:]
	if want, got := binary.BigEndian.Uint32(stored), checksum(key, value); want != got {
		return nil, fmt.Errorf("%w: key %q: checksum %08x, stored %08x", ErrCorrupt, key, got, want)
	}
	return value, nil
}

func checksum(key, value []byte) uint32 {
	c := crc32.Update(0, castagnoli, key)
	return crc32.Update(c, castagnoli, value)
}

// PutEpoch encodes a fencing epoch as the value stored at a fence key.
func PutEpoch(epoch uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, epoch)
}

// ParseEpoch decodes a value written by PutEpoch.
func ParseEpoch(value []byte) (uint64, error) {
	if len(value) != 8 {
		return 0, fmt.Errorf("%w: epoch is %d bytes, want 8", ErrCorrupt, len(value))
	}
	return binary.BigEndian.Uint64(value), nil
}
