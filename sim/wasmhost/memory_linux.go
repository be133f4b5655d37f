package wasmhost

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryAllocator backs each guest's linear memory with its own mapping:
// the whole maximum is reserved as address space up front and made usable
// as the guest grows, so growing never copies, and closing the guest gives
// the memory back to the system at once instead of leaving hundreds of
// megabytes to the host's garbage collector. Peak memory then stays near
// what the running guests use.
var memoryAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(
	func(capacity, max uint64) experimental.LinearMemory {
		reserved, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE,
			syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
		if err != nil {
			return &sliceMemory{buf: make([]byte, 0, capacity)}
		}
		return &mappedMemory{reserved: reserved}
	})

// mappedMemory is a linear memory in a reserved mapping.
type mappedMemory struct {
	reserved []byte
	usable   int // bytes of reserved that are readable and writable
}

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.reserved)) {
		return nil
	}
	if n := int(size); n > m.usable {
		if err := syscall.Mprotect(m.reserved[m.usable:n], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		m.usable = n
	}
	return m.reserved[:size:size]
}

func (m *mappedMemory) Free() {
	if m.reserved != nil {
		syscall.Munmap(m.reserved)
		m.reserved, m.usable = nil, 0
	}
}

// sliceMemory is a linear memory in a Go slice, as wazero keeps one by
// default.
type sliceMemory struct{ buf []byte }

func (m *sliceMemory) Reallocate(size uint64) []byte {
	if n := int(size); n > len(m.buf) {
		m.buf = append(m.buf, make([]byte, n-len(m.buf))...)
	}
	return m.buf[:size]
}

func (m *sliceMemory) Free() { m.buf = nil }
