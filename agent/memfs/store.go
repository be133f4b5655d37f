package memfs

import (
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Branch is the repository's one branch: HEAD names it, and its tree is
// the agent's memory.
const Branch = plumbing.ReferenceName("refs/heads/main")

// Store is an agent's repository inside a kv transaction: go-git's object
// and reference storer over the schema's GitObjects and GitRefs families.
// Every write is buffered in the transaction, so it commits with whatever
// else the transaction does, or not at all.
type Store struct {
	txn     kv.Txn
	agentID string
}

// NewStore is the repository of agentID in txn.
func NewStore(txn kv.Txn, agentID string) *Store { return &Store{txn: txn, agentID: agentID} }

var errUnsupported = errors.New("memfs: not supported by Kelpie's repository store")

// NewEncodedObject returns an empty object to fill and store.
func (s *Store) NewEncodedObject() plumbing.EncodedObject { return &plumbing.MemoryObject{} }

// SetEncodedObject stores an object under its hash.
func (s *Store) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	r, err := o.Reader()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer r.Close()
	content, err := io.ReadAll(r)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	h := o.Hash()
	v := make([]byte, 1+len(content))
	v[0] = byte(o.Type())
	copy(v[1:], content)
	return h, s.txn.Set(schema.GitObjectKey(s.agentID, h.String()), v)
}

// EncodedObject returns the object with hash h (of type t, unless t is
// AnyObject).
func (s *Store) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	v, err := s.txn.Get(schema.GitObjectKey(s.agentID, h.String()))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, plumbing.ErrObjectNotFound
	}
	if err != nil {
		return nil, err
	}
	o, err := decodeObject(h, v)
	if err != nil {
		return nil, err
	}
	if t != plumbing.AnyObject && o.Type() != t {
		return nil, plumbing.ErrObjectNotFound
	}
	return o, nil
}

func decodeObject(h plumbing.Hash, v []byte) (plumbing.EncodedObject, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("memfs: stored object %s is empty", h)
	}
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.ObjectType(v[0]))
	if _, err := o.Write(v[1:]); err != nil {
		return nil, err
	}
	if o.Hash() != h {
		return nil, fmt.Errorf("memfs: stored object %s hashes to %s", h, o.Hash())
	}
	return o, nil
}

// IterEncodedObjects iterates over the stored objects of type t.
func (s *Store) IterEncodedObjects(t plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	kvs, err := s.txn.Scan(kv.PrefixRange(schema.GitObjectsOf(s.agentID)), 0, false)
	if err != nil {
		return nil, err
	}
	var objs []plumbing.EncodedObject
	for _, p := range kvs {
		o, err := decodeObject(plumbing.NewHash(schema.LastPart(p.Key)), p.Value)
		if err != nil {
			return nil, err
		}
		if t == plumbing.AnyObject || o.Type() == t {
			objs = append(objs, o)
		}
	}
	return storer.NewEncodedObjectSliceIter(objs), nil
}

// HasEncodedObject answers nil if the object is stored.
func (s *Store) HasEncodedObject(h plumbing.Hash) error {
	_, err := s.txn.Get(schema.GitObjectKey(s.agentID, h.String()))
	if errors.Is(err, kv.ErrNotFound) {
		return plumbing.ErrObjectNotFound
	}
	return err
}

// EncodedObjectSize returns the size of a stored object's content.
func (s *Store) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	o, err := s.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return 0, err
	}
	return o.Size(), nil
}

// AddAlternate is refused: a repository holds its own objects.
func (s *Store) AddAlternate(string) error { return errUnsupported }

// head is HEAD: always the symbolic ref to Branch.
var head = plumbing.NewSymbolicReference(plumbing.HEAD, Branch)

// SetReference stores a hash reference.
func (s *Store) SetReference(r *plumbing.Reference) error {
	if r.Name() == plumbing.HEAD {
		if r.Type() == plumbing.SymbolicReference && r.Target() == Branch {
			return nil
		}
		return fmt.Errorf("memfs: HEAD always names %s", Branch)
	}
	if r.Type() != plumbing.HashReference {
		return fmt.Errorf("memfs: %s: only hash references are stored", r.Name())
	}
	return s.txn.Set(schema.GitRefKey(s.agentID, r.Name().String()), []byte(r.Hash().String()))
}

// CheckAndSetReference stores r if the ref still holds old's hash.
func (s *Store) CheckAndSetReference(r, old *plumbing.Reference) error {
	if old != nil {
		cur, err := s.Reference(old.Name())
		if err != nil {
			return err
		}
		if cur.Hash() != old.Hash() {
			return fmt.Errorf("memfs: reference %s has changed", old.Name())
		}
	}
	return s.SetReference(r)
}

// Reference returns the named reference.
func (s *Store) Reference(n plumbing.ReferenceName) (*plumbing.Reference, error) {
	if n == plumbing.HEAD {
		return head, nil
	}
	v, err := s.txn.Get(schema.GitRefKey(s.agentID, n.String()))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, plumbing.ErrReferenceNotFound
	}
	if err != nil {
		return nil, err
	}
	return plumbing.NewHashReference(n, plumbing.NewHash(string(v))), nil
}

// IterReferences iterates over the stored references and HEAD.
func (s *Store) IterReferences() (storer.ReferenceIter, error) {
	prefix := schema.GitRefsOf(s.agentID)
	kvs, err := s.txn.Scan(kv.PrefixRange(prefix), 0, false)
	if err != nil {
		return nil, err
	}
	refs := []*plumbing.Reference{head}
	for _, p := range kvs {
		name := plumbing.ReferenceName(p.Key[len(prefix):])
		refs = append(refs, plumbing.NewHashReference(name, plumbing.NewHash(string(p.Value))))
	}
	return storer.NewReferenceSliceIter(refs), nil
}

// RemoveReference deletes a reference.
func (s *Store) RemoveReference(n plumbing.ReferenceName) error {
	return s.txn.Delete(schema.GitRefKey(s.agentID, n.String()))
}

// CountLooseRefs counts the stored references.
func (s *Store) CountLooseRefs() (int, error) {
	kvs, err := s.txn.Scan(kv.PrefixRange(schema.GitRefsOf(s.agentID)), 0, false)
	return len(kvs), err
}

// PackRefs has nothing to do: references are keys.
func (s *Store) PackRefs() error { return nil }

// Head returns the commit Branch names, or ZeroHash for an empty
// repository.
func (s *Store) Head() (plumbing.Hash, error) {
	r, err := s.Reference(Branch)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return r.Hash(), nil
}
