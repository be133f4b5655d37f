package schema

import (
	"bytes"
	"slices"
	"sync"
)

// Decoding a stored message is most of what reading one costs, and a turn
// reads the same messages at every step: its context's history and system
// message, the tail its start checks for unanswered calls. DecodeMessage
// therefore remembers decoded messages by their stored bytes. Equal bytes
// decode to equal messages, so an entry never goes stale: a message that
// is rewritten (edited, recompiled, reset, compacted) has new bytes, which
// are a new entry, and a restart starts empty. Nothing is invalidated, and
// sharing the cache across agents (and across the simulator's nodes, which
// share a process) cannot show one caller another's data. Every caller
// gets its own copy (Message.clone), so no caller's change to a message it
// read shows in what another reads.
const (
	// MessageCacheBytes bounds the stored bytes of the messages kept, in
	// bytes (their decoded copies take about as much again).
	MessageCacheBytes = 32 << 20
	// maxCachedMessageBytes is the largest stored message kept, in bytes:
	// a larger one would push out many of the messages turns reread.
	maxCachedMessageBytes = 64 << 10
)

// messageCache keeps decoded messages in two generations: a lookup
// promotes a message of the older one into the newer, and when the newer
// fills half of MessageCacheBytes the older is dropped. Recently read
// messages stay; memory stays bounded; every operation is O(1).
type messageCache struct {
	mu        sync.Mutex
	cur, prev map[string]*Message // by stored bytes; never changed once in
	curBytes  int
}

var decodedMessages = &messageCache{cur: map[string]*Message{}}

// get returns the message data decodes to, if kept.
func (c *messageCache) get(data []byte) *Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.cur[string(data)]; ok {
		return m
	}
	m, ok := c.prev[string(data)]
	if ok {
		c.addLocked(string(data), m)
	}
	return m
}

// put keeps m as what data decodes to; m must not change afterwards.
func (c *messageCache) put(data []byte, m *Message) {
	if len(data) > maxCachedMessageBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(string(data), m)
}

func (c *messageCache) addLocked(key string, m *Message) {
	if c.curBytes+len(key) > MessageCacheBytes/2 {
		c.prev, c.cur, c.curBytes = c.cur, map[string]*Message{}, 0
	}
	if _, ok := c.cur[key]; !ok {
		c.cur[key] = m
		c.curBytes += len(key)
	}
}

// DecodeMessage decodes a stored message. The result is the caller's own.
func DecodeMessage(data []byte) (*Message, error) {
	if m := decodedMessages.get(data); m != nil {
		return m.clone(), nil
	}
	m, err := decode[Message](data, "message")
	if err != nil {
		return nil, err
	}
	decodedMessages.put(data, m.clone())
	return m, nil
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
