package schema

import (
	"bytes"
	"slices"
	"sync"
)

// Decoding a stored record is most of what reading one costs, and a turn
// reads the same records at every step: its agent, its context's history
// and system message, the tail its start checks for unanswered calls, the
// memory blocks its start compiles the system prompt from.
// DecodeMessage, DecodeAgent and GetBlock (and so GetMessage and GetAgent) therefore
// remember decoded records by their stored bytes. Equal bytes decode to
// equal records, so an entry never goes stale: a record that is rewritten
// (edited, recompiled, reset, compacted) has new bytes, which are a new
// entry, and a restart starts empty. Nothing is invalidated, and sharing a
// cache across agents (and across the simulator's nodes, which share a
// process) cannot show one caller another's data. Every caller gets its
// own copy (Message.clone, Agent.clone), so no caller's change to a record it
// read shows in what another reads.
const (
	// MessageCacheBytes, AgentCacheBytes and BlockCacheBytes bound the
	// stored bytes of the messages, agents and blocks kept, in bytes
	// (their decoded copies take about as much again).
	MessageCacheBytes = 32 << 20
	AgentCacheBytes   = 16 << 20
	BlockCacheBytes   = 16 << 20
	// maxCachedRecordBytes is the largest stored record kept, in bytes:
	// a larger one would push out many of the records turns reread.
	maxCachedRecordBytes = 64 << 10
)

// decodeCache keeps decoded records in two generations: a lookup promotes
// a record of the older one into the newer, and when the newer fills half
// of the cache's bytes the older is dropped. Recently read records stay;
// memory stays bounded; every operation is O(1).
type decodeCache[T any] struct {
	limit     int // bytes
	mu        sync.Mutex
	cur, prev map[string]*T // by stored bytes; never changed once in
	curBytes  int
}

func newDecodeCache[T any](limit int) *decodeCache[T] {
	return &decodeCache[T]{limit: limit, cur: map[string]*T{}}
}

var (
	decodedMessages = newDecodeCache[Message](MessageCacheBytes)
	decodedAgents   = newDecodeCache[Agent](AgentCacheBytes)
	decodedBlocks   = newDecodeCache[Block](BlockCacheBytes)
)

// get returns the record data decodes to, if kept.
func (c *decodeCache[T]) get(data []byte) *T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.cur[string(data)]; ok {
		return r
	}
	r, ok := c.prev[string(data)]
	if ok {
		c.addLocked(string(data), r)
	}
	return r
}

// put keeps r as what data decodes to; r must not change afterwards.
func (c *decodeCache[T]) put(data []byte, r *T) {
	if len(data) > maxCachedRecordBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(string(data), r)
}

func (c *decodeCache[T]) addLocked(key string, r *T) {
	if c.curBytes+len(key) > c.limit/2 {
		c.prev, c.cur, c.curBytes = c.cur, map[string]*T{}, 0
	}
	if _, ok := c.cur[key]; !ok {
		c.cur[key] = r
		c.curBytes += len(key)
	}
}

// decodeCached decodes data as what (a record of type T), through c;
// clone copies a record so that the copy shares nothing mutable with it.
func decodeCached[T any](c *decodeCache[T], data []byte, what string, clone func(*T) *T) (*T, error) {
	if r := c.get(data); r != nil {
		return clone(r), nil
	}
	r, err := decode[T](data, what)
	if err != nil {
		return nil, err
	}
	c.put(data, clone(r))
	return r, nil
}

// DecodeMessage decodes a stored message. The result is the caller's own.
func DecodeMessage(data []byte) (*Message, error) {
	return decodeCached(decodedMessages, data, "message", (*Message).clone)
}

// clone returns a copy of m that shares nothing mutable with it (strings
// are immutable; every slice and pointer is copied). A field of a
// reference type added to Message must be copied here:
// TestMessageCloneSharesNothing fails until it is.
func (m *Message) clone() *Message {
	c := *m
	c.Content = bytes.Clone(m.Content)
	c.ToolCalls = slices.Clone(m.ToolCalls)
	c.Name = clonePtr(m.Name)
	c.SenderID = clonePtr(m.SenderID)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
