// Package memfs is an agent's memory as a git repository (Letta's MemFS):
// one Markdown file per block, in Letta's layout, kept in Kelpie's own
// store and served over git's smart HTTP protocol.
//
// Guarantees:
//   - The repository's objects and refs are keys of the store (Store, over
//     a kv transaction): whatever writes them commits them in the same
//     transaction as everything else it writes, or not at all. The agent
//     service applies a push (objects, ref, block changes) in one agent
//     invocation, so an acknowledged push and its blocks are durable
//     together, and a failed one leaves both as they were.
//   - Objects are stored under their hash and checked against it when read.
//   - Sync commits only when the blocks and the branch's files disagree, and
//     keeps byte for byte every file that already says what its block holds,
//     and every file that is no block.
//   - Block files follow Letta's rules (path_mapping, block_markdown): a
//     label is `<label>.md`, a skill `skills/<name>/SKILL.md`, other files
//     under skills/ are not blocks; Render and Parse agree (a rendered file
//     parses back to what its block holds), in both formats (see Format).
//
// Rules between the families (a ref names a stored object of its own
// repository; a deleted agent leaves no repository) are schema.Check's.
package memfs
