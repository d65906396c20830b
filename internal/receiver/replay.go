package receiver

import (
	"crypto/sha256"
	"strings"
	"sync"
	"time"

	"github.com/diditflow/diditflow/didit"
)

// DefaultReplayCacheTTL is how long an accepted delivery is remembered when
// Config.ReplayCacheTTL is zero: twice the signature window
// (didit.DefaultTolerance, 300 s). A body signed at T verifies only while
// now is within T±300 s, so it was accepted no earlier than T−300 s and no
// replay of it verifies later than T+300 s: 10 minutes after its acceptance
// every replay is refused (401) before the cache is asked, and remembering it
// longer buys nothing. Didit's own retries (about 1 and 4 minutes after the
// first attempt, SPEC §3.1) fall well inside.
const DefaultReplayCacheTTL = 2 * didit.DefaultTolerance

// replayKey names one verified delivery by what its signature authenticated
// (didit.Proof.Digest): the canonical form of its body after X-Signature or
// X-Signature-V2, the envelope message after X-Signature-Simple alone, which
// proves less and so is kept apart. It is computed only after verification,
// so a forger cannot make one: a key equal to a cached one takes content
// signed with a valid signature, and then the event, and so the signal, is
// the one Temporal already holds (the receive time aside).
//
// Every encoding of one signed content is one key: Didit's retries of an
// attempt that are not re-signed, a captured delivery replayed within the
// window as it was or re-encoded (other spacing, member order, 1.0 for 1, a
// member repeated: X-Signature-V2 verifies them all), fan-out to several
// destinations on this endpoint. A delivery re-signed with a fresh timestamp
// (Didit's resend, SPEC §4.5; its retries, if they are re-signed, §1.6)
// carries that timestamp in its body too, so it is a new key: it is
// signalled, and the workflow drops the duplicate by its event key.
type replayKey struct {
	digest       [sha256.Size]byte
	envelopeOnly bool
}

// replayEntry is one accepted delivery: when Temporal accepted it and the run
// that holds it.
type replayEntry struct {
	key   replayKey
	at    time.Time
	runID string
}

// replayCache remembers the deliveries Temporal accepted, at most size of
// them and each for at most ttl. It is a ring in acceptance order with a map
// from key to position: acceptance order is age order, so the oldest entry,
// the one to evict when full, is always at the tail, and expired entries
// are a run from the tail, dropped as the cache is used. A hit does not
// refresh an entry: its age is the age of what Temporal holds, and the
// signature window, not popularity, decides how long a replay can come.
//
// Memory is bounded by size (the ring grows by doubling up to it, so an idle
// receiver holds little; the map never holds more than size keys); there is
// no goroutine and no timer. One mutex guards it: each use is a map lookup
// and a few stores.
type replayCache struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	index map[replayKey]uint64 // key → sequence number
	ring  []replayEntry        // entry with sequence s at ring[s%len(ring)]
	tail  uint64               // sequence number of the oldest entry
	head  uint64               // sequence number of the next entry
}

// newReplayCache returns nil when size is not positive: no cache.
func newReplayCache(size int, ttl time.Duration, now func() time.Time) *replayCache {
	if size <= 0 {
		return nil
	}
	if ttl <= 0 {
		ttl = DefaultReplayCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &replayCache{size: size, ttl: ttl, now: now, index: make(map[replayKey]uint64)}
}

// lookup returns the run that holds the delivery named by k, if Temporal
// accepted it less than ttl ago.
func (c *replayCache) lookup(k replayKey) (runID string, ok bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	s, ok := c.index[k]
	if !ok {
		return "", false
	}
	return c.slot(s).runID, true
}

// add remembers that Temporal accepted the delivery named by k into run
// runID. Call it only after the signal succeeded. A key already present
// (two identical deliveries signalled at once) keeps its older entry, which
// expires first.
func (c *replayCache) add(k replayKey, runID string) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, ok := c.index[k]; ok {
		return
	}
	if c.len() == c.size {
		c.evict()
	}
	if c.len() == len(c.ring) {
		c.grow()
	}
	// Cloned, so that an entry never pins a larger buffer the run ID may
	// have been cut from.
	*c.slot(c.head) = replayEntry{key: k, at: now, runID: strings.Clone(runID)}
	c.index[k] = c.head
	c.head++
}

// entries is how many deliveries are remembered and not expired.
func (c *replayCache) entries() int {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	return c.len()
}

func (c *replayCache) len() int { return int(c.head - c.tail) }

func (c *replayCache) slot(s uint64) *replayEntry { return &c.ring[s%uint64(len(c.ring))] }

// expire drops the entries accepted ttl or longer ago, oldest first.
func (c *replayCache) expire(now time.Time) {
	for c.tail != c.head && now.Sub(c.slot(c.tail).at) >= c.ttl {
		c.evict()
	}
}

// evict drops the oldest entry.
func (c *replayCache) evict() {
	e := c.slot(c.tail)
	delete(c.index, e.key)
	*e = replayEntry{}
	c.tail++
}

// grow doubles the ring, up to size, keeping every entry's sequence number.
func (c *replayCache) grow() {
	ring := make([]replayEntry, min(max(2*len(c.ring), 64), c.size))
	for s := c.tail; s != c.head; s++ {
		ring[s%uint64(len(ring))] = *c.slot(s)
	}
	c.ring = ring
}
