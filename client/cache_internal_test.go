package client

import (
	"testing"
	"time"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// TestCacheKeepsOnlyTheFollowedReplicasAnswers: an answer of a replica
// the stream does not follow (another may not have applied a change the
// followed one has sent) is not kept; nor one asked while an event came.
func TestCacheKeepsOnlyTheFollowedReplicasAnswers(t *testing.T) {
	c := newCache(time.Minute, time.Hour)
	c.heard.Store(time.Now().UnixNano())
	c.follows("replica-a")
	k := &keyservicev1.Key{Id: "k"}
	var h [32]byte
	h[0] = 1
	c.put(&h, "", k, c.epoch(), "replica-b")
	if _, ok := c.get(&h, "", nil); ok {
		t.Fatal("an answer of replica-b was kept by a cache following replica-a")
	}
	e := c.epoch()
	c.drop([]byte{9, 9, 9, 9, 9, 9, 9, 9})
	c.put(&h, "", k, e, "replica-a")
	if _, ok := c.get(&h, "", nil); ok {
		t.Fatal("an answer asked while an event came was kept")
	}
	c.put(&h, "", k, c.epoch(), "replica-a")
	if _, ok := c.get(&h, "", nil); !ok {
		t.Fatal("an answer of the followed replica was not kept")
	}
	c.follows("replica-c")
	if _, ok := c.get(&h, "", nil); ok {
		t.Fatal("following another replica kept what the first one vouched for")
	}
}
