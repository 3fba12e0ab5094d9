package microsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// The rules micro applies to a service's configuration (nats.go micro/service.go).
var (
	semVerRegexp  = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	nameRegexp    = regexp.MustCompile(`^[A-Za-z0-9\-_]+$`)
	subjectRegexp = regexp.MustCompile(`^[^ >]*[>]?$`)
)

// ErrStopped is returned by AddEndpoint on a stopped service.
var ErrStopped = errors.New("microsvc: service stopped")

// Config configures a service, as micro.Config does.
type Config struct {
	// Name is the service name (letters, digits, - and _).
	Name string
	// Version is a SemVer 2.0 version.
	Version string
	// Description is reported by $SRV.INFO.
	Description string
	// Metadata annotates the service in every $SRV answer.
	Metadata map[string]string
	// QueueGroup of every endpoint; empty means micro.DefaultQueueGroup ("q").
	QueueGroup string
	// StatsHandler, when set, gives each endpoint's data in $SRV.STATS (marshalled as JSON).
	StatsHandler func(micro.EndpointInfo) any
}

// Group is where endpoints are added: the service itself or a group of it, whose name prefixes
// its endpoints' subjects.
type Group interface {
	// AddEndpoint serves requests on the group's prefix + "." + name with h.
	AddEndpoint(name string, h micro.Handler, opts ...EndpointOpt) error
	// AddGroup is a group whose prefix is this group's prefix + "." + name.
	AddGroup(name string) Group
}

// EndpointOpt configures an endpoint.
type EndpointOpt func(*endpointOpts) error

type endpointOpts struct {
	metadata map[string]string
}

// WithEndpointMetadata sets the endpoint's metadata ($SRV.INFO).
func WithEndpointMetadata(metadata map[string]string) EndpointOpt {
	return func(o *endpointOpts) error {
		o.metadata = maps.Clone(metadata)
		return nil
	}
}

// Service is a running micro service. Its handlers run on their endpoint's subscription, one
// message at a time, and may answer later from any goroutine (see package doc).
type Service struct {
	cfg     Config
	nc      *nats.Conn
	id      string
	started time.Time

	mu        sync.Mutex
	endpoints []*endpoint
	verbSubs  []*nats.Subscription
	stopped   bool
}

var _ Group = (*Service)(nil)

// Add starts a service on nc: it answers $SRV.PING, $SRV.INFO and $SRV.STATS on all three
// subject forms ($SRV.X, $SRV.X.<name>, $SRV.X.<name>.<id>). Endpoints are added with
// AddEndpoint and AddGroup.
func Add(nc *nats.Conn, cfg Config) (*Service, error) {
	if nc == nil {
		return nil, errors.New("microsvc: nil connection")
	}
	if !nameRegexp.MatchString(cfg.Name) {
		return nil, fmt.Errorf("%w: service name %q: letters, digits, - and _ only", micro.ErrConfigValidation, cfg.Name)
	}
	if !semVerRegexp.MatchString(cfg.Version) {
		return nil, fmt.Errorf("%w: version %q is not SemVer", micro.ErrConfigValidation, cfg.Version)
	}
	if cfg.QueueGroup == "" {
		cfg.QueueGroup = micro.DefaultQueueGroup
	}
	if !subjectRegexp.MatchString(cfg.QueueGroup) {
		return nil, fmt.Errorf("%w: queue group %q", micro.ErrConfigValidation, cfg.QueueGroup)
	}
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	s := &Service{cfg: cfg, nc: nc, id: nuid.Next(), started: time.Now().UTC()}
	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		for _, subj := range controlSubjects(verb, cfg.Name, s.id) {
			sub, err := nc.Subscribe(subj, s.verbHandler(verb))
			if err != nil {
				_ = s.Stop()
				return nil, fmt.Errorf("microsvc: subscribe %s: %w", subj, err)
			}
			s.verbSubs = append(s.verbSubs, sub)
		}
	}
	return s, nil
}

// controlSubjects are the three subjects of a verb: every service, every service of the name,
// this instance.
func controlSubjects(verb micro.Verb, name, id string) []string {
	var out []string
	for _, k := range [][2]string{{"", ""}, {name, ""}, {name, id}} {
		subj, _ := micro.ControlSubject(verb, k[0], k[1]) // verbs and name are valid here
		out = append(out, subj)
	}
	return out
}

