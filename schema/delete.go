package schema

import (
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// DeleteAgent deletes every key of an agent but its actor state (which the
// actor deletes with its commit, and its index entries, IndexAgent's):
// block and tool attachments both ways, links to identities, messages with their indexes, runs, conversations, passages, answered keys,
// its memory repository and its turn in progress; it leaves its groups (see leaveGroups). Its
// blocks remain.
func DeleteAgent(txn kv.Txn, a *Agent) error {
	err := deleteEach(txn, AttachmentsOf(a.ID), func(p kv.KeyValue) error {
		return txn.Delete(BlockAgentKey(LastPart(p.Key), a.ID))
	})
	if err != nil {
		return err
	}
	identities, err := IdentitiesOfAgent(txn, a.ID)
	if err != nil {
		return err
	}
	for _, id := range identities {
		if err := SetIdentityAgent(txn, id, a.ID, false); err != nil {
			return err
		}
	}
	if err := leaveGroups(txn, a.ID); err != nil {
		return err
	}
	if err := deleteAgentFolders(txn, a.ID); err != nil {
		return err
	}
	steps := []struct {
		prefix []byte
		also   func(kv.KeyValue) error
	}{
		{MessagesOf(a.ID), func(p kv.KeyValue) error { return deleteMessageIndexes(txn, p.Value) }},
		{[]byte(AgentConversationsOf(a.ID)), func(p kv.KeyValue) error {
			if err := deleteEach(txn, ContextMessagesOf(LastPart(p.Key)), nil); err != nil {
				return err
			}
			return txn.Delete(ConversationKey(LastPart(p.Key)))
		}},
		{ContextMessagesOf(a.ID), nil},
		{AgentRunsOf(a.ID), func(p kv.KeyValue) error { return deleteRun(txn, LastPart(p.Key)) }},
		{AgentArchivesOf(a.ID), func(p kv.KeyValue) error { return txn.Delete(ArchiveAgentKey(LastPart(p.Key), a.ID)) }},
		{TurnKeysOf(a.ID), nil},
		{AgentToolsOf(a.ID), func(p kv.KeyValue) error { return txn.Delete(ToolAgentKey(LastPart(p.Key), a.ID)) }},
	}
	for _, s := range steps {
		if err := deleteEach(txn, s.prefix, s.also); err != nil {
			return err
		}
	}
	if err := DeletePassagesOf(txn, a.ID); err != nil {
		return err
	}
	if err := deleteRepository(txn, a.ID); err != nil {
		return err
	}
	return txn.Delete(ActiveRunKey(a.ID))
}

func deleteMessageIndexes(txn kv.Txn, data []byte) error {
	m, err := DecodeMessage(data)
	if err != nil {
		return err
	}
	if m.ConversationID != "" {
		if err := txn.Delete(ConversationMessageKey(m.ConversationID, m.Seq)); err != nil {
			return err
		}
	}
	return txn.Delete(MessageIDKey(m.ID))
}

func deleteRun(txn kv.Txn, runID string) error {
	run, err := GetRun(txn, runID)
	if letta.KindOf(err) == letta.KindNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if err := txn.Delete(IndexKey(RunIndex.Prefix, run.CreatedAt, runID)); err != nil {
		return err
	}
	if err := deleteRunSteps(txn, runID); err != nil {
		return err
	}
	return txn.Delete(RunKey(runID))
}

// DeleteBlock detaches a block from every agent and identity and deletes it
// with its index entry and its share of the count.
func DeleteBlock(txn kv.Txn, b *Block) error {
	err := deleteEach(txn, BlockAgentsOf(b.ID), func(p kv.KeyValue) error {
		return txn.Delete(AttachmentKey(LastPart(p.Key), b.ID))
	})
	if err != nil {
		return err
	}
	if err := unlinkAll(txn, identityBlocks, b.ID); err != nil {
		return err
	}
	if err := txn.Delete(IndexKey(BlockIndex.Prefix, b.CreatedAt, b.ID)); err != nil {
		return err
	}
	if err := addCount(txn, CountedBlocks, b.ID, -1); err != nil {
		return err
	}
	return txn.Delete(BlockKey(b.ID))
}

// DeletePassagesOf deletes every passage of an agent, archive or folder
// (owner): records, id entries, vectors, scan vectors, its word index and
// counts, and its vector index.
func DeletePassagesOf(txn kv.Txn, owner string) error {
	err := deleteEach(txn, PassagesOf(owner), func(p kv.KeyValue) error { return txn.Delete(PassageIDKey(LastPart(p.Key))) })
	if err != nil {
		return err
	}
	if err := deletePassageIndexOf(txn, owner); err != nil {
		return err
	}
	for _, prefix := range [][]byte{PassageVectorsOf(owner), PassageScanVectorsOf(owner)} {
		if err := deleteEach(txn, prefix, nil); err != nil {
			return err
		}
	}
	return DeleteVectorIndex(txn, owner)
}

// deleteEach deletes every key under prefix, first calling also (if not
// nil) with each pair.
func deleteEach(txn kv.Txn, prefix []byte, also func(kv.KeyValue) error) error {
	kvs, err := txn.Scan(kv.PrefixRange(prefix), 0, false)
	if err != nil {
		return err
	}
	for _, p := range kvs {
		if also != nil {
			if err := also(p); err != nil {
				return err
			}
		}
		if err := txn.Delete(p.Key); err != nil {
			return err
		}
	}
	return nil
}

// DeleteConversation deletes a conversation's record, its index entry and
// its message index. Its messages stay stored (the agent's history, as
// searchable as before), as Letta keeps them.
func DeleteConversation(txn kv.Txn, c *Conversation) error {
	if err := deleteEach(txn, ConversationMessagesOf(c.ID), nil); err != nil {
		return err
	}
	if err := deleteEach(txn, ContextMessagesOf(c.ID), nil); err != nil {
		return err
	}
	if err := txn.Delete(IndexKey(AgentConversationsOf(c.AgentID), c.CreatedAt, c.ID)); err != nil {
		return err
	}
	return txn.Delete(ConversationKey(c.ID))
}
