package transform

import (
	"context"
	"errors"
	"strings"

	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
)

// DefaultUACacheSize is the number of distinct User-Agent strings a
// UserAgent processor remembers when UserAgentOptions.CacheSize is 0. A
// day of CDN traffic has a few tens of thousands of distinct agents, and
// the few hundred most frequent ones make up most requests.
const DefaultUACacheSize = 16384

// UserAgentOptions configures the useragent processor.
type UserAgentOptions struct {
	// CacheSize is how many distinct User-Agent strings to remember, with
	// their parsed result. 0 means DefaultUACacheSize; negative is an
	// error.
	CacheSize int `yaml:"cache_size"`
	// Bots adds case-insensitive substrings that mark a User-Agent as a
	// robot, for agents the built-in list does not know (e.g. your own
	// monitoring). Empty strings are an error.
	Bots []string `yaml:"bots"`
}

// UserAgent is the useragent processor: it fills Event.UA (browser,
// browser_version, os, device) and Event.Bot from Event.UserAgent. Parsing
// uses github.com/medama-io/go-useragent for browsers, and a list of known
// robots (search engines, SEO and AI crawlers, link previewers, monitoring,
// headless browsers, HTTP libraries such as curl and python-requests) plus
// generic tokens ("bot", "crawl", "spider", "+http://...") for Bot; a
// robot's Device is "bot" and, when the list names it, its Browser is the
// robot's name. Results are cached per distinct User-Agent string. Safe for
// concurrent use.
type UserAgent struct {
	parser *useragent.Parser
	bots   *botMatcher
	cache  *cache[string, event.UA]
}

// Validate reports every invalid option, each naming its key and wrapping
// ErrOption: a negative cache size, or an empty bot substring.
func (o UserAgentOptions) Validate() error {
	var errs []error
	if o.CacheSize < 0 {
		errs = append(errs, optionError("cache_size", "%d is negative; use 0 for the default (%d) or a positive number of entries", o.CacheSize, DefaultUACacheSize))
	}
	for i, b := range o.Bots {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, optionError("bots", "entry %d is empty; it would mark every agent as a robot", i))
		}
	}
	return errors.Join(errs...)
}

// NewUserAgent returns a UserAgent processor. Options that do not
// Validate are an error wrapping ErrOption.
func NewUserAgent(o UserAgentOptions) (*UserAgent, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultUACacheSize
	}
	extra := make([]string, len(o.Bots))
	for i, b := range o.Bots {
		extra[i] = asciiLower(b)
	}
	return &UserAgent{parser: useragent.NewParser(), bots: newBotMatcher(extra), cache: newCache[string, event.UA](o.CacheSize, hashString)}, nil
}

// Process fills UA and Bot of every parsed message with a non-empty
// UserAgent; an empty one leaves both zero. It never fails and does not
// block.
func (u *UserAgent) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	for _, m := range batch {
		if !m.Parsed || m.Failed() != nil || m.Event.UserAgent == "" {
			continue
		}
		r := u.Parse(m.Event.UserAgent)
		m.Event.UA, m.Event.Bot = r, r.Device == event.DeviceBot
	}
	return batch, nil
}

// Parse returns the parsed form of a User-Agent string; its Device is
// event.DeviceBot exactly when the agent is a robot. It consults and fills
// the cache, does not block and is safe for concurrent use.
func (u *UserAgent) Parse(ua string) event.UA {
	if r, ok := u.cache.get(ua); ok {
		return r
	}
	r := u.parse(ua)
	// Clone the key: ua is often a substring of a whole parsed line, which
	// the cache would otherwise keep alive.
	u.cache.put(strings.Clone(ua), r)
	return r
}

func (u *UserAgent) parse(s string) event.UA {
	a := u.parser.Parse(s)
	r := event.UA{Browser: string(a.Browser()), BrowserVersion: a.BrowserVersion(), OS: string(a.OS())}
	switch a.Device() {
	case agents.DeviceDesktop:
		r.Device = event.DeviceDesktop
	case agents.DeviceMobile:
		r.Device = event.DeviceMobile
	case agents.DeviceTablet:
		r.Device = event.DeviceTablet
	case agents.DeviceBot:
		r.Device = event.DeviceBot
	default:
		r.Device = event.DeviceOther
	}
	// Android phones send "Mobile"; Android tablets, by Google's rule, do
	// not. The parser calls every Android device mobile.
	if r.OS == string(agents.OSAndroid) && r.Device == event.DeviceMobile && !strings.Contains(s, "Mobile") {
		r.Device = event.DeviceTablet
	}
	refine(s, &r)
	if name, ok := exactBots[s]; ok {
		return event.UA{Browser: name, Device: event.DeviceBot}
	}
	if name, version, ok := u.bots.match(s); ok {
		// A robot's claimed browser is not a browser: keep the robot's
		// name when the list knows it, else leave the browser empty.
		r.Device = event.DeviceBot
		r.Browser, r.BrowserVersion = name, version
	}
	return r
}
