package transform

import (
	"strings"

	"github.com/leasehold/leasehold/event"
)

// refine corrects and completes what the user-agent library reports, for
// the kinds of agent it gets wrong or does not know (each has rows in
// testdata/useragents.tsv): Internet Explorer's real version from its
// Trident engine, old Chrome builds, Presto-era Opera, Windows Phone and
// BlackBerry, the desktop device of agents that name a desktop system,
// in-app browsers (Facebook, Messenger, Instagram), and the media players
// and app HTTP stacks that fetch video and audio for people. s is the
// agent, r the library's result, changed in place. It does not allocate
// unless it sets a version.
func refine(s string, r *event.UA) {
	switch {
	case strings.Contains(s, "Trident/") || strings.Contains(s, "MSIE "):
		refineIE(s, r)
	case strings.HasPrefix(s, "Opera/") && strings.Contains(s, "Presto/"):
		// Presto Opera froze "Opera/9.80" and put its version in Version/.
		if v := versionAfter(s, "Version/"); v != "" {
			r.Browser, r.BrowserVersion = "Opera", v
		}
	case r.Browser == "Safari" && strings.Contains(s, "Chrome/") && !strings.Contains(s, "CriOS/"):
		// Chrome before about 12 on Mac OS X was taken for Safari.
		r.Browser, r.BrowserVersion = "Chrome", versionAfter(s, "Chrome/")
	case r.Browser == "Chrome" && r.BrowserVersion == "" && strings.Contains(s, "Chrome/"):
		r.BrowserVersion = versionAfter(s, "Chrome/")
	case r.Browser == "Chrome" && strings.Contains(s, "Vivaldi/"):
		r.Browser, r.BrowserVersion = "Vivaldi", versionAfter(s, "Vivaldi/")
	}

	switch {
	case strings.Contains(s, "Windows Phone"):
		r.OS, r.Device = "Windows Phone", event.DeviceMobile
	case strings.Contains(s, "BlackBerry") || strings.Contains(s, "(BB10;"):
		// The BlackBerry browser says "Version/... Mobile Safari", but is
		// not Safari.
		r.OS, r.Device = "BlackBerry", event.DeviceMobile
		if r.Browser == "Safari" {
			r.Browser, r.BrowserVersion = "", ""
		}
	case strings.Contains(s, "Mac_PowerPC"):
		r.OS = "MacOS"
	case strings.Contains(s, "Silk/") && r.OS == "Linux":
		// Kindle Fire: Amazon's Android tablets, before Silk named Android.
		r.OS, r.Device = "Android", event.DeviceTablet
	}

	refineApps(s, r)

	// A browser on a desktop system, without a mobile or tablet hint that
	// the library would have used, is a desktop ("Windows; U;" agents).
	if r.Device == event.DeviceOther && r.Browser != "" {
		switch r.OS {
		case "Windows", "MacOS", "Linux", "ChromeOS", "FreeBSD", "OpenBSD":
			r.Device = event.DeviceDesktop
		}
	}
}

// tridentIE maps the Trident engine version to the Internet Explorer that
// shipped it. An IE in compatibility view announces an older MSIE version
// but keeps its engine's; IE 11 announces no MSIE token at all.
var tridentIE = map[string]string{"4.0": "8.0", "5.0": "9.0", "6.0": "10.0", "7.0": "11.0", "8.0": "11.0"}

// refineIE sets Internet Explorer's version: the newer of its MSIE token
// and its Trident engine's.
func refineIE(s string, r *event.UA) {
	msie := versionAfter(s, "MSIE ")
	trident := tridentIE[versionAfter(s, "Trident/")]
	v := msie
	if trident != "" && (v == "" || majorOf(trident) > majorOf(v)) {
		v = trident
	}
	if v == "" {
		return
	}
	r.Browser, r.BrowserVersion = "IE", v
	if r.OS == "" && strings.Contains(s, "Windows") {
		r.OS = "Windows"
	}
	if r.Device == event.DeviceOther || r.Device == "" {
		r.Device = event.DeviceDesktop
	}
}

// refineApps names in-app browsers and recognises media players and app
// HTTP stacks: clients that fetch for a person, so not robots.
func refineApps(s string, r *event.UA) {
	switch {
	case strings.Contains(s, "FBAN/Orca") || strings.Contains(s, "FB_IAB/MESSENGER"):
		r.Browser, r.BrowserVersion = "Messenger", versionAfter(s, "FBAV/")
	case strings.Contains(s, "FBAN/") || strings.Contains(s, "FB_IAB/"):
		r.Browser, r.BrowserVersion = "Facebook", versionAfter(s, "FBAV/")
	case strings.Contains(s, " Instagram ") || strings.HasPrefix(s, "Instagram "):
		r.Browser, r.BrowserVersion = "Instagram", versionAfter(s, "Instagram ")
	case strings.HasPrefix(s, "AppleCoreMedia/"):
		// Video and audio played by Safari and iOS/macOS apps.
		r.Browser, r.BrowserVersion = "AppleCoreMedia", versionAfter(s, "AppleCoreMedia/")
		switch {
		case strings.Contains(s, "(iPhone") || strings.Contains(s, "(iPod"):
			r.OS, r.Device = "iOS", event.DeviceMobile
		case strings.Contains(s, "(iPad"):
			r.OS, r.Device = "iOS", event.DeviceTablet
		case strings.Contains(s, "(Macintosh"):
			r.OS, r.Device = "MacOS", event.DeviceDesktop
		case strings.Contains(s, "(Apple TV"):
			r.OS, r.Device = "tvOS", event.DeviceOther
		}
	case strings.HasPrefix(s, "VLC/") || strings.Contains(s, " VLC/"):
		r.Browser, r.BrowserVersion, r.OS, r.Device = "VLC", versionAfter(s, "VLC/"), "", event.DeviceOther
	case strings.Contains(s, "ExoPlayer") || strings.HasPrefix(s, "stagefright/") || strings.HasPrefix(s, "Dalvik/"):
		// Android media players and the Android app HTTP stack: the phone
		// or tablet cannot be told, and most are phones.
		r.Browser, r.BrowserVersion, r.OS, r.Device = "", "", "Android", event.DeviceMobile
	}
}

// versionAfter returns the version that follows the first occurrence of
// token in s: digits and dots, without a trailing dot, and without a last
// component that runs into letters (a build such as "16G77" in
// "1.0.0.16G77"). "" when token is absent or not followed by a digit.
func versionAfter(s, token string) string {
	i := strings.Index(s, token)
	if i < 0 {
		return ""
	}
	i += len(token)
	j := i
	for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
		j++
	}
	v := s[i:j]
	if j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z') {
		if k := strings.LastIndexByte(v, '.'); k >= 0 && s[j] != 'b' {
			v = v[:k] // a build ("16G77"), not a beta ("5.0b1")
		}
	}
	return strings.TrimRight(v, ".")
}

// majorOf returns the major version number of v ("11.0" → 11).
func majorOf(v string) int {
	n := 0
	for i := 0; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		n = n*10 + int(v[i]-'0')
	}
	return n
}
