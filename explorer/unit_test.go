package explorer_test

import (
	"regexp"
	"testing"

	"github.com/leasehold/leasehold/explorer"
)

var regexpKeys = regexp.MustCompile(`\bt\('([a-z_.]*[a-z_])'[,)]`)

func TestCSVCellsCannotRunFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://evil\")": "'=HYPERLINK(\"http://evil\")", "+1+1": "'+1+1", "-2+3": "'-2+3", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "https://www.google.com/": "https://www.google.com/", "-12.5": "-12.5", "42": "42", "": "",
	} {
		if got := explorer.Cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChannels(t *testing.T) {
	app := []string{"app.example.com"}
	for domain, want := range map[string]string{
		"": explorer.ChannelDirect, "google.com": explorer.ChannelSearch, "google.co.uk": explorer.ChannelSearch, "news.google.com": explorer.ChannelSearch,
		"mail.google.com": explorer.ChannelEmail, "linkedin.com": explorer.ChannelSocial, "t.co": explorer.ChannelSocial, "bing.com": explorer.ChannelSearch,
		"app.example.com": explorer.ChannelApp, "theverge.com": explorer.ChannelWebsites, "acme-000.example": explorer.ChannelWebsites,
		"notgoogle.com": explorer.ChannelWebsites, "myt.co": explorer.ChannelWebsites,
	} {
		if got := explorer.Channel(app, domain); got != want {
			t.Errorf("channel(%q) = %s, want %s", domain, got, want)
		}
	}
}
