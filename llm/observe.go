package llm

import "context"

// CallObserver watches model calls (for metrics and traces): CallStarted
// is called as a call begins and may return a context for the call to
// run in; the function it returns is called once the call ended, with its
// response or error. Both must be quick and safe for concurrent use.
type CallObserver interface {
	CallStarted(ctx context.Context, provider, model string) (context.Context, func(*Response, error))
}

// Observe makes o watch the calls of every provider registered so far.
func (r *Registry) Observe(o CallObserver) {
	for _, name := range r.Configured() {
		p, ok := r.Provider(name)
		if !ok {
			continue
		}
		op := &observed{Provider: p, o: o}
		if lister, ok := p.(ModelLister); ok {
			r.Register(&observedLister{op, lister})
		} else {
			r.Register(op)
		}
	}
}

// observed is a provider whose calls an observer watches.
type observed struct {
	Provider
	o CallObserver
}

func (p *observed) Complete(ctx context.Context, req Request, onDelta func(Delta)) (*Response, error) {
	ctx, ended := p.o.CallStarted(ctx, p.Name(), req.Model)
	resp, err := p.Provider.Complete(ctx, req, onDelta)
	ended(resp, err)
	return resp, err
}

// observedLister keeps a provider's model listing.
type observedLister struct {
	*observed
	ModelLister
}
