//go:build !linux

package wasmhost

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator is wazero's default elsewhere than on Linux.
var memoryAllocator experimental.MemoryAllocator
