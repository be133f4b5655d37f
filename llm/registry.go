package llm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/clock"
)

// ModelInfo describes a model a provider offers.
type ModelInfo struct {
	Handle        string // "provider/name", what Registry.Resolve takes
	Provider      string
	Name          string // the provider's model name
	ContextWindow int    // tokens; 0 if unknown
}

// ModelLister is implemented by providers that can list their models.
type ModelLister interface {
	ListModels(ctx context.Context) ([]ModelInfo, error)
}

var (
	// ErrInvalidHandle is returned (wrapped) for a model handle that is
	// not "provider/model".
	ErrInvalidHandle = errors.New("invalid model handle")
	// ErrProviderNotConfigured is returned (wrapped) for a handle whose
	// provider is unknown or not configured.
	ErrProviderNotConfigured = errors.New("provider not configured")
)

// Registry holds the configured providers by name. It is safe for
// concurrent use.
type Registry struct {
	// ModelsTimeout bounds each provider's model listing in Models; 5s
	// if 0.
	ModelsTimeout time.Duration
	// ModelsCacheTTL is how long Models reuses a provider's listing (a
	// failed one for a fifth of it); 1 minute if 0, no caching if < 0.
	ModelsCacheTTL time.Duration
	// Clock times the cache; nil means the system clock.
	Clock clock.Clock

	mu        sync.RWMutex
	providers map[string]Provider
	order     []string
	hints     map[string]string // provider name → how to configure it
	gen       map[string]uint64 // provider name → registration count
	cache     map[string]modelsEntry
}

type modelsEntry struct {
	gen    uint64
	models []ModelInfo
	err    error
	at     time.Time
}

func (r *Registry) now() time.Time {
	if r.Clock == nil {
		return clock.Real{}.Now()
	}
	return r.Clock.Now()
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{providers: map[string]Provider{}, hints: map[string]string{}, gen: map[string]uint64{}, cache: map[string]modelsEntry{}}
}

// Register adds p under p.Name(), replacing a provider of that name.
func (r *Registry) Register(p Provider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := p.Name()
	if _, ok := r.providers[name]; !ok {
		r.order = append(r.order, name)
	}
	r.providers[name] = p
	r.gen[name]++
	delete(r.cache, name)
}

// Hint records how to configure the provider name, for Resolve's error
// when it is not configured.
func (r *Registry) Hint(name, howToConfigure string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hints[name] = howToConfigure
}

// Provider returns the provider called name.
func (r *Registry) Provider(name string) (Provider, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.providers[name]
	return p, ok
}

// Configured returns the names of the configured providers, in the order
// they were registered.
func (r *Registry) Configured() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.order...)
}

// Resolve splits a handle such as "openai/gpt-4o-mini" into its provider
// and the provider's model name (which may itself contain "/").
func (r *Registry) Resolve(handle string) (Provider, string, error) {
	name, model, ok := strings.Cut(handle, "/")
	if !ok || name == "" || model == "" {
		return nil, "", fmt.Errorf("llm: %w %q: want provider/model, such as openai/gpt-4o-mini", ErrInvalidHandle, handle)
	}
	r.mu.RLock()
	p, found := r.providers[name]
	var hint string
	var configured []string
	if !found { // every turn resolves its model: no copy when found
		hint, configured = r.hints[name], append([]string(nil), r.order...)
	}
	r.mu.RUnlock()
	if found {
		return p, model, nil
	}
	have := "none is configured"
	if len(configured) > 0 {
		have = "configured: " + strings.Join(configured, ", ")
	}
	if hint != "" {
		return nil, "", fmt.Errorf("llm: model %q: %w: %q; %s (%s)", handle, ErrProviderNotConfigured, name, hint, have)
	}
	return nil, "", fmt.Errorf("llm: model %q: %w: unknown provider %q (%s)", handle, ErrProviderNotConfigured, name, have)
}

// Catalog lists the models of every configured provider that can list
// them, asking them all at once, each within ModelsTimeout. A provider
// that fails contributes nothing. Providers come in registration order,
// each one's models sorted by name.
func (r *Registry) Catalog(ctx context.Context) []ModelInfo {
	timeout := r.ModelsTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ttl := r.ModelsCacheTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	r.mu.RLock()
	names := append([]string(nil), r.order...)
	provs := make([]Provider, len(names))
	gens := make([]uint64, len(names))
	for i, n := range names {
		provs[i] = r.providers[n]
		gens[i] = r.gen[n]
	}
	r.mu.RUnlock()

	results := make([][]ModelInfo, len(names))
	var wg sync.WaitGroup
	for i, p := range provs {
		lister, ok := p.(ModelLister)
		if !ok {
			continue
		}
		if ttl > 0 {
			r.mu.RLock()
			e, ok := r.cache[names[i]]
			r.mu.RUnlock()
			fresh := ttl
			if e.err != nil {
				fresh = ttl / 5
			}
			if ok && e.gen == gens[i] && r.now().Sub(e.at) < fresh {
				results[i] = e.models
				continue
			}
		}
		wg.Add(1)
		go func(i int, name string, lister ModelLister) {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			models, err := lister.ListModels(lctx)
			sort.Slice(models, func(a, b int) bool { return models[a].Name < models[b].Name })
			if err == nil {
				results[i] = models
			}
			if ttl > 0 && ctx.Err() == nil {
				r.mu.Lock()
				if r.gen[name] == gens[i] {
					r.cache[name] = modelsEntry{gen: gens[i], models: results[i], err: err, at: r.now()}
				}
				r.mu.Unlock()
			}
		}(i, names[i], lister)
	}
	wg.Wait()
	var out []ModelInfo
	for _, ms := range results {
		out = append(out, ms...)
	}
	return out
}
