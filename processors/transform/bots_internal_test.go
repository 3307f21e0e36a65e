package transform

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveMatch is the obvious definition botMatcher.match must agree with:
// the first pattern in list order that occurs in ua (case-insensitively),
// ignoring occurrences inside a notBots token.
func naiveMatch(ua string, extra []string) (name, version string, ok bool) {
	s := asciiLower(ua)
	for _, b := range namedBots {
		if i := strings.Index(s, b.token); i >= 0 {
			return b.name, versionAt(ua, i), true
		}
	}
	for _, nb := range notBots {
		s = strings.ReplaceAll(s, nb, strings.Repeat("\x00", len(nb)))
	}
	for _, t := range append(append([]string(nil), extra...), genericBots...) {
		if strings.Contains(s, t) {
			return "", "", true
		}
	}
	return "", "", false
}

func TestBotMatcherAgreesWithNaive(t *testing.T) {
	extra := []string{"acme-probe", "zz"}
	m := newBotMatcher(extra)
	var corpus []string
	for _, b := range namedBots {
		corpus = append(corpus,
			b.token,
			"Mozilla/5.0 (compatible; "+strings.ToUpper(b.token)+"/1.2.3; +http://example.com)",
			"prefix "+b.token[:len(b.token)-1], // one byte short: no named match
		)
	}
	for _, g := range append(append([]string(nil), extra...), genericBots...) {
		corpus = append(corpus, "Agent "+strings.ToUpper(g)+" x", g[1:])
	}
	corpus = append(corpus,
		"Mozilla/5.0 (Linux; Android 10; CUBOT_X19) Chrome/110.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; CUBOT_X19) Googlebot/2.1",
		"CUBOT robot", "cubotbot", "", "ÄÖÜ bot ☃",
	)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "abcdefghijklmnopqrstuvwxyzBOTCRAWL/ .-+:!(_0123456789"
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		corpus = append(corpus, string(b))
	}
	for _, ua := range corpus {
		gn, gv, gok := m.match(ua)
		wn, wv, wok := naiveMatch(ua, extra)
		if gn != wn || gv != wv || gok != wok {
			t.Fatalf("%q: matcher (%q, %q, %v), naive (%q, %q, %v)", ua, gn, gv, gok, wn, wv, wok)
		}
	}
}
