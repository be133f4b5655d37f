package kvtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// commitWithRetry runs f in transactions until one commits without
// conflict. It backs off: a key being committed conflicts until the commit's
// sync finishes, so retrying at once would only spin.
func commitWithRetry(s kv.Store, f func(tx kv.Txn) error) error {
	for attempt := range 1000 {
		tx, err := s.Begin(context.Background())
		if err != nil {
			return err
		}
		if err = f(tx); err == nil {
			err = tx.Commit(context.Background())
		}
		tx.Discard()
		if !errors.Is(err, kv.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(1<<min(attempt, 10))) * time.Microsecond)
	}
	return errors.New("too many conflicts")
}

func testConcurrentCounters(t *testing.T, s kv.Store) {
	const goroutines, increments, counters = 16, 25, 4
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range increments {
				key := []byte(fmt.Sprintf("ctr/%d", (g+i)%counters))
				err := commitWithRetry(s, func(tx kv.Txn) error {
					n := 0
					v, err := tx.Get(key)
					switch {
					case err == nil:
						if n, err = strconv.Atoi(string(v)); err != nil {
							return err
						}
					case !errors.Is(err, kv.ErrNotFound):
						return err
					}
					return tx.Set(key, []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Errorf("goroutine %d increment %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := model{}
	for g := range goroutines {
		for i := range increments {
			k := fmt.Sprintf("ctr/%d", (g+i)%counters)
			n, _ := strconv.Atoi(want[k])
			want[k] = strconv.Itoa(n + 1)
		}
	}
	tx := begin(t, s)
	defer tx.Discard()
	checkScan(t, tx, want, kv.PrefixRange([]byte("ctr/")), 0, false)
}

// testConcurrentTransfers moves units between accounts while readers check
// that every snapshot sees the same total: no reader sees half a commit.
func testConcurrentTransfers(t *testing.T, s kv.Store) {
	const accounts, initial, movers, transfers, readers = 5, 100, 6, 20, 2
	update(t, s, func(tx kv.Txn) {
		for a := range accounts {
			must(t, tx.Set(accountKey(a), []byte(strconv.Itoa(initial))))
		}
	})
	var wg, moversWG sync.WaitGroup
	done := make(chan struct{})
	for m := range movers {
		moversWG.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(m), 7))
			for range transfers {
				from, to := rng.IntN(accounts), rng.IntN(accounts)
				if err := commitWithRetry(s, func(tx kv.Txn) error { return transfer(tx, from, to) }); err != nil {
					t.Errorf("transfer: %v", err)
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				tx, err := s.Begin(context.Background())
				if err != nil {
					t.Errorf("Begin: %v", err)
					return
				}
				sum, err := totalBalance(tx)
				tx.Discard()
				if err != nil || sum != accounts*initial {
					t.Errorf("reader saw total %d, %v; want %d", sum, err, accounts*initial)
					return
				}
			}
		})
	}
	moversWG.Wait()
	close(done)
	wg.Wait()
	tx := begin(t, s)
	defer tx.Discard()
	if sum, err := totalBalance(tx); err != nil || sum != accounts*initial {
		t.Fatalf("final total %d, %v; want %d", sum, err, accounts*initial)
	}
}

func accountKey(a int) []byte { return []byte(fmt.Sprintf("acct/%d", a)) }

// transfer moves one unit from one account to another.
func transfer(tx kv.Txn, from, to int) error {
	for _, d := range []struct{ acct, delta int }{{from, -1}, {to, +1}} {
		key := accountKey(d.acct)
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return err
		}
		if err := tx.Set(key, []byte(strconv.Itoa(n+d.delta))); err != nil {
			return err
		}
	}
	return nil
}

// totalBalance sums every account's balance.
func totalBalance(tx kv.Txn) (int, error) {
	kvs, err := tx.Scan(kv.PrefixRange([]byte("acct/")), 0, false)
	if err != nil {
		return 0, err
	}
	sum := 0
	for _, p := range kvs {
		n, err := strconv.Atoi(string(p.Value))
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}
