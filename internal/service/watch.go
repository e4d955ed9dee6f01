package service

import (
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keyevents"
)

// Heartbeats of WatchKeyEvents: how often one comes when no event does.
const (
	defaultHeartbeat = time.Second
	minHeartbeat     = 100 * time.Millisecond
	maxHeartbeat     = time.Minute
)

var errShuttingDown = status.Error(codes.Unavailable, "this replica is shutting down: watch another, resuming from the last cursor")

var eventKinds = [...]keyservicev1.KeyEventKind{
	keyevents.Created: keyservicev1.KeyEventKind_KEY_EVENT_KIND_CREATED,
	keyevents.Updated: keyservicev1.KeyEventKind_KEY_EVENT_KIND_UPDATED,
	keyevents.Revoked: keyservicev1.KeyEventKind_KEY_EVENT_KIND_REVOKED,
	keyevents.Tenancy: keyservicev1.KeyEventKind_KEY_EVENT_KIND_TENANCY,
	keyevents.Credits: keyservicev1.KeyEventKind_KEY_EVENT_KIND_CREDITS,
}

// cacheable reports whether a VALID answer for k may be kept by a caller
// that follows WatchKeyEvents: nothing about the key's answer depends on a
// budget (its own rate limit, credits, its owner's budgets) or on the
// call's address. The fleet's default key limit (KEYSERVICE_KEY_RATE) is
// spent only by the calls that reach the server.
func cacheable(k *apikey.Key, v bool, owner *apikey.Owner) bool {
	return v && k.RateLimit == nil && !k.Credits && len(k.AllowedCIDRs) == 0 && owner == nil
}

// WatchKeyEvents streams this replica's events (see keyevents) that the
// caller may see: the events it missed when it resumes from a cursor, then
// a heartbeat (or a resync, when the cursor cannot be resumed) saying it
// has caught up, then every event, and a heartbeat whenever none came for
// the interval. A
// caller that falls more than the window behind is sent a resync. The
// stream ends when the caller's credential is revoked or expires.
func (s *Service) WatchKeyEvents(req *keyservicev1.WatchKeyEventsRequest, stream grpc.ServerStreamingServer[keyservicev1.WatchKeyEventsResponse]) error {
	if s.events == nil {
		return status.Error(codes.Unimplemented, "this server keeps no key events")
	}
	beat := defaultHeartbeat
	if h := req.GetHeartbeat(); h != nil {
		if err := h.CheckValid(); err != nil {
			return invalid("heartbeat", "is not a valid duration")
		}
		if beat = h.AsDuration(); beat < minHeartbeat || beat > maxHeartbeat {
			return invalid("heartbeat", "must be between %v and %v, got %v", minHeartbeat, maxHeartbeat, beat)
		}
	}
	ctx := stream.Context()
	scope, err := s.validateScope(ctx, "")
	if err != nil {
		return err
	}
	cred := apikey.CredentialOf(ctx)
	send := func(kind keyservicev1.KeyEventKind, seq uint64, e *keyevents.Event) error {
		m := &keyservicev1.WatchKeyEventsResponse{Cursor: s.events.Cursor(seq), Kind: kind}
		if e != nil {
			if e.Kind <= keyevents.Revoked {
				m.KeyHashPrefix = e.Prefix[:]
			}
			m.Time = timestamppb.New(e.At)
		} else {
			m.Time = timestamppb.New(s.now())
		}
		return stream.Send(m)
	}
	// The first heartbeat (or resync) says the caller has caught up: a
	// resumed stream sends the events it missed before it.
	var after uint64
	first := keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT
	if req.GetCursor() == "" {
		after = s.events.Head()
	} else if a, ok := s.events.Resume(req.GetCursor()); ok {
		after = a
	} else {
		after, first = a, keyservicev1.KeyEventKind_KEY_EVENT_KIND_RESYNC
	}
	select {
	case <-s.events.Done():
		return errShuttingDown
	default:
	}
	buf := make([]keyevents.Event, 256)
	// A tick every half interval: a heartbeat when nothing was sent for
	// three quarters of it (idle, one an interval; after an event, silence
	// lasts at most 1.25 intervals; events filtered out for this caller do
	// not count), and the credential checked once an interval whatever
	// flows.
	t := time.NewTicker(beat / 2)
	defer t.Stop()
	lastSent, lastCheck := time.Now(), time.Now()
	sent := func() { lastSent = time.Now() }
	for {
		evs, lost, wake := s.events.Read(after, buf)
		if lost {
			after = s.events.Head()
			if err := send(keyservicev1.KeyEventKind_KEY_EVENT_KIND_RESYNC, after, nil); err != nil {
				return err
			}
			sent()
			continue
		}
		for i := range evs {
			e := &evs[i]
			after = e.Seq
			if e.Keyspace != uuid.Nil && !scope.Allows(e.Keyspace) {
				continue
			}
			if err := send(eventKinds[e.Kind], e.Seq, e); err != nil {
				return err
			}
			sent()
		}
		if len(evs) == len(buf) {
			continue
		}
		if first != keyservicev1.KeyEventKind_KEY_EVENT_KIND_UNSPECIFIED {
			if err := send(first, after, nil); err != nil {
				return err
			}
			first = keyservicev1.KeyEventKind_KEY_EVENT_KIND_UNSPECIFIED
			sent()
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-wake:
		case <-s.events.Done():
			return errShuttingDown
		case now := <-t.C:
			if cred != nil && now.Sub(lastCheck) >= beat {
				lastCheck = now
				if e, ok := s.tenancy.Current().Credential(&cred.Hash); !ok || !e.Usable(s.now()) {
					return status.Error(codes.Unauthenticated, "credential revoked or expired")
				}
			}
			if now.Sub(lastSent) >= beat*3/4 {
				if err := send(keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT, after, nil); err != nil {
					return err
				}
				sent()
			}
		}
	}
}
