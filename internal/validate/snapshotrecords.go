package validate

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"github.com/keyservice/keyservice/internal/keys"
)

// Memory mode's records travel in the fleet's snapshot (snapshot.go): the
// replica that reads the table writes them with the filter, and the
// others load them instead of reading the table.
//
// The form: recordsMagic, the SHA-256 of everything after it, the number
// of records (uvarint), then each record's hash (32 bytes) and its
// encoded bytes (record.go; self-delimiting). The magic carries the
// record format's version: change encodeRecord, bump it, and a replica of
// the other version reads the table instead of misreading the records
// (during a rolling upgrade, say).
const recordsMagic = "KSR\x01"

const recordsHeader = len(recordsMagic) + sha256.Size

var errBadRecords = errors.New("memory records in the snapshot do not decode")

// marshal writes every record of t. t must not change meanwhile (it is
// called before the table is swapped in).
func (t *records) marshal() []byte {
	size := recordsHeader + binary.MaxVarintLen64
	for i := range t.shards {
		s := &t.shards[i]
		size += len(s.data) - s.dead + len(s.idx)*len(keys.Hash{})
	}
	b := make([]byte, recordsHeader, size)
	b = binary.AppendUvarint(b, uint64(t.keys.Load()))
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for h, off := range s.idx {
			b = append(b, h[:]...)
			b = append(b, s.data[off:int(off)+recordLen(s.data[off:])]...)
		}
		s.mu.RUnlock()
	}
	copy(b, recordsMagic)
	sum := sha256.Sum256(b[recordsHeader:])
	copy(b[len(recordsMagic):], sum[:])
	return b
}

// unmarshalRecords rebuilds a table from marshal's bytes; errBadRecords
// when they are not that (another version, a checksum that does not
// match, a record running past the end).
func unmarshalRecords(b []byte) (*records, error) {
	if len(b) < recordsHeader || string(b[:len(recordsMagic)]) != recordsMagic {
		return nil, errBadRecords
	}
	sum := sha256.Sum256(b[recordsHeader:])
	if subtle.ConstantTimeCompare(sum[:], b[len(recordsMagic):recordsHeader]) != 1 {
		return nil, errBadRecords
	}
	b = b[recordsHeader:]
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, errBadRecords
	}
	b = b[w:]
	t := newRecordsSized(int(n))
	for range n {
		if len(b) < len(keys.Hash{})+1 {
			return nil, errBadRecords
		}
		h := keys.Hash(b[:len(keys.Hash{})])
		b = b[len(keys.Hash{}):]
		l, w := binary.Uvarint(b)
		if w <= 0 || l > uint64(len(b)-w) {
			return nil, errBadRecords
		}
		t.putRaw(h, b[:w+int(l)])
		b = b[w+int(l):]
	}
	if len(b) != 0 {
		return nil, errBadRecords
	}
	t.trim()
	return t, nil
}

// newRecordsSized is newRecords with room for n keys, so that a load does
// not grow every map step by step.
func newRecordsSized(n int) *records {
	t := &records{}
	for i := range t.shards {
		t.shards[i].idx = make(map[keys.Hash]uint32, n/len(t.shards)+n/len(t.shards)/8)
	}
	return t
}
