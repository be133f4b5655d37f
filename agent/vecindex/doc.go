// Package vecindex is the approximate-nearest-neighbour index of passage
// vectors, kept in Kelpie's own store: an inverted file (IVF) per owner
// (agent or archive) and space (the vectors of one embedding model and
// dimension), whose lists grow by splitting.
//
// Why an inverted file, and why splitting. The store is a transactional
// key-value store with ordered keys, and every index change must commit in
// the transaction that stores or deletes its passage. An inverted file
// maps onto that directly: a list's postings share a key prefix
// (schema.VectorPostings), so probing a list is one range scan of
// contiguous keys, and adding or removing a vector writes one posting, one
// member entry and its list's centroid record — a small, bounded write set
// that conflicts only with writes to the same owner, which its actor
// serialises anyway. A graph index (HNSW, Vamana) would rewrite the
// neighbour lists of tens of nodes per insert, read hundreds of random
// keys per search, and needs a global repair on deletes. A k-means
// trained once needs a retraining pass over all vectors as a space grows;
// here a list that grows past MaxListVectors is split in two by a 2-means
// of its own members in the inserting transaction (as SPFresh does), which
// rewrites at most MaxListVectors postings: the work is bounded per
// insert, the index is never stale, and no background job must catch up
// after a crash. A list's centroid follows the mean of the vectors added
// to it, and a split checks the postings of the two new lists and of the
// ReassignNeighbours lists nearest them against those lists' centroids,
// moving each to the nearest (SPFresh's reassignment, bounded to those
// lists); a vector may still sit in a list whose centroid is not its
// nearest (its list drifted, or a farther split moved a centroid), and
// probing several lists absorbs that.
//
// Guarantees:
//   - Add and Remove run in the caller's transaction: an acknowledged
//     insert is searchable, and a crash leaves index and passages
//     consistent (schema.Check states the rules: every embedded passage has
//     exactly one posting or a scan vector; every posting and member entry
//     has its passage; a list's count is its postings').
//   - A search of a space holding at most ProbeVectors vectors reads all of
//     them: it is exact. Larger spaces are probed list by list, nearest
//     centroid first, until ProbeVectors postings are read.
//   - Deterministic: no randomness and no clock; the same inserts in the
//     same order build the same index (the simulator replays it).
//   - Passages embedded before the index existed (their vector in
//     schema.PassageScanVectors) are searched by a whole scan, and moved
//     into the index by the first insert into their space.
package vecindex