func (s *Service) verbHandler(verb micro.Verb) nats.MsgHandler {
	return func(m *nats.Msg) {
		var v any
		switch verb {
		case micro.PingVerb:
			v = micro.Ping{ServiceIdentity: s.identity(), Type: micro.PingResponseType}
		case micro.InfoVerb:
			v = s.Info()
		case micro.StatsVerb:
			v = s.Stats()
		}
		b, err := json.Marshal(v)
		if err != nil { // the types are micro's plain structs: cannot happen but for a StatsHandler
			_ = m.RespondMsg(&nats.Msg{Header: nats.Header{micro.ErrorHeader: {err.Error()}, micro.ErrorCodeHeader: {"500"}}})
			return
		}
		_ = m.Respond(b) // a request without a reply subject gets nothing
	}
}

func (s *Service) identity() micro.ServiceIdentity {
	return micro.ServiceIdentity{Name: s.cfg.Name, ID: s.id, Version: s.cfg.Version, Metadata: maps.Clone(s.cfg.Metadata)}
}

// ID is this instance's id, the last token of its $SRV subjects.
func (s *Service) ID() string { return s.id }

// AddEndpoint serves requests on subject name.
func (s *Service) AddEndpoint(name string, h micro.Handler, opts ...EndpointOpt) error {
	return s.addEndpoint(name, name, h, opts)
}

// AddGroup is a group whose endpoints' subjects start with name.
func (s *Service) AddGroup(name string) Group { return group{s: s, prefix: name} }

func (s *Service) addEndpoint(name, subject string, h micro.Handler, opts []EndpointOpt) error {
	var o endpointOpts
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return err
		}
	}
	if !nameRegexp.MatchString(name) {
		return fmt.Errorf("%w: endpoint name %q", micro.ErrConfigValidation, name)
	}
	if !subjectRegexp.MatchString(subject) {
		return fmt.Errorf("%w: endpoint subject %q", micro.ErrConfigValidation, subject)
	}
	if h == nil {
		return fmt.Errorf("%w: endpoint %s: nil handler", micro.ErrConfigValidation, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	ep := &endpoint{info: micro.EndpointInfo{Name: name, Subject: subject, QueueGroup: s.cfg.QueueGroup, Metadata: o.metadata}}
	sub, err := s.nc.QueueSubscribe(subject, s.cfg.QueueGroup, func(m *nats.Msg) {
		ep.received()
		h.Handle(&request{msg: m, ep: ep, start: time.Now()})
	})
	if err != nil {
		return fmt.Errorf("microsvc: subscribe %s: %w", subject, err)
	}
	ep.sub = sub
	s.endpoints = append(s.endpoints, ep)
	return nil
}

// Info is the $SRV.INFO answer.
func (s *Service) Info() micro.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps := make([]micro.EndpointInfo, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		info := e.info
		info.Metadata = maps.Clone(info.Metadata)
		eps = append(eps, info)
	}
	return micro.Info{ServiceIdentity: s.identity(), Type: micro.InfoResponseType, Description: s.cfg.Description, Endpoints: eps}
}

// Stats is the $SRV.STATS answer.
func (s *Service) Stats() micro.Stats {
	s.mu.Lock()
	eps := append([]*endpoint(nil), s.endpoints...)
	s.mu.Unlock()
	st := micro.Stats{ServiceIdentity: s.identity(), Type: micro.StatsResponseType, Started: s.started,
		Endpoints: make([]*micro.EndpointStats, 0, len(eps))}
	for _, e := range eps {
		es := e.stats()
		if s.cfg.StatsHandler != nil {
			es.Data, _ = json.Marshal(s.cfg.StatsHandler(e.info))
		}
		st.Endpoints = append(st.Endpoints, es)
	}
	return st
}

// Stop drains every subscription: requests already delivered are still handled, and answers
// sent after Stop still go out (the connection stays open; its owner closes it).
func (s *Service) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	for _, e := range s.endpoints {
		e.stopping()
		if err := e.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain %s: %w", e.info.Subject, err))
		}
	}
	for _, sub := range s.verbSubs {
		if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain %s: %w", sub.Subject, err))
		}
	}
	return errors.Join(errs...)
}

// group is a subject prefix on a service.
type group struct {
	s      *Service
	prefix string
}

func (g group) AddEndpoint(name string, h micro.Handler, opts ...EndpointOpt) error {
	return g.s.addEndpoint(name, g.prefix+"."+name, h, opts)
}

func (g group) AddGroup(name string) Group { return group{s: g.s, prefix: g.prefix + "." + name} }
