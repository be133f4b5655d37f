package kv_test

import (
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/kvtest"
)

func TestMemStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) kv.Store { return kv.NewMemDB() })
}

func TestMemCorruption(t *testing.T) {
	kvtest.TestCorruption(t, kv.NewMemEngine())
}
