// Package perm names what a credential may do: one permission per kind of
// action, held as a bit set so that checking one on the hot path is a mask.
// It is a leaf: the middleware's table of methods (which permission each
// RPC needs), the service's escalation rules and the store read it.
package perm

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Permission is one action a credential may be allowed.
type Permission uint8

// The permissions, in the order they are listed.
const (
	KeysValidate Permission = iota
	KeysRead
	KeysCreate
	KeysUpdate
	KeysRotate
	KeysRevoke
	AuditRead
	KeyspacesRead
	KeyspacesWrite
	CredentialsRead
	CredentialsWrite
	UsageRead
	count
)

var names = [count]string{
	KeysValidate:     "keys.validate",
	KeysRead:         "keys.read",
	KeysCreate:       "keys.create",
	KeysUpdate:       "keys.update",
	KeysRotate:       "keys.rotate",
	KeysRevoke:       "keys.revoke",
	AuditRead:        "audit.read",
	KeyspacesRead:    "keyspaces.read",
	KeyspacesWrite:   "keyspaces.write",
	CredentialsRead:  "credentials.read",
	CredentialsWrite: "credentials.write",
	UsageRead:        "usage.read",
}

func (p Permission) String() string {
	if p < count {
		return names[p]
	}
	return fmt.Sprintf("permission(%d)", p)
}

// Set is a set of permissions.
type Set uint32

// All is every permission: what a bootstrap admin token holds.
const All Set = 1<<count - 1

// Of is the set of ps.
func Of(ps ...Permission) Set {
	var s Set
	for _, p := range ps {
		s |= 1 << p
	}
	return s
}

// Has reports whether s holds p.
func (s Set) Has(p Permission) bool { return s&(1<<p) != 0 }

// Within reports whether every permission of s is in t.
func (s Set) Within(t Set) bool { return s&^t == 0 }

// Len is how many permissions s holds.
func (s Set) Len() int { return bits.OnesCount32(uint32(s)) }

// Names lists s's permissions by name, in the order of the constants.
func (s Set) Names() []string {
	out := make([]string, 0, s.Len())
	for p := range count {
		if s.Has(p) {
			out = append(out, names[p])
		}
	}
	return out
}

func (s Set) String() string { return strings.Join(s.Names(), ",") }

// Names is every permission's name, in order.
func Names() []string { return All.Names() }

// Parse reads permission names; an unknown name is an error naming it and
// the known ones.
func Parse(in []string) (Set, error) {
	var s Set
	for _, n := range in {
		i := slices.Index(names[:], n)
		if i < 0 {
			return 0, fmt.Errorf("unknown permission %q (known: %s)", n, strings.Join(names[:], ", "))
		}
		s |= 1 << i
	}
	return s, nil
}

// ParseKnown reads the permission names it knows and returns the others:
// a stored credential written by a newer release keeps what this one
// understands, and gains nothing it does not (fail closed).
func ParseKnown(in []string) (Set, []string) {
	var s Set
	var unknown []string
	for _, n := range in {
		if i := slices.Index(names[:], n); i >= 0 {
			s |= 1 << i
		} else {
			unknown = append(unknown, n)
		}
	}
	return s, unknown
}
